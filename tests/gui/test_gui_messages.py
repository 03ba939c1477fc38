"""Every message the window gives is on screen: toasts for passing news, banners for problems
that last (and that go once the problem is gone), a model picker that shows what is loaded,
and conversations that keep their images. The whole window, scripted engine."""

from __future__ import annotations

import os
import signal

import pytest
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QPushButton, QWidget
from test_gui_app import attach, closing, load, make_window, photo  # noqa: F401

from lfmdesk.core import AppSettings, ConversationStore, ModelFailed, ModelPhase, SamplingSettings
from lfmdesk.gui._app import model_rows
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui._window import MainWindow
from lfmdesk.gui.support._ui_state import UiState

FAST = {"token_delay": 0.001}


def on_screen(window: MainWindow, widget: QWidget) -> bool:
    """Visible, with a size, and inside the window (not covered by the status strip)."""
    if not widget.isVisible() or widget.width() <= 0 or widget.height() <= 0:
        return False
    return window.rect().contains(QRect(widget.mapTo(window, QPoint(0, 0)), widget.size()))


def toast_says(window: MainWindow, *words: str) -> bool:
    text = window.toast.findChild(QLabel, "toastText")
    return (
        on_screen(window, window.toast)
        and on_screen(window, text)
        and all(w in text.text() for w in words)
    )


def banner_says(window: MainWindow, *words: str) -> bool:
    text = window.banner.findChild(QLabel, "bannerText")
    return on_screen(window, window.banner) and all(w in text.text() for w in words)


def scripted(qtbot, tmp_path, closing, options=None, **kw) -> MainWindow:  # noqa: F811
    kw.setdefault("sampling", SamplingSettings())  # whole answers: boxes are not cut short
    window = make_window(qtbot, tmp_path, "scripted", options or FAST, **kw)
    closing(window)
    window.resize(1280, 800)
    load(qtbot, window, "8bit")
    return window


# --- 1. passing news and mistakes are toasts on screen --------------------------------------


def test_a_non_image_dropped_or_opened_is_said_on_screen(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = scripted(qtbot, tmp_path, closing)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    with qtbot.waitSignal(window.controller.loader.failed, timeout=10_000):
        window.canvas.filesDropped.emit([str(notes)])
    qtbot.waitUntil(lambda: toast_says(window, "notes.txt", "not an image"), timeout=5000)
    # The status strip is not where it went: nothing hides it.
    assert window.statusBar().currentMessage() == ""
    window.toast.dismiss()
    with qtbot.waitSignal(window.controller.loader.failed, timeout=10_000):
        window.controller.loader.load_paths([str(notes)])  # File ▸ Open takes the same path
    assert toast_says(window, "not an image")


def test_a_failed_follow_up_is_said_on_screen(qtbot, tmp_path, closing) -> None:  # noqa: F811
    options = {**FAST, "answers": ["A short answer.", "!fail:the model ran out of memory"]}
    window = scripted(qtbot, tmp_path, closing, options)
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("Hello")
    with qtbot.waitSignal(window.client.chatFailed, timeout=20_000):
        window.chat.sendRequested.emit("And a follow-up?")
    qtbot.waitUntil(lambda: toast_says(window, "ran out of memory"), timeout=5000)


def test_detect_all_copy_boxes_and_open_folder_are_said_on_screen(
    qtbot,
    tmp_path,
    folder,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing)
    ws = window.workspace
    ws.open_project(str(folder))
    assert toast_says(window, "Opened", "2 images")
    window.toast.dismiss()
    with qtbot.waitSignal(ws.runner.finished, timeout=30_000):
        ws.start_batch("car, tree", False)
    qtbot.waitUntil(lambda: toast_says(window, "Detect all done", "2 annotated"), timeout=5000)
    window.toast.dismiss()
    with qtbot.waitSignal(ws.loader.loaded, timeout=10_000):
        ws.open_key("frame0.png")
    qtbot.waitUntil(lambda: ws.editor.key == "frame0.png", timeout=5000)
    ws.copy_boxes()
    assert toast_says(window, "Copied 2 boxes"), window.toast.message


def test_no_live_frame_to_snapshot_is_said_on_screen(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = scripted(qtbot, tmp_path, closing)
    window.live.snapshot()
    assert toast_says(window, "No live frame to snapshot")


def test_messages_stack_and_go_away_by_themselves(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = scripted(qtbot, tmp_path, closing)
    window.show_message("first")
    window.show_problem("second went wrong")
    assert toast_says(window, "first", "second went wrong") and window.toast.kind == "error"
    window.toast._timer.setInterval(50)
    window.toast._timer.start()
    qtbot.waitUntil(window.toast.isHidden, timeout=2000)


# --- 3. a conversation keeps every image it used ----------------------------------------------


def test_a_project_image_is_saved_with_the_conversation_and_answered_after_a_restart(
    qtbot,
    tmp_path,
    folder,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing)
    ws = window.workspace
    ws.open_project(str(folder))
    with qtbot.waitSignal(ws.loader.loaded, timeout=10_000):
        ws.open_key("frame1.png")  # the Project panel: not the chat's own loader
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("What colour is it?")
    conversation = window.controller.chat_thread.conversation
    window.close()  # saves and waits for the writes

    # "Restart": a new window on the same store.
    again = make_window(qtbot, tmp_path, "scripted", FAST)
    closing(again)
    load(qtbot, again, "8bit")
    again.controller.open_conversation(conversation.id)
    thread = again.controller.chat_thread
    assert len(thread.images) == 1 and thread.missing_images() == ()
    assert again.toast.isHidden()  # nothing to say: the image is there
    with qtbot.waitSignal(again.client.chatFinished, timeout=20_000):
        again.chat.sendRequested.emit("And now?")
    assert thread.turns[-1].role == "assistant" and thread.turns[-1].text


def test_a_conversation_whose_image_is_gone_says_so_and_keeps_the_question(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing)
    attach(qtbot, window, photo(tmp_path))
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("What is this?")
    conversation_id = window.controller.chat_thread.conversation.id
    window.close()
    store = ConversationStore(tmp_path / "conversations")
    for image in store.images_dir.glob("*.png"):
        image.unlink()  # the store lost it (a cleaner, a sync tool)

    again = make_window(qtbot, tmp_path, "scripted", FAST)
    closing(again)
    load(qtbot, again, "8bit")
    again.controller.open_conversation(conversation_id)
    assert toast_says(again, "could not be found", "new chat")
    again.toast.dismiss()
    again.chat.set_input_text("Follow-up?")
    again.chat.send_button.click()
    assert toast_says(again, "missing from the store", "new chat")
    assert again.chat.input_text() == "Follow-up?"  # what was typed is kept
    assert len(again.controller.chat_thread.turns) == 2  # no question left unanswerable
    assert not again.controller.busy


# --- 5. a failed model switch shows what is really loaded ------------------------------------


def test_a_failed_switch_keeps_showing_the_loaded_model_and_the_advice(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing, {**FAST, "fail_models": ["4bit"]})
    combo = window.model_bar._combo
    assert combo.currentData() == "8bit"
    with qtbot.waitSignal(window.client.modelFailed, timeout=20_000):
        window.model_bar.modelRequested.emit("4bit")
    assert combo.currentData() == "8bit"  # what answers, not what failed
    assert window.model_bar.state == "ready"
    assert window.status.engine_text() == "Ready" and window.chat.input_enabled()
    assert banner_says(window, "Could not load 4bit", "Still using")
    button = window.banner.findChild(QPushButton, "bannerAction")
    assert on_screen(window, button) and "Local Folder" in button.text()
    with qtbot.waitSignal(window.client.chatFinished, timeout=20_000):
        window.chat.sendRequested.emit("Still there?")  # the old model answers
    load(qtbot, window, "8bit")
    assert window.banner.isHidden()  # a model loaded: the failure is old news


def test_a_download_that_cannot_happen_keeps_the_local_folder_advice(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing)
    advice = (
        "cannot download LiquidAI/LFM2.5-VL-450M-MLX-4bit (no network) and it is not in the "
        "cache; download it elsewhere and use it as a local folder (--model /path/to/folder, "
        "or “Use a local folder…” in the window)"
    )
    window.on_model_failed("4bit", advice, False)
    assert banner_says(window, "Use a local folder…")


def test_a_switch_that_failed_after_the_old_model_was_freed_says_no_model(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing)
    # What the engine process says when the new folder fails once loading began.
    for event in (ModelPhase("4bit", "loading"), ModelFailed("4bit", "cannot load model")):
        window.client._handlers[type(event)](event)
    assert window.model_bar._combo.currentIndex() == -1
    assert window.model_bar.state == "error" and not window.chat.input_enabled()


# --- stale banners, crash banner -------------------------------------------------------------


def test_the_crash_banner_names_the_signal_and_goes_once_the_model_is_back(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing)
    with qtbot.waitSignal(window.client.crashed, timeout=20_000):
        os.kill(window.client.pid, signal.SIGKILL)  # not reaped: the pipe's EOF comes first
    assert banner_says(window, "stopped unexpectedly", "SIGKILL")
    assert "None" not in window.banner.message
    assert window.status.engine_text() == "Restarting the engine…"  # not "Ready"
    with qtbot.waitSignal(window.client.modelLoaded, timeout=30_000):
        pass  # the new engine reloads the model
    assert window.banner.isHidden() and window.chat.input_enabled()
    assert window.status.engine_text() == "Ready"


def test_a_capture_problem_banner_goes_once_a_capture_works(
    qtbot,
    tmp_path,
    folder,
    closing,  # noqa: F811
) -> None:
    window = scripted(qtbot, tmp_path, closing)
    ws = window.workspace
    ws.open_project(str(folder))
    QGuiApplication.clipboard().clear()
    with qtbot.waitSignal(ws.capturer.problem, timeout=5000):
        ws.capturer.capture_clipboard()  # nothing on the clipboard
    assert banner_says(window) and window.banner.topic == "capture"
    QGuiApplication.clipboard().setImage(Image.new("RGB", (120, 90), "orange").toqimage().copy())
    with qtbot.waitSignal(ws.capture_loader.loaded, timeout=10_000):
        ws.capturer.capture_clipboard()
    qtbot.waitUntil(window.banner.isHidden, timeout=5000)
    assert toast_says(window, "Saved Capture")
    QGuiApplication.clipboard().clear()


def test_a_problem_without_a_topic_stays_until_dismissed(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = scripted(qtbot, tmp_path, closing)
    window.show_warning("cannot save the label list: disk full")
    for topic in ("capture", "live", "engine", "model", ""):
        window.banner.clear(topic)
    assert banner_says(window, "disk full")


def test_with_no_model_the_picker_names_none(qtbot, tmp_path) -> None:
    client = EngineClient(engine_factory="scripted")
    window = MainWindow(
        client,
        ConversationStore(tmp_path / "conversations"),
        AppSettings(),  # a saved choice ("8bit") that is not on disk
        model_rows(),
        has_model=False,
        save_settings=lambda s: None,
        ui_state=UiState(tmp_path / "ui.json"),
    )
    qtbot.addWidget(window)
    assert window.model_bar._combo.currentIndex() == -1
    assert window.model_bar.state == "none"
