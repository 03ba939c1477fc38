"""``lfmdesk annotate``: batch detection over a folder, resumable, optionally exported.

Every image's boxes are saved in the folder's project files (``.lfmdesk/``) as soon as they
arrive, so Ctrl-C loses at most the image being read, and running the same command again
carries on where it stopped. Images a person edited in the window are never touched.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lfmdesk.cli._dataset import add_export_flags, run_export, warn
from lfmdesk.cli._engine import CommandEngine, open_engine
from lfmdesk.cli._output import ProgressBar, terminal_safe
from lfmdesk.core import AppSettings, DetectionResult, Engine, LoadedImage, parse_detections
from lfmdesk.core._errors import FolderNotEmptyError, InputError
from lfmdesk.core.datasets._batch import (
    SKIP_DONE,
    SKIP_EDITED,
    BatchEvent,
    BatchFinished,
    BatchStarted,
    ImageAnnotated,
    ImageFailed,
    ImageSkipped,
    ManyDetector,
    annotate_project,
    detection_request,
    plan_batch,
)
from lfmdesk.core.datasets._detect_many import engine_detector
from lfmdesk.core.datasets._parallel import annotate_concurrently
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets.formats._table import check_out
from lfmdesk.core.engine._batch import DEFAULT_BATCH

__all__ = ["add_annotate_parser", "cmd_annotate"]


def add_annotate_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_model_flags: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``annotate`` subcommand."""
    from lfmdesk.core.datasets.formats._table import FORMATS

    p = sub.add_parser(
        "annotate",
        help="detect objects in every image of a folder (resumable); optionally export",
        description="Detect LABELS in every image of DIR. Results are saved in DIR/.lfmdesk as "
        "they arrive; run the same command again to resume. Images you edited in the window "
        "are left alone.",
    )
    p.add_argument("folder", metavar="DIR", help="a folder of images (a project)")
    p.add_argument("--labels", "-l", required=True, help='what to find, e.g. "car,person"')
    p.add_argument("--format", "-f", choices=sorted(FORMATS), help="also export the dataset")
    p.add_argument("--out", "-o", metavar="OUT", help="export folder (with --format)")
    add_export_flags(p)
    p.add_argument("--redo", action="store_true", help="detect again images already done")
    p.add_argument("--json", action="store_true", help="one JSON line per image on stdout")
    p.add_argument(
        "--batch",
        "-b",
        type=int,
        default=DEFAULT_BATCH,
        metavar="B",
        help=f"answer B images together on this machine (default {DEFAULT_BATCH}; 1: one at a "
        "time)",
    )
    p.add_argument(
        "--concurrency",
        "-j",
        type=int,
        default=1,
        metavar="N",
        help="with --backend: keep N requests in flight (default 1)",
    )
    add_model_flags(p)


def _engine_detector(
    engine: CommandEngine, settings: AppSettings
) -> Callable[[LoadedImage, tuple[str, ...], threading.Event], DetectionResult]:
    def detect(
        image: LoadedImage, labels: tuple[str, ...], cancel: threading.Event
    ) -> DetectionResult:
        request = detection_request(image, labels, settings.sampling, settings.vision)
        text = "".join(
            getattr(event, "text", "") for event in engine.stream_chat(request, cancel=cancel)
        )
        return parse_detections(text, image.width, image.height)

    return detect


def _detector(
    engine: CommandEngine, settings: AppSettings, batch: int
) -> Callable[[LoadedImage, tuple[str, ...], threading.Event], DetectionResult] | ManyDetector:
    # Batching shares decode steps on a local engine; a remote server batches by itself
    # (--concurrency keeps that many requests in flight instead).
    if batch == 1 or not isinstance(engine, Engine):
        return _engine_detector(engine, settings)
    return engine_detector(engine, settings.sampling, settings.vision, batch=batch)


def _event_json(event: BatchEvent) -> dict[str, Any] | None:
    if isinstance(event, ImageAnnotated):
        ann = event.annotation
        return {
            "image": event.image,
            "status": "annotated",
            "width": ann.width,
            "height": ann.height,
            "boxes": [b.to_dict(ann.width, ann.height) for b in ann.boxes],
            "dropped": list(event.dropped),
            "seconds": round(event.seconds, 3),
        }
    if isinstance(event, ImageSkipped):
        return {"image": event.image, "status": "skipped", "reason": event.reason}
    if isinstance(event, ImageFailed):
        return {"image": event.image, "status": "failed", "error": event.message}
    return None


def _image_count(n: int) -> str:
    return f"{n}"


def _run(
    project: Project, args: argparse.Namespace, detect: Any, cancel: threading.Event
) -> BatchFinished:
    bar = ProgressBar(amount=_image_count)
    total = 0
    finished: BatchFinished | None = None
    if args.concurrency > 1:
        events = annotate_concurrently(
            project,
            args.labels,
            detect,
            concurrency=args.concurrency,
            cancel=cancel,
            redo=args.redo,
        )
    else:
        events = annotate_project(project, args.labels, detect, cancel=cancel, redo=args.redo)
    for event in events:
        line = _event_json(event)
        if args.json and line is not None:
            sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        if isinstance(event, BatchStarted):
            total = len(event.plan.todo)
            bar.update("annotating", 0, total, final=total == 0)
        elif isinstance(event, ImageFailed):
            sys.stderr.write("\n")
            warn(f"{event.image}: {event.message}")
        elif isinstance(event, ImageSkipped) and event.reason not in (SKIP_DONE, SKIP_EDITED):
            warn(f"skipped {event.image}: {event.reason}")  # a damaged annotation file
        if isinstance(event, (ImageAnnotated, ImageFailed)):
            bar.update("annotating", event.index, total, final=event.index == total)
        elif isinstance(event, BatchFinished):
            finished = event
    assert finished is not None  # the generator always ends with BatchFinished
    return finished


def cmd_annotate(args: argparse.Namespace, settings: AppSettings) -> int:
    """Detect objects in every image of a folder, then export if asked."""

    if args.format and not args.out:
        raise InputError("--format needs --out: the folder to export the dataset to")
    if args.out and not args.format:
        raise InputError("--out needs --format: one of coco, yolo, voc, labelme")
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.concurrency > 1 and not args.backend:
        raise InputError(
            "--concurrency needs --backend URL: the local engine answers one at a time"
        )
    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")
    project = Project(args.folder)
    plan = plan_batch(project, args.labels, redo=args.redo)  # bad input fails before loading
    if args.format:  # a refused OUT is said now, not after the whole batch
        try:
            check_out(project, Path(args.out), overwrite=args.overwrite)
        except FolderNotEmptyError as exc:
            raise FolderNotEmptyError(f"{exc} (--overwrite)") from None
    engine = open_engine(args, settings, stream=False) if plan.todo else None
    cancel = threading.Event()
    try:
        detect = _detector(engine, settings, args.batch) if engine else None
        finished = _run(project, args, detect, cancel)
    except KeyboardInterrupt:
        cancel.set()
        sys.stderr.write("\nlfmdesk: stopped; what was done is saved — run again to resume\n")
        return 130
    sys.stderr.write(
        f"{finished.annotated} annotated, {finished.skipped} skipped, {finished.failed} failed "
        f"in {finished.seconds:.1f} s\n"
    )
    for line in project.warnings:
        warn(line)
    if args.format:
        report = run_export(project, args.format, Path(args.out), args)
        line = f"exported {report.images} images, {report.boxes} boxes to {report.out}"
        sys.stderr.write(terminal_safe(line) + "\n")
        return 1 if finished.failed or report.skipped else 0
    return 1 if finished.failed else 0
