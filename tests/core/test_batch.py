"""Batch detection: resume where it stopped, never overwrite a person's boxes."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
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
    load_image,
    make_box,
)
from lfmdesk.core.datasets import _batch as batch_module
from lfmdesk.core.datasets._batch import (
    SKIP_DONE,
    SKIP_EDITED,
    BatchFinished,
    BatchStarted,
    Detected,
    ImageAnnotated,
    ImageFailed,
    ImageSkipped,
    Readable,
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


def _result(image: LoadedImage, label: str) -> DetectionResult:
    det = Detection(label, (0.0, 0.0, 0.5, 1.0), (0, 0, image.width // 2, image.height))
    return DetectionResult((det,), (), "normalized", False)


class NewestFirst:
    """A ManyDetector holding ``width`` images at a time and answering the newest first."""

    def __init__(self, width: int, cancel_after: int | None = None) -> None:
        self.width = width
        self.cancel_after = cancel_after
        self.held_most = 0

    def detect_many(
        self, images: Iterator[Readable], labels: tuple[str, ...], cancel: threading.Event
    ) -> Iterator[Detected]:
        pending: list[Readable] = []
        answered = 0
        for item in itertools.chain(images, [None]):  # None: the end, answer what is left
            if item is not None:
                pending.append(item)
                self.held_most = max(self.held_most, len(pending))
                if len(pending) < self.width:
                    continue
            while pending:
                key, image = pending.pop()
                assert isinstance(image, LoadedImage)
                answered += 1
                if answered == self.cancel_after:
                    cancel.set()  # Cancel pressed while this answer was being written
                yield Detected(key, image, _result(image, labels[0]), None, 0.1)


def test_a_many_detector_saves_each_image_as_it_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path, 6)
    detector = NewestFirst(width=3)
    reads: list[int] = []  # for each image read: how many answers had been saved by then

    def counting_load(path: Path) -> LoadedImage:
        reads.append(sum(1 for p in tmp_path.glob(".lfmdesk/annotations/*.json")))
        return load_image(path)

    monkeypatch.setattr(batch_module, "load_image", counting_load)
    events = list(annotate_project(project, "car", detector))
    # Images are read as the detector makes room, never the whole project up front.
    assert reads == [0, 0, 0, 3, 3, 3]
    done = [e for e in events if isinstance(e, ImageAnnotated)]
    assert [e.image for e in done] == [f"img{i}.png" for i in (2, 1, 0, 5, 4, 3)]
    assert [e.index for e in done] == [1, 2, 3, 4, 5, 6]  # progress counts finished images
    assert {e.total for e in done} == {6}
    assert detector.held_most == 3  # images are read only as the detector has room
    for i in range(6):
        ann = project.load(f"img{i}.png")
        assert ann is not None and ann.boxes[0].px == (0, 0, (64 + i) // 2, 48)
    finished = events[-1]
    assert isinstance(finished, BatchFinished) and finished.annotated == 6


def test_a_cancelled_many_detector_saves_nothing_unfinished_and_resumes(tmp_path: Path) -> None:
    project = _project(tmp_path, 6)
    events = list(annotate_project(project, "car", NewestFirst(width=3, cancel_after=2)))
    assert [e.image for e in events if isinstance(e, ImageAnnotated)] == ["img2.png"]
    assert isinstance(events[-1], BatchFinished) and events[-1].cancelled
    assert [k for k in (f"img{i}.png" for i in range(6)) if project.load(k)] == ["img2.png"]
    again = list(annotate_project(project, "car", NewestFirst(width=2)))
    assert sorted(e.image for e in again if isinstance(e, ImageAnnotated)) == [
        f"img{i}.png" for i in (0, 1, 3, 4, 5)
    ]
