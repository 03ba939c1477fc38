"""LabelMe JSON: each image with a ``<stem>.json`` beside it (subfolders kept).

A file has the keys labelme's ``LabelFile.load`` reads: ``version``, ``flags``, ``shapes``
(``label``, ``points [[x1, y1], [x2, y2]]``, ``group_id null``, ``description ""``,
``shape_type "rectangle"``, ``flags``), ``imagePath`` (relative to the JSON: the bare file
name), ``imageData null`` (the image is beside it, not inlined), ``imageHeight`` and
``imageWidth``. Points are integer pixels of the oriented image.

Reading takes a folder (every ``*.json`` with ``shapes`` and ``imagePath``, recursively) or
one file. Rectangles are read as drawn, polygons as their bounding box; other shape types
(points, lines, circles, masks) are skipped and counted in the notes. ``imagePath`` may
climb out of the JSON's folder (``../images/a.jpg``) but never out of the dataset folder
(the folder given, or the file's folder): an image outside it is not imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets.formats._common import (
    ExportItem,
    ReadBox,
    ReadDataset,
    ReadImage,
    Rendered,
    as_number,
    dataset_files,
    dump_json,
    is_inside,
    load_json,
    safe_name,
    with_suffix,
)

__all__ = ["LABELME_VERSION", "export_labelme", "read_labelme"]

LABELME_VERSION = "5.5.0"
_BOX_SHAPES = ("rectangle", "polygon")


def _document(item: ExportItem) -> dict[str, Any]:
    ann = item.ann
    shapes: list[dict[str, Any]] = [
        {
            "label": box.label,
            "points": [[box.px[0], box.px[1]], [box.px[2], box.px[3]]],
            "group_id": None,
            "description": "",
            "shape_type": "rectangle",
            "flags": {},
        }
        for box in ann.boxes
    ]
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": PurePosixPath(item.name).name,
        "imageData": None,
        "imageHeight": ann.height,
        "imageWidth": ann.width,
    }


def export_labelme(items: Sequence[ExportItem], labels: Sequence[str]) -> Rendered:
    """``<stem>.json`` beside each copied image (``labels`` needs no file here)."""
    return [(with_suffix(item.name, ".json"), dump_json(_document(item))) for item in items]


def _shape_box(shape: Any, where: str) -> ReadBox | None:
    if not isinstance(shape, dict) or not isinstance(shape.get("points"), list):
        raise InputError(f"{where}: a shape needs 'label' and 'points'")
    if shape.get("shape_type", "polygon") not in _BOX_SHAPES:
        return None
    points = shape["points"]
    if len(points) < 2 or not all(isinstance(p, list) and len(p) == 2 for p in points):
        raise InputError(f"{where}: 'points' must be [[x, y], ...] with at least two points")
    xs = [as_number(p[0], where) for p in points]
    ys = [as_number(p[1], where) for p in points]
    label = shape.get("label", "")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise InputError(f"{where}: 'label' must be text")
    return ReadBox(str(label), (min(xs), min(ys), max(xs), max(ys)))


def _read_file(path: Path, root: Path, doc: dict[str, Any]) -> tuple[ReadImage, int]:
    if not isinstance(doc.get("shapes"), list) or not isinstance(doc.get("imagePath"), str):
        raise InputError(f"{path}: not a LabelMe file (needs 'shapes' and 'imagePath')")
    boxes, other = [], 0
    for i, shape in enumerate(doc["shapes"], 1):
        box = _shape_box(shape, f"{path}: shape #{i}")
        if box is None:
            other += 1
        else:
            boxes.append(box)
    # imagePath may climb out of the JSON's folder (``../images/a.jpg``): follow it, but
    # never out of the dataset; only a path inside it keeps its folders in the project.
    image = path.parent / doc["imagePath"].replace("\\", "/")
    try:
        name = image.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        name = PurePosixPath(safe_name(doc["imagePath"])).name
    found = image if image.is_file() and is_inside(image, root) else None
    return ReadImage(path, name, found, tuple(boxes)), other


def _is_labelme(doc: Any) -> bool:
    return isinstance(doc, dict) and "shapes" in doc and "imagePath" in doc


def read_labelme(source: Path) -> ReadDataset:
    """The images and boxes of a LabelMe folder or one LabelMe JSON file."""
    if source.is_file():
        root, docs = source.parent, [(source, load_json(source))]
    else:
        root = source
        docs = [(p, load_json(p)) for p in dataset_files(source, (".json",))]
        docs = [(p, d) for p, d in docs if _is_labelme(d)]
    if not docs:
        raise InputError(f"{source}: no LabelMe .json files found")
    images, others = [], 0
    for path, doc in docs:
        image, other = _read_file(path, root, doc)
        images.append(image)
        others += other
    notes = (f"{others} non-box shapes (points, lines, circles) skipped",) if others else ()
    labels = dict.fromkeys(b.label for im in images for b in im.boxes)
    return ReadDataset(root, tuple(images), tuple(labels), notes)
