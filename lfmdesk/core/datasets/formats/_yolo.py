"""YOLO detection in the Ultralytics layout: ``images/``, ``labels/``, ``data.yaml``.

Every ``images/X.ext`` has ``labels/X.txt`` (Ultralytics' rule: the last ``/images/``
becomes ``/labels/`` and the suffix ``.txt``), empty for an image without boxes. A line is
``class cx cy w h``, normalized to the oriented image and written with 6 decimals, which
brings back every integer pixel for images up to ~500 000 px wide. ``data.yaml`` has
``train``/``val: images`` and ``names: {0: ...}`` but no ``path``: Ultralytics then uses
the YAML's own folder, so the dataset can be moved or zipped. ``classes.txt`` (one name a
line) is what LabelImg and most converters read.

Reading takes the folder or its ``data.yaml``; the names come from ``data.yaml`` (when
PyYAML is installed), else ``classes.txt``/``obj.names``. Label files beside the images
(LabelImg's layout) are found too, and segment lines become their bounding box.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets._project import oriented_size
from lfmdesk.core.datasets.formats._common import (
    ExportItem,
    ReadBox,
    ReadDataset,
    ReadImage,
    as_number,
    image_files,
    with_suffix,
)

__all__ = ["YOLO_FILE", "export_yolo", "read_yolo"]

YOLO_FILE = "data.yaml"
_NAME_FILES = ("classes.txt", "obj.names")


def _line(cls: int, px: tuple[int, int, int, int], width: int, height: int) -> str:
    x1, y1, x2, y2 = px
    cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
    w, h = (x2 - x1) / width, (y2 - y1) / height
    return f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


def _data_yaml(labels: Sequence[str]) -> str:
    # JSON strings are valid YAML double-quoted scalars: any label survives quoting.
    names = "".join(f"  {i}: {json.dumps(n, ensure_ascii=False)}\n" for i, n in enumerate(labels))
    return (
        "# Ultralytics YOLO detection dataset exported by lfmdesk.\n"
        "# No 'path:' on purpose: Ultralytics then uses this file's folder.\n"
        "train: images\n"
        "val: images\n"
        f"nc: {len(labels)}\n" + ("names:\n" + names if labels else "names: {}\n")
    )


def export_yolo(items: Sequence[ExportItem], labels: Sequence[str], out: Path) -> tuple[Path, ...]:
    """Write ``labels/*.txt``, ``data.yaml`` and ``classes.txt`` for ``items``."""
    ids = {label: i for i, label in enumerate(labels)}
    written = []
    for item in items:
        ann = item.ann
        lines = [_line(ids[b.label], b.px, ann.width, ann.height) for b in ann.boxes]
        path = out / "labels" / with_suffix(item.name, ".txt")
        write_text_atomic(path, "".join(lines))
        written.append(path)
    for name, text in (
        (YOLO_FILE, _data_yaml(labels)),
        ("classes.txt", "".join(f"{n}\n" for n in labels)),
    ):
        write_text_atomic(out / name, text)
        written.append(out / name)
    return tuple(written)


def label_path(image: Path) -> Path:
    """Ultralytics' ``img2label_paths`` for one image: ``/images/`` → ``/labels/``, ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = str(image)
    if sa not in text:
        return image.with_suffix(".txt")
    return Path(sb.join(text.rsplit(sa, 1))).with_suffix(".txt")


def _names_from_yaml(path: Path) -> tuple[str, ...] | None:
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        return None
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not a readable YAML file ({exc})".splitlines()[0]) from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        try:
            ordered = [names[k] for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            raise InputError(f"{path}: 'names' keys must be class numbers 0..N-1") from None
        if [int(k) for k in sorted(names, key=int)] != list(range(len(names))):
            raise InputError(f"{path}: 'names' keys must be class numbers 0..N-1")
        return tuple(str(n) for n in ordered)
    if isinstance(names, list):
        return tuple(str(n) for n in names)
    raise InputError(f"{path}: no 'names' list; add names: {{0: first_class, ...}}")


def _names(root: Path) -> tuple[str, ...] | None:
    if (root / YOLO_FILE).is_file():
        names = _names_from_yaml(root / YOLO_FILE)
        if names is not None:
            return names
    for name in _NAME_FILES:
        if (root / name).is_file():
            text = (root / name).read_text("utf-8")
            return tuple(line.strip() for line in text.splitlines() if line.strip())
    return None


def _parse(path: Path, names: tuple[str, ...] | None, size: tuple[int, int]) -> list[ReadBox]:
    boxes = []
    width, height = size
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}: line {n}"
        if len(parts) < 5 or (len(parts) > 5 and len(parts) % 2 == 0):
            raise InputError(f"{where}: expected 'class cx cy w h', got {line.strip()!r}")
        if names is None:
            raise InputError(f"{path.parent}: class names unknown; add data.yaml or classes.txt")
        if not parts[0].isdigit() or int(parts[0]) >= len(names):
            raise InputError(f"{where}: class {parts[0]!r} is not 0..{len(names) - 1}")
        nums = [as_number(v, where) for v in parts[1:]]
        if len(nums) == 4:
            cx, cy, w, h = nums
            px = ((cx - w / 2) * width, (cy - h / 2) * height)
            px2 = ((cx + w / 2) * width, (cy + h / 2) * height)
        else:  # a segment: its bounding box, as Ultralytics trains on it
            xs, ys = nums[0::2], nums[1::2]
            px = (min(xs) * width, min(ys) * height)
            px2 = (max(xs) * width, max(ys) * height)
        boxes.append(ReadBox(names[int(parts[0])], (*px, *px2)))
    return boxes


def read_yolo(source: Path) -> ReadDataset:
    """The images and boxes of the YOLO dataset in folder ``source`` (or its data.yaml)."""
    root = source.parent if source.is_file() else source
    names = _names(root)
    top = root / "images" if (root / "images").is_dir() else root
    images = []
    for image in image_files(top):
        labels = label_path(image)
        boxes: list[ReadBox] = []
        if labels.is_file():
            boxes = _parse(labels, names, oriented_size(image))
        images.append(ReadImage(labels, image.relative_to(top).as_posix(), image, tuple(boxes)))
    if not images:
        raise InputError(f"{source}: no images found; expected an Ultralytics images/ folder")
    return ReadDataset(tuple(images), names or ())
