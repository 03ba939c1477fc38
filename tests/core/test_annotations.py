"""The annotation model and the project folder: edits, saving, reopening, crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from lfmdesk.core import (
    Detection,
    ImageAnnotation,
    InputError,
    LoadedImage,
    Project,
    add_box,
    apply_detections,
    load_image,
    make_box,
    move_boxes,
    oriented_size,
    relabel_boxes,
    remove_boxes,
    replace_box,
)


def _ann() -> ImageAnnotation:
    return ImageAnnotation.empty("a.png", 200, 100)


def test_make_box_orders_rounds_and_clamps_corners() -> None:
    box = make_box("  red   car ", (150.5, 120, -4, 10.49), 200, 100)
    assert box.label == "red car" and box.px == (0, 10, 151, 100)
    assert box.normalized(200, 100) == (0.0, 0.1, 0.755, 1.0)
    with pytest.raises(InputError, match="no area"):
        make_box("car", (250, 10, 300, 20), 200, 100)
    with pytest.raises(InputError, match="label"):
        make_box(" ", (0, 0, 5, 5), 200, 100)


def test_edits_mark_person_and_model_boxes_give_way() -> None:
    detections = [Detection("car", (0.0, 0.0, 0.5, 0.5), (0, 0, 100, 50))]
    ann = apply_detections(_ann(), detections, ("car",))
    assert [b.source for b in ann.boxes] == ["model"] and not ann.edited
    model_id = ann.boxes[0].id
    ann = add_box(ann, make_box("dog", (10, 10, 40, 40), 200, 100))
    assert ann.edited and [b.source for b in ann.boxes] == ["model", "person"]
    # A new model answer replaces the model's boxes, never a person's.
    again = apply_detections(ann, [Detection("bus", (0, 0, 1, 1), (0, 0, 200, 100))], ("bus",))
    assert [(b.label, b.source) for b in again.boxes] == [("dog", "person"), ("bus", "model")]
    moved = move_boxes(ann, [model_id], 500, -3)  # stops at the image edge
    assert moved.box(model_id) is not None and moved.box(model_id).px == (100, 0, 200, 50)  # type: ignore[union-attr]
    assert moved.box(model_id).source == "person"  # type: ignore[union-attr]
    relabelled = relabel_boxes(ann, [model_id], "truck")
    assert relabelled.box(model_id).label == "truck"  # type: ignore[union-attr]
    resized = replace_box(ann, make_box("car", (0, 0, 20, 20), 200, 100, box_id=model_id))
    assert resized.box(model_id).px == (0, 0, 20, 20)  # type: ignore[union-attr]
    assert remove_boxes(ann, [model_id]).boxes == ann.boxes[1:]


def test_project_saves_and_reopens_exactly(tmp_path: Path) -> None:
    Image.new("RGB", (200, 100)).save(tmp_path / "img10.png")
    Image.new("RGB", (200, 100)).save(tmp_path / "img2.png")
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / "sub" / "x.jpg")
    (tmp_path / ".hidden").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / ".hidden" / "no.png")
    project = Project(tmp_path)
    assert project.images() == ("img2.png", "img10.png", "sub/x.jpg")
    ann = add_box(project.load_or_empty("sub/x.jpg"), make_box("cat", (1, 2, 10, 12), 30, 20))
    path = project.save(ann)
    assert path == tmp_path / ".lfmdesk" / "annotations" / "sub" / "x.jpg.json"
    data = json.loads(path.read_text())
    assert data["boxes"][0]["box_px"] == [1, 2, 10, 12] and data["width"] == 30
    assert Project(tmp_path).load("sub/x.jpg") == ann
    project.save_labels(["cat", " dog ", "cat", ""])
    assert Project(tmp_path).labels() == ("cat", "dog")


def test_images_outside_the_folder_and_pasted_pixels_get_keys(tmp_path: Path) -> None:
    root, elsewhere, spill = tmp_path / "p", tmp_path / "other", tmp_path / "spill"
    root.mkdir(), elsewhere.mkdir()
    Image.new("RGB", (40, 30), "red").save(elsewhere / "far.png")
    project = Project(root)
    far = load_image(elsewhere / "far.png")
    key = project.key_for(far, spill)
    assert key == str((elsewhere / "far.png").resolve())
    project.save(add_box(project.load_or_empty(key), make_box("x", (0, 0, 5, 5), 40, 30)))
    assert key in project.images()
    pasted = load_image(Image.new("RGB", (8, 8), "blue"))
    pasted_key = project.key_for(pasted, spill)
    assert Path(pasted_key).parent == spill and load_image(pasted_key).content_hash == (
        pasted.content_hash
    )
    assert project.key_for(pasted, spill) == pasted_key  # the same picture, the same file


def test_sizes_follow_exif_rotation(tmp_path: Path) -> None:
    image = Image.new("RGB", (60, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90°: shown 20 wide, 60 high
    image.save(tmp_path / "r.jpg", exif=exif)
    assert oriented_size(tmp_path / "r.jpg") == (20, 60)
    loaded: LoadedImage = load_image(tmp_path / "r.jpg")
    assert (loaded.width, loaded.height) == (20, 60)


def test_a_damaged_file_is_reported_and_left_alone(tmp_path: Path) -> None:
    Image.new("RGB", (10, 10)).save(tmp_path / "a.png")
    project = Project(tmp_path)
    path = project.annotation_path("a.png")
    path.parent.mkdir(parents=True)
    path.write_text("{broken")
    with pytest.raises(InputError, match="damaged annotation file") as err:
        project.load("a.png")
    assert "\n" not in str(err.value) and path.read_text() == "{broken"
    with pytest.raises(InputError, match="not a folder"):
        Project(tmp_path / "missing")


_WRITER = """
import sys
from lfmdesk.core import Project, ImageAnnotation, make_box
project = Project(sys.argv[1])
ann = ImageAnnotation.empty("a.png", 4000, 3000)
boxes = tuple(make_box(f"label {i}", (i, i, i + 50, i + 50), 4000, 3000) for i in range(2000))
n = 0
while True:
    n += 1
    project.save(ImageAnnotation("a.png", 4000, 3000, boxes[: 1 + n % 2000], ("x",), True))
    if n == 3:
        print("ready", flush=True)
"""


def test_a_writer_killed_mid_save_leaves_a_whole_file(tmp_path: Path) -> None:
    Image.new("RGB", (4, 3)).save(tmp_path / "a.png")
    for delay in (0.05, 0.13, 0.21, 0.34):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        ann = Project(tmp_path).load("a.png")  # raises if the file were half-written
        assert ann is not None and ann.width == 4000 and len(ann.boxes) >= 1
    leftovers = [p.name for p in (tmp_path / ".lfmdesk" / "annotations").iterdir()]
    assert all(not name.endswith(".json") or name == "a.png.json" for name in leftovers)
