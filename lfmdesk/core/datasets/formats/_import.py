"""Import: a dataset read, checked in full, staged, then committed into a project at once.

Nothing in the project changes until everything is known to be right:

1. the dataset is read (one-line :class:`InputError` for anything malformed); a folder that
   holds no data of the format asked for, but looks like another format, is an error
   naming that format;
2. every image is planned: images are only taken from inside the dataset folder, a
   different file already at a name is never overwritten (the copy gets ``a-1.png``), and
   an image whose boxes a person edited in the project keeps them (the dataset's boxes for
   it are not imported; :attr:`ImportReport.kept` names it);
3. every copy and annotation file is written to a temporary file beside its target
   (:class:`~lfmdesk.core._atomic.StagedWrites`), then all are renamed into place. A write
   that fails (disk full, a symbolic link in the way) removes what was staged and puts back
   what was replaced: the project is as it was.

An image the project already knows keeps what Detect recorded about it (``detected``),
so "detected, no boxes" stays detected and Detect all does not run it again.
"""

from __future__ import annotations

import contextlib
import filecmp
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from lfmdesk.core._atomic import StagedWrites
from lfmdesk.core._errors import InputError, LfmdeskError
from lfmdesk.core._files import reason
from lfmdesk.core.datasets._annotations import (
    PERSON,
    Box,
    ImageAnnotation,
    make_box,
    normalize_label,
)
from lfmdesk.core.datasets._project import IMAGE_SUFFIXES, Project, check_key, oriented_size
from lfmdesk.core.datasets.formats._common import (
    ReadDataset,
    ReadImage,
    is_inside,
    label_order,
    safe_name,
    with_suffix,
)
from lfmdesk.core.datasets.formats._sniff import looks_like

if TYPE_CHECKING:
    from lfmdesk.core.datasets.formats._table import DatasetFormat

__all__ = ["ImportReport", "run_import"]


@dataclass(frozen=True)
class ImportReport:
    """What an import did.

    Attributes:
        images: images whose annotation is now the dataset's (each replaces any earlier one).
        boxes: boxes imported.
        copied: image files copied into the project.
        labels: the dataset's labels (merged into the project's label list).
        skipped: dataset names of images whose file could not be found (not imported).
        renamed: ``(dataset name, project key)`` where a different file had the name.
        notes: anything else worth telling (shapes that are not boxes, ...).
        kept: project keys whose boxes a person edited: kept, the dataset's not imported.
        problems: ``(dataset name, reason)`` for images left out for another reason (outside
            the dataset folder, not an image, a damaged or newer annotation file).
    """

    images: int
    boxes: int
    copied: int
    labels: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    problems: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Planned:
    source: Path
    ann: ImageAnnotation
    copy: bool
    write: bool


@dataclass
class _Plan:
    planned: list[_Planned] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    seen: set[Path] = field(default_factory=set)
    sizes: dict[int, list[str]] | None = None  # project images by size, read when needed


def _refuse_wrong_format(spec: DatasetFormat, source: Path, titles: Mapping[str, str]) -> None:
    others = [name for name in looks_like(source) if name != spec.name]
    if others and spec.name not in looks_like(source):
        name = others[0]
        raise InputError(
            f"{source}: this looks like a {titles[name]} dataset, not {spec.title}; "
            f"import it as {titles[name]} (--format {name})"
        )


def _identical(project: Project, source: Path, plan: _Plan) -> str | None:
    """A project image with exactly ``source``'s bytes (a flat export coming back home)."""
    if plan.sizes is None:
        plan.sizes = {}
        for key in project.images():
            with contextlib.suppress(OSError):
                plan.sizes.setdefault(project.image_path(key).stat().st_size, []).append(key)
    for key in plan.sizes.get(source.stat().st_size, ()):
        path = project.image_path(key)
        if key not in plan.claimed and filecmp.cmp(path, source, shallow=False):
            return key
    return None


def _free_key(project: Project, name: str, source: Path, claimed: set[str]) -> tuple[str, bool]:
    """A project key for ``name`` that holds ``source``'s bytes; (key, needs a copy)."""
    stem, suffix, n = with_suffix(name, ""), PurePosixPath(name).suffix, 0
    key = name
    while True:
        path = project.image_path(key)
        if key not in claimed:
            if not path.exists() and not path.is_symlink():
                return key, True
            if path.is_file() and filecmp.cmp(path, source, shallow=False):
                return key, False
        n += 1
        key = f"{stem}-{n}{suffix}"


def _boxes(image: ReadImage, width: int, height: int) -> tuple[Box, ...]:
    try:
        return tuple(make_box(b.label, b.px, width, height, source=PERSON) for b in image.boxes)
    except InputError as exc:
        raise InputError(f"{image.origin}: {image.name}: {exc}") from None


def _same(a: ImageAnnotation, b: ImageAnnotation) -> bool:
    def shape(ann: ImageAnnotation) -> list[tuple[str, tuple[int, ...]]]:
        return sorted((box.label, box.px) for box in ann.boxes)

    return (a.width, a.height) == (b.width, b.height) and shape(a) == shape(b)


def _key_for(project: Project, image: ReadImage, source: Path, plan: _Plan) -> tuple[str, bool]:
    inside = project.root in source.parents and project.key(source) not in plan.claimed
    if inside:
        return project.key(source), False
    name = check_key(safe_name(image.name) or source.name)
    key, copy = _free_key(project, name, source, plan.claimed)
    if copy:  # the same picture under another name is not copied twice
        same = _identical(project, source, plan)
        if same is not None:
            return same, False
    if key != name:
        plan.renamed.append((image.name, key))
    return key, copy


def _plan_one(project: Project, image: ReadImage, root: Path, plan: _Plan) -> None:
    if image.problem:
        plan.problems.append((image.name, image.problem))
        return
    if image.image is None or image.image.suffix.lower() not in IMAGE_SUFFIXES:
        plan.skipped.append(image.name)
        return
    if not is_inside(image.image, root):
        plan.problems.append((image.name, "outside the dataset folder; not read"))
        return
    source = image.image.resolve()
    if source in plan.seen:
        raise InputError(f"{image.origin}: {image.name} is described twice in the dataset")
    plan.seen.add(source)
    try:
        width, height = oriented_size(source)
    except InputError as exc:
        plan.problems.append((image.name, str(exc)))
        return
    boxes = _boxes(image, width, height)
    key, copy = _key_for(project, image, source, plan)
    plan.claimed.add(key)
    try:
        existing = project.load(key)
        project.check_replaceable(project.annotation_path(key))
    except InputError as exc:
        plan.problems.append((image.name, str(exc)))
        return
    detected = existing.detected if existing is not None else None
    ann = ImageAnnotation(key, width, height, boxes, detected, edited=bool(boxes))
    if existing is not None and existing.edited and not _same(existing, ann):
        plan.kept.append(key)
        return
    if existing is not None and _same(existing, ann) and existing.edited == ann.edited:
        plan.planned.append(_Planned(source, existing, copy, False))  # already so: no write
    else:
        plan.planned.append(_Planned(source, ann, copy, True))


def _labels(data: ReadDataset) -> tuple[str, ...]:
    labels = []
    for label in data.labels:
        try:
            labels.append(normalize_label(label))
        except InputError as exc:
            raise InputError(f"{data.root}: {exc}") from None
    return tuple(label for label in labels if label)


def _commit(project: Project, plan: _Plan, labels: tuple[str, ...]) -> None:
    staged = StagedWrites(project.root)
    try:
        project.check_replaceable(project.project_file, "project file")
        for item in plan.planned:
            if item.copy:
                staged.copy(item.source, project.image_path(item.ann.image))
            if item.write:
                data = project.annotation_bytes(item.ann)
                staged.write(project.annotation_path(item.ann.image), data)
        staged.write(project.project_file, project.labels_bytes((*project.labels(), *labels)))
        staged.commit()
    except OSError as exc:
        staged.discard()
        where = exc.filename or project.root
        raise LfmdeskError(f"{where}: cannot write ({reason(exc)}); nothing was imported") from None
    except BaseException:
        staged.discard()
        raise


def run_import(
    spec: DatasetFormat, source: Path, project: Project, titles: Mapping[str, str]
) -> ImportReport:
    """Import the ``spec`` dataset at ``source`` into ``project`` (see the module docstring)."""
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    try:
        data = spec.read(source)
    except InputError:
        _refuse_wrong_format(spec, source, titles)
        raise
    if not any(image.boxes for image in data.images):
        _refuse_wrong_format(spec, source, titles)
    labels = _labels(data)
    plan = _Plan()
    for image in data.images:
        _plan_one(project, image, data.root, plan)
    used = label_order(labels, (item.ann for item in plan.planned))
    _commit(project, plan, used)
    return ImportReport(
        len(plan.planned),
        sum(len(item.ann.boxes) for item in plan.planned),
        sum(item.copy for item in plan.planned),
        used,
        tuple(plan.skipped),
        tuple(plan.renamed),
        data.notes,
        tuple(plan.kept),
        tuple(plan.problems),
    )
