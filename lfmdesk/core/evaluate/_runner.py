"""Running an evaluation: a plain generator of frozen events that the CLI and window consume.

::

    configs = make_configs("4bit,8bit", "default,max64")
    for event in evaluate_project(project, "car, person", configs, open_engine):
        ...  # EvalStarted, ConfigStarted, AnswerScored..., ConfigFinished..., EvalFinished

Ground truth is the boxes a person made or imported (source ``person``); images with none
are skipped and counted, and the model's own boxes never count as truth. Answers are greedy
(temperature 0), so a configuration gives the same answers every time, and each answer is
cached (:mod:`._cache`): running again makes no model call and opens no model, and a run
stopped part-way resumes. A model is opened (``open_engine(variant)``) only when one of its
answers is missing, once per variant, and unloaded before the next variant opens.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import EngineError, InputError
from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.answers._grounding import grounding_prompt, split_labels
from lfmdesk.core.datasets._annotations import PERSON, ImageAnnotation
from lfmdesk.core.datasets._batch import detection_request
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.engine._chat import GenerationStats, TextDelta
from lfmdesk.core.evaluate._cache import AnswerCache, CachedAnswer, answer_key, file_hash
from lfmdesk.core.evaluate._configs import EvalConfig, tiling_vision
from lfmdesk.core.evaluate._events import (
    AnswerFailed,
    AnswerScored,
    ConfigFinished,
    ConfigStarted,
    EvalEvent,
    EvalFinished,
    EvalPlan,
    EvalStarted,
)
from lfmdesk.core.evaluate._metrics import LabeledBox
from lfmdesk.core.evaluate._report import EvalReport
from lfmdesk.core.evaluate._scoring import ConfigResult, ImageEval, score_answer, score_config
from lfmdesk.core.images._load import load_image
from lfmdesk.core.live._session import ChatEngineLike

__all__ = [
    "AnswerFailed",
    "AnswerScored",
    "ConfigFinished",
    "ConfigStarted",
    "EngineOpener",
    "EvalEvent",
    "EvalFinished",
    "EvalPlan",
    "EvalStarted",
    "eval_folder",
    "evaluate_project",
    "plan_evaluation",
]

EngineOpener = Callable[[str], ChatEngineLike]


def eval_folder(project: Project) -> Path:
    """Where a project's evaluation lives: ``PROJECT/.lfmdesk/eval`` (answers, report)."""
    return project.meta / "eval"


@dataclass(frozen=True)
class _Truth:
    key: str
    width: int
    height: int
    boxes: tuple[LabeledBox, ...]


def _truth(ann: ImageAnnotation, labels: Sequence[str]) -> tuple[LabeledBox, ...] | None:
    """A person's boxes with a requested label; None when the image has no person box."""
    mine = [b for b in ann.boxes if b.source == PERSON]
    if not mine:
        return None
    wanted = {x.casefold(): x for x in labels}
    return tuple(
        LabeledBox(wanted[b.label.casefold()], b.px) for b in mine if b.label.casefold() in wanted
    )


@dataclass(frozen=True)
class _Run:
    project: Project
    plan: EvalPlan
    truth: tuple[_Truth, ...]
    hashes: dict[str, str]
    sampling: SamplingSettings
    vision: VisionSettings
    model_scope: str
    cache: AnswerCache

    def key(self, config: EvalConfig, image: str) -> str:
        return answer_key(
            self.hashes[image],
            f"{config.variant} @ {self.model_scope}",
            tiling_vision(config.tiling, self.vision),
            grounding_prompt(self.plan.labels),
            self.sampling_for(config),
        )

    def sampling_for(self, config: EvalConfig) -> SamplingSettings:
        # Greedy: the same configuration gives the same answers every time.
        return dataclasses.replace(
            self.sampling, temperature=0.0, seed=None, constrained=config.constrained
        )


def _read_truth(
    project: Project, labels: Sequence[str]
) -> tuple[list[_Truth], list[str], list[tuple[str, str]]]:
    truth, skipped, problems = [], [], []
    for key in project.images():
        try:
            ann = project.load(key)
        except InputError as exc:
            problems.append((key, str(exc)))
            continue
        boxes = _truth(ann, labels) if ann is not None else None
        if boxes is None or ann is None:
            skipped.append(key)
        else:
            truth.append(_Truth(key, ann.width, ann.height, boxes))
    return truth, skipped, problems


def plan_evaluation(
    project: Project,
    labels: str | Sequence[str],
    configs: Sequence[EvalConfig],
    *,
    sampling: SamplingSettings | None = None,
    vision: VisionSettings | None = None,
    model_scope: str = "local",
    cache: AnswerCache | None = None,
) -> EvalPlan:
    """What :func:`evaluate_project` would do (nothing runs; the image files are hashed).

    Raises:
        InputError: no labels, no configuration, or no image with ground truth.
    """
    return _prepare(project, labels, configs, sampling, vision, model_scope, cache).plan


def _prepare(
    project: Project,
    labels: str | Sequence[str],
    configs: Sequence[EvalConfig],
    sampling: SamplingSettings | None,
    vision: VisionSettings | None,
    model_scope: str,
    cache: AnswerCache | None,
) -> _Run:
    wanted = split_labels(labels if isinstance(labels, str) else ",".join(labels))
    if not wanted:
        raise InputError('no labels to evaluate: give some, e.g. --labels "car, person"')
    if not configs:
        raise InputError("nothing to evaluate: no configuration given")
    truth, skipped, problems = _read_truth(project, wanted)
    if not truth:
        raise InputError(
            f"{project.root}: no image has ground truth — draw or fix boxes (✎) on some "
            "images, or import a dataset, then evaluate"
        )
    hashes = {t.key: file_hash(project.image_path(t.key)) for t in truth}
    plan = EvalPlan(wanted, tuple(configs), tuple(t.key for t in truth), (), (), 0, 0)
    run = _Run(
        project,
        plan,
        tuple(truth),
        hashes,
        sampling or SamplingSettings(),
        vision or VisionSettings(),
        model_scope,
        cache or AnswerCache(eval_folder(project) / "answers"),
    )
    cached = sum(run.key(c, t.key) in run.cache for c in configs for t in truth)
    plan = dataclasses.replace(
        plan,
        skipped=tuple(skipped),
        problems=tuple(problems),
        answers=len(configs) * len(truth),
        cached=cached,
    )
    return dataclasses.replace(run, plan=plan)


class _Engines:
    """Opens a variant's engine on first need, and unloads it before the next one opens."""

    def __init__(self, opener: EngineOpener) -> None:
        self._opener = opener
        self._variant: str | None = None
        self._engine: ChatEngineLike | None = None

    def get(self, variant: str) -> ChatEngineLike:
        if self._variant != variant or self._engine is None:
            self.close()
            self._engine = self._opener(variant)
            self._variant = variant
        return self._engine

    def close(self) -> None:
        unload: Any = getattr(self._engine, "unload", None)
        if callable(unload):
            unload()
        self._engine, self._variant = None, None


def _ask(
    run: _Run, engines: _Engines, config: EvalConfig, truth: _Truth, cancel: threading.Event
) -> CachedAnswer | None:
    """The model's answer for one image (None when cancelled part-way)."""
    image = load_image(run.project.image_path(truth.key))
    vision = tiling_vision(config.tiling, run.vision)
    request = detection_request(image, run.plan.labels, run.sampling_for(config), vision)
    engine = engines.get(config.variant)
    began = time.perf_counter()
    pieces: list[str] = []
    stats: GenerationStats | None = None
    for event in engine.stream_chat(request, cancel=cancel):
        if isinstance(event, TextDelta):
            pieces.append(event.text)
        elif isinstance(event, GenerationStats):
            stats = event
    if cancel.is_set() or (stats is not None and stats.finish_reason == "cancelled"):
        return None
    return CachedAnswer(
        "".join(pieces),
        time.perf_counter() - began,
        stats.image_tokens if stats else 0,
        stats.peak_memory_bytes if stats else 0,
        stats.finish_reason if stats else "stop",
    )


def _score(run: _Run, truth: _Truth, answer: CachedAnswer | None, error: str = "") -> ImageEval:
    return score_answer(
        truth.key,
        truth.width,
        truth.height,
        truth.boxes,
        answer.text if answer else None,
        run.plan.labels,
        seconds=answer.seconds if answer else 0.0,
        image_tokens=answer.image_tokens if answer else 0,
        peak_memory_bytes=answer.peak_memory_bytes if answer else 0,
        error=error,
    )


def evaluate_project(
    project: Project,
    labels: str | Sequence[str],
    configs: Sequence[EvalConfig],
    open_engine: EngineOpener,
    *,
    sampling: SamplingSettings | None = None,
    vision: VisionSettings | None = None,
    model_scope: str = "local",
    cache: AnswerCache | None = None,
    cancel: threading.Event | None = None,
    fresh: bool = False,
) -> Iterator[EvalEvent]:
    """Evaluate ``configs`` on every image of ``project`` that has ground truth.

    Args:
        project: the project (its person-made boxes are the ground truth).
        labels: the labels to detect and score.
        configs: what to compare (:func:`~._configs.make_configs`).
        open_engine: ``open_engine(variant)`` returns a loaded engine (anything with
            ``stream_chat(request, *, cancel=None)``: the local Engine, a remote backend).
        sampling: base sampling (temperature is forced to 0; ``constrained`` per config).
        vision: base vision settings the tiling presets start from.
        model_scope: where models run ("local", or the backend URL): part of the cache key.
        cache: the answer cache (default: the project's).
        cancel: set it to stop after the current answer (which is not kept).
        fresh: ask the model again even where an answer is cached (and replace it).

    Raises:
        InputError: no labels, no configuration or no ground truth (before anything runs).
        LfmdeskError: a model cannot be opened (answers so far stay cached).
    """
    stop = cancel or threading.Event()
    run = _prepare(project, labels, configs, sampling, vision, model_scope, cache)
    yield EvalStarted(run.plan)
    engines = _Engines(open_engine)
    results: list[ConfigResult] = []
    progress = [0]  # answers done, shared across configurations
    try:
        for index, config in enumerate(run.plan.configs, 1):
            if stop.is_set():
                break
            yield ConfigStarted(config, index, len(run.plan.configs))
            scored: list[ImageEval] = []
            yield from _run_config(run, engines, config, stop, scored, progress, fresh)
            if len(scored) < len(run.truth):  # cancelled part-way: no partial scores
                break
            result = score_config(config, scored, run.plan.labels)
            results.append(result)
            yield ConfigFinished(result)
    finally:
        engines.close()
    plan = run.plan
    report = EvalReport(
        str(project.root), plan.labels, plan.images, plan.skipped, tuple(results), stop.is_set()
    )
    yield EvalFinished(report)


def _run_config(
    run: _Run,
    engines: _Engines,
    config: EvalConfig,
    stop: threading.Event,
    scored: list[ImageEval],
    progress: list[int],
    fresh: bool,
) -> Iterator[AnswerScored | AnswerFailed]:
    """Answer (or read back) and score every image for ``config``, appending to ``scored``."""
    for truth in run.truth:
        key = run.key(config, truth.key)
        answer, error = (None if fresh else run.cache.get(key)), ""
        cached = answer is not None
        if answer is None:
            try:
                answer = _ask(run, engines, config, truth, stop)
            except (InputError, EngineError) as exc:  # this image only; the run goes on
                error = str(exc)
            if stop.is_set():
                return  # cancelled: this image's answer is not kept
            if answer is not None:
                run.cache.put(key, answer)
        progress[0] += 1
        image = _score(run, truth, answer, error)
        scored.append(image)
        if error:
            yield AnswerFailed(config, truth.key, error, progress[0], run.plan.answers)
        else:
            yield AnswerScored(config, image, cached, progress[0], run.plan.answers)
