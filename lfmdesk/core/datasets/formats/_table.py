"""Datasets in and out: COCO, YOLO (Ultralytics), Pascal VOC and LabelMe, table-driven.

    report = export_dataset(project, "coco", Path("out"))          # the whole project
    report = export_dataset(project, "yolo", out, images=["a.png"])  # one image
    report = import_dataset(Path("dataset"), "voc", project)
    text = boxes_json(ann)                                         # for the clipboard

Export writes a self-contained folder: the images are copied in (``shutil.copy2``, never
re-encoded) beside the format's annotation files; each format module documents its layout.
Images keep the project's subfolders (``trips/a.jpg`` → ``images/trips/a.jpg``), so names in
different folders never collide; an image kept outside the project goes to the top level,
and when two images would share an annotation file (``a.png`` and ``a.jpg``) the later one is
renamed ``a-1.jpg``. An existing OUT folder is allowed and our files in it are replaced;
an OUT that is the project folder or inside it is refused before anything is written, so
an export can never write onto a source image.

Label ids follow the project's label list, then other labels in first-use order (COCO
category ids 1..N, YOLO class ids 0..N-1). Import reads everything and checks every box
before it writes: malformed input raises a one-line :class:`InputError` and leaves the
project as it was. Imported images are copied into the project unless they are already
there; a different file already at that name is never overwritten (the copy gets a free
name such as ``a-1.png``, listed in :attr:`ImportReport.renamed`).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets._annotations import PERSON, Box, ImageAnnotation, make_box
from lfmdesk.core.datasets._project import IMAGE_SUFFIXES, Project, oriented_size
from lfmdesk.core.datasets.formats._coco import COCO_FILE, export_coco, read_coco
from lfmdesk.core.datasets.formats._common import (
    ExportItem,
    ReadDataset,
    ReadImage,
    label_order,
    with_suffix,
)
from lfmdesk.core.datasets.formats._labelme import export_labelme, read_labelme
from lfmdesk.core.datasets.formats._voc import VOC_DIR, export_voc, read_voc
from lfmdesk.core.datasets.formats._yolo import YOLO_FILE, export_yolo, read_yolo

__all__ = [
    "FORMATS",
    "DatasetFormat",
    "ExportReport",
    "ImportReport",
    "boxes_json",
    "export_dataset",
    "get_format",
    "import_dataset",
]

Exporter = Callable[[Sequence[ExportItem], Sequence[str], Path], tuple[Path, ...]]
Reader = Callable[[Path], ReadDataset]


@dataclass(frozen=True)
class DatasetFormat:
    """One dataset format.

    Attributes:
        name: the key (``coco``); also the CLI's ``--format`` value.
        title: how people write it (``COCO``).
        image_dir: where exported images go inside OUT (``""``: beside the annotations).
        main: the file or folder a summary names (``annotations.json``; ``""``: OUT).
        export: writes the annotation files; the images are copied by :func:`export_dataset`.
        read: reads a dataset folder or file into pixel boxes.
    """

    name: str
    title: str
    image_dir: str
    main: str
    export: Exporter
    read: Reader


FORMATS: dict[str, DatasetFormat] = {
    f.name: f
    for f in (
        DatasetFormat("coco", "COCO", "images", COCO_FILE, export_coco, read_coco),
        DatasetFormat("yolo", "YOLO", "images", YOLO_FILE, export_yolo, read_yolo),
        DatasetFormat("voc", "Pascal VOC", "JPEGImages", VOC_DIR, export_voc, read_voc),
        DatasetFormat("labelme", "LabelMe", "", "", export_labelme, read_labelme),
    )
}


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
    """

    format: str
    out: Path
    main: Path
    images: int
    boxes: int
    labels: tuple[str, ...]
    files: tuple[Path, ...]


@dataclass(frozen=True)
class ImportReport:
    """What an import did.

    Attributes:
        images: images whose annotation was saved (each replaces any earlier one).
        boxes: boxes saved.
        copied: image files copied into the project.
        labels: the dataset's labels (merged into the project's label list).
        skipped: dataset names of images whose file could not be found (not imported).
        renamed: ``(dataset name, project key)`` where a different file had the name.
        notes: anything else worth telling (shapes that are not boxes, ...).
    """

    images: int
    boxes: int
    copied: int
    labels: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()


def get_format(name: str) -> DatasetFormat:
    """The format called ``name``; InputError listing the known ones otherwise."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise InputError(f"unknown dataset format {name!r}; use {', '.join(FORMATS)}") from None


# --- export --------------------------------------------------------------------------------


def _dest_names(keys: Sequence[str]) -> list[str]:
    names, stems = [], set()
    for key in keys:
        name = PurePosixPath(key).name if Path(key).is_absolute() else key
        stem, suffix, n = with_suffix(name, ""), PurePosixPath(name).suffix, 0
        while (with_suffix(name, "").casefold()) in stems:
            n += 1
            name = f"{stem}-{n}{suffix}"
        stems.add(with_suffix(name, "").casefold())
        names.append(name)
    return names


def _check_out(project: Project, out: Path, sources: Sequence[Path], dests: Sequence[Path]) -> None:
    if out == project.root or project.root in out.parents:
        raise InputError(f"{out}: is inside the project folder; export to a folder outside it")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file; give a folder for the dataset")
    protected = {p.resolve() for p in sources}
    for dest in dests:
        if dest.resolve() in protected:
            raise InputError(f"{dest}: would overwrite a source image; choose another folder")


def _copy(src: Path, dest: Path) -> None:
    if dest.exists() and os.path.samefile(src, dest):
        return  # already the same file (a hard link): writing would truncate the source
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)  # replaces the name, never writes through an old hard link
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _items(project: Project, images: Sequence[str] | None) -> list[ExportItem]:
    keys = list(dict.fromkeys(project.images() if images is None else images))
    for key in keys:
        if not project.image_path(key).is_file():
            raise InputError(f"{key}: no such image in {project.root}")
    anns = [project.load_or_empty(key) for key in keys]
    return [
        ExportItem(ann, project.image_path(key), name)
        for key, ann, name in zip(keys, anns, _dest_names(keys), strict=True)
    ]


def export_dataset(
    project: Project, fmt: str, out: Path, *, images: Sequence[str] | None = None
) -> ExportReport:
    """Export ``images`` (default: every image of the project) as dataset ``fmt`` into ``out``.

    Raises:
        InputError: unknown format or image, a damaged annotation, or an ``out`` that is
            inside the project (nothing is written then).
    """
    spec = get_format(fmt)
    out = Path(out).expanduser().resolve()
    items = _items(project, images)
    dests = [out / spec.image_dir / PurePosixPath(item.name) for item in items]
    _check_out(project, out, [item.source for item in items], dests)
    labels = label_order(project.labels(), (item.ann for item in items))
    out.mkdir(parents=True, exist_ok=True)
    files = spec.export(items, labels, out)
    for item, dest in zip(items, dests, strict=True):
        _copy(item.source, dest)
    return ExportReport(
        spec.name,
        out,
        out / spec.main if spec.main else out,
        len(items),
        sum(len(item.ann.boxes) for item in items),
        labels,
        (*files, *dests),
    )


# --- import --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    source: Path
    ann: ImageAnnotation
    copy: bool


def _free_key(project: Project, name: str, source: Path, claimed: set[str]) -> tuple[str, bool]:
    """A project key for ``name`` that holds ``source``'s bytes; (key, needs a copy)."""
    stem, suffix, n = with_suffix(name, ""), PurePosixPath(name).suffix, 0
    key = name
    while True:
        path = project.image_path(key)
        if key not in claimed:
            if not path.exists():
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


_Plan = tuple[list[_Planned], list[str], list[tuple[str, str]]]


def _plan(project: Project, data: ReadDataset) -> _Plan:
    planned: list[_Planned] = []
    skipped: list[str] = []
    renamed: list[tuple[str, str]] = []
    seen: set[Path] = set()
    claimed: set[str] = set()
    for image in data.images:
        if image.image is None or image.image.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(image.name)
            continue
        source = image.image.resolve()
        if source in seen:
            raise InputError(f"{image.origin}: {image.name} is described twice in the dataset")
        seen.add(source)
        inside = project.root in source.parents and project.key(source) not in claimed
        name = image.name or source.name
        key, copy = (
            (project.key(source), False) if inside else _free_key(project, name, source, claimed)
        )
        claimed.add(key)
        if key != name and not inside:
            renamed.append((image.name, key))
        width, height = oriented_size(source)
        boxes = _boxes(image, width, height)
        ann = ImageAnnotation(key, width, height, boxes, edited=bool(boxes))
        planned.append(_Planned(source, ann, copy))
    return planned, skipped, renamed


def import_dataset(source: Path, fmt: str, project: Project) -> ImportReport:
    """Read dataset ``fmt`` at ``source`` (folder or file) and save it into ``project``.

    Raises:
        InputError: unknown format, missing source, or malformed dataset (the project is
            left untouched: everything is read and checked before anything is written).
    """
    spec = get_format(fmt)
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    data = spec.read(source)
    planned, skipped, renamed = _plan(project, data)
    for item in planned:
        if item.copy:
            _copy(item.source, project.image_path(item.ann.image))
        project.save(item.ann)
    used = label_order(data.labels, (item.ann for item in planned))
    project.save_labels((*project.labels(), *used))
    return ImportReport(
        len(planned),
        sum(len(item.ann.boxes) for item in planned),
        sum(item.copy for item in planned),
        used,
        tuple(skipped),
        tuple(renamed),
        data.notes,
    )


# --- clipboard -----------------------------------------------------------------------------


def boxes_json(ann: ImageAnnotation, box_ids: Sequence[str] | None = None) -> str:
    """The boxes of ``ann`` (or only those in ``box_ids``) as JSON text for the clipboard.

    ``{"image", "width", "height", "boxes": [{"label", "source", "box_px", "box"}]}`` where
    ``box_px`` is ``[x1, y1, x2, y2]`` in pixels and ``box`` the same normalized.
    """
    chosen = ann.boxes if box_ids is None else tuple(b for b in ann.boxes if b.id in box_ids)
    boxes = []
    for box in chosen:
        data = box.to_dict(ann.width, ann.height)
        data.pop("id")
        boxes.append(data)
    doc = {"image": ann.image, "width": ann.width, "height": ann.height, "boxes": boxes}
    return json.dumps(doc, ensure_ascii=False, indent=2)
