"""The training set built from a project: person boxes only, the Detect prompt, card JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from lfmdesk.core import InputError, grounding_prompt, load_image
from lfmdesk.core.answers._grounding import Detection
from lfmdesk.core.datasets._annotations import (
    MODEL,
    ImageAnnotation,
    add_box,
    apply_detections,
    make_box,
)
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.train._dataset import (
    LEFT_OUT_UNCHECKED,
    LEFT_OUT_UNTOUCHED,
    TrainingRow,
    answer_json,
    build_training_set,
    split_of,
)

GOLDEN = Path(__file__).parent / "golden" / "train_set.jsonl"


def _picture(
    path: Path, size: tuple[int, int], colour: tuple[int, int, int], **save: object
) -> None:
    image = Image.new("RGB", size, (250, 250, 250))
    ImageDraw.Draw(image).rectangle([2, 2, size[0] // 2, size[1] // 2], fill=colour)
    image.save(path, **save)  # type: ignore[arg-type]


def _with_boxes(project: Project, key: str, size: tuple[int, int], *boxes: tuple) -> None:
    ann = ImageAnnotation.empty(key, *size)
    for label, px, source in boxes:
        ann = add_box(ann, make_box(label, px, *size, source=source))
    project.save(ann)


def fixture_project(root: Path) -> Project:
    """Six pictures covering every rule; ``rotated.png`` is stored 40x20 and shown 20x40."""
    root.mkdir()
    project = Project(root)
    _picture(root / "cars.png", (50, 40), (200, 30, 30))
    _with_boxes(
        project,
        "cars.png",
        (50, 40),
        ("car", (25, 20, 50, 40), "person"),  # lower right: listed second
        ("Person", (5, 4, 20, 30), "person"),  # upper left, label spelled differently
        ("tree", (0, 0, 10, 10), "person"),  # a label not asked for: not in the answer
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    _picture(root / "rotated.png", (40, 20), (30, 30, 200), exif=exif)
    _with_boxes(project, "rotated.png", (20, 40), ("car", (2, 4, 10, 30), "person"))
    _picture(root / "empty.png", (30, 30), (30, 200, 30))
    project.save(ImageAnnotation("empty.png", 30, 30, edited=True))  # checked: nothing there
    _picture(root / "model.png", (30, 30), (90, 90, 90))
    ann = ImageAnnotation.empty("model.png", 30, 30)
    detection = Detection("car", (0.1, 0.1, 0.5, 0.5), (3, 3, 15, 15))
    project.save(apply_detections(ann, [detection], ("car",)))  # the model's, unchecked
    _picture(root / "untouched.png", (30, 30), (120, 60, 60))
    _picture(root / "mixed.png", (30, 30), (60, 120, 60))
    _with_boxes(
        project,
        "mixed.png",
        (30, 30),
        ("person", (0, 0, 30, 15), "person"),
        ("tree", (3, 3, 9, 9), MODEL),  # the model's box of another label does not matter
    )
    return project


def test_the_built_training_set_has_golden_bytes(tmp_path: Path) -> None:
    training = build_training_set(fixture_project(tmp_path / "p"), "car, person")
    produced = training.jsonl("train") + training.jsonl("validation")
    assert produced.decode() == GOLDEN.read_text("utf-8")


def test_rows_hold_the_detect_prompt_and_person_boxes_in_the_oriented_image(
    tmp_path: Path,
) -> None:
    training = build_training_set(fixture_project(tmp_path / "p"), "car, person")
    rows = {r.image: r for r in training.rows}
    assert set(rows) == {"cars.png", "rotated.png", "empty.png", "mixed.png"}
    assert {r.prompt for r in rows.values()} == {grounding_prompt("car, person")}
    # Reading order, the prompt's spelling, 3 decimals, the unasked label left out.
    assert json.loads(rows["cars.png"].answer) == [
        {"label": "person", "bbox": [0.1, 0.1, 0.4, 0.75]},
        {"label": "car", "bbox": [0.5, 0.5, 1.0, 1.0]},
    ]
    # Shown 20 wide and 40 high: normalised by the oriented size, as the model sees it.
    rotated = rows["rotated.png"]
    assert (rotated.width, rotated.height) == (20, 40)
    assert rotated.answer == '[{"label": "car", "bbox": [0.1, 0.1, 0.5, 0.75]}]'
    assert rotated.content_hash == load_image(tmp_path / "p" / "rotated.png").content_hash
    assert rows["empty.png"].answer == "[]"
    assert dict(training.left_out) == {
        "model.png": LEFT_OUT_UNCHECKED,
        "untouched.png": LEFT_OUT_UNTOUCHED,
    }


def test_the_split_follows_the_picture_not_its_name(tmp_path: Path) -> None:
    project = fixture_project(tmp_path / "p")
    first = {r.content_hash: r.split for r in build_training_set(project, "car").rows}
    (tmp_path / "p" / "cars.png").rename(tmp_path / "p" / "renamed.png")
    (project.annotation_path("cars.png")).rename(project.annotation_path("renamed.png"))
    again = {r.content_hash: r.split for r in build_training_set(project, "car").rows}
    assert first == again
    assert set(first.values()) == {"train", "validation"}  # both sides have a picture


def test_one_picture_held_out_even_when_the_hashes_say_none(tmp_path: Path) -> None:
    project = fixture_project(tmp_path / "p")
    training = build_training_set(project, "car, person", validation_share=0.0)
    assert len(training.split("validation")) == 1
    assert len(training.split("train")) == 3


def test_the_split_is_a_pure_function_of_the_hash() -> None:
    hashes = [f"{i:064x}" for i in range(2000)]
    held = sum(split_of(h) == "validation" for h in hashes)
    assert 300 < held < 500  # about a fifth
    assert [split_of(h) for h in hashes] == [split_of(h) for h in hashes]


def test_no_person_boxes_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "p"
    root.mkdir()
    _picture(root / "a.png", (20, 20), (1, 2, 3))
    with pytest.raises(InputError, match="draw or fix boxes in the window"):
        build_training_set(Project(root), "car")
    assert not (root / ".lfmdesk").exists()  # nothing written


def test_labels_no_person_box_has_are_an_error_naming_the_labels_there(tmp_path: Path) -> None:
    project = fixture_project(tmp_path / "p")
    with pytest.raises(
        InputError, match=r"labelled dog, cow in the 4 .*\(labels there: car, Person, tree\)"
    ):
        build_training_set(project, "dog, cow")


def test_answer_json_is_the_model_cards_format() -> None:
    boxes = [make_box("cat", (0, 0, 1, 1), 3, 3), make_box("cat", (1, 0, 3, 2), 3, 3)]
    assert answer_json(boxes, 3, 3, {"cat": "Cat"}) == (
        '[{"label": "Cat", "bbox": [0.0, 0.0, 0.333, 0.333]}, '
        '{"label": "Cat", "bbox": [0.333, 0.0, 1.0, 0.667]}]'
    )


def test_rows_read_back_from_their_saved_form(tmp_path: Path) -> None:
    training = build_training_set(fixture_project(tmp_path / "p"), "car, person")
    for row in training.rows:
        assert TrainingRow.from_dict(row.to_dict()) == row
    with pytest.raises(InputError, match="damaged training set row"):
        TrainingRow.from_dict({"image": "x"})
