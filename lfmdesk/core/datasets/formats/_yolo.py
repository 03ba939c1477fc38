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
(LabelImg's layout) are found too, and segment lines become their bounding box. YAML is
read safely (no tags), without aliases (``&a``/``*a``, which can multiply a small file into
gigabytes) and from a file of at most 1 MB; every name must be a plain value.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import ImageError, InputError
from lfmdesk.core._files import MiB
from lfmdesk.core.datasets._project import oriented_size
from lfmdesk.core.datasets.formats._common import (
    ExportItem,
    ReadBox,
    ReadDataset,
    ReadImage,
    Rendered,
    as_number,
    image_files,
    is_inside,
    load_text,
    with_suffix,
)

__all__ = ["YOLO_FILE", "export_yolo", "read_yolo"]

YOLO_FILE = "data.yaml"
_NAME_FILES = ("classes.txt", "obj.names")
_YAML_LIMIT = MiB


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


def export_yolo(items: Sequence[ExportItem], labels: Sequence[str]) -> Rendered:
    """``labels/*.txt``, ``data.yaml`` and ``classes.txt`` for ``items``."""
    ids = {label: i for i, label in enumerate(labels)}
    files = []
    for item in items:
        ann = item.ann
        lines = [_line(ids[b.label], b.px, ann.width, ann.height) for b in ann.boxes]
        files.append((f"labels/{with_suffix(item.name, '.txt')}", "".join(lines)))
    files.append((YOLO_FILE, _data_yaml(labels)))
    files.append(("classes.txt", "".join(f"{n}\n" for n in labels)))
    return files


def label_path(image: Path) -> Path:
    """Ultralytics' ``img2label_paths`` for one image: ``/images/`` → ``/labels/``, ``.txt``."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    text = str(image)
    if sa not in text:
        return image.with_suffix(".txt")
    return Path(sb.join(text.rsplit(sa, 1))).with_suffix(".txt")


def _yaml_loader(yaml: Any) -> Any:
    class NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc]
        """SafeLoader that refuses aliases: a YAML bomb needs them, data.yaml never does."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("uses an alias (*name); lfmdesk reads data.yaml without")
            return super().compose_node(parent, index)

    return NoAliasLoader


def _name(value: Any, path: Path) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError(f"{path}: every class name must be a plain value, not a list or map")
    return str(value)


def _names_from_yaml(path: Path) -> tuple[str, ...] | None:
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        return None
    text = load_text(path, _YAML_LIMIT)
    try:
        data = yaml.load(text, Loader=_yaml_loader(yaml))
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not a readable YAML file ({first})") from None
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict):
        keys = [k for k in names if isinstance(k, int) and not isinstance(k, bool)]
        if len(keys) != len(names) or sorted(keys) != list(range(len(names))):
            raise InputError(f"{path}: 'names' keys must be class numbers 0..N-1")
        return tuple(_name(names[k], path) for k in sorted(keys))
    if isinstance(names, list):
        return tuple(_name(n, path) for n in names)
    raise InputError(f"{path}: no 'names' list; add names: {{0: first_class, ...}}")


def _names(root: Path) -> tuple[str, ...] | None:
    if (root / YOLO_FILE).is_file():
        names = _names_from_yaml(root / YOLO_FILE)
        if names is not None:
            return names
    for name in _NAME_FILES:
        if (root / name).is_file():
            text = load_text(root / name)
            return tuple(line.strip() for line in text.splitlines() if line.strip())
    return None


def _parse(path: Path, names: tuple[str, ...] | None, size: tuple[int, int]) -> list[ReadBox]:
    boxes = []
    width, height = size
    for n, line in enumerate(load_text(path).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}: line {n}"
        if len(parts) < 5 or (len(parts) > 5 and len(parts) % 2 == 0):
            raise InputError(f"{where}: expected 'class cx cy w h', got {line.strip()[:60]!r}")
        if names is None:
            raise InputError(f"{path.parent}: class names unknown; add data.yaml or classes.txt")
        if not (parts[0].isascii() and parts[0].isdigit()) or int(parts[0]) >= len(names):
            raise InputError(f"{where}: class {parts[0][:20]!r} is not 0..{len(names) - 1}")
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
    images, label_files = [], 0
    for image in image_files(top):
        labels = label_path(image)
        boxes: list[ReadBox] = []
        name = image.relative_to(top).as_posix()
        if labels.is_file() and is_inside(labels, root):
            label_files += 1
            try:
                size = oriented_size(image)
            except ImageError as exc:  # one bad picture does not stop the others
                images.append(ReadImage(labels, name, image, (), str(exc)))
                continue
            boxes = _parse(labels, names, size)
        images.append(ReadImage(labels, name, image, tuple(boxes)))
    if not images:
        raise InputError(f"{source}: no images found; expected an Ultralytics images/ folder")
    if names is None and not label_files:
        raise InputError(f"{source}: no YOLO label files, data.yaml or classes.txt found")
    return ReadDataset(root, tuple(images), names or ())
