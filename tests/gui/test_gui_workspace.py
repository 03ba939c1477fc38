"""The annotation workflow in the whole window (scripted engine): a project folder, Detect in
the chat becoming editable model boxes, edits saved and restored, clipboard capture with
automatic Detect, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtGui import QGuiApplication
from test_gui_app import make_window

from lfmdesk.core import AppSettings, Project, SamplingSettings
from lfmdesk.gui._window import MainWindow
from lfmdesk.gui.annotate._workspace import captures_dir


def _window(qtbot, tmp_path: Path, settings: AppSettings, saved: list[AppSettings]) -> MainWindow:
    options = {"token_delay": 0.001}
    window = make_window(
        qtbot, tmp_path, "scripted", options, settings=settings, save_settings=saved.append
    )
    with qtbot.waitSignal(window.client.modelLoaded, timeout=30_000):
        window.load_model("scripted-model")
    return window


def _show(qtbot, window: MainWindow, key: str) -> None:
    with qtbot.waitSignal(window.workspace.loader.loaded, timeout=10_000):
        window.workspace.open_key(key)
    qtbot.waitUntil(lambda: window.workspace.editor.key == key, timeout=5_000)


def test_detect_boxes_are_editable_saved_and_come_back(qtbot, tmp_path, folder) -> None:
    saved: list[AppSettings] = []
    settings = AppSettings(sampling=SamplingSettings(max_tokens=200))
    window = _window(qtbot, tmp_path, settings, saved)
    window.workspace.open_project(str(folder))
    assert saved[-1].project == str(folder.resolve())  # remembered for next time
    assert window.workspace.panel.keys() == ["frame0.png", "frame1.png"]
    _show(qtbot, window, "frame1.png")
    assert len(window.controller.chat_thread.pending_images) == 1

    with qtbot.waitSignal(window.client.chatFinished, timeout=30_000):
        window.controller.detect("car, dog")
    ann = window.workspace.editor.annotation
    assert ann is not None and [(b.label, b.source) for b in ann.boxes] == [
        ("car", "model"),
        ("dog", "model"),
    ]
    assert len(window.canvas.box_items()) == 2
    assert window.workspace.labels.labels()[:2] == ["car", "dog"]

    editor = window.workspace.editor
    editor.move([ann.boxes[0].id], 5, 0)  # a person's fix
    editor.stack().undo()
    editor.stack().redo()
    qtbot.waitUntil(lambda: not editor.is_dirty(), timeout=2_000)  # autosaved within a second
    on_disk = Project(folder).load("frame1.png")
    assert on_disk == editor.annotation and on_disk is not None and on_disk.edited
    window.close()

    again = _window(qtbot, tmp_path / "second", saved[-1], [])
    assert again.workspace.project.root == folder.resolve()
    _show(qtbot, again, "frame1.png")
    assert again.workspace.editor.annotation == on_disk
    again.close()


def test_clipboard_capture_lands_in_the_project_and_is_detected(qtbot, tmp_path, folder) -> None:
    window = _window(qtbot, tmp_path, AppSettings(project=str(folder)), [])
    window.workspace.labels.add_label("person")
    QGuiApplication.clipboard().setImage(Image.new("RGB", (120, 90), "orange").toqimage().copy())
    with qtbot.waitSignal(window.client.chatFinished, timeout=30_000):
        window.workspace.capturer.capture_clipboard()
    captures = sorted(folder.glob("Capture *.png"))
    assert len(captures) == 1
    key = captures[0].name
    qtbot.waitUntil(lambda: not window.workspace.editor.is_dirty(), timeout=2_000)
    ann = Project(folder).load(key)
    assert ann is not None and [b.label for b in ann.boxes] == ["person"]
    assert key in [row.key for row in window.workspace.panel.rows()]
    window.close()
    QGuiApplication.clipboard().clear()


def test_pasted_pixels_without_a_project_go_to_captures(qtbot, tmp_path) -> None:
    window = _window(qtbot, tmp_path, AppSettings(), [])
    assert window.workspace.project.root == captures_dir().resolve()
    with qtbot.waitSignal(window.controller.loader.loaded, timeout=10_000):
        window.controller.loader.load_qimage(Image.new("RGB", (50, 40), "blue").toqimage())
    qtbot.waitUntil(lambda: window.workspace.editor.key is not None, timeout=5_000)
    window.workspace.editor.add_box((5, 5, 30, 30), "thing")
    assert window.workspace.editor.flush()
    files = list((captures_dir() / ".lfmdesk" / "annotations").glob("Pasted *.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["boxes"][0]["label"] == "thing"
    window.close()


def test_export_dialog_writes_a_dataset_and_refuses_the_project_folder(
    qtbot, tmp_path, folder
) -> None:
    from lfmdesk.gui.annotate._dataset_dialog import DatasetDialog

    project = Project(folder)
    dialog = DatasetDialog("export", project, "frame0.png")
    qtbot.addWidget(dialog)
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("yolo"))
    dialog.path_edit.setText(str(folder / "inside"))
    dialog.run()
    qtbot.waitUntil(lambda: "inside the project" in dialog.message.text(), timeout=5_000)
    assert not (folder / "inside").exists()

    dialog.path_edit.setText(str(tmp_path / "yolo"))
    with qtbot.waitSignal(dialog.finished_work, timeout=10_000) as done:
        dialog.run()
    assert done.args[0].images == 2
    assert sorted(p.name for p in (tmp_path / "yolo" / "labels").iterdir()) == [
        "frame0.txt",
        "frame1.txt",
    ]
    assert dialog.message.text().startswith("Exported 2 images")
