"""Detect all from the window: boxes saved per image, Cancel + resume, a person's edits win."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("PySide6")

from lfmdesk.core import Project, SamplingSettings, VisionSettings, add_box, make_box
from lfmdesk.core.datasets._status import DETECTED, EDITED, FAILED, NOT_RUN, batch_counts
from lfmdesk.core.testing._scripted import scripted_boxes
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui.annotate._batch import BatchRunner
from lfmdesk.gui.annotate._project_panel import ProjectPanel

LABELS = "car, person"


def _project(tmp_path: Path, n: int = 3) -> Project:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (80 + i, 60), (i * 60, 90, 160)).save(folder / f"img{i}.png")
    return Project(folder)


@pytest.fixture
def client(qtbot, request):
    options = getattr(request, "param", None) or {"token_delay": 0.001}
    engine = EngineClient(engine_factory="scripted", options={"load_delay": 0.0, **options})
    engine.start()
    with qtbot.waitSignal(engine.modelLoaded, timeout=30_000):
        engine.load_model("8bit")
    yield engine
    engine.stop()


class Requests:
    """Counts the images the runner asks the engine about."""

    def __init__(self, client: EngineClient) -> None:
        self.sizes: list[tuple[int, int]] = []
        self._start = client.start_chat
        client.start_chat = self  # type: ignore[method-assign]

    def __call__(self, request):
        self.sizes.append((request.images[0].width, request.images[0].height))
        return self._start(request)


def _runner(client: EngineClient) -> BatchRunner:
    return BatchRunner(client, lambda: (SamplingSettings(), VisionSettings()))


def _run(qtbot, runner: BatchRunner, project: Project, labels: str = LABELS, redo=False):
    with qtbot.waitSignal(runner.finished, timeout=30_000) as blocker:
        runner.start(project, labels, redo)
    assert not runner.running
    return blocker.args[0]


def test_every_image_gets_the_model_boxes_saved(qtbot, tmp_path, client) -> None:
    project = _project(tmp_path)
    runner = _runner(client)
    seen = []
    runner.imageAnnotated.connect(lambda key, ann: seen.append(key))
    summary = _run(qtbot, runner, project)
    assert (summary.annotated, summary.failed, summary.cancelled) == (3, 0, False)
    assert seen == ["img0.png", "img1.png", "img2.png"]
    ann = project.load("img2.png")
    assert ann is not None and ann.detected == ("car", "person")
    assert [b.label for b in ann.boxes] == ["car", "person"]
    assert all(b.source == "model" for b in ann.boxes)
    x1 = round(scripted_boxes(2)[0][0] * 82)
    assert ann.boxes[0].px[0] == x1


def test_cancel_after_the_first_image_then_resume_runs_only_the_rest(
    qtbot, tmp_path, client
) -> None:
    project = _project(tmp_path)
    runner = _runner(client)
    requests = Requests(client)
    runner.imageAnnotated.connect(lambda key, ann: runner.cancel())
    summary = _run(qtbot, runner, project)
    assert summary.cancelled and summary.annotated == 1
    assert requests.sizes == [(80, 60)]
    assert project.load("img1.png") is None

    runner.imageAnnotated.disconnect()
    summary = _run(qtbot, runner, project, "person, car")  # same labels, any order
    assert (summary.annotated, summary.skipped, summary.cancelled) == (2, 1, False)
    assert requests.sizes == [(80, 60), (81, 60), (82, 60)]


def test_cancel_mid_answer_saves_nothing_for_that_image(qtbot, tmp_path, client) -> None:
    project = _project(tmp_path, 2)
    runner = _runner(client)
    client.chatEvent.connect(lambda rid, event: runner.cancel())
    summary = _run(qtbot, runner, project)
    assert summary.cancelled and summary.annotated == 0
    assert project.load("img0.png") is None


def test_a_person_s_edits_are_never_overwritten(qtbot, tmp_path, client) -> None:
    project = _project(tmp_path)
    before = add_box(project.load_or_empty("img0.png"), make_box("dog", (1, 2, 30, 40), 80, 60))
    project.save(before)
    runner = _runner(client)
    current: list[str] = []
    runner.progress.connect(lambda done, total, key: current.append(key))
    during = add_box(project.load_or_empty("img2.png"), make_box("cat", (5, 5, 20, 20), 82, 60))

    def edit_while_in_flight(rid: int, event: object) -> None:
        if current[-1] == "img2.png" and project.load("img2.png") is None:
            project.save(during)  # the person draws a box while the model is answering

    client.chatEvent.connect(edit_while_in_flight)
    summary = _run(qtbot, runner, project, redo=True)
    assert current == ["img1.png", "img2.png"]  # img0 was never sent
    assert project.load("img0.png") == before
    assert project.load("img2.png") == during
    assert (summary.annotated, summary.skipped) == (1, 2)
    assert [b.source for b in project.load("img1.png").boxes] == ["model", "model"]


@pytest.mark.parametrize(
    "client", [{"token_delay": 0.001, "answers": ["!fail:boom"]}], indirect=True
)
def test_an_engine_failure_stops_the_batch_and_says_so(qtbot, tmp_path, client) -> None:
    project = _project(tmp_path)
    runner = _runner(client)
    problems, failed = [], []
    runner.problem.connect(problems.append)
    runner.imageFailed.connect(lambda key, message: failed.append(key))
    summary = _run(qtbot, runner, project)
    assert summary.cancelled and summary.failed == 1 and summary.annotated == 0
    assert failed == ["img0.png"]
    assert len(problems) == 1 and "boom" in problems[0] and "\n" not in problems[0]


def test_bad_labels_are_a_problem_not_a_batch(qtbot, tmp_path, client) -> None:
    runner = _runner(client)
    problems: list[str] = []
    runner.problem.connect(problems.append)
    runner.start(_project(tmp_path), " , ")
    assert not runner.running and "no labels" in problems[0]


def _wired_panel(qtbot, project: Project, runner: BatchRunner) -> ProjectPanel:
    panel = ProjectPanel(project)
    qtbot.addWidget(panel)
    panel.set_labels(LABELS)
    panel.batchRequested.connect(lambda labels, redo: runner.start(project, labels, redo))
    panel.cancelRequested.connect(runner.cancel)
    runner.started.connect(panel.batch_started)
    runner.progress.connect(panel.show_progress)
    runner.imageAnnotated.connect(panel.update_row)
    runner.imageFailed.connect(panel.mark_failed)
    runner.finished.connect(panel.batch_finished)
    panel.show()
    return panel


def test_panel_shows_progress_then_offers_to_resume(qtbot, tmp_path, client) -> None:
    project = _project(tmp_path)
    project.save(add_box(project.load_or_empty("img0.png"), make_box("dog", (0, 0, 9, 9), 80, 60)))
    runner = _runner(client)
    panel = _wired_panel(qtbot, project, runner)
    assert panel.detect_button.text() == "Detect all"
    assert [r.status for r in panel.rows()] == [EDITED, NOT_RUN, NOT_RUN]
    texts: list[str] = []
    runner.progress.connect(lambda *a: texts.append(panel.progress_text()))

    def press_cancel(key: str, ann: object) -> None:
        panel.cancel_button.click()

    runner.imageAnnotated.connect(press_cancel)
    with qtbot.waitSignal(runner.finished, timeout=30_000):
        panel.detect_button.click()
        assert panel.running and panel.cancel_button.isVisible()
        assert not panel.detect_button.isVisible()
    assert texts == ["1 / 2 · img1.png"]
    assert not panel.cancel_button.isVisible() and panel.detect_button.isVisible()
    assert panel.detect_button.text() == "Resume — 1 left"
    assert panel.row("img1.png").status == DETECTED and panel.row("img1.png").boxes == 2

    runner.imageAnnotated.disconnect(press_cancel)
    with qtbot.waitSignal(runner.finished, timeout=30_000):
        panel.detect_button.click()
    assert panel.detect_button.text() == "Detect all again"
    panel.refresh()  # what the files say agrees with what the signals said
    assert [r.status for r in panel.rows()] == [EDITED, DETECTED, DETECTED]


def test_panel_lists_images_and_reports_picks(qtbot, tmp_path) -> None:
    project = _project(tmp_path)
    panel = ProjectPanel()
    qtbot.addWidget(panel)
    assert panel.keys() == [] and not panel.detect_button.isEnabled()
    panel.set_project(project)
    assert panel.folder_label.text() == "photos"
    assert panel.keys() == ["img0.png", "img1.png", "img2.png"]
    assert not panel.detect_button.isEnabled()  # no labels yet
    panel.set_labels(["car"])
    assert panel.detect_button.isEnabled()
    picked: list[str] = []
    panel.imageActivated.connect(picked.append)
    panel.set_current("img1.png")  # the window showing it is not the user picking it
    assert picked == [] and panel.current_key() == "img1.png"
    panel.list.setCurrentRow(2)
    assert picked == ["img2.png"]
    panel.mark_failed("img0.png", "engine stopped")
    assert panel.row("img0.png").status == FAILED
    assert "engine stopped" in panel.list.item(0).toolTip()
    requested: list[tuple[str, bool]] = []
    panel.batchRequested.connect(lambda labels, redo: requested.append((labels, redo)))
    panel.detect_button.click()
    assert requested == [("car", False)]


def test_batch_counts_match_the_plan(tmp_path) -> None:
    from lfmdesk.core.datasets._batch import plan_batch
    from lfmdesk.core.datasets._status import project_rows

    project = _project(tmp_path)
    ann = project.load_or_empty("img1.png")
    from lfmdesk.core import apply_detections

    project.save(apply_detections(ann, (), ("Person", "car")))
    plan = plan_batch(project, LABELS)
    assert batch_counts(project_rows(project), LABELS) == (len(plan.done), len(plan.todo))
    assert batch_counts(project_rows(project), "bus") == (0, 3)
