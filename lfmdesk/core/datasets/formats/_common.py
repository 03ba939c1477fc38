"""What the dataset formats share: the items they write, the images they read, small helpers.

An exporter gets :class:`ExportItem` s (an annotation, its image file and the image's name
inside the dataset) plus the label list, and writes its annotation files. A reader turns
a dataset on disk into a :class:`ReadDataset` of pixel boxes; :mod:`._formats` checks it and
only then touches the project.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.datasets._project import IMAGE_SUFFIXES

__all__ = [
    "ExportItem",
    "ReadBox",
    "ReadDataset",
    "ReadImage",
    "as_number",
    "dump_json",
    "find_image",
    "image_files",
    "label_order",
    "load_json",
    "safe_name",
    "with_suffix",
]


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
    """

    origin: Path
    name: str
    image: Path | None
    boxes: tuple[ReadBox, ...]


@dataclass(frozen=True)
class ReadDataset:
    """A dataset read from disk: its images and its label list in id order."""

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
        return json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None


def as_number(value: Any, where: str) -> float:
    """``value`` as a finite float, or InputError mentioning ``where``."""
    if isinstance(value, bool):
        raise InputError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise InputError(f"{where}: expected a finite number, got {value!r}")
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


def find_image(name: str, bases: Sequence[Path]) -> Path | None:
    """The first ``base / name`` that is a file."""
    for base in bases:
        path = base / PurePosixPath(name)
        if path.is_file():
            return path
    return None


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively, hidden folders skipped), sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
