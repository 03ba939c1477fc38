"""Continuous batching: many requests answered by one Engine, up to ``max_batch`` at a time.

A decode step of LFM2-VL reads every weight of the language model once, whatever the number
of rows it advances; on a CPU (and on an Apple GPU) that read is most of the step's cost, so
answers that decode together finish several times sooner per token. :class:`BatchEngine`
keeps up to ``max_batch`` answers in mlx-vlm's ``BatchGenerator`` and tops it up as answers
finish. Each prompt is built by the Engine's own single-request path (same template, same
token ids, same vision-feature cache) and prefilled on its own, so a row starts from exactly
the state it would have alone; only the decode steps are shared.

Two ways to drive it, both on the thread that loaded the Engine (MLX):

    batch = BatchEngine(engine, max_batch=4)
    for key, event in batch.run((path, request) for path, request in work):
        ...                                  # TextDelta / Notice / GenerationStats / RequestFailed

or, for a server whose clients submit from other threads, ``submit()`` (thread-safe) and a
loop on the engine's thread calling ``step()`` while ``busy``.

Sampling is per request: greedy rows take mlx-vlm's argmax, sampled rows draw with the
single path's own sampler (``make_sampler``) inside a per-row logits processor. A ``seed``
cannot make a sampled answer reproducible in a batch (its draws depend on its batch-mates).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from lfmdesk.core._errors import EngineError, InputError, LfmdeskError
from lfmdesk.core._settings import SamplingSettings
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, GenerationStats, Notice, TextDelta
from lfmdesk.core.engine._engine import Engine

__all__ = ["DEFAULT_BATCH", "BatchEngine", "BatchItem", "RequestFailed"]

# Measured with ``python -m lfmdesk.bench --annotate`` on a 2-core CPU (README, Performance):
# 8 answered the most images per minute, for ~0.1 GB more peak memory than 1.
DEFAULT_BATCH = 8

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class RequestFailed:
    """A request that could not be answered (bad image size, MLX failure); others go on."""

    message: str


BatchItem = ChatEvent | RequestFailed


@dataclass
class _Job:
    ticket: int
    request: ChatRequest
    cancel: threading.Event
    submitted: float


@dataclass
class _Row:
    job: _Job
    prompt_ids: list[int]
    hits: int
    vision_seconds: float
    detokenizer: Any
    tokens: list[int] = field(default_factory=list)
    first: float | None = None


class BatchEngine:
    """Answers many :class:`ChatRequest` on one loaded :class:`Engine`, batching the decode.

    Args:
        engine: a loaded Engine; the BatchEngine must be stepped on its thread.
        max_batch: the most answers decoding together (1 answers one at a time).

    Raises:
        InputError: ``max_batch`` below 1.
    """

    def __init__(self, engine: Engine, *, max_batch: int = DEFAULT_BATCH) -> None:
        if max_batch < 1:
            raise InputError(f"--batch must be at least 1, got {max_batch}")
        self.engine = engine
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: deque[_Job] = deque()
        self._rows: dict[int, _Row] = {}  # BatchGenerator uid -> row
        self._gen: Any = None
        self._model: Any = None
        self._tickets = itertools.count()

    @property
    def busy(self) -> bool:
        """Requests are waiting or being answered (ask on the engine's thread)."""
        with self._lock:
            return bool(self._waiting or self._rows)

    @property
    def in_flight(self) -> int:
        """Answers currently in the batch."""
        return len(self._rows)

    def submit(self, request: ChatRequest, *, cancel: threading.Event | None = None) -> int:
        """Queue ``request``; returns its ticket. Safe from any thread.

        Args:
            request: the conversation and its settings.
            cancel: set it to end this answer (finish reason "cancelled"), even before it
                starts.
        """
        job = _Job(-1, request, cancel or threading.Event(), time.perf_counter())
        with self._lock:
            job.ticket = next(self._tickets)
            self._waiting.append(job)
        return job.ticket

    def step(self) -> list[tuple[int, BatchItem]]:
        """Start waiting requests in free slots, then decode one token for every row.

        Returns the events this step produced, each with its request's ticket; a request's
        last event is its ``GenerationStats`` (or ``RequestFailed``).

        Raises:
            EngineError: no model, or not the Engine's thread.
        """
        self.engine._require_owner()
        out: list[tuple[int, BatchItem]] = []
        if self._model is not None and self._model is not self.engine._model:
            self._fail_rows(out, "the model was changed while answering")
        self._admit(out)
        self._drop_cancelled(out)
        if self._rows:
            self._decode(out)
        return out

    def run(
        self,
        requests: Iterable[tuple[K, ChatRequest | LfmdeskError]],
        *,
        cancel: threading.Event | None = None,
    ) -> Generator[tuple[K, BatchItem], None, None]:
        """Answer ``requests`` (pulled lazily, ``max_batch`` at a time), yielding keyed events.

        An item whose request is an ``LfmdeskError`` (say, an image that could not be read)
        yields one ``RequestFailed`` and costs nothing. Setting ``cancel`` ends the answers in
        flight ("cancelled") and starts no new ones. Leaving the loop early cancels too.
        The BatchEngine is this run's alone until it ends (a server uses submit/step).
        """
        stop = threading.Event()  # ours: ending early must not set the caller's event
        source = iter(requests)
        keys: dict[int, K] = {}
        more = True
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    stop.set()
                while more and not stop.is_set() and len(keys) < self.max_batch:
                    item = next(source, None)
                    if item is None:
                        more = False
                    elif isinstance(item[1], LfmdeskError):
                        yield item[0], RequestFailed(str(item[1]))
                    else:
                        keys[self.submit(item[1], cancel=stop)] = item[0]
                if not keys:
                    return
                for ticket, event in self.step():
                    key = keys[ticket]
                    if isinstance(event, (GenerationStats, RequestFailed)):
                        del keys[ticket]
                    yield key, event
        finally:
            if keys:  # the caller stopped listening: end our answers now
                stop.set()
                self.step()

    def _admit(self, out: list[tuple[int, BatchItem]]) -> None:
        while len(self._rows) < self.max_batch:
            with self._lock:
                if not self._waiting:
                    return
                job = self._waiting.popleft()
            if job.cancel.is_set():
                out.append((job.ticket, _cancelled_before_start(job)))
                continue
            try:
                self._start(job, out)
            except LfmdeskError as exc:
                out.append((job.ticket, RequestFailed(str(exc))))
            except Exception as exc:  # MLX raises many kinds; one request must not stop all
                out.append((job.ticket, RequestFailed(_generation_failed(exc))))

    def _start(self, job: _Job, out: list[tuple[int, BatchItem]]) -> None:
        import mlx.core as mx

        engine, request = self.engine, job.request
        parts = engine._render(request)
        for notice in parts.notices:
            out.append((job.ticket, Notice(notice)))
        plan = engine._plan_fresh(request, parts.text, engine._image_keys(request))
        inputs = dict(plan.inputs)
        pixel_values = inputs.pop("pixel_values", None)
        embeds = engine._model.get_input_embeddings(
            mx.array([plan.full]), pixel_values, **inputs
        ).inputs_embeds
        mx.eval(embeds)
        from mlx_vlm.tokenizer_utils import make_streaming_detokenizer

        detokenizer = make_streaming_detokenizer(engine._processor)
        processors = _row_processors(request.sampling, engine._logits_processors(request))
        (uid,) = self._generator().insert(  # nothing after this may fail: the row is in
            [plan.full],
            max_tokens=[request.sampling.max_tokens],
            prompt_kwargs=[{"inputs_embeds": embeds}],
            logits_processors=[processors],
        )
        self._rows[uid] = _Row(job, plan.full, plan.hits, plan.vision_seconds, detokenizer)

    def _generator(self) -> Any:
        if self._gen is None:
            import mlx.core as mx
            from mlx_vlm.generate import BatchGenerator

            # Prompts are prefilled one at a time (the single path's shapes and numbers);
            # only decode steps are shared.
            self._model = self.engine._model
            self._gen = BatchGenerator(
                self._model.language_model,
                self.engine._processor,
                completion_batch_size=self.max_batch,
                prefill_batch_size=1,
                compute_logprobs=False,
                stream=mx.default_stream(mx.default_device()),
            )
            mx.reset_peak_memory()
        return self._gen

    def _drop_cancelled(self, out: list[tuple[int, BatchItem]]) -> None:
        for uid, row in list(self._rows.items()):
            if row.job.cancel.is_set():
                self._gen.remove(uid)
                self._finish(uid, "cancelled", out)

    def _decode(self, out: list[tuple[int, BatchItem]]) -> None:
        try:
            _, responses = self._gen.next()
        except Exception as exc:  # one failed step fails the rows in it, not the engine
            self._fail_rows(out, _generation_failed(exc))
            return
        now = time.perf_counter()
        for response in responses:
            row = self._rows.get(response.uid)
            if row is None:
                continue
            row.first = row.first or now
            if response.finish_reason != "stop":  # the end token is not part of the answer
                row.tokens.append(int(response.token))
                row.detokenizer.add_token(int(response.token))
                _emit_text(row, out)
            if response.finish_reason is not None:
                row.detokenizer.finalize()
                _emit_text(row, out)
                self._finish(response.uid, str(response.finish_reason), out)

    def _finish(self, uid: int, reason: str, out: list[tuple[int, BatchItem]]) -> None:
        import mlx.core as mx

        row = self._rows.pop(uid)
        end = time.perf_counter()
        first = row.first or end
        n = len(row.tokens)
        image_id = self.engine._model.config.image_token_index
        stats = GenerationStats(
            prompt_tokens=len(row.prompt_ids),
            image_tokens=row.prompt_ids.count(image_id),
            cached_prompt_tokens=0,
            vision_cache_hits=row.hits,
            images=len(row.job.request.images),
            vision_seconds=row.vision_seconds,
            ttft_seconds=first - row.job.submitted,
            decode_tokens=n,
            decode_tps=(n - 1) / (end - first) if n > 1 and end > first else 0.0,
            peak_memory_bytes=int(mx.get_peak_memory()),
            finish_reason=reason,
            token_ids=tuple(row.tokens),
        )
        out.append((row.job.ticket, stats))

    def _fail_rows(self, out: list[tuple[int, BatchItem]], message: str) -> None:
        for row in self._rows.values():
            out.append((row.job.ticket, RequestFailed(message)))
        self.close()

    def close(self) -> None:
        """Drop the batch generator and its caches; answers in flight are dropped unanswered.

        Requests still waiting stay queued and start on the next ``step``.
        """
        self._rows.clear()
        if self._gen is not None:
            self._gen.close()
        self._gen = self._model = None


def _emit_text(row: _Row, out: list[tuple[int, BatchItem]]) -> None:
    segment = row.detokenizer.last_segment  # reading it consumes it
    if segment:
        out.append((row.job.ticket, TextDelta(segment)))


def _generation_failed(exc: Exception) -> str:
    return str(EngineError(f"generation failed: {type(exc).__name__}: {exc}"))


def _cancelled_before_start(job: _Job) -> GenerationStats:
    return GenerationStats(
        prompt_tokens=0,
        image_tokens=0,
        cached_prompt_tokens=0,
        vision_cache_hits=0,
        images=len(job.request.images),
        vision_seconds=0.0,
        ttft_seconds=time.perf_counter() - job.submitted,
        decode_tokens=0,
        decode_tps=0.0,
        peak_memory_bytes=0,
        finish_reason="cancelled",
        token_ids=(),
    )


Processor = Callable[[Any, Any], Any]


def _row_processors(s: SamplingSettings, constraint: Sequence[Processor]) -> list[Processor]:
    """The single path's logits processors for one row (repetition penalty, then the grammar
    of a constrained request), then its sampler (if not greedy): last, so it draws from what
    the grammar allows."""
    from mlx_vlm.generate.common import DEFAULT_REPETITION_CONTEXT_SIZE
    from mlx_vlm.sample_utils import make_logits_processors

    penalty = s.repetition_penalty if s.repetition_penalty != 1.0 else None
    processors: list[Processor] = make_logits_processors(
        repetition_penalty=penalty, repetition_context_size=DEFAULT_REPETITION_CONTEXT_SIZE
    )
    processors.extend(constraint)
    if s.temperature > 0:
        processors.append(_DrawToken(s))
    return processors


class _DrawToken:
    """Draws this row's token with the single path's sampler and pins the argmax to it.

    ``BatchGenerator`` has one sampler for all rows (argmax here); a per-row processor that
    leaves only the drawn token finite lets each row keep its own temperature, min-p, top-p.
    """

    def __init__(self, s: SamplingSettings) -> None:
        from mlx_vlm.sample_utils import make_sampler

        self._sample = make_sampler(
            temp=s.temperature, top_p=s.top_p, min_p=s.min_p, top_k=max(s.top_k, 0)
        )

    def __call__(self, _tokens: Any, logits: Any) -> Any:
        import mlx.core as mx

        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        token = self._sample(logprobs)
        columns = mx.arange(logits.shape[-1])
        return mx.where(columns == token[:, None], 0.0, -mx.inf).astype(logits.dtype)
