"""Batch detection: resume where it stopped, never overwrite a person's boxes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from lfmdesk.core import (
    Detection,
    DetectionResult,
    InputError,
    LoadedImage,
    Project,
    add_box,
    make_box,
)
from lfmdesk.core.datasets._batch import (
    SKIP_DONE,
    SKIP_EDITED,
    BatchFinished,
    BatchStarted,
    ImageAnnotated,
    ImageFailed,
    ImageSkipped,
    annotate_project,
    plan_batch,
)


def _project(tmp_path: Path, n: int = 4) -> Project:
    for i in range(n):
        Image.new("RGB", (64 + i, 48), (i * 40, 90, 160)).save(tmp_path / f"img{i}.png")
    return Project(tmp_path)


class Detector:
    """Stands in for the model: boxes the left half of every image, counts its calls."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[int] = []
        self.stop_after = stop_after

    def __call__(
        self, image: LoadedImage, labels: tuple[str, ...], cancel: threading.Event
    ) -> DetectionResult:
        self.calls.append(image.width)
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            cancel.set()  # like Cancel pressed while this answer was being written
        box = (0, 0, image.width // 2, image.height)
        det = Detection(labels[0], (0.0, 0.0, 0.5, 1.0), box)
        return DetectionResult((det,), (), "normalized", False)


def test_batch_saves_each_image_and_a_second_run_resumes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    first = Detector(stop_after=2)
    events = list(annotate_project(project, "car, person", first))
    assert isinstance(events[0], BatchStarted) and len(events[0].plan.todo) == 4
    done = [e for e in events if isinstance(e, ImageAnnotated)]
    assert [e.image for e in done] == ["img0.png"]  # the cancelled second answer is not saved
    assert isinstance(events[-1], BatchFinished) and events[-1].cancelled

    second = Detector()
    events = list(annotate_project(project, "person,car", second))  # same labels, any order
    assert [e.image for e in events if isinstance(e, ImageSkipped)] == ["img0.png"]
    assert [e.image for e in events if isinstance(e, ImageAnnotated)] == [
        "img1.png",
        "img2.png",
        "img3.png",
    ]
    ann = project.load("img3.png")
    assert ann is not None and ann.boxes[0].px == (0, 0, 33, 48)
    assert ann.boxes[0].source == "model" and ann.detected == ("person", "car")


def test_person_edited_images_are_never_overwritten(tmp_path: Path) -> None:
    project = _project(tmp_path, 2)
    mine = add_box(project.load_or_empty("img1.png"), make_box("dog", (1, 2, 30, 40), 65, 48))
    project.save(mine)
    events = list(annotate_project(project, "car", Detector(), redo=True))
    skipped = {e.image: e.reason for e in events if isinstance(e, ImageSkipped)}
    assert skipped == {"img1.png": SKIP_EDITED}
    assert project.load("img1.png") == mine


def test_new_labels_run_again_but_keep_boxes_people_drew(tmp_path: Path) -> None:
    project = _project(tmp_path, 1)
    list(annotate_project(project, "car", Detector()))
    assert plan_batch(project, "car").done == ("img0.png",)
    plan = plan_batch(project, "car, bus")
    assert plan.todo == ("img0.png",)
    events = list(annotate_project(project, "bus", Detector()))
    ann = project.load("img0.png")
    assert ann is not None and [b.label for b in ann.boxes] == ["bus"]  # old model box replaced
    assert not any(isinstance(e, ImageSkipped) and e.reason == SKIP_DONE for e in events)


def test_a_broken_image_fails_alone_and_the_batch_goes_on(tmp_path: Path) -> None:
    project = _project(tmp_path, 2)
    (tmp_path / "img0.png").write_bytes(b"not a png")
    events = list(annotate_project(project, "car", Detector()))
    failed = [e for e in events if isinstance(e, ImageFailed)]
    assert len(failed) == 1 and failed[0].image == "img0.png"
    assert "\n" not in failed[0].message
    assert [e.image for e in events if isinstance(e, ImageAnnotated)] == ["img1.png"]


def test_bad_requests_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no labels"):
        plan_batch(_project(tmp_path, 1), " , ")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        plan_batch(Project(empty), "car")


def test_labels_with_control_characters_are_saved_clean_and_resume(tmp_path: Path) -> None:
    project = _project(tmp_path, n=2)
    labels = "car\x1b[31m, traffic\tlight\x00"
    list(annotate_project(project, labels, Detector()))
    saved = project.load("img0.png")
    assert saved is not None and saved.detected == ("car[31m", "traffic light")
    assert {b.label for b in saved.boxes} == {"car[31m"}
    again = Detector()
    events = list(annotate_project(project, labels, again))
    assert again.calls == [] and isinstance(events[-1], BatchFinished)  # all done: resumed
