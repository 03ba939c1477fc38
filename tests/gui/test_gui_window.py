"""The window's smaller promises, each as a user meets it: one owner per shortcut, Settings
and Quit keys, Help ▸ About, "Show in Finder", honest status and prompt numbers, loading
feedback, labels that stick, tools that refuse to be ignored, files opened by the system, and
a clear line when there is no display. Scripted engine behind the real window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtCore import QCoreApplication, Qt, QUrl
from PySide6.QtGui import QFileOpenEvent, QImage
from PySide6.QtWidgets import QApplication, QLabel
from test_gui_app import attach, closing, load, make_window, photo  # noqa: F401
from test_gui_messages import on_screen, toast_says

import lfmdesk
from lfmdesk.core import LiveHud, LiveResult, SamplingSettings, VisionSettings, plan_tiles
from lfmdesk.gui._window import MainWindow
from lfmdesk.gui.annotate._dataset_dialog import DatasetDialog
from lfmdesk.gui.live._view import LiveView
from lfmdesk.gui.support._about import LFM_LICENSE
from lfmdesk.gui.support._display import display_problem
from lfmdesk.gui.support._file_open import FileOpenForwarder

CTRL = Qt.KeyboardModifier.ControlModifier
LONG = "word " * 400


def window_with(qtbot, tmp_path, closing, options=None) -> MainWindow:  # noqa: F811
    window = make_window(
        qtbot, tmp_path, "scripted", options or {"token_delay": 0.001}, sampling=SamplingSettings()
    )
    closing(window)
    window.resize(1280, 800)
    load(qtbot, window, "8bit")
    window.activateWindow()
    return window


def focus(qtbot, widget) -> None:
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=2000)


# --- 2. Esc and Ctrl+Shift+R have one owner and work from every input ------------------------


@pytest.mark.parametrize("where", ["input", "find_field"])
def test_esc_stops_and_ctrl_shift_r_regenerates_with_the_cursor_in_an_input(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
    where,
) -> None:
    window = window_with(qtbot, tmp_path, closing, {"token_delay": 0.02, "answers": [LONG]})
    field = getattr(window.chat, where)
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("Tell me a long story")
        qtbot.waitUntil(lambda: window.controller.chat_thread.partial_answer != "", timeout=10_000)
        focus(qtbot, field)
        qtbot.keyClick(field, Qt.Key.Key_Escape)
    answer = window.controller.chat_thread.turns[-1]
    assert answer.interrupted and answer.stats.finish_reason == "cancelled"
    assert len(answer.text) < len(LONG)
    focus(qtbot, field)
    with qtbot.waitSignal(window.client.chatFinished, timeout=30_000):
        qtbot.keyClick(field, Qt.Key.Key_R, CTRL | Qt.KeyboardModifier.ShiftModifier)
        qtbot.waitUntil(lambda: window.controller.busy, timeout=5000)
        qtbot.keyClick(field, Qt.Key.Key_Escape)  # and stop the regenerated one too
    turns = window.controller.chat_thread.turns
    assert [t.role for t in turns] == ["user", "assistant"]  # regenerated, not appended


def test_esc_is_free_for_the_focused_widget_while_nothing_runs(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = window_with(qtbot, tmp_path, closing)
    assert not window.menu_actions.stop.isEnabled()
    assert not window.menu_actions.regenerate.isEnabled()  # nothing to answer again yet
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("Hi")
    assert window.menu_actions.regenerate.isEnabled()
    question = window.chat.messages()[0]
    question.start_edit()
    focus(qtbot, question.editor.edit)
    with qtbot.assertNotEmitted(window.client.chatFinished, wait=100):
        qtbot.keyClick(question.editor.edit, Qt.Key.Key_Escape)  # Esc cancels the edit
    assert question.editor is None


# --- 6. the smaller ones ---------------------------------------------------------------------


def test_ctrl_comma_opens_settings_and_ctrl_q_quits(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
    monkeypatch,
) -> None:
    window = window_with(qtbot, tmp_path, closing)
    assert window.menu_actions.settings.shortcut().toString() == "Ctrl+,"
    assert window.menu_actions.quit.shortcut().toString() == "Ctrl+Q"
    focus(qtbot, window.chat.input)
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Comma, CTRL)
    assert window.settings_dock.isVisible()
    quits = []
    monkeypatch.setattr(QCoreApplication, "quit", lambda: quits.append(1))
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Q, CTRL)
    assert not window.isVisible() and quits == [1]


def test_help_about_names_the_version_and_both_licences(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = window_with(qtbot, tmp_path, closing)
    assert window.menuBar().actions()[-1].text() == "&Help"
    window.menu_actions.about.trigger()
    dialog = window.about_dialog
    assert dialog is not None and dialog.isVisible()
    text = dialog.findChild(QLabel, "aboutText").text()
    assert lfmdesk.__version__ in text and "MIT License" in text and LFM_LICENSE in text
    assert "https://www.liquid.ai/lfm-license" in text


def test_show_folder_opens_the_captures_folder_in_the_file_manager(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
    monkeypatch,
) -> None:
    window = window_with(qtbot, tmp_path, closing)
    opened: list[QUrl] = []
    monkeypatch.setattr(
        "lfmdesk.gui._window_slots.QDesktopServices.openUrl", lambda url: opened.append(url) or True
    )
    window.menu_actions.show_folder.trigger()
    window.workspace.panel.show_button.click()
    root = window.workspace.project.root
    assert root.name == "Captures"
    assert [Path(u.toLocalFile()) for u in opened] == [root, root]


def test_the_status_bar_says_answering_and_drops_old_numbers_while_an_answer_streams(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = window_with(qtbot, tmp_path, closing, {"token_delay": 0.02})
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("First")
    assert window.status.engine_text() == "Ready" and "TTFT" in window.status.stats_text()
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("Second")
        qtbot.waitUntil(lambda: window.controller.chat_thread.partial_answer != "", timeout=5000)
        assert window.status.engine_text() == "Answering…"
        assert window.status.stats_text() == ""
    assert window.status.engine_text() == "Ready" and "TTFT" in window.status.stats_text()


def test_tile_summary_says_thumbnail_only_when_there_is_one(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = window_with(qtbot, tmp_path, closing)
    attach(qtbot, window, photo(tmp_path, 1920, 1080))
    window.toggle_settings()
    assert "tiles + thumbnail" in window.settings_panel.plan_summary()
    off = VisionSettings(use_thumbnail=False)
    window.settings_panel.settingsChanged.emit(window.settings.sampling, off)
    assert plan_tiles(1920, 1080, off).thumbnail is None
    summary = window.settings_panel.plan_summary()
    assert "tiles" in summary and "thumbnail" not in summary


def test_a_huge_image_shows_that_it_is_opening(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = window_with(qtbot, tmp_path, closing)
    big = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((400, 600, 3)) * 255).astype("uint8")).resize((6000, 4000)).save(
        big, quality=80
    )
    with qtbot.waitSignal(window.controller.loader.loaded, timeout=30_000):
        window.canvas.filesDropped.emit([str(big)])
        assert window.canvas.loading_text() == "Opening big.jpg…"
        loading = window.canvas.findChild(QLabel, "canvasLoading")
        assert on_screen(window, loading)
        assert not window.canvas.findChild(QLabel, "canvasHint").isVisible()
    assert window.canvas.loading_text() == ""


def test_detect_all_labels_join_the_list_and_new_labels_keep_the_typed_ones(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    Image.new("RGB", (120, 80), (200, 10, 10)).save(folder / "a.png")
    window = window_with(qtbot, tmp_path, closing)
    ws = window.workspace
    ws.open_project(str(folder))
    ws.labels.add_label("sun")  # the label the user draws new boxes with
    with qtbot.waitSignal(ws.runner.finished, timeout=30_000):
        ws.start_batch("car, tree", False)
    assert {"car", "tree"} <= set(ws.labels.labels())
    assert ws.labels.current_label() == "sun"  # listing them does not change it
    ws.panel.labels_edit.setText("bus")  # the user's own labels for the next Detect all
    ws.labels.add_label("sun")
    assert ws.panel.labels == "bus"
    assert "sun" in ws.project.labels()


def test_show_prompt_counts_images_and_their_tokens(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = window_with(qtbot, tmp_path, closing)
    attach(qtbot, window, photo(tmp_path, 640, 480))
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("What is it?")
    with qtbot.waitSignal(window.controller.promptReady, timeout=10_000):
        window.controller.request_prompt()
    summary = window.prompt_dialog.findChild(QLabel, "promptSummary").text()
    tokens = plan_tiles(640, 480, window.settings.vision).image_tokens
    assert f"1 image → {tokens:,} image tokens" in summary
    assert "1 image tokens" not in summary


def test_invalid_tool_json_is_not_sent_and_says_why(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = window_with(qtbot, tmp_path, closing)
    window.tools.set_tools_enabled(True)
    window.tools.set_tools_text('[{"name": "get_weather", ')
    window.chat.set_input_text("What's the weather in Paris?")
    window.chat.send_button.click()
    assert window.controller.chat_thread.turns == () and not window.controller.busy
    assert toast_says(window, "Not sent", "Let the model call these tools")
    assert window.chat.input_text() == "What's the weather in Paris?"
    assert window.tools._body.isVisible() and window.tools._status.isVisible()
    window.tools.set_tools_enabled(False)  # the user's way out: send without tools
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.send_button.click()
    assert len(window.controller.chat_thread.turns) == 2


def test_files_opened_by_the_system_reach_the_chat(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = window_with(qtbot, tmp_path, closing)
    forwarder = FileOpenForwarder()
    app = QApplication.instance()
    app.installEventFilter(forwarder)
    try:
        first, second = photo(tmp_path, seed=1), photo(tmp_path, seed=2)
        QCoreApplication.sendEvent(app, QFileOpenEvent(str(first)))  # before the window is set
        with qtbot.waitSignals([window.controller.loader.loaded] * 2, timeout=10_000):
            forwarder.set_target(window.open_files)
            QCoreApplication.sendEvent(app, QFileOpenEvent(str(second)))
    finally:
        app.removeEventFilter(forwarder)
    assert len(window.controller.chat_thread.pending_images) == 2


def test_a_long_live_caption_stays_on_the_video_below_the_numbers(qtbot) -> None:
    view = LiveView()
    qtbot.addWidget(view)
    view.resize(640, 420)
    view.show()
    frame = QImage(640, 360, QImage.Format.Format_RGB888)
    frame.fill(Qt.GlobalColor.darkGreen)
    view.show_frame(frame)
    view.show_hud(LiveHud(2.5, 400.0, 300.0, 10, 3))
    text = "A very long description of the scene. " * 60
    view.show_result(LiveResult(1, 0.0, 0.0, 0.0, text, (), 640, 360))
    frame_rect = view.mapFromScene(view.scene().sceneRect()).boundingRect()
    caption, hud = view.caption.geometry(), view.hud.geometry()
    assert caption.height() > 0 and frame_rect.contains(caption)
    assert not caption.intersects(hud)
    assert caption.height() <= 0.45 * frame_rect.height()
    assert view.caption.text().endswith("…") and view.caption_text() == text


# --- no display: one clear line ---------------------------------------------------------------


def test_no_display_is_one_line_and_a_non_zero_exit(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    for extra in ({}, {"DISPLAY": ":4711"}):
        run = subprocess.run(
            [sys.executable, "-m", "lfmdesk", "--model", "8bit"],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode != 0
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lfmdesk: ")
        assert "display" in lines[0] and "einstall" not in run.stderr


def test_a_platform_plugin_qt_cannot_load_is_one_line_too(tmp_path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "no-such-platform"}
    run = subprocess.run(
        [sys.executable, "-m", "lfmdesk", "--model", "8bit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-platform" in lines[0]
    assert "einstall" not in run.stderr


def test_display_problem_reads_the_environment_without_qt() -> None:
    assert display_problem({}, "darwin") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert "DISPLAY is not set" in (display_problem({}, "linux") or "")
    assert "':4711'" in (display_problem({"DISPLAY": ":4711"}, "linux") or "")


def test_the_import_dialog_offers_no_folder_to_show_before_an_export(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = window_with(qtbot, tmp_path, closing)
    for mode in ("import", "export"):
        dialog = DatasetDialog(mode, window.workspace.project, None, window)
        qtbot.addWidget(dialog)
        dialog.show()
        assert not dialog.reveal.isVisible()  # a "Show Folder" that shows nothing misleads
