"""Export: a project's images and boxes written as a dataset folder, refusing what is unsafe.

The folder OUT is checked before anything is written:

- never the file system root, the home folder or a folder above it, and never the project
  folder or a folder inside it (an export must not write onto its own sources);
- OUT may be missing or empty, or an earlier lfmdesk export (it holds the marker file
  ``.lfmdesk-export.json``); a folder holding anything else is refused with
  :class:`FolderNotEmptyError` unless ``overwrite`` is given, because its same-named files
  would be replaced;
- every path written stays inside OUT, through real folders: a symbolic link at
  ``OUT/labels`` or ``OUT/images`` is refused, never written through.

An image that cannot be exported (its file is not an image, cannot be read, or its
annotation file is damaged) is skipped and reported in :attr:`ExportReport.skipped`; the
rest is exported. Layouts: ``nested`` keeps the project's subfolders (``trips/a.jpg`` →
``images/trips/a.jpg``); ``flat`` puts every image at the top with a unique name
(``trips__a.jpg``), which tools that list one folder level (supervision) need.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from lfmdesk.core._atomic import copy_file_atomic, remove_stale_temps, write_text_atomic
from lfmdesk.core._errors import FolderNotEmptyError, InputError, LfmdeskError
from lfmdesk.core._files import reason
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets.formats._common import ExportItem, label_order, with_suffix

if TYPE_CHECKING:
    from lfmdesk.core.datasets.formats._table import DatasetFormat

__all__ = ["EXPORT_MARKER", "LAYOUTS", "ExportReport", "check_out", "dest_names", "run_export"]

EXPORT_MARKER = ".lfmdesk-export.json"
LAYOUTS = ("flat", "nested")
_IGNORED = {EXPORT_MARKER, ".DS_Store"}


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote.

    Attributes:
        format: the format key.
        out: the dataset folder.
        main: the file or folder to name in a summary (``OUT/annotations.json``).
        images: images exported (with or without boxes).
        boxes: boxes exported.
        labels: the label list, in id order.
        files: every file written: annotation files, then the image copies.
        skipped: ``(image, reason)`` for each image that could not be exported.
        layout: ``"flat"`` or ``"nested"``.
    """

    format: str
    out: Path
    main: Path
    images: int
    boxes: int
    labels: tuple[str, ...]
    files: tuple[Path, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    layout: str = "nested"


def dest_names(keys: Sequence[str], layout: str) -> list[str]:
    """The name of each image inside the dataset: unique, even ignoring case and suffix."""
    names, stems = [], set()
    for key in keys:
        if Path(key).is_absolute():
            name = PurePosixPath(key).name
        else:
            name = key.replace("/", "__") if layout == "flat" else key
        stem, suffix, n = with_suffix(name, ""), PurePosixPath(name).suffix, 0
        while with_suffix(name, "").casefold() in stems:
            n += 1
            name = f"{stem}-{n}{suffix}"
        stems.add(with_suffix(name, "").casefold())
        names.append(name)
    return names


def _refuse_unsafe(project: Project, out: Path) -> None:
    home = Path.home().resolve()
    if out.parent == out or out == home or out in home.parents:
        raise InputError(f"{out}: a system or home folder; export to a folder of its own")
    if out == project.root or project.root in out.parents:
        raise InputError(f"{out}: is inside the project folder; export to a folder outside it")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file; give a folder for the dataset")


def _refuse_foreign(out: Path, overwrite: bool) -> None:
    try:
        entries = set(os.listdir(out)) if out.is_dir() else set()
    except OSError as exc:
        raise InputError(f"{out}: cannot read the folder ({reason(exc)})") from None
    ours = (out / EXPORT_MARKER).is_file() and not (out / EXPORT_MARKER).is_symlink()
    if entries - _IGNORED and not ours and not overwrite:
        raise FolderNotEmptyError(
            f"{out}: is not empty and not an lfmdesk export; choose an empty folder, "
            "or allow replacing its files"
        )


def check_out(project: Project, out: Path, *, overwrite: bool = False) -> None:
    """Raise now what an export into ``out`` would refuse (before hours of Detect all).

    Raises:
        InputError: a system, home or project folder, or a file.
        FolderNotEmptyError: a folder of other files, without ``overwrite``.
    """
    out = Path(out).expanduser().resolve()
    _refuse_unsafe(project, out)
    _refuse_foreign(out, overwrite)


def _refuse_links(out: Path, relpaths: Sequence[str]) -> None:
    """No symbolic link (or file) may stand where a folder of ``relpaths`` goes."""
    checked: set[Path] = set()
    for rel in relpaths:
        current = out
        for part in PurePosixPath(rel).parent.parts:
            current = current / part
            if current in checked:
                continue
            checked.add(current)
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                break
            if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "a file"
                raise InputError(f"{current}: is {what} where the export needs a folder")


def _readable(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    finally:
        os.close(fd)


def _collect(
    project: Project, images: Sequence[str] | None, layout: str
) -> tuple[list[ExportItem], list[tuple[str, str]]]:
    explicit = images is not None
    keys = list(dict.fromkeys(project.images() if images is None else images))
    found, skipped = [], []
    for key in keys:
        path = project.image_path(key)
        if explicit and not path.is_file():
            raise InputError(f"{key}: no such image in {project.root}")
        try:
            ann = project.load_or_empty(key)
            _readable(path)
        except (InputError, OSError) as exc:
            skipped.append((key, str(exc) if isinstance(exc, InputError) else reason(exc)))
            continue
        found.append((key, ann, path))
    names = dest_names([key for key, _, _ in found], layout)
    items = [ExportItem(ann, path, name) for (_, ann, path), name in zip(found, names, strict=True)]
    if not items and skipped:
        key, why = skipped[0]
        raise InputError(f"no image could be exported ({key}: {why})")
    return items, skipped


def run_export(
    spec: DatasetFormat,
    project: Project,
    out: Path,
    images: Sequence[str] | None,
    layout: str,
    overwrite: bool,
) -> ExportReport:
    """Export ``images`` of ``project`` as ``spec`` into ``out`` (see the module docstring)."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; use {' or '.join(LAYOUTS)}")
    out = Path(out).expanduser().resolve()
    _refuse_unsafe(project, out)
    items, skipped = _collect(project, images, layout)
    dests = [f"{spec.image_dir}/{item.name}".lstrip("/") for item in items]
    protected = {item.source.resolve() for item in items}
    for dest in dests:
        if (out / dest).resolve() in protected:
            raise InputError(f"{out / dest}: would overwrite a source image; choose another folder")
    _refuse_foreign(out, overwrite)
    labels = label_order(project.labels(), (item.ann for item in items))
    rendered = spec.export(items, labels)
    _refuse_links(out, [rel for rel, _ in rendered] + dests)
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out, recursive=True)
        marker = {"schema_version": 1, "format": spec.name, "layout": layout}
        write_text_atomic(out / EXPORT_MARKER, json.dumps(marker) + "\n", inside=out)
        for rel, text in rendered:
            write_text_atomic(out / PurePosixPath(rel), text, inside=out)
        for item, dest in zip(items, dests, strict=True):
            copy_file_atomic(item.source, out / PurePosixPath(dest), inside=out)
    except OSError as exc:
        raise LfmdeskError(f"{exc.filename or out}: cannot write ({reason(exc)})") from None
    return ExportReport(
        spec.name,
        out,
        out / spec.main if spec.main else out,
        len(items),
        sum(len(item.ann.boxes) for item in items),
        labels,
        tuple(out / PurePosixPath(rel) for rel in [r for r, _ in rendered] + dests),
        tuple(skipped),
        layout,
    )
