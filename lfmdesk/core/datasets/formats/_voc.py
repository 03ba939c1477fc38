"""Pascal VOC XML in CVAT's layout: ``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``.

One ``Annotations/X.xml`` per image ``JPEGImages/X.ext`` (subfolders kept), with
``folder``, ``filename`` (the name under ``JPEGImages/``), ``size`` (depth 3),
``segmented 0`` and one ``object`` per box: ``name``, ``pose Unspecified``, ``truncated 0``,
``difficult 0`` and ``bndbox``. ``labelmap.txt`` (CVAT's) keeps the label order and colours.

Coordinates: integer pixels, **0-based corners as stored** — ``xmin = x1``, ``xmax = x2``
(exclusive edge), exactly what LabelImg's ``PascalVocReader`` gives back (``int(float(text))``,
no +1/-1) and what CVAT's importer reads as its 0-based float corners, so export → import is
exact. (Original VOC devkit files are 1-based; read them and every box is one pixel off at
worst.) Reading parses floats and rounds half up.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets.formats._common import (
    ExportItem,
    ReadBox,
    ReadDataset,
    ReadImage,
    as_number,
    find_image,
    safe_name,
    with_suffix,
)
from lfmdesk.core.images._draw import label_color

__all__ = ["VOC_DIR", "export_voc", "read_voc"]

VOC_DIR = "Annotations"
_IMAGES = "JPEGImages"
_LABELMAP = "labelmap.txt"


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
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box.px, strict=True):
            _sub(bnd, tag, value)
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def export_voc(items: Sequence[ExportItem], labels: Sequence[str], out: Path) -> tuple[Path, ...]:
    """Write ``Annotations/*.xml``, ``ImageSets/Main/default.txt`` and ``labelmap.txt``."""
    written = []
    for item in items:
        path = out / VOC_DIR / with_suffix(item.name, ".xml")
        write_text_atomic(path, _xml(item))
        written.append(path)
    ids = "".join(with_suffix(item.name, "") + "\n" for item in items)
    colors = ("{},{},{}".format(*label_color(label)) for label in labels)
    labelmap = "# label:color_rgb:parts:actions\n" + "".join(
        f"{label}:{rgb}::\n" for label, rgb in zip(labels, colors, strict=True)
    )
    for path, text in (
        (out / "ImageSets" / "Main" / "default.txt", ids),
        (out / _LABELMAP, labelmap),
    ):
        write_text_atomic(path, text)
        written.append(path)
    return tuple(written)


def _text(node: ET.Element, tag: str, path: Path) -> str:
    found = node.find(tag)
    if found is None or not (found.text or "").strip():
        raise InputError(f"{path}: <{tag}> is missing")
    return (found.text or "").strip()


def _objects(root: ET.Element, path: Path) -> tuple[ReadBox, ...]:
    boxes = []
    for i, obj in enumerate(root.findall("object"), 1):
        bnd = obj.find("bndbox")
        if bnd is None:
            raise InputError(f"{path}: object #{i} has no <bndbox>")
        corners = [
            as_number(_text(bnd, tag, path), f"{path}: object #{i} <{tag}>")
            for tag in ("xmin", "ymin", "xmax", "ymax")
        ]
        x1, y1, x2, y2 = corners
        boxes.append(ReadBox(_text(obj, "name", path), (x1, y1, x2, y2)))
    return tuple(boxes)


def _read_xml(path: Path, ann_root: Path, data_root: Path) -> ReadImage:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{path}: not a readable XML file ({exc})") from None
    if root.tag != "annotation":
        raise InputError(f"{path}: not a Pascal VOC file (root is <{root.tag}>, not <annotation>)")
    filename = safe_name(_text(root, "filename", path))
    if "/" not in filename:  # LabelImg writes the bare name: keep the XML's subfolder
        rel = path.parent.relative_to(ann_root).as_posix() if path.is_relative_to(ann_root) else ""
        filename = str(PurePosixPath(rel, filename)) if rel not in ("", ".") else filename
    bases = (data_root / _IMAGES, path.parent, data_root)
    image = find_image(filename, bases) or find_image(PurePosixPath(filename).name, bases)
    stored = root.findtext("path")
    if image is None and stored and Path(stored).is_file():
        image = Path(stored)
    return ReadImage(path, filename, image, _objects(root, path))


def _label_list(root: Path, images: Sequence[ReadImage]) -> tuple[str, ...]:
    order: dict[str, None] = {}
    labelmap = root / _LABELMAP
    if labelmap.is_file():
        for line in labelmap.read_text("utf-8").splitlines():
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
        files, data_root = sorted(ann_root.rglob("*.xml")), source
    if not files:
        raise InputError(f"{source}: no Pascal VOC .xml files found")
    images = tuple(_read_xml(p, ann_root, data_root) for p in files)
    return ReadDataset(images, _label_list(data_root, images))
