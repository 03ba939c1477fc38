"""What the dataset formats share: the items they write, the images they read, small helpers.

An exporter gets :class:`ExportItem` s (an annotation, its image file and the image's name
inside the dataset) plus the label list, and returns its annotation files as
``(relative path, text)`` pairs: it writes nothing itself, so the export can check every
path before the first byte is written. A reader turns a dataset on disk into a
:class:`ReadDataset` of pixel boxes; the import checks it and only then touches the project.

Readers read only regular files, each within a size limit, and only from inside the
dataset folder (:attr:`ReadDataset.root`): a path in a file, or a symbolic link, that leads
out of it is not followed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lfmdesk.core._errors import InputError
from lfmdesk.core._files import (
    DamagedFileError,
    MiB,
    read_json,
    read_regular,
    read_text,
    reason,
)
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.datasets._project import IMAGE_SUFFIXES

__all__ = [
    "JSON_LIMIT",
    "TEXT_LIMIT",
    "ExportItem",
    "ReadBox",
    "ReadDataset",
    "ReadImage",
    "Rendered",
    "as_number",
    "dataset_files",
    "dump_json",
    "find_image",
    "image_files",
    "is_inside",
    "label_order",
    "load_bytes",
    "load_json",
    "load_text",
    "safe_name",
    "with_suffix",
]

# COCO's instances_train2017.json is 450 MB: a JSON dataset file may be large, not endless.
JSON_LIMIT = 1024 * MiB
TEXT_LIMIT = 64 * MiB  # one YOLO label file, VOC XML, data.yaml, classes.txt
# Files that describe a dataset: (relative POSIX path, text). What an exporter returns.
Rendered = list[tuple[str, str]]


@dataclass(frozen=True)
class ExportItem:
    """One image to export.

    Attributes:
        ann: its annotation (oriented size, integer pixel boxes).
        source: the image file to copy.
        name: POSIX path of the copy inside the dataset's image folder, e.g. ``trips/a.jpg``.
    """

    ann: ImageAnnotation
    source: Path
    name: str


@dataclass(frozen=True)
class ReadBox:
    """A box as a dataset file gives it: a label and two corners in (float) pixels."""

    label: str
    px: tuple[float, float, float, float]


@dataclass(frozen=True)
class ReadImage:
    """One image a dataset describes.

    Attributes:
        origin: the file that describes it (named in error messages).
        name: its POSIX path relative to the dataset; it becomes the project key.
        image: the image file, None when it cannot be found.
        boxes: its boxes in pixels of the oriented image.
        problem: why the image cannot be imported ("" when it can).
    """

    origin: Path
    name: str
    image: Path | None
    boxes: tuple[ReadBox, ...]
    problem: str = ""


@dataclass(frozen=True)
class ReadDataset:
    """A dataset read from disk.

    Attributes:
        root: the dataset folder; images are only taken from inside it.
        images: the images it describes.
        labels: its label list in id order.
        notes: anything worth telling (shapes that are not boxes, ...).
    """

    root: Path
    images: tuple[ReadImage, ...]
    labels: tuple[str, ...]
    notes: tuple[str, ...] = ()


def label_order(first: Sequence[str], anns: Iterable[ImageAnnotation]) -> tuple[str, ...]:
    """``first`` (the project's list), then every other label in first-use order."""
    order = dict.fromkeys(first)
    for ann in anns:
        order.update(dict.fromkeys(b.label for b in ann.boxes))
    return tuple(order)


def dump_json(data: Any) -> str:
    """Stable, readable JSON text (UTF-8, two-space indent, final newline)."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def load_json(path: Path) -> Any:
    """The JSON document at ``path``; InputError naming the file when it is not one."""
    try:
        return read_json(path, JSON_LIMIT)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({reason(exc)})") from None
    except DamagedFileError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def load_bytes(path: Path, limit: int = TEXT_LIMIT) -> bytes:
    """The bytes of the regular file at ``path``; InputError naming the file otherwise."""
    try:
        return read_regular(path, limit)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({reason(exc)})") from None


def load_text(path: Path, limit: int = TEXT_LIMIT) -> str:
    """The UTF-8 text of the regular file at ``path``; InputError naming the file otherwise."""
    try:
        return read_text(path, limit)
    except (OSError, DamagedFileError) as exc:
        raise InputError(f"{path}: cannot read ({reason(exc)})") from None


def as_number(value: Any, where: str) -> float:
    """``value`` as a finite float, or InputError mentioning ``where``."""
    if isinstance(value, bool):
        raise InputError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: expected a number, got {str(value)[:40]!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError(f"{where}: expected a finite number, got {str(value)[:40]!r}")
    return number


def safe_name(text: str) -> str:
    """A dataset's image name as a relative POSIX path that cannot leave the project.

    Backslashes become slashes, and ``..``, ``.`` and drive or root parts are dropped.
    """
    parts = [p for p in text.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if parts and parts[0].endswith(":"):
        parts = parts[1:]
    return "/".join(parts)


def with_suffix(name: str, suffix: str) -> str:
    """``trips/a.jpg`` → ``trips/a<suffix>``."""
    return str(PurePosixPath(name).with_suffix(suffix))


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path``, symbolic links resolved, is ``root`` or inside it."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a link loop
        return False


def find_image(name: str, bases: Sequence[Path]) -> Path | None:
    """The first ``base / name`` that is a file."""
    for base in bases:
        path = base / PurePosixPath(name)
        if path.is_file():
            return path
    return None


def dataset_files(folder: Path, suffixes: Iterable[str]) -> list[Path]:
    """Regular files under ``folder`` ending in one of ``suffixes`` (any case), sorted.

    Hidden files and folders are skipped, folder links are not entered, and a file that
    is a link leading out of ``folder`` is left out. A folder that cannot be read is skipped.
    """
    wanted = tuple(s.lower() for s in suffixes)
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(current) / name
            wanted_file = name.lower().endswith(wanted) and not name.startswith(".")
            linked_out = path.is_symlink() and not is_inside(path, folder)
            if wanted_file and path.is_file() and not linked_out:
                found.append(path)
    return sorted(found)


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (see :func:`dataset_files`), sorted."""
    return dataset_files(folder, IMAGE_SUFFIXES)
