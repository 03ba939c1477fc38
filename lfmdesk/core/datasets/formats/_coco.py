"""COCO detection JSON: ``OUT/annotations.json`` beside ``OUT/images/``.

Written the way pycocotools and ``COCOeval`` read it: ``bbox`` is ``[x, y, w, h]`` in
integer pixels, ``area = w * h``, ``iscrowd 0``, ``segmentation []``; image ids count from
1 in export order, category ids are 1..N in label-list order; ``file_name`` is relative to
``images/`` and keeps the project's subfolders. No dates are written, so the same project
exports to the same bytes.

Reading accepts any COCO detection file (``annotations.json``, ``instances_*.json``); an
image's ``file_name`` is looked up under the JSON's ``images/`` and its folder, and, when
the JSON is in an ``annotations/`` folder (or the dataset folder was given), under the
dataset folder and its ``images/``. Ids may be numbers or strings.
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
    dump_json,
    find_image,
    is_inside,
    load_json,
    safe_name,
)

__all__ = ["COCO_FILE", "export_coco", "read_coco"]

COCO_FILE = "annotations.json"


def export_coco(items: Sequence[ExportItem], labels: Sequence[str]) -> Rendered:
    """``annotations.json`` for ``items`` (the images are copied by the caller)."""
    cat_ids = {label: i for i, label in enumerate(labels, 1)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, item in enumerate(items, 1):
        ann = item.ann
        images.append(
            {"id": image_id, "file_name": item.name, "width": ann.width, "height": ann.height}
        )
        for box in ann.boxes:
            x1, y1 = box.px[0], box.px[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": cat_ids[box.label],
                    "bbox": [x1, y1, box.width, box.height],
                    "area": box.width * box.height,
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    document = {
        "info": {"description": "exported by lfmdesk", "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": i, "name": label, "supercategory": ""} for label, i in cat_ids.items()
        ],
    }
    return [(COCO_FILE, dump_json(document))]


def _coco_file(source: Path) -> Path:
    if source.is_file():
        return source
    for candidate in (source / COCO_FILE, source / "annotations" / COCO_FILE):
        if candidate.is_file():
            return candidate
    found = sorted(source.glob("*.json")) or sorted(source.glob("annotations/*.json"))
    if len(found) != 1:
        raise InputError(f"{source}: no {COCO_FILE} here; give the COCO JSON file itself")
    return found[0]


def _records(doc: Any, key: str, path: Path) -> list[dict[str, Any]]:
    records = doc.get(key, []) if isinstance(doc, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputError(f"{path}: not a COCO file ('{key}' must be a list of objects)")
    return records


def _id(value: Any, where: str) -> int | str:
    """A COCO id: a whole number or a string (bool, float, list... are refused)."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise InputError(f"{where}: an id must be a whole number or a string, got {value!r:.40}")


def _categories(doc: Any, path: Path) -> dict[int | str, str]:
    names: dict[int | str, str] = {}
    records = _records(doc, "categories", path)
    for i, cat in enumerate(records, 1):
        if "id" not in cat or not isinstance(cat.get("name"), (str, int)):
            raise InputError(f"{path}: category #{i} needs an 'id' and a 'name'")
        names[_id(cat["id"], f"{path}: category #{i}")] = str(cat["name"])
    order = sorted(names, key=lambda k: (0, f"{k:020d}") if isinstance(k, int) else (1, k))
    return {k: names[k] for k in order}


def _boxes(doc: Any, path: Path, names: dict[int | str, str]) -> dict[int | str, list[ReadBox]]:
    boxes: dict[int | str, list[ReadBox]] = {}
    for i, rec in enumerate(_records(doc, "annotations", path), 1):
        where = f"{path}: annotation #{i}"
        bbox = rec.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise InputError(f"{where}: 'bbox' must be [x, y, width, height]")
        category = _id(rec.get("category_id"), where)
        if category not in names:
            raise InputError(f"{where}: unknown category_id {category!r:.40}")
        x, y, w, h = (as_number(v, f"{where} bbox") for v in bbox)
        label = names[category]
        image_id = _id(rec.get("image_id"), where)
        boxes.setdefault(image_id, []).append(ReadBox(label, (x, y, x + w, y + h)))
    return boxes


def _root(source: Path, path: Path) -> Path:
    """The dataset folder: the one given, else the JSON's (its parent for annotations/)."""
    if source.is_dir():
        return source
    return path.parent.parent if path.parent.name.lower() == "annotations" else path.parent


def read_coco(source: Path) -> ReadDataset:
    """The images and boxes of the COCO file ``source`` (or the one in folder ``source``)."""
    path = _coco_file(source)
    doc = load_json(path)
    names = _categories(doc, path)
    boxes = _boxes(doc, path, names)
    root = _root(source, path)
    near = (path.parent / "images", path.parent, path.parent.parent / "images", path.parent.parent)
    bases = tuple(b for b in near if is_inside(b, root))
    images, seen = [], set()
    for i, rec in enumerate(_records(doc, "images", path), 1):
        if "id" not in rec or not isinstance(rec.get("file_name"), str):
            raise InputError(f"{path}: image #{i} needs an 'id' and a 'file_name'")
        image_id = _id(rec["id"], f"{path}: image #{i}")
        if image_id in seen:
            raise InputError(f"{path}: image id {image_id!r:.40} appears twice")
        seen.add(image_id)
        name = safe_name(rec["file_name"])
        found = find_image(name, bases) or find_image(PurePosixPath(name).name, bases)
        images.append(ReadImage(path, name, found, tuple(boxes.pop(image_id, ()))))
    if boxes:
        raise InputError(f"{path}: annotations refer to unknown image_id {next(iter(boxes))!r:.40}")
    return ReadDataset(root, tuple(images), tuple(names.values()))
