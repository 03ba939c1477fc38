"""Pascal VOC XML: ``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/`` (VOC, torchvision, CVAT).

One ``Annotations/X.xml`` per image ``JPEGImages/X.ext`` with ``folder``, ``filename`` (the
name under ``JPEGImages/``), ``size`` (depth 3), ``segmented 0`` and one ``object`` per box:
``name``, ``pose Unspecified``, ``truncated 0``, ``difficult 0`` and ``bndbox``.
``ImageSets/Main/`` lists the image ids: ``train.txt``, ``val.txt`` and ``trainval.txt``
(what torchvision's ``VOCDetection`` reads; lfmdesk does not split a project, so each lists
every image) and ``default.txt`` (CVAT's). ``labelmap.txt`` (CVAT's) keeps the label order
and colours.

Coordinates are **1-based pixel indices, both corners inclusive**, as the VOC devkit,
torchvision, supervision and LabelImg have them: a box over pixels 0..99 of a row is
``xmin 1``, ``xmax 100``, so ``xmin = x1 + 1`` and ``xmax = x2`` for lfmdesk's 0-based
corners with an exclusive edge, and no coordinate is ever 0. Reading does the reverse. A
file with a 0 in any ``xmin``/``ymin`` was written 0-based (older lfmdesk, some
converters): its corners are taken as they are, so it also reads exactly. Floats are
rounded half up.

Reading takes only files inside the dataset folder: ``<path>`` (the absolute path LabelImg
stores) is used only when it points inside it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets.formats._common import (
    ExportItem,
    ReadBox,
    ReadDataset,
    ReadImage,
    Rendered,
    as_number,
    dataset_files,
    find_image,
    is_inside,
    load_bytes,
    load_text,
    safe_name,
    with_suffix,
)
from lfmdesk.core.images._draw import label_color

__all__ = ["IMAGE_SETS", "VOC_DIR", "export_voc", "read_voc"]

VOC_DIR = "Annotations"
_IMAGES = "JPEGImages"
_LABELMAP = "labelmap.txt"
# torchvision's VOCDetection reads train/val/trainval; CVAT reads default.
IMAGE_SETS = ("train", "val", "trainval", "default")
_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def _sub(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    node = ET.SubElement(parent, tag)
    if text is not None:
        node.text = str(text)
    return node


def _xml(item: ExportItem) -> str:
    ann = item.ann
    root = ET.Element("annotation")
    _sub(root, "folder", _IMAGES)
    _sub(root, "filename", item.name)
    _sub(_sub(root, "source"), "database", "Unknown")
    size = _sub(root, "size")
    for tag, value in (("width", ann.width), ("height", ann.height), ("depth", 3)):
        _sub(size, tag, value)
    _sub(root, "segmented", 0)
    for box in ann.boxes:
        obj = _sub(root, "object")
        for tag, text in (("name", box.label), ("pose", "Unspecified")):
            _sub(obj, tag, text)
        _sub(obj, "truncated", 0)
        _sub(obj, "difficult", 0)
        bnd = _sub(obj, "bndbox")
        x1, y1, x2, y2 = box.px
        for tag, value in zip(_CORNERS, (x1 + 1, y1 + 1, x2, y2), strict=True):
            _sub(bnd, tag, value)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def export_voc(items: Sequence[ExportItem], labels: Sequence[str]) -> Rendered:
    """``Annotations/*.xml``, ``ImageSets/Main/*.txt`` and ``labelmap.txt`` for ``items``."""
    files = [(f"{VOC_DIR}/{with_suffix(item.name, '.xml')}", _xml(item)) for item in items]
    ids = "".join(with_suffix(item.name, "") + "\n" for item in items)
    files += [(f"ImageSets/Main/{name}.txt", ids) for name in IMAGE_SETS]
    colors = ("{},{},{}".format(*label_color(label)) for label in labels)
    labelmap = "# label:color_rgb:parts:actions\n" + "".join(
        f"{label}:{rgb}::\n" for label, rgb in zip(labels, colors, strict=True)
    )
    files.append((_LABELMAP, labelmap))
    return files


def _text(node: ET.Element, tag: str, path: Path) -> str:
    found = node.find(tag)
    if found is None or not (found.text or "").strip():
        raise InputError(f"{path}: <{tag}> is missing")
    return (found.text or "").strip()


def _objects(root: ET.Element, path: Path) -> tuple[ReadBox, ...]:
    read = []
    for i, obj in enumerate(root.findall("object"), 1):
        bnd = obj.find("bndbox")
        if bnd is None:
            raise InputError(f"{path}: object #{i} has no <bndbox>")
        corners = tuple(
            as_number(_text(bnd, tag, path), f"{path}: object #{i} <{tag}>") for tag in _CORNERS
        )
        read.append((_text(obj, "name", path), corners))
    # VOC is 1-based and never has 0; a 0 anywhere says this file was written 0-based.
    shift = 0.0 if any(c[0] == 0 or c[1] == 0 for _, c in read) else 1.0
    return tuple(ReadBox(name, (x1 - shift, y1 - shift, x2, y2)) for name, (x1, y1, x2, y2) in read)


def _parse(path: Path) -> ET.Element:
    try:
        return ET.fromstring(load_bytes(path))
    except (ET.ParseError, RecursionError) as exc:
        raise InputError(f"{path}: not a readable XML file ({exc})") from None


def _read_xml(path: Path, ann_root: Path, data_root: Path) -> ReadImage:
    root = _parse(path)
    if root.tag != "annotation":
        raise InputError(f"{path}: not a Pascal VOC file (root is <{root.tag}>, not <annotation>)")
    filename = safe_name(_text(root, "filename", path))
    if "/" not in filename:  # LabelImg writes the bare name: keep the XML's subfolder
        rel = path.parent.relative_to(ann_root).as_posix() if path.is_relative_to(ann_root) else ""
        filename = str(PurePosixPath(rel, filename)) if rel not in ("", ".") else filename
    bases = (data_root / _IMAGES, path.parent, data_root)
    image = find_image(filename, bases) or find_image(PurePosixPath(filename).name, bases)
    stored = root.findtext("path")
    if image is None and stored and Path(stored).is_file() and is_inside(Path(stored), data_root):
        image = Path(stored)
    return ReadImage(path, filename, image, _objects(root, path))


def _label_list(root: Path, images: Sequence[ReadImage]) -> tuple[str, ...]:
    order: dict[str, None] = {}
    labelmap = root / _LABELMAP
    if labelmap.is_file():
        for line in load_text(labelmap).splitlines():
            name = line.split(":", 1)[0].strip()
            if name and not line.startswith("#") and line.strip() != "background:0,0,0::":
                order[name] = None
    for image in images:
        order.update(dict.fromkeys(b.label for b in image.boxes))
    return tuple(order)


def read_voc(source: Path) -> ReadDataset:
    """The images and boxes of a VOC folder (``Annotations/`` inside), XML folder or XML file."""
    if source.is_file():
        files, ann_root, data_root = [source], source.parent, source.parent
    else:
        ann_root = source / VOC_DIR if (source / VOC_DIR).is_dir() else source
        files, data_root = dataset_files(ann_root, (".xml",)), source
    if not files:
        raise InputError(f"{source}: no Pascal VOC .xml files found")
    images = tuple(_read_xml(p, ann_root, data_root) for p in files)
    return ReadDataset(data_root, images, _label_list(data_root, images))
