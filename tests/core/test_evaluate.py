"""Evaluation runs on the real engine (tiny random checkpoints): report, cache, resume."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lfmdesk.core import MODEL, Engine, InputError, Project, SamplingSettings, make_box
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.evaluate._configs import EvalConfig, make_configs
from lfmdesk.core.evaluate._report import write_report
from lfmdesk.core.evaluate._runner import (
    AnswerScored,
    ConfigFinished,
    EvalFinished,
    EvalStarted,
    eval_folder,
    evaluate_project,
)

LABELS = ("red square", "blue disc")


def scene(path: Path, seed: int, size: tuple[int, int]) -> list[tuple[str, tuple[int, ...]]]:
    """A picture with a red square and a blue disc; returns their boxes."""
    rng = np.random.default_rng(seed)
    w, h = size
    image = Image.fromarray((rng.random((h, w, 3)) * 60 + 100).astype("uint8"))
    draw = ImageDraw.Draw(image)
    boxes = []
    for label, colour in zip(LABELS, ((220, 30, 30), (30, 30, 220)), strict=True):
        side = int(rng.integers(w // 6, w // 3))
        x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
        shape = draw.rectangle if label == "red square" else draw.ellipse
        shape((x, y, x + side, y + side), fill=colour)
        boxes.append((label, (x, y, x + side, y + side)))
    image.save(path)
    return boxes


@pytest.fixture
def project(tmp_path) -> Project:
    """Three scenes with a person's boxes, one without any box, one with only model boxes."""
    root = tmp_path / "scenes"
    root.mkdir()
    proj = Project(root)
    for n, size in enumerate(((480, 360), (96, 96), (200, 80))):
        boxes = scene(root / f"scene{n}.png", n, size)
        w, h = size
        person = tuple(make_box(label, px, w, h) for label, px in boxes)
        proj.save(ImageAnnotation(f"scene{n}.png", w, h, person, edited=True))
    scene(root / "unlabelled.png", 9, (64, 64))
    boxes = scene(root / "model-only.png", 8, (64, 64))
    model = tuple(make_box(lab, px, 64, 64, source=MODEL) for lab, px in boxes)
    proj.save(ImageAnnotation("model-only.png", 64, 64, model, detected=LABELS))
    return proj


class Opener:
    """Opens fixture engines by variant and counts opens, answers and unloads."""

    def __init__(self, models: dict[str, Path], allowed: bool = True) -> None:
        self.models, self.allowed = models, allowed
        self.opened: list[str] = []
        self.answers = 0

    def __call__(self, variant: str) -> Engine:
        assert self.allowed, "a cached run must not open a model"
        self.opened.append(variant)
        opener = self

        class Counting(Engine):
            def stream_chat(self, request, *, cancel=None):
                opener.answers += 1
                yield from super().stream_chat(request, cancel=cancel)

        engine = Counting()
        engine.load(self.models[variant])
        return engine


SHORT = SamplingSettings(max_tokens=96)  # free answers of random weights run to the limit


def run(project: Project, configs, opener, cancel=None) -> list:
    return list(evaluate_project(project, LABELS, configs, opener, sampling=SHORT, cancel=cancel))


def test_a_fixture_model_run_over_synthetic_scenes_finishes_and_reports(
    project, fixture_models, tmp_path
) -> None:
    configs = make_configs("8bit", "default,max64", "constrained,free")
    opener = Opener(fixture_models)
    events = run(project, configs, opener)
    started, finished = events[0], events[-1]
    assert isinstance(started, EvalStarted) and isinstance(finished, EvalFinished)
    plan = started.plan
    assert plan.images == ("scene0.png", "scene1.png", "scene2.png")
    assert set(plan.skipped) == {"unlabelled.png", "model-only.png"}  # model boxes are no truth
    assert (plan.answers, plan.cached) == (12, 0)
    report = finished.report
    assert [r.config for r in report.results] == list(configs)
    assert opener.opened == ["8bit"] and opener.answers == 12
    for result in report.results:
        assert len(result.images) == 3 and result.failed == 0
        assert result.overall.counts.truth == 6
        assert result.latency_p50 is not None and result.latency_p95 >= result.latency_p50
        assert result.image_tokens and result.peak_memory_bytes
        if result.config.constrained:
            assert result.parse_failures == 0 and result.dropped == 0
    tokens = {r.config.tiling: r.image_tokens for r in report.results}
    assert tokens["max64"] < tokens["default"]
    csv_path, json_path = write_report(report, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert sum(c["best"] for c in data["configurations"]) == 1
    assert data["skipped_without_ground_truth"] == 2
    assert len(csv_path.read_text().splitlines()) == 1 + 4 * 3  # a row per config and label
    table = report.table()
    assert table.count("*") == 1 and "8bit · max64 · free" in table


def test_a_second_run_asks_nothing_and_writes_the_same_report(
    project, fixture_models, tmp_path
) -> None:
    configs = make_configs("8bit", "max64", "constrained")
    first = run(project, configs, Opener(fixture_models))[-1].report
    again = run(project, configs, Opener(fixture_models, allowed=False))
    assert again[0].plan.cached == 3
    assert all(e.cached for e in again if isinstance(e, AnswerScored))
    second = again[-1].report
    a, b = write_report(first, tmp_path / "a")[1], write_report(second, tmp_path / "b")[1]
    assert a.read_bytes() == b.read_bytes()
    # Greedy: asking afresh gives the same answers (only the timings differ).
    shutil.rmtree(eval_folder(project) / "answers")
    fresh = run(project, configs, Opener(fixture_models))[-1].report
    assert [i.predicted for i in fresh.results[0].images] == [
        i.predicted for i in first.results[0].images
    ]


def test_a_cancelled_run_resumes_where_it_stopped(project, fixture_models) -> None:
    configs = make_configs("8bit", "max64", "constrained,free")
    cancel = threading.Event()
    opener = Opener(fixture_models)
    events = []
    for event in evaluate_project(project, LABELS, configs, opener, sampling=SHORT, cancel=cancel):
        events.append(event)
        if isinstance(event, AnswerScored) and event.done == 2:
            cancel.set()  # Ctrl-C during the third answer
    report = events[-1].report
    assert report.cancelled and report.results == ()
    assert not any(isinstance(e, ConfigFinished) for e in events)
    resumed = Opener(fixture_models)
    events = run(project, configs, resumed)
    assert events[0].plan.cached == 2
    assert resumed.answers == 4 and len(events[-1].report.results) == 2


def test_each_variant_opens_once_and_only_when_needed(project, fixture_models) -> None:
    configs = make_configs("4bit,8bit", "max64", "constrained")
    opener = Opener(fixture_models)
    run(project, configs, opener)
    assert opener.opened == ["4bit", "8bit"]
    cached = Opener(fixture_models, allowed=False)
    run(project, configs, cached)
    assert cached.opened == []


def test_a_project_without_ground_truth_is_a_clear_error(tmp_path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    scene(root / "a.png", 0, (64, 64))
    with pytest.raises(InputError, match="no image has ground truth"):
        run(Project(root), [EvalConfig("8bit")], Opener({}, allowed=False))
    with pytest.raises(InputError, match="unknown tiling"):
        make_configs("8bit", "huge")
