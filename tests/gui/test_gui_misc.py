"""Status strip, prompt viewer, conversations list and banner: what the user sees and triggers."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QTextCharFormat
from PySide6.QtWidgets import (
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
)

from lfmdesk.core import GenerationStats
from lfmdesk.gui._banner import Banner
from lfmdesk.gui._status import StatusStrip, format_stats
from lfmdesk.gui.chat._dialogs import (
    ConversationList,
    PromptDialog,
    relative_time,
    summarize_prompt,
)


def make_stats(**overrides) -> GenerationStats:
    values = {
        "prompt_tokens": 281,
        "image_tokens": 256,
        "cached_prompt_tokens": 269,
        "vision_cache_hits": 1,
        "images": 1,
        "vision_seconds": 0.0,
        "ttft_seconds": 0.42,
        "decode_tokens": 40,
        "decode_tps": 38.14,
        "peak_memory_bytes": 1_200_000_000,
        "finish_reason": "stop",
        "token_ids": (),
    }
    values.update(overrides)
    return GenerationStats(**values)


# ------------------------------------------------------------------------------ status strip


def test_status_text_for_a_vision_cache_hit(qtbot):
    strip = StatusStrip()
    qtbot.addWidget(strip)
    strip.set_stats(make_stats())
    text = strip.findChild(QLabel, "statusStats").text()
    assert text == (
        "TTFT 0.42 s · 38.1 tok/s · 256 image tokens · vision cache hit · "
        "prompt 12/281 new · peak 1.2 GB"
    )
    assert "Tokens generated: 40" in strip.findChild(QLabel, "statusStats").toolTip()


def test_status_text_when_the_image_was_encoded():
    text = format_stats(
        make_stats(vision_cache_hits=0, vision_seconds=0.31, cached_prompt_tokens=0)
    )
    assert "vision encoded 0.31 s" in text
    assert "cache hit" not in text
    assert "prompt 281 tokens" in text


def test_status_text_partial_hit_text_only_and_truncation():
    partial = format_stats(make_stats(images=2, vision_cache_hits=1, vision_seconds=0.2))
    assert "vision encoded 0.20 s (1/2 cached)" in partial
    text_only = format_stats(make_stats(images=0, image_tokens=0, vision_cache_hits=0))
    assert "image" not in text_only and "vision" not in text_only
    assert format_stats(make_stats(finish_reason="length")).endswith("stopped at max tokens")


def test_status_strip_engine_hover_clear_and_show_prompt(qtbot):
    strip = StatusStrip()
    qtbot.addWidget(strip)
    strip.show()
    strip.set_engine_state("Ready")
    strip.set_hover("x 312, y 87")
    assert strip.findChild(QLabel, "statusEngine").text() == "Ready"
    assert strip.findChild(QLabel, "statusHover").text() == "x 312, y 87"
    strip.set_stats(make_stats())
    strip.set_stats(None)
    assert strip.findChild(QLabel, "statusStats").text() == ""
    button = strip.findChild(QPushButton, "statusShowPrompt")
    with qtbot.waitSignal(strip.showPromptRequested):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    strip.set_prompt_available(False)
    assert not button.isEnabled()


# ------------------------------------------------------------------------------ prompt viewer

IMAGE_PROMPT = (
    "<|startoftext|><|im_start|>user\n<|image_start|>"
    "<|img_row_1_col_1|>"
    + "<image>" * 64
    + "<|img_row_1_col_2|>"
    + "<image>" * 64
    + "<|img_thumbnail|>"
    + "<image>" * 256
    + "<|image_end|>What is this?<|im_end|>\n"
    "<|im_start|>assistant\n"
)


def test_summarize_prompt_collapses_image_runs_and_keeps_markers():
    assert summarize_prompt("<|image_start|>" + "<image>" * 256 + "<|image_end|>") == (
        "<|image_start|><image ×256><|image_end|>"
    )
    summary = summarize_prompt(IMAGE_PROMPT)
    assert summary == (
        "<|startoftext|><|im_start|>user\n<|image_start|><|img_row_1_col_1|><image ×64>"
        "<|img_row_1_col_2|><image ×64><|img_thumbnail|><image ×256><|image_end|>"
        "What is this?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert summarize_prompt("a <image> b") == "a <image> b"  # a lone token stays as is
    assert summarize_prompt("no images") == "no images"


def test_prompt_dialog_shows_summary_highlights_markers_and_copies_raw(qtbot):
    dialog = PromptDialog(IMAGE_PROMPT)
    qtbot.addWidget(dialog)
    assert "<image ×256>" in dialog.shown_text
    assert "<image><image>" not in dialog.shown_text
    assert "384 image tokens" in dialog.findChild(QLabel, "promptSummary").text()
    # Image runs get a highlight background; special markers are bold; plain text is neither.
    view = dialog.findChild(QPlainTextEdit, "promptView")
    block = view.document().findBlockByNumber(1)

    def format_of(fragment):
        offset = block.text().index(fragment)
        ranges = block.layout().formats()
        hit = [QTextCharFormat(r.format) for r in ranges if r.start <= offset < r.start + r.length]
        return hit[0] if hit else None

    for run in ("<image ×64>", "<image ×256>"):
        assert format_of(run).background().style() != Qt.BrushStyle.NoBrush
    for marker in ("<|image_start|>", "<|img_row_1_col_2|>", "<|img_thumbnail|>", "<|im_end|>"):
        assert format_of(marker).fontWeight() == 700
        assert format_of(marker).background().style() == Qt.BrushStyle.NoBrush
    assert format_of("What is this?") is None
    # Selecting and copying by hand gives the summary as shown, with no hidden characters.
    view.selectAll()
    view.copy()
    assert QGuiApplication.clipboard().text() == summarize_prompt(IMAGE_PROMPT)
    copy = dialog.findChild(QPushButton, "promptCopy")
    qtbot.mouseClick(copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == IMAGE_PROMPT
    assert copy.text() == "Copied"


# ------------------------------------------------------------------------------ conversations


def test_relative_time_reads_like_a_person_would_say_it():
    now = datetime(2025, 6, 12, 15, 0).timestamp()
    assert relative_time(now - 10, now) == "just now"
    assert relative_time(now - 5 * 60, now) == "5 min ago"
    assert relative_time(now - 3 * 3600, now) == "3 h ago"
    assert relative_time(datetime(2025, 6, 11, 9, 0).timestamp(), now) == "yesterday"
    assert relative_time(datetime(2025, 6, 8, 9, 0).timestamp(), now) == "4 days ago"
    assert relative_time(datetime(2025, 3, 2, 9, 0).timestamp(), now) == "2 Mar"
    assert relative_time(datetime(2023, 3, 2, 9, 0).timestamp(), now) == "2 Mar 2023"


def rows_now() -> list[tuple[str, str, float, int]]:
    # Relative to when the test runs, not when the module was imported (a long suite).
    now = time.time()
    return [
        ("a", "Receipt totals", now - 7200, 4),
        ("b", "Street signs", now - 30, 1),
        ("c", "Cat photos", now - 3 * 86400, 12),
    ]


@pytest.fixture
def conversations(qtbot):
    widget = ConversationList(rows_now())
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_conversation_rows_newest_first_with_time_and_turns(conversations):
    listing = conversations.findChild(QListWidget, "conversationList")
    rows = [listing.item(i) for i in range(listing.count())]
    shown = [(r.text(), r.data(Qt.ItemDataRole.AccessibleDescriptionRole)) for r in rows]
    assert shown[0] == ("Street signs", "just now · 1 turn")
    assert shown[1] == ("Receipt totals", "2 h ago · 4 turns")
    assert shown[2][0] == "Cat photos" and shown[2][1].endswith(" · 12 turns")
    # Each row is tall enough for its two lines.
    line = listing.fontMetrics().height()
    assert listing.visualItemRect(rows[0]).height() >= 2 * line


def test_conversation_click_opens_and_delete_and_new_emit(conversations, qtbot):
    listing = conversations.findChild(QListWidget, "conversationList")
    rect = listing.visualItemRect(listing.item(1))
    with qtbot.waitSignal(conversations.openRequested) as blocker:
        qtbot.mouseClick(listing.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == ["a"]
    with qtbot.waitSignal(conversations.deleteRequested) as blocker:
        qtbot.mouseClick(
            conversations.findChild(QPushButton, "conversationDelete"), Qt.MouseButton.LeftButton
        )
    assert blocker.args == ["a"]
    listing.setFocus()
    with qtbot.waitSignal(conversations.deleteRequested) as blocker:
        qtbot.keyClick(listing, Qt.Key.Key_Delete)
    assert blocker.args == ["a"]
    with qtbot.waitSignal(conversations.newRequested):
        qtbot.mouseClick(
            conversations.findChild(QPushButton, "conversationNew"), Qt.MouseButton.LeftButton
        )


def test_conversation_set_rows_and_set_current_do_not_reopen(conversations, qtbot):
    with qtbot.assertNotEmitted(conversations.openRequested):
        conversations.set_current("c")
        conversations.set_rows([*rows_now()[:2], ("d", "New chat", time.time(), 0)])
    assert conversations.current_id() is None  # "c" is gone
    assert conversations.visible_ids() == ["d", "b", "a"]
    assert not conversations.findChild(QPushButton, "conversationDelete").isEnabled()


def test_conversation_filter_hides_non_matching_and_says_no_matches(conversations, qtbot):
    search = conversations.findChild(QLineEdit, "conversationFilter")
    qtbot.keyClicks(search, "CAT")
    assert conversations.visible_ids() == ["c"]
    empty = conversations.findChild(QLabel, "conversationEmpty")
    assert not empty.isVisible()
    search.setText("zebra")
    assert conversations.visible_ids() == []
    assert empty.isVisible() and empty.text() == "No matches"
    search.clear()
    assert conversations.visible_ids() == ["b", "a", "c"]


def test_empty_conversation_list_says_so(qtbot):
    widget = ConversationList()
    qtbot.addWidget(widget)
    widget.show()
    empty = widget.findChild(QLabel, "conversationEmpty")
    assert empty.isVisible() and empty.text() == "No conversations yet"


# ------------------------------------------------------------------------------ banner

RESTART = (
    "The engine stopped unexpectedly and was restarted; your conversation is safe. "
    "The interrupted answer is marked."
)


def test_banner_show_dismiss_and_action(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    assert banner.isHidden()
    banner.show_message(RESTART, kind="warning", action_text="Retry")
    assert banner.isVisible()
    assert banner.findChild(QLabel, "bannerText").text() == RESTART
    action = banner.findChild(QPushButton, "bannerAction")
    assert action.isVisible() and action.text() == "Retry"
    with qtbot.waitSignal(banner.actionTriggered):
        qtbot.mouseClick(action, Qt.MouseButton.LeftButton)
    assert banner.isHidden()
    banner.show_message("Model loaded.", kind="info")
    assert banner.kind == "info" and not action.isVisible()
    with qtbot.waitSignal(banner.dismissed):
        qtbot.mouseClick(banner.findChild(QToolButton, "bannerClose"), Qt.MouseButton.LeftButton)
    assert banner.isHidden()


def test_banner_auto_hides_and_rejects_unknown_kinds(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    banner.show_message("Saved.", kind="info", timeout_ms=50)
    assert banner.isVisible()
    qtbot.waitUntil(banner.isHidden, timeout=2000)
    with pytest.raises(ValueError, match="unknown banner kind"):
        banner.show_message("x", kind="fatal")


def test_banner_colours_follow_the_palette(qtbot):
    # Same kind, light vs dark window colour: the fill must follow the palette, not be fixed.
    from PySide6.QtGui import QColor, QPalette

    fills = []
    for window in (QColor(236, 236, 236), QColor(30, 30, 30)):
        banner = Banner()
        qtbot.addWidget(banner)
        palette = banner.palette()
        palette.setColor(QPalette.ColorRole.Window, window)
        banner.setPalette(palette)
        banner.resize(400, 40)
        banner.show_message("Careful.", kind="error")
        image = banner.grab().toImage()
        fills.append(image.pixelColor(200, 3).lightness())
    assert fills[0] > 150 > 60 > fills[1]
