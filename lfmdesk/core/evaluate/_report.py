"""The evaluation report: a table to print, ``report.csv`` and ``report.json``.

The best configuration is the one with the highest F1 at IoU 0.5 over all labels (it does
not depend on the rank-score convention), then the highest mAP, then the lowest median
latency; it is marked ``*`` in the table and ``"best": true`` in the files. The report holds
no dates and every number is rounded, so two runs over the same answers write the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets._annotations import MODEL, PERSON, ImageAnnotation, make_box
from lfmdesk.core.evaluate._coco_ap import rank_score
from lfmdesk.core.evaluate._scoring import ConfigResult, ImageEval, Scores

__all__ = [
    "REPORT_CSV",
    "REPORT_JSON",
    "REVIEW_ORDERS",
    "SCORE_RULE",
    "EvalReport",
    "best_index",
    "read_report",
    "review_annotation",
    "review_order",
    "write_report",
]

REPORT_CSV, REPORT_JSON = "report.csv", "report.json"
SCORE_RULE = (
    "mAP/AP50 score each box by its rank in the answer: 1, 1/2, 1/3, ...; ties keep image "
    f"order (first box {rank_score(0):g}, second {rank_score(1):g})"
)
_CSV_COLUMNS = (
    "best", "variant", "tiling", "decoding", "label", "images", "truth", "predicted",
    "tp", "fp", "fn", "precision", "recall", "f1", "mean_iou", "acc50", "acc50_images",
    "map", "ap50", "parse_failure_rate", "dropped", "failed", "latency_p50_ms",
    "latency_p95_ms", "image_tokens", "peak_memory_mb",
)  # fmt: skip


@dataclass(frozen=True)
class EvalReport:
    """What an evaluation found.

    Attributes:
        project: the project folder.
        labels: the labels asked for.
        images: keys of the images evaluated (those with ground truth), in project order.
        skipped: keys of images without ground truth (not evaluated).
        results: one per configuration, in the order run.
        cancelled: the run stopped early; results cover what was answered.
    """

    project: str
    labels: tuple[str, ...]
    images: tuple[str, ...]
    skipped: tuple[str, ...]
    results: tuple[ConfigResult, ...]
    cancelled: bool = False

    @property
    def best(self) -> ConfigResult | None:
        """The best configuration (see the module docstring); None without results."""
        index = best_index(self.results)
        return None if index is None else self.results[index]

    def to_dict(self) -> dict[str, Any]:
        """The whole report, JSON-ready (per image: boxes, matches, errors)."""
        best = self.best
        return {
            "project": self.project,
            "labels": list(self.labels),
            "images": len(self.images),
            "skipped_without_ground_truth": len(self.skipped),
            "cancelled": self.cancelled,
            "score_rule": SCORE_RULE,
            "configurations": [_result_dict(r, r is best) for r in self.results],
        }

    def table(self) -> str:
        """The printed table: one row per configuration, the best marked ``*``."""
        head: tuple[str, ...] = ("", "configuration", "P", "R", "F1", "mIoU", "Acc@.5", "mAP")
        head += ("AP50", "unparsed")
        head += ("p50 ms", "p95 ms", "img tok", "peak MB")
        rows: list[tuple[str, ...]] = [head]
        best = self.best
        for r in self.results:
            s = r.overall.counts
            rows.append(
                (
                    "*" if r is best else "",
                    r.config.name,
                    *(_num(v) for v in (s.precision, s.recall, s.f1, s.mean_iou, s.acc50)),
                    _num(r.overall.ap),
                    _num(r.overall.ap50),
                    _num(r.parse_failure_rate),
                    _num(_ms(r.latency_p50), 0),
                    _num(_ms(r.latency_p95), 0),
                    _num(r.image_tokens, 0),
                    _num(_mb(r.peak_memory_bytes), 0),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        return "\n".join(line.rstrip() for line in lines)

    def csv_text(self) -> str:
        """``report.csv``: a row per configuration and label (``label`` "all": overall)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, _CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        best = self.best
        for r in self.results:
            for label, scores in (("all", r.overall), *r.per_label):
                writer.writerow(_csv_row(r, label, scores, r is best, len(self.images)))
        return out.getvalue()


def best_index(results: Sequence[ConfigResult]) -> int | None:
    """Index of the best configuration: F1, then mAP, then median latency."""
    if not results:
        return None

    def rank(i: int) -> tuple[float, float, float]:
        r = results[i]
        return (
            r.overall.counts.f1 or 0.0,
            r.overall.ap or 0.0,
            -(r.latency_p50 if r.latency_p50 is not None else float("inf")),
        )

    return max(range(len(results)), key=rank)


def _num(value: float | None, decimals: int = 3) -> str:
    return "—" if value is None else f"{value:.{decimals}f}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _mb(size: int | None) -> float | None:
    return None if size is None else size / (1 << 20)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _image_dict(image: ImageEval) -> dict[str, Any]:
    return {
        "image": image.key,
        "tp": image.tp,
        "fp": image.fp,
        "fn": image.fn,
        "parsed": image.parsed,
        "dropped": image.dropped,
        "seconds": _round(image.seconds),
        "image_tokens": image.image_tokens,
        "error": image.error,
        "truth": [b.to_dict() for b in image.truth],
        "predicted": [b.to_dict() for b in image.predicted],
        "matches": [[p, t, round(v, 6)] for p, t, v in image.matches],
    }


def _result_dict(r: ConfigResult, best: bool) -> dict[str, Any]:
    return {
        "variant": r.config.variant,
        "tiling": r.config.tiling,
        "decoding": r.config.decoding,
        "name": r.config.name,
        "best": best,
        "overall": r.overall.to_dict(),
        "labels": {label: scores.to_dict() for label, scores in r.per_label},
        "answers": len(r.images),
        "failed": r.failed,
        "parse_failures": r.parse_failures,
        "parse_failure_rate": _round(r.parse_failure_rate),
        "dropped": r.dropped,
        "latency_p50_ms": _round(_ms(r.latency_p50), 3),
        "latency_p95_ms": _round(_ms(r.latency_p95), 3),
        "image_tokens": _round(r.image_tokens, 3),
        "peak_memory_bytes": r.peak_memory_bytes,
        "images": [_image_dict(image) for image in r.images],
    }


def _csv_row(
    r: ConfigResult, label: str, scores: Scores, best: bool, images: int
) -> dict[str, Any]:
    values = scores.to_dict()
    row = {k: values[k] for k in _CSV_COLUMNS if k in values}
    row.update(
        best=int(best),
        variant=r.config.variant,
        tiling=r.config.tiling,
        decoding=r.config.decoding,
        label=label,
        images=images,
        parse_failure_rate=_round(r.parse_failure_rate),
        dropped=r.dropped,
        failed=r.failed,
        latency_p50_ms=_round(_ms(r.latency_p50), 3),
        latency_p95_ms=_round(_ms(r.latency_p95), 3),
        image_tokens=_round(r.image_tokens, 3),
        peak_memory_mb=_round(_mb(r.peak_memory_bytes), 3),
    )
    return {k: "" if v is None else v for k, v in row.items()}


def write_report(report: EvalReport, out: Path) -> tuple[Path, Path]:
    """Write ``report.csv`` and ``report.json`` into folder ``out`` (atomically)."""
    out = Path(out)
    csv_path, json_path = out / REPORT_CSV, out / REPORT_JSON
    write_text_atomic(csv_path, report.csv_text())
    text = json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
    write_text_atomic(json_path, text + "\n")
    return csv_path, json_path


def read_report(path: Path) -> dict[str, Any]:
    """A ``report.json`` written by :func:`write_report`, as a dict.

    Raises:
        InputError: the file cannot be read or is not an lfmdesk report (left as it is).
    """
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise InputError(f"{path}: not a readable report ({exc})") from None
    configs = data.get("configurations") if isinstance(data, dict) else None
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InputError(f"{path}: not an lfmdesk evaluation report")
    return dict(data)


# How the window lists a configuration's images: the worst first.
REVIEW_ORDERS: dict[str, tuple[str, str]] = {
    "Most missed boxes first (false negatives)": ("fn", "fp"),
    "Most false boxes first (false positives)": ("fp", "fn"),
}


def review_order(images: Sequence[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    """A configuration's image entries (``report.json``), worst first by ``order``."""
    first, second = REVIEW_ORDERS[order]
    return sorted(images, key=lambda e: (-int(e[first]), -int(e[second]), str(e["image"])))


def review_annotation(entry: dict[str, Any], width: int, height: int) -> ImageAnnotation:
    """One image entry as an annotation to look at: the ground truth as a person's boxes
    (drawn solid), the answer's boxes as the model's (drawn dashed)."""
    boxes = []
    for key, source in (("truth", PERSON), ("predicted", MODEL)):
        for b in entry.get(key, ()):
            try:
                boxes.append(make_box(b["label"], b["box_px"], width, height, source=source))
            except (InputError, KeyError, TypeError, ValueError):
                continue  # the image changed since the report: what no longer fits is left out
    return ImageAnnotation(str(entry["image"]), width, height, tuple(boxes))
