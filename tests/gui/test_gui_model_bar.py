"""The model bar and the first-run welcome panel, driven the way a user would."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QLabel,
    QProgressBar,
    QPushButton,
)

from lfmdesk.gui.models._model_bar import ModelBar, ModelRow
from lfmdesk.gui.models._welcome import WelcomePanel

ROWS = (
    ModelRow("4bit", "LFM2.5-VL-450M · 4-bit", 233_000_000, False),
    ModelRow("8bit", "LFM2.5-VL-450M · 8-bit", 568_000_000, True, is_default=True),
    ModelRow("1.6b-8bit", "LFM2.5-VL-1.6B · 8-bit", 1_700_000_000, False),
    ModelRow("/models/my-finetune", "my-finetune", 0, True),
)


def _combo_texts(combo: QComboBox) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def _pick(combo: QComboBox, text_start: str) -> None:
    """Select the item whose text starts with ``text_start`` as a user would (activated)."""
    index = next(i for i, t in enumerate(_combo_texts(combo)) if t.startswith(text_start))
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


@pytest.fixture
def bar(qtbot):
    widget = ModelBar(ROWS, current="8bit")
    qtbot.addWidget(widget)
    widget.show()
    return widget


def _parts(bar: ModelBar) -> tuple[QComboBox, QLabel, QProgressBar, QPushButton]:
    return (
        bar.findChild(QComboBox, "modelCombo"),
        bar.findChild(QLabel, "modelState"),
        bar.findChild(QProgressBar, "modelProgress"),
        bar.findChild(QPushButton, "modelCancel"),
    )


def test_rows_show_size_checkmark_default_and_groups(bar):
    combo, *_ = _parts(bar)
    texts = [t for t in _combo_texts(combo) if t]  # separators have no text
    assert texts == [
        "LFM2.5-VL-450M · 4-bit — 233 MB",
        "LFM2.5-VL-450M · 8-bit — 568 MB ✓ (default)",
        "LFM2.5-VL-1.6B · 8-bit — 1.7 GB",
        "my-finetune ✓",
        "Local folder…",
        "Remote server…",
    ]
    # One separator between each group: 450M | 1.6B | folders | "Local folder…".
    assert combo.count() == len(texts) + 3
    assert combo.currentText() == "LFM2.5-VL-450M · 8-bit — 568 MB ✓ (default)"


def test_flagship_family_is_listed_first_whatever_the_input_order(qtbot):
    widget = ModelBar((ROWS[2], ROWS[3], ROWS[0]), current="")
    qtbot.addWidget(widget)
    combo, *_ = _parts(widget)
    texts = [t for t in _combo_texts(combo) if t]
    assert texts[0].startswith("LFM2.5-VL-450M")
    assert texts[-3:] == ["my-finetune ✓", "Local folder…", "Remote server…"]
    assert combo.currentIndex() == -1  # no model yet: the placeholder shows


def test_picking_another_row_emits_its_spec(bar, qtbot):
    combo, *_ = _parts(bar)
    with qtbot.waitSignal(bar.modelRequested) as blocker:
        _pick(combo, "LFM2.5-VL-1.6B")
    assert blocker.args == ["1.6b-8bit"]
    assert bar.current == "1.6b-8bit"


def test_keyboard_arrow_on_closed_combo_switches_model(bar, qtbot):
    combo, *_ = _parts(bar)
    combo.setFocus()
    with qtbot.waitSignal(bar.modelRequested) as blocker:
        qtbot.keyClick(combo, Qt.Key.Key_Up)
    assert blocker.args == ["4bit"]


def test_picking_the_current_row_does_nothing(bar, qtbot):
    combo, *_ = _parts(bar)
    with qtbot.assertNotEmitted(bar.modelRequested):
        _pick(combo, "LFM2.5-VL-450M · 8-bit")


def test_picking_the_current_row_after_an_error_retries(bar, qtbot):
    combo, *_ = _parts(bar)
    bar.set_state("error", "Model folder is incomplete; download it again.")
    with qtbot.waitSignal(bar.modelRequested) as blocker:
        _pick(combo, "LFM2.5-VL-450M · 8-bit")
    assert blocker.args == ["8bit"]


def test_local_folder_emits_the_chosen_path(bar, qtbot, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "/data/other-model")
    combo, *_ = _parts(bar)
    with qtbot.waitSignal(bar.modelRequested) as blocker:
        _pick(combo, "Local folder…")
    assert blocker.args == ["/data/other-model"]
    assert combo.currentText() == "other-model ✓"


def test_cancelled_folder_dialog_emits_nothing_and_restores_selection(bar, qtbot, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "")
    combo, *_ = _parts(bar)
    with qtbot.assertNotEmitted(bar.modelRequested):
        _pick(combo, "Local folder…")
    assert combo.currentText().startswith("LFM2.5-VL-450M · 8-bit")


def test_downloading_shows_progress_and_cancel_which_emits(bar, qtbot):
    _, label, progress, cancel = _parts(bar)
    assert not progress.isVisible() and not cancel.isVisible()
    bar.set_state("downloading")
    assert progress.isVisible() and cancel.isVisible()
    assert progress.maximum() == 0  # busy until the size is known
    bar.set_progress(212_000_000, 568_000_000)
    assert label.text() == "Downloading 212 MB / 568 MB"
    assert progress.maximum() > 0
    assert progress.value() / progress.maximum() == pytest.approx(212 / 568, abs=0.002)
    with qtbot.waitSignal(bar.cancelRequested):
        qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)


def test_progress_beyond_int32_bytes_does_not_overflow(bar):
    _, label, progress, _ = _parts(bar)
    bar.set_state("downloading")
    bar.set_progress(3_000_000_000, 6_000_000_000)
    assert progress.value() / progress.maximum() == pytest.approx(0.5)
    assert label.text() == "Downloading 3.0 GB / 6.0 GB"


def test_ready_hides_progress_and_shows_detail(bar):
    _, label, progress, cancel = _parts(bar)
    bar.set_state("loading")
    assert label.text() == "Loading…" and progress.isVisible()
    bar.set_state("ready", "8-bit · float32 on CPU")
    assert label.text() == "Ready · 8-bit · float32 on CPU"
    assert not progress.isVisible() and not cancel.isVisible()


def test_error_state_shows_the_message_with_an_icon(bar):
    _, label, _, _ = _parts(bar)
    bar.set_state("error", "Download failed; check your connection and try again.")
    assert label.text() == "Download failed; check your connection and try again."
    assert bar.findChild(QLabel, "modelStateIcon").isVisible()
    bar.set_state("ready")
    assert not bar.findChild(QLabel, "modelStateIcon").isVisible()


def test_unknown_state_is_rejected(bar):
    with pytest.raises(ValueError, match="unknown model state"):
        bar.set_state("sleeping")


def test_set_rows_refreshes_checkmarks_and_selection(bar):
    combo, *_ = _parts(bar)
    rows = (*ROWS[:2], ModelRow("1.6b-8bit", "LFM2.5-VL-1.6B · 8-bit", 1_700_000_000, True))
    bar.set_rows(rows, "1.6b-8bit")
    assert combo.currentText() == "LFM2.5-VL-1.6B · 8-bit — 1.7 GB ✓"


# ------------------------------------------------------------------------------ welcome panel

DEFAULT = ROWS[1]


@pytest.fixture
def welcome(qtbot):
    panel = WelcomePanel(ModelRow("8bit", "LFM2.5-VL-450M · 8-bit", 568_000_000, False, True))
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_welcome_shows_title_and_default_model_with_size(welcome):
    assert welcome.findChild(QLabel, "welcomeTitle").text() == "Chat with images, on your Mac"
    assert "LFM2.5-VL-450M" in welcome.findChild(QLabel, "welcomeBlurb").text()
    assert welcome.findChild(QLabel, "welcomeModel").text() == "LFM2.5-VL-450M · 8-bit · 568 MB"


def test_welcome_download_emits_default_spec_and_shows_inline_progress(welcome, qtbot):
    download = welcome.findChild(QPushButton, "welcomeDownload")
    progress = welcome.findChild(QProgressBar, "welcomeProgress")
    assert not progress.isVisible()
    with qtbot.waitSignal(welcome.downloadRequested) as blocker:
        qtbot.mouseClick(download, Qt.MouseButton.LeftButton)
    assert blocker.args == ["8bit"]
    assert progress.isVisible() and not download.isEnabled()  # no double download
    welcome.set_progress(284_000_000, 568_000_000)
    assert welcome.findChild(QLabel, "welcomeProgressText").text() == "284 MB of 568 MB"
    assert progress.value() / progress.maximum() == pytest.approx(0.5)


def test_welcome_error_shows_text_and_allows_retry(welcome, qtbot):
    download = welcome.findChild(QPushButton, "welcomeDownload")
    qtbot.mouseClick(download, Qt.MouseButton.LeftButton)
    welcome.set_error("Download failed: no connection. Check your network and try again.")
    error = welcome.findChild(QLabel, "welcomeError")
    assert error.isVisible() and "no connection" in error.text()
    assert not welcome.findChild(QProgressBar, "welcomeProgress").isVisible()
    assert download.isEnabled() and download.text() == "Try again"
    with qtbot.waitSignal(welcome.downloadRequested):
        qtbot.mouseClick(download, Qt.MouseButton.LeftButton)
    assert not error.isVisible()


def test_welcome_cancel_and_folder(welcome, qtbot, monkeypatch):
    qtbot.mouseClick(welcome.findChild(QPushButton, "welcomeDownload"), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(welcome.cancelRequested):
        qtbot.mouseClick(welcome.findChild(QPushButton, "welcomeCancel"), Qt.MouseButton.LeftButton)
    welcome.reset()
    folder = welcome.findChild(QPushButton, "welcomeFolder")
    assert folder.isEnabled()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "/data/lfm")
    with qtbot.waitSignal(welcome.folderChosen) as blocker:
        qtbot.mouseClick(folder, Qt.MouseButton.LeftButton)
    assert blocker.args == ["/data/lfm"]


def test_welcome_without_default_cannot_download(qtbot):
    panel = WelcomePanel()
    qtbot.addWidget(panel)
    assert not panel.findChild(QPushButton, "welcomeDownload").isEnabled()
    panel.set_default(DEFAULT)
    assert panel.findChild(QPushButton, "welcomeDownload").isEnabled()
