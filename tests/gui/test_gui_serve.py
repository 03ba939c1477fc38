"""The window's Serve button and its "Remote server…" entry, used the way a person would.

Serve: the loaded model answers the openai client from the window's own engine process while
the window keeps chatting, and the URL is on screen. Remote server: the window's chat answers
come from an OpenAI-compatible server.
"""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

import openai
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton
from test_gui_app import ask, load, make_window

from lfmdesk.core.testing import Fault, FaultyServer
from lfmdesk.gui.models._model_bar import ModelBar, ModelRow
from lfmdesk.gui.models._remote_dialog import RemoteDialog

SCRIPT = {"answers": ["Scripted answer."], "token_delay": 0.01}


@pytest.fixture
def closing():
    windows = []
    yield windows.append
    for window in windows:
        window.client.stop()


def _visible(widget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def test_serve_button_serves_the_loaded_model_and_shows_the_url(qtbot, tmp_path, closing) -> None:
    window = make_window(qtbot, tmp_path, "scripted", SCRIPT)
    closing(window)
    window.serve_port = 0
    load(qtbot, window, "8bit")
    button = window.model_bar.findChild(QPushButton, "modelServe")
    label = window.model_bar.findChild(QLabel, "modelServing")
    assert _visible(button) and not label.isVisible()
    with qtbot.waitSignal(window.client.servingChanged, timeout=20_000) as served:
        button.click()
    url = served.args[0]
    assert url.startswith("http://127.0.0.1:") and button.isChecked()
    assert button.text() == "Stop serving"
    assert _visible(label) and label.text() == f"Serving at {url}"
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=30)
    model = client.models.list().data[0].id
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Scripted answer."
    ask(qtbot, window, "and the window still chats?")
    assert window.controller.chat_thread.turns[-1].text == "Scripted answer."
    window.grab().save(str(tmp_path / "serving.png"))
    with qtbot.waitSignal(window.client.servingChanged, timeout=20_000) as stopped:
        button.click()
    assert stopped.args[0] is None and not button.isChecked() and not label.isVisible()
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_a_serve_failure_is_shown_and_the_button_springs_back(qtbot, tmp_path, closing) -> None:
    window = make_window(qtbot, tmp_path, "scripted", SCRIPT)
    closing(window)
    load(qtbot, window, "8bit")
    with FaultyServer() as busy:
        window.serve_port = int(busy.url.rsplit(":", 1)[1].split("/")[0])
        button = window.model_bar.findChild(QPushButton, "modelServe")
        with qtbot.waitSignal(window.client.servingChanged, timeout=20_000):
            button.click()
    label = window.model_bar.findChild(QLabel, "modelServing")
    assert not button.isChecked()
    assert _visible(label) and label.text().startswith("Not serving: cannot serve on 127.0.0.1:")


def test_remote_server_entry_answers_from_that_server(
    qtbot, tmp_path, closing, monkeypatch
) -> None:
    window = make_window(qtbot, tmp_path, "scripted", SCRIPT)
    closing(window)
    load(qtbot, window, "8bit")
    with FaultyServer(default=Fault(text="Answer from the GPU box.")) as server:

        def fill(dialog: RemoteDialog) -> int:
            dialog.findChild(QLineEdit, "remoteUrl").setText(server.url)
            dialog.findChild(QLineEdit, "remoteKey").setText("sk-gui")
            return 1

        monkeypatch.setattr(RemoteDialog, "exec", fill)
        combo = window.model_bar.findChild(type(window.model_bar._combo), "modelCombo")
        index = next(i for i in range(combo.count()) if combo.itemText(i) == "Remote server…")
        with qtbot.waitSignal(window.client.modelLoaded, timeout=20_000):
            combo.setCurrentIndex(index)
            combo.activated.emit(index)
        state = window.model_bar.findChild(QLabel, "modelState")
        assert _visible(state) and state.text() == "Ready · faulty-model · on a remote server"
        assert combo.currentText().startswith("Remote · 127.0.0.1:")
        ask(qtbot, window, "hello?")
    assert window.controller.chat_thread.turns[-1].text == "Answer from the GPU box."
    assert window.settings.model == server.url


def test_the_remote_dialog_says_what_is_wrong_with_a_url(qtbot) -> None:
    dialog = RemoteDialog(None)
    qtbot.addWidget(dialog)
    dialog.show()
    url = dialog.findChild(QLineEdit, "remoteUrl")
    problem = dialog.findChild(QLabel, "remoteProblem")
    connect = next(b for b in dialog.findChildren(QPushButton) if b.text() == "Connect")
    assert not connect.isEnabled() and not problem.isVisible()
    url.setText("gpu-box:8000")
    assert (
        not connect.isEnabled() and _visible(problem) and "http://gpu-box:8000/v1" in problem.text()
    )
    url.setText("http://gpu-box:8000/v1/")
    assert connect.isEnabled() and not problem.isVisible()
    assert dialog.url == "http://gpu-box:8000/v1" and dialog.api_key is None


def test_cancelling_the_remote_dialog_keeps_the_selection(qtbot, monkeypatch) -> None:
    bar = ModelBar([ModelRow("8bit", "LFM2.5-VL-450M · 8-bit", 1, True)], current="8bit")
    qtbot.addWidget(bar)
    monkeypatch.setattr(RemoteDialog, "exec", lambda self: 0)
    combo = bar._combo
    index = combo.findText("Remote server…")
    with qtbot.assertNotEmitted(bar.remoteRequested):
        combo.setCurrentIndex(index)
        combo.activated.emit(index)
    assert combo.currentText().startswith("LFM2.5-VL-450M · 8-bit")
