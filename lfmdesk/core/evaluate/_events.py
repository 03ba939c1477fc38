"""The events an evaluation yields (frozen, picklable), and the plan it announces first."""

from __future__ import annotations

from dataclasses import dataclass

from lfmdesk.core.evaluate._configs import EvalConfig
from lfmdesk.core.evaluate._report import EvalReport
from lfmdesk.core.evaluate._scoring import ConfigResult, ImageEval

__all__ = [
    "AnswerFailed",
    "AnswerScored",
    "ConfigFinished",
    "ConfigStarted",
    "EvalEvent",
    "EvalFinished",
    "EvalPlan",
    "EvalStarted",
]


@dataclass(frozen=True)
class EvalPlan:
    """What an evaluation will do.

    Attributes:
        labels: the labels asked for.
        configs: the configurations, in run order.
        images: keys of the images with ground truth, in project order.
        skipped: keys of images without ground truth.
        problems: ``(key, message)`` for images whose annotation file is damaged.
        answers: answers the run needs (configurations x images).
        cached: how many of them are cached already.
    """

    labels: tuple[str, ...]
    configs: tuple[EvalConfig, ...]
    images: tuple[str, ...]
    skipped: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]
    answers: int
    cached: int


@dataclass(frozen=True)
class EvalStarted:
    """The plan, before any model runs."""

    plan: EvalPlan


@dataclass(frozen=True)
class ConfigStarted:
    """Configuration ``index`` (1-based) of ``total`` begins."""

    config: EvalConfig
    index: int
    total: int


@dataclass(frozen=True)
class AnswerScored:
    """One image answered (or read from the cache) and scored; ``done`` of ``total`` answers."""

    config: EvalConfig
    image: ImageEval
    cached: bool
    done: int
    total: int


@dataclass(frozen=True)
class AnswerFailed:
    """The model could not answer for one image (it is scored as no boxes and not cached)."""

    config: EvalConfig
    key: str
    message: str
    done: int
    total: int


@dataclass(frozen=True)
class ConfigFinished:
    """A configuration's scores."""

    result: ConfigResult


@dataclass(frozen=True)
class EvalFinished:
    """The last event: the report (``report.cancelled`` when it stopped early)."""

    report: EvalReport


EvalEvent = (
    EvalStarted | ConfigStarted | AnswerScored | AnswerFailed | ConfigFinished | EvalFinished
)
