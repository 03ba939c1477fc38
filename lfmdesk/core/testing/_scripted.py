"""A stand-in for :class:`~lfmdesk.core.Engine` that answers from a script, without MLX.

GUI and worker tests run it behind the real engine-process plumbing: it streams like the real
engine (notices, text deltas of a few characters, one ``GenerationStats``), honours
``cancel()`` within one token, and is deterministic::

    engine = ScriptedEngine(answers=["Hello there."], token_delay=0.0)
    engine.load("any-name")
    for event in engine.stream_chat(ChatRequest.single("Hi")):
        ...                          # TextDelta("Hel"), TextDelta("lo "), ..., GenerationStats

Without ``answers`` it says a short sentence, and for the grounding prompt ("Detect all
instances of: cat, dog. ...") it answers a JSON list with one fixed box per label. An answer
starting with :data:`FAIL_PREFIX` raises :class:`EngineError` with the rest as the message.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lfmdesk.core._errors import DownloadCancelled, EngineError, ModelNotFoundError
from lfmdesk.core.answers._grounding import GROUNDING_TEMPLATE, split_labels
from lfmdesk.core.answers._tool_specs import tools_system_prompt
from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, GenerationStats, Notice, TextDelta
from lfmdesk.core.engine._engine import ModelInfo
from lfmdesk.core.engine._tiling import plan_tiles
from lfmdesk.core.engine.prompt._render import TOOLS_OFF_WITH_IMAGES
from lfmdesk.core.images._load import LoadedImage
from lfmdesk.core.models._download import DownloadDone, DownloadProgress

__all__ = ["DEFAULT_ANSWER", "FAIL_PREFIX", "ScriptedEngine", "scripted_boxes"]

DEFAULT_ANSWER = "This is a scripted answer from the test engine."
FAIL_PREFIX = "!fail:"
_DETECT_PREFIX, _DETECT_SUFFIX = GROUNDING_TEMPLATE.split("{query}")
_DOWNLOAD_BYTES = 1_000_000


def scripted_boxes(count: int) -> list[tuple[float, float, float, float]]:
    """The normalized boxes the default detection answer gives ``count`` labels, side by side."""
    width = 0.8 / max(count, 1)
    return [
        (round(0.1 + i * width, 3), 0.2, round(0.1 + (i + 0.8) * width, 3), 0.7)
        for i in range(count)
    ]


def _detection_answer(prompt: str) -> str:
    query = prompt[len(_DETECT_PREFIX) :].split(_DETECT_SUFFIX, 1)[0]
    labels = split_labels(query)
    items = [
        {"label": label, "bbox": list(box)}
        for label, box in zip(labels, scripted_boxes(len(labels)), strict=True)
    ]
    return json.dumps(items)


def _red_box_answer(prompt: str, image: LoadedImage) -> str:
    """One box around the image's strongly red pixels (the generated test video's square)."""
    labels = split_labels(prompt[len(_DETECT_PREFIX) :].split(_DETECT_SUFFIX, 1)[0])
    pixels = np.asarray(image.image.convert("RGB"), dtype=np.int16)
    red = (pixels[..., 0] > 160) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110)
    ys, xs = np.nonzero(red)
    if not len(xs) or not labels:
        return "[]"
    h, w = red.shape
    box = [round(xs.min() / w, 3), round(ys.min() / h, 3)]
    box += [round((xs.max() + 1) / w, 3), round((ys.max() + 1) / h, 3)]
    return json.dumps([{"label": labels[0], "bbox": box}])


class ScriptedEngine:
    """Same interface as :class:`~lfmdesk.core.Engine`; answers come from ``answers``.

    Args:
        answers: answers to give in turn (cycling); None gives the default answers.
        token_delay: seconds per streamed token.
        load_delay: seconds :meth:`load` takes.
        chars_per_token: characters per TextDelta.
        download_steps: :meth:`prepare_model` reports this many progress steps for a spec
            that is not an existing folder (0: the model counts as cached).
        fail_models: specs that :meth:`prepare_model` refuses with ModelNotFoundError.
        red_boxes: a Detect answers one box around the image's red pixels, so live-mode tests
            can check that boxes follow the generated video's moving square.
        compute: kept for interface parity; it changes nothing.
    """

    def __init__(
        self,
        answers: Sequence[str] | None = None,
        token_delay: float = 0.02,
        load_delay: float = 0.2,
        chars_per_token: int = 3,
        *,
        download_steps: int = 0,
        fail_models: Sequence[str] = (),
        red_boxes: bool = False,
        compute: ComputeMode = "auto",
    ) -> None:
        self.compute: ComputeMode = compute
        self._answers = tuple(answers or ())
        self._token_delay = token_delay
        self._load_delay = load_delay
        self._chars = max(1, chars_per_token)
        self._download_steps = download_steps
        self._fail_models = frozenset(fail_models)
        self._red_boxes = red_boxes
        self._turn = 0
        self._info: ModelInfo | None = None
        self._cancel = threading.Event()
        self._seen_images: set[tuple[str, tuple[int, int, bool, int, int, bool]]] = set()

    @property
    def info(self) -> ModelInfo | None:
        """The loaded model, or None."""
        return self._info

    def prepare_model(
        self, spec: str, cancel: threading.Event
    ) -> Iterator[DownloadProgress | DownloadDone]:
        """Pretend to resolve and download ``spec``, like :func:`~lfmdesk.core.ensure_model`.

        Raises:
            ModelNotFoundError: ``spec`` is one of ``fail_models``.
            DownloadCancelled: ``cancel`` was set during the pretend download.
        """
        if spec in self._fail_models:
            raise ModelNotFoundError(f"model {spec} is not available (scripted failure)")
        if Path(spec).is_dir() or self._download_steps <= 0:
            yield DownloadDone(None if Path(spec).is_dir() else spec, Path(spec))
            return
        step = _DOWNLOAD_BYTES // self._download_steps
        for n in range(1, self._download_steps + 1):
            if cancel.wait(self._token_delay):
                raise DownloadCancelled(f"download of {spec} cancelled; run it again to resume")
            yield DownloadProgress(spec, n * step, step * self._download_steps, "model.bin")
        yield DownloadDone(spec, Path(spec))

    def load(self, model_dir: str | Path, adapter: str | Path | None = None) -> ModelInfo:
        """Pretend to load ``model_dir`` with ``adapter`` (any strings; nothing is read)."""
        self.unload()
        time.sleep(self._load_delay)
        path = Path(model_dir)
        self._info = ModelInfo(
            path=path,
            name=path.name or str(model_dir),
            bits=None,
            compute_dtype="float32",
            device="cpu",
            blas=None,
            load_seconds=self._load_delay,
            adapter=Path(adapter) if adapter is not None else None,
        )
        return self._info

    def unload(self) -> None:
        """Forget the model and the pretend vision cache."""
        self._info = None
        self._seen_images.clear()

    def cancel(self) -> None:
        """Stop the answer in progress after the current token. Safe from any thread."""
        self._cancel.set()

    def render_prompt(self, request: ChatRequest) -> str:
        """A ChatML rendering with one ``<image>`` per image (tools only without images)."""
        self._require_model()
        parts: list[str] = []
        messages = list(request.messages)
        if request.tools and not request.images:
            system = messages.pop(0).text if messages and messages[0].role == "system" else ""
            parts.append(f"<|im_start|>system\n{tools_system_prompt(request.tools, system)}")
        for m in messages:
            parts.append(f"<|im_start|>{m.role}\n{'<image>' * len(m.images)}{m.text}")
        return "".join(p + "<|im_end|>\n" for p in parts) + "<|im_start|>assistant\n"

    def _require_model(self) -> None:
        if self._info is None:
            raise EngineError("no model is loaded")

    def _next_answer(self, request: ChatRequest) -> str:
        if self._answers:
            answer = self._answers[self._turn % len(self._answers)]
            self._turn += 1
            return answer
        last_user = next((m for m in reversed(request.messages) if m.role == "user"), None)
        if last_user is not None and last_user.text.startswith(_DETECT_PREFIX):
            if self._red_boxes and last_user.images:
                return _red_box_answer(last_user.text, last_user.images[-1])
            return _detection_answer(last_user.text)
        return DEFAULT_ANSWER

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]:
        """Stream the next scripted answer: Notice..., TextDelta..., then GenerationStats.

        Raises:
            EngineError: no model is loaded, or the answer is a scripted failure.
            SettingsError: the vision settings cannot run for an image's size.
        """
        self._require_model()
        self._cancel = cancel if cancel is not None else threading.Event()
        started = time.perf_counter()
        plans = [plan_tiles(i.width, i.height, request.vision) for i in request.images]
        for plan in plans:
            plan.check()
        if request.tools and request.images:
            yield Notice(TOOLS_OFF_WITH_IMAGES)
        answer = self._next_answer(request)
        if answer.startswith(FAIL_PREFIX):
            raise EngineError(answer[len(FAIL_PREFIX) :].strip() or "scripted failure")
        keys = [(i.content_hash, request.vision.key()) for i in request.images]
        hits = sum(key in self._seen_images for key in keys)
        self._seen_images.update(keys)
        chunks = [answer[i : i + self._chars] for i in range(0, len(answer), self._chars)]
        finish = "stop" if len(chunks) <= request.sampling.max_tokens else "length"
        sent, first = 0, None
        for chunk in chunks[: request.sampling.max_tokens]:
            if self._cancel.wait(self._token_delay):
                finish = "cancelled"
                break
            first = first or time.perf_counter()
            sent += 1
            yield TextDelta(chunk)
        end = time.perf_counter()
        image_tokens = sum(plan.image_tokens for plan in plans)
        yield GenerationStats(
            prompt_tokens=len(self.render_prompt(request)) // 4 + image_tokens,
            image_tokens=image_tokens,
            cached_prompt_tokens=0,
            vision_cache_hits=hits,
            images=len(plans),
            vision_seconds=0.01 * (len(keys) - hits),
            ttft_seconds=(first or end) - started,
            decode_tokens=sent,
            decode_tps=1.0 / self._token_delay if self._token_delay > 0 else 1000.0,
            peak_memory_bytes=64 << 20,
            finish_reason=finish,
            token_ids=tuple(range(100, 100 + sent)),
        )
