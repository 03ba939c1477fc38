"""Datasets in and out: COCO, YOLO (Ultralytics), Pascal VOC and LabelMe, table-driven.

    report = export_dataset(project, "coco", Path("out"))          # the whole project
    report = export_dataset(project, "yolo", out, images=["a.png"])  # one image
    report = import_dataset(Path("dataset"), "voc", project)
    text = boxes_json(ann)                                         # for the clipboard

Export writes a self-contained folder: the images are copied in (byte for byte, never
re-encoded) beside the format's annotation files; each format module documents its layout,
:mod:`._export` what OUT may be (never the project, a system or home folder, or a folder of
other files unless ``overwrite``) and the two layouts: ``flat`` (the default for YOLO and
VOC: ``trips/a.jpg`` → ``trips__a.jpg``, since some readers list one folder level) and
``nested`` (the default for COCO and LabelMe: subfolders kept). An image kept outside the
project goes to the top level, and when two images would share an annotation file
(``a.png`` and ``a.jpg``) the later one is renamed ``a-1.jpg``.

Label ids follow the project's label list, then other labels in first-use order (COCO
category ids 1..N, YOLO class ids 0..N-1). Import (:mod:`._import`) reads everything and
checks every box before it writes, stages every file and commits them together: malformed
input raises a one-line :class:`InputError` and leaves the project as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets.formats._coco import COCO_FILE, export_coco, read_coco
from lfmdesk.core.datasets.formats._common import ExportItem, ReadDataset, Rendered
from lfmdesk.core.datasets.formats._export import LAYOUTS, ExportReport, check_out, run_export
from lfmdesk.core.datasets.formats._import import ImportReport, run_import
from lfmdesk.core.datasets.formats._labelme import export_labelme, read_labelme
from lfmdesk.core.datasets.formats._voc import VOC_DIR, export_voc, read_voc
from lfmdesk.core.datasets.formats._yolo import YOLO_FILE, export_yolo, read_yolo

__all__ = [
    "FORMATS",
    "LAYOUTS",
    "DatasetFormat",
    "ExportReport",
    "ImportReport",
    "boxes_json",
    "check_out",
    "export_dataset",
    "get_format",
    "import_dataset",
]

Exporter = Callable[[Sequence[ExportItem], Sequence[str]], Rendered]
Reader = Callable[[Path], ReadDataset]


@dataclass(frozen=True)
class DatasetFormat:
    """One dataset format.

    Attributes:
        name: the key (``coco``); also the CLI's ``--format`` value.
        title: how people write it (``COCO``).
        image_dir: where exported images go inside OUT (``""``: beside the annotations).
        main: the file or folder a summary names (``annotations.json``; ``""``: OUT).
        export: renders the annotation files; :func:`export_dataset` writes them and
            copies the images.
        read: reads a dataset folder or file into pixel boxes.
        layout: the default layout, ``"flat"`` or ``"nested"``.
    """

    name: str
    title: str
    image_dir: str
    main: str
    export: Exporter
    read: Reader
    layout: str = "nested"


FORMATS: dict[str, DatasetFormat] = {
    f.name: f
    for f in (
        DatasetFormat("coco", "COCO", "images", COCO_FILE, export_coco, read_coco),
        DatasetFormat("yolo", "YOLO", "images", YOLO_FILE, export_yolo, read_yolo, "flat"),
        DatasetFormat("voc", "Pascal VOC", "JPEGImages", VOC_DIR, export_voc, read_voc, "flat"),
        DatasetFormat("labelme", "LabelMe", "", "", export_labelme, read_labelme),
    )
}


def get_format(name: str) -> DatasetFormat:
    """The format called ``name``; InputError listing the known ones otherwise."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise InputError(f"unknown dataset format {name!r}; use {', '.join(FORMATS)}") from None


def export_dataset(
    project: Project,
    fmt: str,
    out: Path,
    *,
    images: Sequence[str] | None = None,
    layout: str | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Export ``images`` (default: every image of the project) as dataset ``fmt`` into ``out``.

    Args:
        project: the project.
        fmt: a key of :data:`FORMATS`.
        out: the dataset folder (created when missing).
        images: the keys to export; None exports the whole project.
        layout: ``"flat"`` or ``"nested"``; None uses the format's default.
        overwrite: write into a folder that holds other files (replacing same-named ones).

    Raises:
        InputError: unknown format, layout or image, or an ``out`` that is unsafe (nothing
            is written then); :class:`FolderNotEmptyError` for a folder of other files.
        LfmdeskError: a file could not be written.
    """
    spec = get_format(fmt)
    return run_export(spec, project, out, images, layout or spec.layout, overwrite)


def import_dataset(source: Path, fmt: str, project: Project) -> ImportReport:
    """Read dataset ``fmt`` at ``source`` (folder or file) and save it into ``project``.

    Raises:
        InputError: unknown format, missing source, a dataset of another format, or a
            malformed dataset (the project is left untouched).
        LfmdeskError: a file could not be written (the project is left untouched).
    """
    spec = get_format(fmt)
    titles = {name: f.title for name, f in FORMATS.items()}
    return run_import(spec, source, project, titles)


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
