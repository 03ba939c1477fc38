"""Dataset export/import: files the standard tools read, exact round trips, sources untouched."""

from __future__ import annotations

import hashlib
import io
import json
import os
import xml.etree.ElementTree as ET
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets._annotations import ImageAnnotation, add_box, make_box
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets._status import DETECTED, project_rows
from lfmdesk.core.datasets.formats._table import FORMATS, boxes_json, export_dataset, import_dataset
from lfmdesk.core.datasets.formats._yolo import _line as yolo_line
from lfmdesk.core.datasets.formats._yolo import _parse as yolo_parse

BOXES = {
    "a.png": [("car", (10, 20, 110, 90)), ("traffic light", (0, 0, 320, 240))],
    "trips/a.jpg": [("person", (1, 3, 99, 199))],
    "b/a.png": [("car", (5, 5, 6, 6))],
}


def _image(path: Path, size: tuple[int, int], *, rotate: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (len(path.name) * 20, 90, 30))
    if rotate:  # EXIF orientation 6: shown a quarter turn, width and height swap
        exif = Image.Exif()
        exif[0x0112] = 6
        im.save(path, exif=exif)
    else:
        im.save(path)


def make_project(root: Path) -> Project:
    """Four images: two annotated, one in a subfolder stored sideways, one never opened."""
    _image(root / "a.png", (320, 240))
    _image(root / "trips" / "a.jpg", (200, 100), rotate=True)  # shown 100×200
    _image(root / "b" / "a.png", (40, 30))
    _image(root / "empty.png", (64, 48))
    project = Project(root)
    for key, boxes in BOXES.items():
        ann = project.load_or_empty(key)
        for label, px in boxes:
            ann = add_box(ann, make_box(label, px, ann.width, ann.height))
        project.save(ann)
    project.save_labels(["person", "dog"])
    return project


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def boxes_of(project: Project) -> dict[str, tuple[int, int, list[tuple[str, tuple[int, ...]]]]]:
    out = {}
    for key in project.images():
        ann = project.load_or_empty(key)
        out[key] = (ann.width, ann.height, [(b.label, b.px) for b in ann.boxes])
    return out


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj")


def test_coco_export_loads_in_pycocotools_with_right_counts_and_boxes(project, tmp_path):
    report = export_dataset(project, "coco", tmp_path / "out")
    assert report.main == tmp_path / "out" / "annotations.json"
    with redirect_stdout(io.StringIO()):
        coco = COCO(str(report.main))
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) == 4
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [
        "person",
        "dog",
        "car",
        "traffic light",
    ]
    by_name = {img["file_name"]: img for img in coco.loadImgs(coco.getImgIds())}
    assert (by_name["trips/a.jpg"]["width"], by_name["trips/a.jpg"]["height"]) == (100, 200)
    assert coco.getAnnIds(imgIds=[by_name["empty.png"]["id"]]) == []  # kept, no boxes
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[by_name["a.png"]["id"]]))
    assert [a["bbox"] for a in anns] == [[10, 20, 100, 70], [0, 0, 320, 240]]
    assert [a["area"] for a in anns] == [7000, 76800]
    for name in by_name:
        assert (tmp_path / "out" / "images" / name).is_file()


def test_coco_export_scores_perfectly_against_itself_in_cocoeval(project, tmp_path):
    report = export_dataset(project, "coco", tmp_path / "out")
    with redirect_stdout(io.StringIO()):
        gt = COCO(str(report.main))
        dets = [{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_yolo_export_follows_the_ultralytics_layout(project, tmp_path):
    out = tmp_path / "out"
    export_dataset(project, "yolo", out)
    data = yaml.safe_load((out / "data.yaml").read_text("utf-8"))
    assert data["names"] == {0: "person", 1: "dog", 2: "car", 3: "traffic light"}
    assert data["nc"] == 4 and data["train"] == data["val"] == "images"
    assert "path" not in data  # Ultralytics falls back to the YAML's folder
    images = sorted(p for p in (out / "images").rglob("*") if p.is_file())
    assert len(images) == 4
    # flat by default: supervision and other readers list one folder level
    assert sorted(p.name for p in images) == ["a.png", "b__a.png", "empty.png", "trips__a.jpg"]
    for image in images:
        sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
        label = sb.join(str(image).rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt"
        assert Path(label).is_file(), label
    assert (out / "labels" / "empty.txt").read_text() == ""
    assert (out / "labels" / "a.txt").read_text().splitlines() == [
        "2 0.187500 0.229167 0.312500 0.291667",
        "3 0.500000 0.500000 1.000000 1.000000",
    ]
    assert (out / "classes.txt").read_text().splitlines() == list(data["names"].values())


def _voc_corners(path: Path) -> list[tuple[str, tuple[int, ...], bool]]:
    """What the VOC devkit / LabelImg's PascalVocReader read: int(float(text)), as stored."""
    shapes = []
    for obj in ET.parse(path).getroot().findall("object"):
        bnd = obj.find("bndbox")
        corners = tuple(int(float(bnd.find(t).text)) for t in ("xmin", "ymin", "xmax", "ymax"))
        shapes.append((obj.find("name").text, corners, bool(int(obj.find("difficult").text))))
    return shapes


def test_voc_export_is_one_based_like_the_devkit_and_labelimg(project, tmp_path):
    out = tmp_path / "out"
    export_dataset(project, "voc", out)
    root = ET.parse(out / "Annotations" / "a.xml").getroot()
    assert root.find("filename").text == "a.png"
    assert (out / "JPEGImages" / root.find("filename").text).is_file()
    size = root.find("size")
    assert [size.find(t).text for t in ("width", "height", "depth")] == ["320", "240", "3"]
    # 1-based, both corners inclusive: pixels 10..109 are xmin 11, xmax 110; never a 0.
    assert _voc_corners(out / "Annotations" / "a.xml") == [
        ("car", (11, 21, 110, 90), False),
        ("traffic light", (1, 1, 320, 240), False),
    ]
    empty = ET.parse(out / "Annotations" / "empty.xml").getroot()
    assert empty.findall("object") == []


def test_voc_export_has_the_torchvision_image_sets_and_a_flat_layout(project, tmp_path):
    out = tmp_path / "out"
    report = export_dataset(project, "voc", out)
    assert report.layout == "flat"
    ids = ["a", "b__a", "empty", "trips__a"]
    for name in ("train", "val", "trainval", "default"):
        assert (out / "ImageSets" / "Main" / f"{name}.txt").read_text().splitlines() == ids
    # torchvision's VOCDetection: Annotations/<id>.xml and JPEGImages/<id> + suffix, one level.
    assert sorted(p.name for p in (out / "JPEGImages").iterdir()) == [
        "a.png",
        "b__a.png",
        "empty.png",
        "trips__a.jpg",
    ]
    for image_id in ids:
        root = ET.parse(out / "Annotations" / f"{image_id}.xml").getroot()
        assert (out / "JPEGImages" / root.find("filename").text).is_file()
    expected = [("person", (2, 4, 99, 199), False)]
    assert _voc_corners(out / "Annotations" / "trips__a.xml") == expected


def test_nested_layout_keeps_subfolders(project, tmp_path):
    out = tmp_path / "out"
    export_dataset(project, "voc", out, layout="nested")
    ids = (out / "ImageSets" / "Main" / "trainval.txt").read_text().splitlines()
    assert ids == ["a", "b/a", "empty", "trips/a"]
    assert (out / "JPEGImages" / "trips" / "a.jpg").is_file()
    export_dataset(project, "yolo", tmp_path / "y", layout="nested")
    assert (tmp_path / "y" / "labels" / "trips" / "a.txt").is_file()


def test_labelme_export_has_the_keys_labelfile_load_reads(project, tmp_path):
    out = tmp_path / "out"
    export_dataset(project, "labelme", out)
    path = out / "trips" / "a.json"
    data = json.loads(path.read_text("utf-8"))
    for key in ("version", "imageData", "imagePath", "shapes", "flags"):
        assert key in data
    assert data["imageData"] is None
    assert (path.parent / data["imagePath"]).is_file()
    assert (data["imageWidth"], data["imageHeight"]) == (100, 200)
    [shape] = data["shapes"]
    assert shape["shape_type"] == "rectangle" and shape["label"] == "person"
    assert shape["points"] == [[1, 3], [99, 199]]
    assert json.loads((out / "empty.json").read_text())["shapes"] == []


@pytest.mark.parametrize("layout", ["flat", "nested"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_import_export_is_byte_identical(project, tmp_path, fmt, layout):
    first = export_dataset(project, fmt, tmp_path / "one", layout=layout)
    (tmp_path / "fresh").mkdir()
    fresh = Project(tmp_path / "fresh")
    report = import_dataset(first.out, fmt, fresh)
    assert (report.images, report.boxes, report.copied) == (4, 4, 4)
    second = export_dataset(fresh, fmt, tmp_path / "two", layout=layout)
    assert tree(second.out) == tree(first.out)
    names = {k: k.replace("/", "__") if layout == "flat" else k for k in project.images()}
    assert boxes_of(fresh) == {names[k]: v for k, v in boxes_of(project).items()}


def test_coco_to_yolo_to_coco_keeps_every_pixel(project, tmp_path):
    coco = export_dataset(project, "coco", tmp_path / "coco").out
    (tmp_path / "p1").mkdir()
    (tmp_path / "p2").mkdir()
    p1, p2 = Project(tmp_path / "p1"), Project(tmp_path / "p2")
    import_dataset(coco, "coco", p1)
    yolo = export_dataset(p1, "yolo", tmp_path / "yolo", layout="nested").out
    import_dataset(yolo, "yolo", p2)
    again = export_dataset(p2, "coco", tmp_path / "coco2").out
    assert boxes_of(p2) == boxes_of(project)
    assert (again / "annotations.json").read_bytes() == (coco / "annotations.json").read_bytes()


def test_exports_and_imports_never_change_source_images(project, tmp_path):
    def hashes() -> dict[str, str]:
        return {
            k: hashlib.sha256(project.image_path(k).read_bytes()).hexdigest()
            for k in project.images()
        }

    before = hashes()
    for fmt in FORMATS:
        out = export_dataset(project, fmt, tmp_path / fmt).out
        export_dataset(project, fmt, out)  # again, over its own previous export
        import_dataset(out, fmt, project)  # back into the same project: nothing to copy
    assert hashes() == before
    assert project.images() == ("a.png", "b/a.png", "empty.png", "trips/a.jpg")


@pytest.mark.parametrize("where", [".", "exports/coco", "trips"])
def test_export_refuses_a_folder_inside_the_project_and_writes_nothing(project, where):
    before = tree(project.root)
    with pytest.raises(InputError, match="inside the project") as info:
        export_dataset(project, "coco", project.root / where)
    assert "\n" not in str(info.value)
    assert tree(project.root) == before


def test_export_refuses_to_copy_onto_a_source_image(tmp_path):
    # The project is OUT/images itself: a YOLO export would copy each image onto itself.
    project = make_project(tmp_path / "out" / "images")
    before = tree(project.root)
    with pytest.raises(InputError, match="source image"):
        export_dataset(project, "yolo", tmp_path / "out")
    assert tree(project.root) == before and not (tmp_path / "out" / "labels").exists()


def test_export_of_one_image(project, tmp_path):
    report = export_dataset(project, "voc", tmp_path / "out", images=["trips/a.jpg"])
    assert (report.images, report.boxes) == (1, 1)
    written = sorted(p.name for p in (tmp_path / "out" / "Annotations").rglob("*.xml"))
    assert written == ["trips__a.xml"]


def test_same_stem_in_one_folder_gets_distinct_annotation_files(tmp_path):
    root = tmp_path / "p"
    _image(root / "x.png", (10, 10))
    _image(root / "x.jpg", (12, 12))
    project = Project(root)
    export_dataset(project, "yolo", tmp_path / "out")
    labels = sorted(p.name for p in (tmp_path / "out" / "labels").iterdir())
    images = sorted(p.name for p in (tmp_path / "out" / "images").iterdir())
    assert labels == ["x-1.txt", "x.txt"] and images == ["x-1.png", "x.jpg"]


def test_import_never_overwrites_a_different_file_of_the_same_name(project, tmp_path):
    out = export_dataset(project, "coco", tmp_path / "out").out
    target = tmp_path / "target"
    _image(target / "a.png", (8, 8))
    original = (target / "a.png").read_bytes()
    report = import_dataset(out, "coco", Project(target))
    assert ("a.png", "a-1.png") in report.renamed
    assert (target / "a.png").read_bytes() == original
    ann = Project(target).load("a-1.png")
    assert ann is not None and [b.px for b in ann.boxes] == [px for _, px in BOXES["a.png"]]


def _break_coco(out: Path) -> None:
    doc = json.loads((out / "annotations.json").read_text())
    doc["annotations"][-1]["bbox"] = [1, 2, "wide"]
    (out / "annotations.json").write_text(json.dumps(doc))


def _break_yolo(out: Path) -> None:
    (out / "labels" / "trips__a.txt").write_text("0 0.5 0.5 0.2 0.2\n9 0.5 0.5 0.1 0.1\n")


def _break_voc(out: Path) -> None:
    path = out / "Annotations" / "trips__a.xml"
    path.write_text(path.read_text().replace("<xmax>99</xmax>", "<xmax>n/a</xmax>"))


def _break_labelme(out: Path) -> None:
    (out / "trips" / "a.json").write_text('{"shapes": [')


@pytest.mark.parametrize(
    ("fmt", "breaker", "message"),
    [
        ("coco", _break_coco, "annotation #4"),
        ("yolo", _break_yolo, "line 2"),
        ("voc", _break_voc, "xmax"),
        ("labelme", _break_labelme, "not valid JSON"),
    ],
)
def test_malformed_import_is_one_line_and_changes_nothing(project, tmp_path, fmt, breaker, message):
    out = export_dataset(project, fmt, tmp_path / "out").out
    breaker(out)
    target = tmp_path / "target"
    _image(target / "keep.png", (8, 8))
    before = tree(target)
    with pytest.raises(InputError, match=message) as info:
        import_dataset(out, fmt, Project(target))
    assert "\n" not in str(info.value)
    assert tree(target) == before


def test_box_with_no_area_inside_the_image_is_refused(project, tmp_path):
    out = export_dataset(project, "labelme", tmp_path / "out").out
    path = out / "empty.json"
    doc = json.loads(path.read_text())
    doc["shapes"] = [{"label": "x", "points": [[500, 500], [600, 600]], "shape_type": "rectangle"}]
    path.write_text(json.dumps(doc))
    (tmp_path / "t").mkdir()
    with pytest.raises(InputError, match=r"empty\.json: empty\.png: box"):
        import_dataset(out, "labelme", Project(tmp_path / "t"))
    assert list((tmp_path / "t").iterdir()) == []


def test_missing_image_is_skipped_and_reported(project, tmp_path):
    out = export_dataset(project, "coco", tmp_path / "out").out
    (out / "images" / "empty.png").unlink()
    (tmp_path / "t").mkdir()
    report = import_dataset(out, "coco", Project(tmp_path / "t"))
    assert report.skipped == ("empty.png",) and report.images == 3


def test_unknown_format_is_refused(project, tmp_path):
    with pytest.raises(InputError, match="use coco, yolo, voc, labelme"):
        export_dataset(project, "tfrecord", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_boxes_json_is_what_the_clipboard_gets(tmp_path):
    ann = ImageAnnotation.empty("street.png", 200, 100)
    ann = add_box(ann, make_box("car", (10, 20, 110, 70), 200, 100))
    ann = add_box(ann, make_box("bus", (0, 0, 50, 50), 200, 100))
    data = json.loads(boxes_json(ann))
    assert data["image"] == "street.png" and (data["width"], data["height"]) == (200, 100)
    assert data["boxes"][0] == {
        "label": "car",
        "source": "person",
        "box_px": [10, 20, 110, 70],
        "box": [0.05, 0.2, 0.55, 0.7],
    }
    only_bus = json.loads(boxes_json(ann, [ann.boxes[1].id]))
    assert [b["label"] for b in only_bus["boxes"]] == ["bus"]


# --- datasets made by other tools ------------------------------------------------------------


def test_yolo_import_of_a_roboflow_style_split_with_list_names(tmp_path):
    src = tmp_path / "ds"
    _image(src / "train" / "images" / "x.jpg", (200, 100))
    _image(src / "valid" / "images" / "y.png", (50, 50))
    (src / "train" / "labels").mkdir(parents=True)
    (src / "train" / "labels" / "x.txt").write_text(
        "1 0.25 0.5 0.1 0.2\n0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n"  # a box, then a segment
    )
    (src / "data.yaml").write_text("names: [ant, bee]\nnc: 2\ntrain: train/images\n")
    (tmp_path / "p").mkdir()
    project = Project(tmp_path / "p")
    report = import_dataset(src / "data.yaml", "yolo", project)
    assert (report.images, report.boxes, report.labels) == (2, 2, ("ant", "bee"))
    ann = project.load("train/images/x.jpg")
    assert ann is not None
    assert [(b.label, b.px) for b in ann.boxes] == [
        ("bee", (40, 40, 60, 60)),
        ("ant", (20, 10, 100, 50)),
    ]
    assert project.load("valid/images/y.png").boxes == ()


def test_voc_import_of_labelimg_files_beside_their_images(tmp_path):
    src = tmp_path / "shots"
    _image(src / "cat.png", (120, 90))
    (src / "cat.xml").write_text(
        "<annotation><folder>shots</folder><filename>cat.png</filename>"
        f"<path>{src / 'cat.png'}</path><size><width>120</width><height>90</height>"
        "<depth>3</depth></size><object><name>cat</name><difficult>0</difficult>"
        "<bndbox><xmin>10.4</xmin><ymin>20.5</ymin><xmax>100</xmax><ymax>80</ymax></bndbox>"
        "</object></annotation>"
    )
    (tmp_path / "p").mkdir()
    project = Project(tmp_path / "p")
    report = import_dataset(src, "voc", project)
    assert (report.images, report.copied, report.labels) == (1, 1, ("cat",))
    # 1-based: xmin 10.4 is x 9.4, ymin 20.5 is y 19.5 (rounded half up); max as stored
    assert [b.px for b in project.load("cat.png").boxes] == [(9, 20, 100, 80)]


def test_labelme_import_reads_polygons_as_boxes_and_notes_other_shapes(tmp_path):
    src = tmp_path / "lm"
    _image(src / "imgs" / "x.png", (100, 100))
    doc = {
        "version": "5.2.1",
        "flags": {},
        "imagePath": "../imgs/x.png",
        "imageData": None,
        "imageHeight": 100,
        "imageWidth": 100,
        "shapes": [
            {"label": "leaf", "points": [[10, 10], [30, 5], [20, 40]], "shape_type": "polygon"},
            {"label": "tip", "points": [[1, 1]], "shape_type": "point"},
        ],
    }
    (src / "json").mkdir(parents=True)
    (src / "json" / "x.json").write_text(json.dumps(doc))
    (tmp_path / "p").mkdir()
    project = Project(tmp_path / "p")
    report = import_dataset(src, "labelme", project)
    assert report.notes == ("1 non-box shapes (points, lines, circles) skipped",)
    assert [(b.label, b.px) for b in project.load("imgs/x.png").boxes] == [
        ("leaf", (10, 5, 30, 40))
    ]


def test_coco_import_of_an_instances_file_with_images_beside_it(tmp_path):
    src = tmp_path / "coco"
    _image(src / "val" / "1.jpg", (64, 32))
    doc = {
        "images": [{"id": 7, "file_name": "1.jpg", "width": 64, "height": 32}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1.5, 2, 10.2, 5]}],
        "categories": [{"id": 3, "name": "car"}, {"id": 1, "name": "bus"}],
    }
    (src / "val" / "instances_val.json").write_text(json.dumps(doc))
    (tmp_path / "p").mkdir()
    project = Project(tmp_path / "p")
    report = import_dataset(src / "val" / "instances_val.json", "coco", project)
    assert report.labels == ("bus", "car")  # category id order
    assert [(b.label, b.px) for b in project.load("1.jpg").boxes] == [("car", (2, 2, 12, 7))]


@settings(max_examples=200, deadline=None)
@given(
    size=st.tuples(st.integers(1, 20000), st.integers(1, 20000)),
    data=st.data(),
)
def test_yolo_six_decimals_bring_back_every_integer_pixel(tmp_path_factory, size, data):
    width, height = size
    x1 = data.draw(st.integers(0, width - 1))
    y1 = data.draw(st.integers(0, height - 1))
    x2 = data.draw(st.integers(x1 + 1, width))
    y2 = data.draw(st.integers(y1 + 1, height))
    path = tmp_path_factory.mktemp("yolo") / "x.txt"
    path.write_text(yolo_line(0, (x1, y1, x2, y2), width, height))
    [box] = yolo_parse(path, ("thing",), (width, height))
    assert make_box(box.label, box.px, width, height).px == (x1, y1, x2, y2)


# --- issue 12 §B: what other tools read ------------------------------------------------------


def test_voc_import_reads_one_based_files_and_zero_based_ones(tmp_path):
    """1-based (the devkit, LabelImg) is the rule; a file with a 0 was written 0-based."""
    src = tmp_path / "voc"
    _image(src / "JPEGImages" / "a.png", (100, 80))
    _image(src / "JPEGImages" / "b.png", (100, 80))
    (src / "Annotations").mkdir()
    for name, corners in (("a", (11, 21, 50, 60)), ("b", (0, 20, 50, 60))):
        xmin, ymin, xmax, ymax = corners
        (src / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.png</filename><object><name>car</name><bndbox>"
            f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
            "</bndbox></object></annotation>"
        )
    (tmp_path / "p").mkdir()
    project = Project(tmp_path / "p")
    import_dataset(src, "voc", project)
    assert [b.px for b in project.load("a.png").boxes] == [(10, 20, 50, 60)]
    assert [b.px for b in project.load("b.png").boxes] == [(0, 20, 50, 60)]  # as stored


def test_voc_export_loads_the_way_torchvision_vocdetection_reads_it(project, tmp_path):
    """VOCDetection: ids from ImageSets/Main/<set>.txt, Annotations/<id>.xml beside
    JPEGImages/<id>.<ext>, and boxes back as 1-based inclusive corners."""
    out = export_dataset(project, "voc", tmp_path / "out").out
    seen = {}
    for image_set in ("train", "val", "trainval"):
        ids = (out / "ImageSets" / "Main" / f"{image_set}.txt").read_text().split()
        for image_id in ids:
            root = ET.parse(out / "Annotations" / f"{image_id}.xml").getroot()
            assert (out / "JPEGImages" / root.findtext("filename")).is_file()
            seen[image_id] = [
                tuple(int(obj.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
                for obj in root.iter("object")
            ]
    assert seen["a"] == [(11, 21, 110, 90), (1, 1, 320, 240)]
    assert all(min(c) >= 1 for boxes in seen.values() for c in boxes)


def test_one_unreadable_image_is_skipped_and_the_rest_exported(project, tmp_path):
    (project.root / "broken.png").write_bytes(b"not a picture at all")
    report = export_dataset(project, "coco", tmp_path / "out")
    assert [key for key, _ in report.skipped] == ["broken.png"]
    assert "not an image lfmdesk can read" in report.skipped[0][1]
    assert report.images == 4
    doc = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert "broken.png" not in [i["file_name"] for i in doc["images"]]


@pytest.mark.parametrize(
    ("made", "asked", "named"),
    [("coco", "yolo", "COCO"), ("yolo", "coco", "YOLO"), ("voc", "labelme", "Pascal VOC")],
)
def test_importing_with_the_wrong_format_names_the_right_one(project, tmp_path, made, asked, named):
    out = export_dataset(project, made, tmp_path / "out").out
    target = tmp_path / "t"
    target.mkdir()
    with pytest.raises(InputError, match=f"looks like a {named} dataset") as info:
        import_dataset(out, asked, Project(target))
    assert f"--format {made}" in str(info.value) and "\n" not in str(info.value)
    assert list(target.iterdir()) == []


def test_import_keeps_detected_with_no_boxes_as_detected(tmp_path):
    root = tmp_path / "p"
    _image(root / "empty.png", (64, 48))
    project = Project(root)
    ann = project.load_or_empty("empty.png")
    project.save(type(ann)(ann.image, ann.width, ann.height, (), ("car",), False))
    out = export_dataset(project, "yolo", tmp_path / "out").out
    import_dataset(out, "yolo", project)
    [row] = project_rows(project)
    assert (row.status, row.detected) == (DETECTED, ("car",))
