"""The inference engine: one loaded LFM2-VL model, streaming answers as frozen events.

MLX streams are thread-local, so an Engine belongs to the thread that loaded it: load and
generate on that one thread (the GUI runs it in a separate process). ``cancel()`` is the only
method safe to call from elsewhere.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk._trace import mark
from lfmdesk.core._errors import EngineError, LfmdeskError, ModelInvalidError, one_line
from lfmdesk.core.engine._backend import ComputeMode, backend_info, warn_once_if_slow
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, GenerationStats, Notice, TextDelta
from lfmdesk.core.engine._constrained import GrammarTokenizer, logits_processor
from lfmdesk.core.engine._fast_vision import install_fast_vision
from lfmdesk.core.engine._loader import (
    display_name,
    load_lfm2_vl,
    make_float32,
    quantization_bits,
    say_ignored_once,
)
from lfmdesk.core.engine._session import PrefixState
from lfmdesk.core.engine._tiling import apply_vision_settings, plan_tiles
from lfmdesk.core.engine._vision_cache import VisionFeatureCache, image_cache_key
from lfmdesk.core.engine.prompt._render import PromptParts, render_prompt
from lfmdesk.core.engine.prompt._tokens import PromptTokens, splice_images, split_after
from lfmdesk.core.images._load import LoadedImage
from lfmdesk.core.models._store import verify_model_dir

__all__ = ["Engine", "ModelInfo"]

# MLX keeps freed buffers for reuse, by default up to its whole memory limit. Live mode runs
# thousands of requests whose temporaries differ slightly in size, so without a bound the
# cache (and the process) keeps growing; 384 MiB holds one live request's working set.
CACHE_LIMIT_BYTES = 384 << 20


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded and how it runs.

    Attributes:
        path: the model folder.
        name: the folder's display name (repo name for HF cache snapshots).
        bits: quantization bits on disk, None for bf16/float checkpoints.
        compute_dtype: dtype the weights are computed in ("float32" on CPU by default).
        device: "gpu" or "cpu".
        blas: OpenBLAS preloaded for MLX on CPU, if any.
        load_seconds: wall time of the load.
        notices: what lfmdesk ignored in the folder (code files, ``auto_map``), one line each.
        adapter: the LoRA adapter folder applied on top, if any.
        vision_tower: how the vision encoder runs: "fast" (the fast CPU path, see
            ``_fast_vision``) or "stock" (mlx-vlm's).
    """

    path: Path
    name: str
    bits: int | None
    compute_dtype: str
    device: str
    blas: str | None
    load_seconds: float
    notices: tuple[str, ...] = ()
    adapter: Path | None = None
    vision_tower: str = "stock"


class Engine:
    """Loads one model at a time and streams chat answers.

    Args:
        compute: "auto" (float32 on CPU, the checkpoint's dtype on Metal), "native" (the
            checkpoint as shipped) or "float32".
        vision_cache_images: how many images' vision features to keep.
    """

    def __init__(self, *, compute: ComputeMode = "auto", vision_cache_images: int = 16) -> None:
        self.compute: ComputeMode = compute
        self._model: Any = None
        self._processor: Any = None
        self._info: ModelInfo | None = None
        self._owner: int | None = None
        self._cancel = threading.Event()  # the running answer's stop flag
        self._vision = VisionFeatureCache(vision_cache_images)
        self._prefix = PrefixState()
        self._bos_added_by_tokenizer = False
        self._tokens: PromptTokens | None = None
        self._grammar_tokenizer: GrammarTokenizer | None = None  # built on the first constraint

    @property
    def info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        return self._info

    def load(self, model_dir: str | Path, adapter: str | Path | None = None) -> ModelInfo:
        """Verify and load a model folder, freeing the previous model first.

        Nothing in the folder is ever run: mlx-vlm's built-in LFM2-VL classes load it and the
        chat template renders under size and time limits (see ``_loader`` and
        ``prompt/_template``). What the folder holds that would pick code (``model_file``,
        ``auto_map``, ``*.py``) is ignored and named once in a warning and in
        :attr:`ModelInfo.notices`.

        Args:
            model_dir: the model folder.
            adapter: a LoRA adapter folder to apply on top (mlx-vlm's ``adapter_path``). The
                caller checks that it belongs to this model (``core.train.check_adapter``).
        """
        path = Path(model_dir).expanduser().resolve()
        adapter_dir = Path(adapter).expanduser().resolve() if adapter is not None else None
        folder = verify_model_dir(path)
        self.unload()
        started = time.perf_counter()
        backend = backend_info()
        warn_once_if_slow()
        say_ignored_once(folder)
        try:
            model, processor = load_lfm2_vl(folder, adapter=adapter_dir)
        except LfmdeskError:
            raise
        except Exception as exc:
            raise ModelInvalidError(
                f"cannot load model from {path}: {one_line(str(exc), 300)}"
            ) from None
        bits = quantization_bits(path)
        use_f32 = self.compute == "float32" or (self.compute == "auto" and backend.device == "cpu")
        if use_f32:
            make_float32(model, quantized=bits is not None)
        tower = install_fast_vision(model, backend.device)
        import mlx.core as mx

        mx.set_cache_limit(CACHE_LIMIT_BYTES)
        self._model, self._processor = model, processor
        self._owner = threading.get_ident()
        self._bos_added_by_tokenizer = self._tokenizer_adds_bos()
        self._info = ModelInfo(
            path=path,
            name=display_name(path),
            bits=bits,
            compute_dtype="float32" if use_f32 else "native",
            device=backend.device,
            blas=backend.blas,
            load_seconds=time.perf_counter() - started,
            notices=(folder.notice,) if folder.notice else (),
            adapter=adapter_dir,
            vision_tower=tower,
        )
        mark("model-loaded")  # python -m lfmdesk.bench --startup
        return self._info

    def unload(self) -> None:
        """Free the model, its caches and MLX's buffer cache."""
        if self._model is None:
            return
        self._model = self._processor = self._info = None
        self._grammar_tokenizer = None
        self._vision.clear()
        self._prefix.reset()
        gc.collect()
        import mlx.core as mx

        mx.clear_cache()

    def cancel(self) -> None:
        """Stop the answer in progress after the current token. Safe from any thread."""
        self._cancel.set()

    def _tokenizer_adds_bos(self) -> bool:
        tok = getattr(self._processor, "tokenizer", self._processor)
        bos = getattr(tok, "bos_token_id", None)
        ids = tok("", add_special_tokens=True)["input_ids"]
        return bos is not None and bool(ids) and ids[0] == bos

    def _require_owner(self) -> None:
        if self._model is None:
            raise EngineError("no model is loaded")
        if threading.get_ident() != self._owner:
            raise EngineError("an Engine must be used from the thread that loaded it (MLX)")

    def render_prompt(self, request: ChatRequest) -> str:
        """The exact prompt text the model gets, BOS included (before image-token expansion)."""
        self._require_owner()
        return self._prompt_tokens().shown(self._render(request).text)

    def _prompt_tokens(self) -> PromptTokens:
        tok = getattr(self._processor, "tokenizer", self._processor)
        if self._tokens is None or self._tokens.tokenizer is not tok:  # built once per model
            self._tokens = PromptTokens(tok, add_bos=self._bos_added_by_tokenizer)
        return self._tokens

    def _render(self, request: ChatRequest) -> PromptParts:
        """The marked prompt text (see ``_tokens``): only the template's markup is special."""
        return render_prompt(self._processor, request, self._prompt_tokens())

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]:
        """Answer ``request``: yields TextDelta/Notice events, then one GenerationStats.

        Args:
            request: the conversation and its settings.
            cancel: this answer's own stop flag. A caller that queues work (the engine
                process) passes one per request, so a Cancel that arrives before the answer
                starts is never lost; without it, :meth:`cancel` stops the answer.

        Raises:
            EngineError: no model, wrong thread, or MLX failed (the engine stays usable).
        """
        self._require_owner()
        self._cancel = cancel if cancel is not None else threading.Event()
        started = time.perf_counter()
        parts = self._render(request)
        for notice in parts.notices:
            yield Notice(notice)
        try:
            yield from self._generate(request, parts.text, started)
        except LfmdeskError:
            self._forget_prefix()
            raise
        except Exception as exc:
            self._forget_prefix()
            raise EngineError(f"generation failed: {type(exc).__name__}: {exc}") from None

    def _forget_prefix(self) -> None:
        self._prefix.reset()

    def _image_keys(self, request: ChatRequest) -> tuple[str, ...]:
        return tuple(image_cache_key(i.content_hash, request.vision.key()) for i in request.images)

    def _plan(self, request: ChatRequest, prompt: str) -> _Plan:
        """Model inputs for the marked ``prompt``: only new tokens when the cache can be reused."""
        keys = self._image_keys(request)
        suffix = self._prefix.continuation(prompt, keys)
        if suffix is not None and self._model.config.image_token_index is not None:
            new_ids = self._prompt_tokens().encode(suffix, first=False)
            full = self._prefix.seen_ids + new_ids
            held = len(self._prefix.ids)
            if held < len(full):
                return _Plan(full, full[held:], {}, self._prefix.cache, len(keys), 0.0)
        self._forget_prefix()
        return self._plan_fresh(request, prompt, keys)

    def _plan_fresh(self, request: ChatRequest, prompt: str, keys: tuple[str, ...]) -> _Plan:
        ids = self._prompt_tokens().encode(prompt)
        images = request.images
        if not images:
            return _Plan(ids, ids, {}, None, 0, 0.0)
        plans = [plan_tiles(img.width, img.height, request.vision) for img in images]
        for plan in plans:
            plan.check()  # settings mlx-vlm cannot run for this size raise a SettingsError
        apply_vision_settings(self._processor.image_processor, request.vision, plans=plans)
        expansions, inputs = self._expand_images(images)
        if sum(len(plan.views) for plan in plans) != inputs["pixel_values"].shape[0]:
            raise EngineError("tiling plan and processor disagree for this image size")
        full = splice_images(ids, self._model.config.image_token_index, expansions)
        tic = time.perf_counter()
        views = [len(plan.views) for plan in plans]
        encoded = self._vision.encode(self._model, list(keys), views, inputs)
        inputs["cached_image_features"] = encoded.features
        vision_s = time.perf_counter() - tic if encoded.encoded_views else 0.0
        return _Plan(full, full, inputs, None, encoded.hits, vision_s)

    def _expand_images(self, images: tuple[LoadedImage, ...]) -> tuple[list[list[int]], Any]:
        """Each image's token ids and the pixel inputs, from mlx-vlm's own processor.

        The processor sees a text of image placeholders only, never message text: it expands
        each into the image's markers and ``<image>`` tokens, exactly as for a whole prompt.
        """
        from mlx_vlm.utils import prepare_inputs

        placeholder = str(getattr(self._processor, "image_token", "<image>"))
        inputs = dict(
            prepare_inputs(
                self._processor,
                images=[img.image for img in images],
                prompts=placeholder * len(images),
                image_token_index=self._model.config.image_token_index,
                add_special_tokens=False,
            )
        )
        ids = [int(t) for t in inputs.pop("input_ids")[0].tolist()]
        inputs.pop("attention_mask", None)
        tok = getattr(self._processor, "tokenizer", self._processor)
        end = tok.convert_tokens_to_ids(getattr(self._processor, "image_end_token", ""))
        expansions = split_after(ids, end) if len(images) > 1 else [ids]
        if len(expansions) != len(images):
            raise EngineError("the processor's image tokens do not split into one run per image")
        return expansions, inputs

    def _generate(self, request: ChatRequest, prompt: str, started: float) -> Iterator[ChatEvent]:
        import mlx.core as mx
        from mlx_vlm.generate import stream_generate
        from mlx_vlm.models.cache import make_prompt_cache

        plan = self._plan(request, prompt)
        cache = (
            plan.cache if plan.cache is not None else make_prompt_cache(self._model.language_model)
        )
        s = request.sampling
        if s.seed is not None:
            mx.random.seed(s.seed)
        mx.reset_peak_memory()
        processors = self._logits_processors(request)
        gen = stream_generate(
            self._model,
            self._processor,
            prompt,
            input_ids=mx.array([plan.feed]),
            prompt_cache=cache,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            min_p=s.min_p,
            top_p=s.top_p,
            top_k=s.top_k if s.top_k > 0 else None,
            repetition_penalty=s.repetition_penalty if s.repetition_penalty != 1.0 else None,
            logits_processors=processors or None,
            **plan.inputs,
        )
        tokens: list[int] = []
        texts: list[str] = []
        first: float | None = None
        finish, eos = "length", None
        for result in gen:
            first = first or time.perf_counter()
            if result.token_ids is None and result.token is not None:
                tokens.append(int(result.token))
            elif (
                result.token_ids is not None
            ):  # the closing result; on "stop" it holds the end token
                finish = result.finish_reason or finish
                eos = int(result.token) if finish == "stop" and result.token is not None else None
            if result.text:
                texts.append(result.text)
                yield TextDelta(result.text)
            if self._cancel.is_set():  # set by cancel(), or by the caller's own event
                gen.close()
                finish = "cancelled"
                break
        end = time.perf_counter()
        if finish == "cancelled":
            self._forget_prefix()
        else:
            answer_ids = tokens + ([eos] if eos is not None else [])
            answer = self._prompt_tokens().defuse_answer("".join(texts))
            seen_text = prompt + answer + (self._end_text() if eos is not None else "")
            self._prefix.remember(
                cache, plan.full + answer_ids, seen_text, self._image_keys(request)
            )
        first = first or end
        yield GenerationStats(
            prompt_tokens=len(plan.full),
            image_tokens=plan.full.count(self._model.config.image_token_index),
            cached_prompt_tokens=len(plan.full) - len(plan.feed),
            vision_cache_hits=plan.hits,
            images=len(request.images),
            vision_seconds=plan.vision_seconds,
            ttft_seconds=first - started,
            decode_tokens=len(tokens),
            decode_tps=(len(tokens) - 1) / (end - first)
            if len(tokens) > 1 and end > first
            else 0.0,
            peak_memory_bytes=int(mx.get_peak_memory()),
            finish_reason=finish,
            token_ids=tuple(tokens),
        )

    def _logits_processors(self, request: ChatRequest) -> list[Any]:
        """The grammar of ``request.constraint`` as mlx-vlm logits processors (or none)."""
        if request.constraint is None:
            return []
        if self._grammar_tokenizer is None:
            tok = getattr(self._processor, "tokenizer", self._processor)
            self._grammar_tokenizer = GrammarTokenizer(tok)
        images = request.images
        size = (images[-1].width, images[-1].height) if images else None
        return [
            logits_processor(
                request.constraint,
                self._grammar_tokenizer,
                max_tokens=request.sampling.max_tokens,
                image_size=size,
            )
        ]

    def _end_text(self) -> str:
        tok = getattr(self._processor, "tokenizer", self._processor)
        return str(getattr(tok, "eos_token", "") or "")

    # --- for core.train: learning from the exact inputs generation feeds -----------------

    def training_handles(self) -> tuple[Any, Any]:
        """The loaded mlx-vlm model and processor, for ``core.train`` to train in place.

        The caches here assume an unchanged model: whoever attaches adapters or changes
        weights must :meth:`unload` this engine afterwards, never generate with it.
        """
        self._require_owner()
        return self._model, self._processor

    def training_example(self, request: ChatRequest, answer: str) -> dict[str, Any]:
        """Model inputs that teach the model to answer ``request`` with ``answer``.

        The prompt part is built exactly as :meth:`stream_chat` builds it (chat template,
        tokens, tiling and pixels); the answer follows as plain text (never special tokens)
        with the end token. Returns mlx-vlm's per-example fields: ``input_ids``,
        ``attention_mask``, ``completion_mask`` (1 on the answer: only it is learned) and the
        processor's vision inputs.
        """
        self._require_owner()
        import mlx.core as mx

        parts = self._render(request)
        plan = self._plan_fresh(request, parts.text, self._image_keys(request))
        tok = getattr(self._processor, "tokenizer", self._processor)
        encoded = tok(answer, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        answer_ids = [int(t) for t in encoded] + [int(tok.eos_token_id)]
        ids = plan.full + answer_ids
        inputs = {k: v for k, v in plan.inputs.items() if k != "cached_image_features"}
        inputs["input_ids"] = mx.array(ids, dtype=mx.int32)
        inputs["attention_mask"] = mx.ones(len(ids), dtype=mx.int32)
        inputs["completion_mask"] = mx.array(
            [0] * len(plan.full) + [1] * len(answer_ids), dtype=mx.int32
        )
        return inputs


@dataclass(frozen=True)
class _Plan:
    full: list[int]  # every prompt token id
    feed: list[int]  # the ids to run through the model (the tail when the cache is reused)
    inputs: dict[str, Any]  # pixel values, spatial shapes, cached image features
    cache: Any  # the reused KV cache, or None for a fresh one
    hits: int
    vision_seconds: float
