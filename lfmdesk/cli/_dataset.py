"""``lfmdesk export`` and ``lfmdesk import``: datasets converted headless.

    lfmdesk export PROJECT --format coco --out OUT [--image KEY ...] [--layout flat|nested]
                   [--overwrite] [--json]
    lfmdesk import SRC --format yolo --into PROJECT [--json]

Neither loads a model (nor imports MLX), so both start fast. Names from files are printed
through ``terminal_safe``; an export that had to skip images exits 1 after naming each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lfmdesk.cli._output import terminal_safe
from lfmdesk.core import AppSettings, FolderNotEmptyError, InputError, LfmdeskError
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets.formats._table import (
    FORMATS,
    LAYOUTS,
    ExportReport,
    ImportReport,
    export_dataset,
    import_dataset,
)

__all__ = ["add_dataset_parsers", "add_export_flags", "cmd_export", "cmd_import", "warn"]


def warn(line: str) -> None:
    """One warning line on stderr, escaped for the terminal."""
    sys.stderr.write(f"lfmdesk: warning: {terminal_safe(line)}\n")


def add_export_flags(p: argparse.ArgumentParser) -> None:
    """``--layout`` and ``--overwrite`` (``export``, and ``annotate`` with ``--format``)."""
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        help="flat: every image at the top as trips__a.jpg (default for yolo and voc); "
        "nested: keep the project's subfolders (default for coco and labelme)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a folder that holds other files, replacing same-named ones",
    )


_FORMAT_HELP = ", ".join(f"{key} ({spec.title})" for key, spec in FORMATS.items())


def add_dataset_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` and ``import`` subcommands."""
    exp = sub.add_parser(
        "export", help="write a project's boxes as a COCO/YOLO/VOC/LabelMe dataset"
    )
    exp.add_argument("project", metavar="PROJECT", help="the project folder")
    exp.add_argument(
        "--format", "-f", required=True, choices=tuple(FORMATS), help=f"one of {_FORMAT_HELP}"
    )
    exp.add_argument("--out", "-o", required=True, metavar="OUT", help="dataset folder to write")
    exp.add_argument(
        "--image",
        action="append",
        metavar="KEY",
        help="export only this image (path inside the project); repeat for more",
    )
    add_export_flags(exp)
    exp.add_argument("--json", action="store_true", help="print a JSON summary")

    imp = sub.add_parser("import", help="read a COCO/YOLO/VOC/LabelMe dataset into a project")
    imp.add_argument("source", metavar="FILE_OR_DIR", help="the dataset folder or file")
    imp.add_argument(
        "--format", "-f", required=True, choices=tuple(FORMATS), help=f"one of {_FORMAT_HELP}"
    )
    imp.add_argument(
        "--into", required=True, metavar="PROJECT", help="project folder (created if missing)"
    )
    imp.add_argument("--json", action="store_true", help="print a JSON summary")


def _export_summary(report: ExportReport) -> str:
    title = FORMATS[report.format].title
    text = f"Exported {report.images} images, {report.boxes} boxes as {title} to {report.main}"
    return terminal_safe(text)


def run_export(
    project: Project,
    fmt: str,
    out: Path,
    args: argparse.Namespace,
    images: list[str] | None = None,
) -> ExportReport:
    """Export with the CLI's flags; each skipped image (and damaged file) is one warning."""
    try:
        report = export_dataset(
            project, fmt, out, images=images, layout=args.layout, overwrite=args.overwrite
        )
    except FolderNotEmptyError as exc:
        raise FolderNotEmptyError(f"{exc} (--overwrite)") from None
    for key, why in report.skipped:
        warn(f"skipped {key}: {why}")
    return report


def cmd_export(args: argparse.Namespace, settings: AppSettings) -> int:
    """Export a project as a dataset; exit 1 when some images had to be skipped."""
    project = Project(args.project)
    images = [project.key(k) for k in args.image] if args.image else None
    report = run_export(project, args.format, Path(args.out), args, images)
    for line in project.warnings:
        warn(line)
    if args.json:
        summary = {
            "format": report.format,
            "out": str(report.out),
            "main": str(report.main),
            "layout": report.layout,
            "images": report.images,
            "boxes": report.boxes,
            "labels": list(report.labels),
            "files": len(report.files),
            "skipped": [{"image": k, "reason": why} for k, why in report.skipped],
        }
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(_export_summary(report) + "\n")
    return 1 if report.skipped else 0


def _open_project(folder: Path) -> tuple[Project, list[Path]]:
    """The project at ``folder``, creating it; also the folders made here, deepest first."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file; give a project folder")
    folder = folder.absolute()
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from None
    return Project(folder), created


def _import_lines(report: ImportReport, project: Project) -> list[str]:
    lines = [
        f"Imported {report.images} images, {report.boxes} boxes "
        f"({len(report.labels)} labels) into {project.root}; copied {report.copied} images"
    ]
    if report.skipped:
        shown = ", ".join(report.skipped[:5]) + (" ..." if len(report.skipped) > 5 else "")
        lines.append(f"skipped {len(report.skipped)} images whose file was not found: {shown}")
    lines += [f"skipped {name}: {why}" for name, why in report.problems]
    lines += [
        f"kept your edited boxes of {key}; the dataset's boxes for it were not imported"
        for key in report.kept
    ]
    lines += [
        f"saved {name} as {key}: a different file has that name" for name, key in report.renamed
    ]
    lines += list(report.notes)
    lines += list(project.warnings)
    return [terminal_safe(line) for line in lines]


def cmd_import(args: argparse.Namespace, settings: AppSettings) -> int:
    """Import a dataset into a project."""
    source = Path(args.source).expanduser()
    if not source.exists():
        raise InputError(f"{args.source}: no such file or folder")
    project, created = _open_project(Path(args.into).expanduser())
    try:
        report = import_dataset(source, args.format, project)
    except LfmdeskError:
        for folder in created:  # bad input leaves no trace, not even the new folders
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    if args.json:
        summary = {
            "project": str(project.root),
            "images": report.images,
            "boxes": report.boxes,
            "copied": report.copied,
            "labels": list(report.labels),
            "skipped": list(report.skipped),
            "renamed": [list(pair) for pair in report.renamed],
            "kept": list(report.kept),
            "problems": [{"image": name, "reason": why} for name, why in report.problems],
            "notes": list(report.notes),
        }
        sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
        return 0
    first, *rest = _import_lines(report, project)
    sys.stdout.write(first + "\n")
    for line in rest:
        sys.stderr.write(f"lfmdesk: note: {line}\n")
    return 0
