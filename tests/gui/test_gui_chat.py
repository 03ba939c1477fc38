"""The chat panel as a user sees it: sending, streaming, bubbles, shortcuts, images, tools."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from lfmdesk.core import LoadedImage, ToolCall, load_image
from lfmdesk.gui.chat._bubbles import ChatMessage
from lfmdesk.gui.chat._panel import ChatPanel

ARABIC = "ما الذي يظهر في هذه الصورة؟ أرى قطة تجلس على الأريكة."
JAPANESE = (
    "これは猫の写真です。猫はソファの上に座っていて、とても気持ちよさそうに眠っています。" * 3
)
CTRL = Qt.KeyboardModifier.ControlModifier


def make_image(color: str = "red", size: tuple[int, int] = (80, 60)) -> LoadedImage:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return load_image(buffer.getvalue())


@pytest.fixture
def panel(qtbot):
    widget = ChatPanel()
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def last(panel: ChatPanel) -> ChatMessage:
    return panel.messages()[-1]


# --- sending ------------------------------------------------------------------------------


def test_ctrl_enter_sends_the_text_and_clears_the_input(panel, qtbot):
    qtbot.keyClicks(panel.input, "What is in the picture?")
    with qtbot.waitSignal(panel.sendRequested, timeout=1000) as blocker:
        qtbot.keyClick(panel.input, Qt.Key.Key_Return, CTRL)
    assert blocker.args == ["What is in the picture?"]
    assert panel.input_text() == ""


def test_plain_enter_adds_a_line_and_does_not_send(panel, qtbot):
    qtbot.keyClicks(panel.input, "first line")
    with qtbot.assertNotEmitted(panel.sendRequested):
        qtbot.keyClick(panel.input, Qt.Key.Key_Return)
        qtbot.keyClicks(panel.input, "second line")
    assert panel.input_text() == "first line\nsecond line"
    assert "Enter for a new line" in panel.input.placeholderText()


def test_send_button_sends_but_blank_input_sends_nothing(panel, qtbot):
    panel.set_input_text("   \n ")
    with qtbot.assertNotEmitted(panel.sendRequested):
        panel.send_button.click()
    panel.set_input_text("hello")
    with qtbot.waitSignal(panel.sendRequested, timeout=1000) as blocker:
        panel.send_button.click()
    assert blocker.args == ["hello"]


def test_disabled_input_shows_the_reason_and_cannot_send(panel, qtbot):
    panel.set_input_enabled(False, "Load a model to start chatting")
    assert not panel.input.isEnabled()
    assert panel.input.placeholderText() == "Load a model to start chatting"
    assert not panel.send_button.isEnabled()
    assert not panel.detect_button.isEnabled()
    panel.set_input_enabled(True)
    assert panel.input.isEnabled() and panel.send_button.isEnabled()


# --- streaming ----------------------------------------------------------------------------


def test_streaming_thousands_of_small_appends_stays_fast_and_complete(panel, qtbot, monkeypatch):
    renders = []
    original = ChatMessage.set_text

    def counting(self, text):
        renders.append(len(text))
        original(self, text)

    monkeypatch.setattr(ChatMessage, "set_text", counting)
    pieces = [f"word{i} " for i in range(2000)]
    expected = "".join(pieces)
    started = time.perf_counter()
    panel.begin_answer()
    for piece in pieces:
        panel.append_answer(piece)
    qtbot.waitUntil(lambda: last(panel).source_text() == expected, timeout=2000)
    assert time.perf_counter() - started < 2.0
    assert len(renders) < 50  # coalesced, not one Markdown render per token
    assert last(panel).text.toPlainText() == expected.strip()
    panel.finish_answer(text=expected)
    assert last(panel).source_text() == expected
    assert len(panel.messages()) == 1


def test_open_answer_shows_an_ellipsis_until_text_arrives(panel, qtbot):
    panel.begin_answer()
    assert last(panel).text.toPlainText() == "…"
    assert last(panel).source_text() == ""
    panel.append_answer("Hello")
    qtbot.waitUntil(lambda: last(panel).text.toPlainText() == "Hello", timeout=1000)


def test_interrupted_answer_shows_the_marker(panel):
    panel.begin_answer()
    panel.append_answer("A cat sits")
    panel.finish_answer(text="A cat sits", interrupted=True, footer="1.0 s to first token")
    message = last(panel)
    assert message.interrupted.isVisibleTo(panel)
    assert "interrupted" in message.interrupted.text()
    assert message.footer.isVisibleTo(panel) and message.footer.text() == "1.0 s to first token"
    panel.add_assistant_message("Complete answer.")
    assert not last(panel).interrupted.isVisibleTo(panel)


def test_markdown_is_rendered_and_code_blocks_are_monospace(panel):
    panel.add_assistant_message("Some **bold** text.\n\n```python\nprint('hi')\n```")
    document = last(panel).text.document()
    assert document.toPlainText() == "Some bold text.\nprint('hi')"
    block = document.findBlock(document.toPlainText().index("print"))
    font = block.charFormat().font()
    assert font.fixedPitch() or font.family() in ("monospace", "Monospace", "Menlo", "Courier")
    assert last(panel).source_text().startswith("Some **bold**")


def test_detect_answer_has_a_folded_raw_output_block(panel, qtbot):
    raw = '[{"label": "cat", "bbox": [0.1, 0.2, 0.5, 0.9]}]'
    panel.add_user_message("Find: cat", [make_image()], kind="detect")
    panel.add_assistant_message("Found 1 object: cat.", raw=raw, footer="1 box")
    message = last(panel)
    assert message.raw is not None
    assert message.raw.toggle.text() == "Model output"
    assert not message.raw.view.isVisibleTo(panel)
    qtbot.mouseClick(message.raw.toggle, Qt.MouseButton.LeftButton)
    assert message.raw.view.isVisibleTo(panel)
    assert message.raw.view.toPlainText() == raw
    panel.add_assistant_message("A plain answer.")
    assert last(panel).raw is None


# --- copy, direction, size --------------------------------------------------------------


def test_copy_puts_the_message_source_on_the_clipboard(panel, qtbot):
    panel.add_user_message("Describe *this*")
    panel.add_assistant_message("It is a **cat**.")
    qtbot.mouseClick(last(panel).copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "It is a **cat**."
    panel.messages()[0].text.copyMessageRequested.emit()  # the context menu's Copy Message
    assert QGuiApplication.clipboard().text() == "Describe *this*"


def test_arabic_lays_out_right_to_left_and_english_left_to_right(panel):
    panel.add_user_message(ARABIC)
    panel.add_assistant_message(f"{ARABIC}\n\nThe second paragraph is English.")
    assert panel.messages()[0].text.document().begin().textDirection() == (
        Qt.LayoutDirection.RightToLeft
    )
    document = last(panel).text.document()
    first, second = document.begin(), document.begin().next()
    assert first.textDirection() == Qt.LayoutDirection.RightToLeft
    assert second.textDirection() == Qt.LayoutDirection.LeftToRight
    panel.set_input_text(ARABIC)
    assert panel.input.document().begin().textDirection() == Qt.LayoutDirection.RightToLeft


def test_long_japanese_wraps_inside_the_panel_without_clipping(panel, qtbot):
    panel.resize(360, 600)
    panel.add_assistant_message(JAPANESE)
    qtbot.wait(20)
    text = last(panel).text
    assert text.toPlainText() == JAPANESE
    viewport_width = panel._scroll.viewport().width()
    assert text.width() <= viewport_width
    assert text.height() > 3 * text.fontMetrics().lineSpacing()  # wrapped onto several lines
    assert text.document().size().height() <= text.height() + 1  # nothing cut off
    assert text.verticalScrollBar().maximum() == 0
    assert panel._scroll.horizontalScrollBar().maximum() == 0


def test_bubbles_rewrap_when_the_panel_gets_wider(panel, qtbot):
    panel.resize(360, 600)
    panel.add_assistant_message("word " * 200)
    qtbot.wait(20)
    narrow = last(panel).text.size()
    panel.resize(900, 600)
    qtbot.waitUntil(lambda: last(panel).text.width() > narrow.width(), timeout=1000)
    assert last(panel).text.height() < narrow.height()
    assert last(panel).width() <= panel._scroll.viewport().width()


def test_list_follows_the_stream_unless_the_user_scrolled_up(panel, qtbot):
    for number in range(12):
        panel.add_user_message(f"question {number}")
        panel.add_assistant_message("answer " * 40)
    bar = panel._scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0 and bar.value() == bar.maximum(), timeout=1000)
    panel.begin_answer()
    panel.append_answer("streamed line\n\n" * 20)
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and bar.maximum() > 0, timeout=1000)
    bar.setValue(0)  # the user scrolls up to read
    panel.append_answer("more text\n\n" * 20)
    before = bar.maximum()
    qtbot.waitUntil(lambda: bar.maximum() > before, timeout=1000)
    assert bar.value() == 0


# --- busy state and shortcuts -------------------------------------------------------------


def test_the_panel_binds_no_keys_of_its_own_and_says_what_can_be_done(panel, qtbot):
    # Esc and Ctrl+Shift+R belong to the window's Chat menu (bound twice, Qt fires neither);
    # the panel tells the window when Stop and Regenerate can act.
    panel.activateWindow()
    panel.input.setFocus()
    qtbot.waitUntil(panel.input.hasFocus, timeout=1000)
    panel.set_busy(True)
    assert panel.can_stop() and not panel.can_regenerate()
    with qtbot.assertNotEmitted(panel.stopRequested):
        qtbot.keyClick(panel.input, Qt.Key.Key_Escape)
    panel.add_user_message("hi")
    panel.add_assistant_message("hello")
    with qtbot.waitSignal(panel.actionsChanged, timeout=1000):
        panel.set_busy(False)
    assert panel.can_regenerate() and not panel.can_stop()
    with qtbot.assertNotEmitted(panel.regenerateRequested):
        qtbot.keyClick(panel.input, Qt.Key.Key_R, CTRL | Qt.KeyboardModifier.ShiftModifier)


def test_busy_turns_send_into_stop_and_disables_regenerate(panel, qtbot):
    panel.add_user_message("hi")
    assert not panel.regenerate_button.isEnabled()  # nothing to regenerate yet
    panel.add_assistant_message("hello")
    assert panel.regenerate_button.isEnabled()
    panel.set_busy(True)
    assert not panel.regenerate_button.isEnabled()
    assert not panel.detect_button.isEnabled()
    assert panel.send_button.text() == "Stop"
    with qtbot.waitSignal(panel.stopRequested, timeout=1000):
        panel.send_button.click()
    panel.set_busy(False)
    assert panel.send_button.text() == "Send"
    with qtbot.waitSignal(panel.regenerateRequested, timeout=1000):
        panel.regenerate_button.click()


def test_editing_the_last_question_emits_the_new_text(panel, qtbot):
    panel.add_user_message("first question")
    panel.add_assistant_message("first answer")
    panel.add_user_message("second question")
    panel.add_assistant_message("second answer")
    first, second = panel.messages()[0], panel.messages()[2]
    assert not first.edit_button.isVisibleTo(panel)
    assert second.edit_button.isVisibleTo(panel)
    panel.set_busy(True)
    assert not second.edit_button.isVisibleTo(panel)
    panel.set_busy(False)
    qtbot.mouseClick(second.edit_button, Qt.MouseButton.LeftButton)
    assert second.editor is not None and not second.text.isVisibleTo(panel)
    second.editor.edit.setPlainText("second question, reworded")
    with qtbot.waitSignal(panel.editLastRequested, timeout=1000) as blocker:
        qtbot.mouseClick(second.editor.resend, Qt.MouseButton.LeftButton)
    assert blocker.args == ["second question, reworded"]
    assert second.editor is None
    panel.truncate_to_last_user("second question, reworded")
    assert [m.source_text() for m in panel.messages()][-1] == "second question, reworded"
    assert len(panel.messages()) == 3


def test_detect_field_emits_its_labels_on_enter(panel, qtbot):
    assert panel.find_field.placeholderText() == "Find objects, e.g. cat, dog"
    qtbot.keyClicks(panel.find_field, "cat, dog")
    with qtbot.waitSignal(panel.detectRequested, timeout=1000) as blocker:
        qtbot.keyClick(panel.find_field, Qt.Key.Key_Return)
    assert blocker.args == ["cat, dog"]
    with qtbot.waitSignal(panel.detectRequested, timeout=1000):
        panel.detect_button.click()


def test_notice_and_clear(panel):
    panel.add_user_message("hi")
    panel.add_notice("engine restarted")
    assert len(panel.messages()) == 1
    panel.clear()
    assert panel.messages() == []
    assert not panel.regenerate_button.isEnabled()


# --- tools and images ---------------------------------------------------------------------


def test_tool_call_cards_show_name_arguments_and_ask_for_results(panel, qtbot):
    calls = [
        ToolCall("get_weather", {"city": "Paris"}),
        ToolCall("convert", {"amount": 3, "units": ["km", "mi"]}),
    ]
    panel.add_user_message("Weather in Paris?")
    panel.begin_answer()
    panel.finish_answer(text="", tool_calls=calls)
    cards = last(panel).cards
    assert [card.name_label.text() for card in cards] == ["get_weather", "convert"]
    assert cards[0].name_label.font().bold()
    assert cards[0].arguments.toPlainText() == "city: Paris"
    assert cards[1].arguments.toPlainText() == 'amount: 3\nunits: ["km", "mi"]'
    with qtbot.waitSignal(panel.toolResultRequested, timeout=1000) as blocker:
        qtbot.mouseClick(cards[1].button, Qt.MouseButton.LeftButton)
    assert blocker.args == [1]
    panel.set_busy(True)
    assert not cards[0].button.isEnabled()


def test_pending_strip_shows_thumbnails_and_removes_by_index(panel, qtbot):
    images = [make_image("red"), make_image("green"), make_image("blue", (30, 90))]
    panel.set_pending_images(images)
    assert len(panel.pending) == 3
    assert all(item.isVisibleTo(panel) for item in panel.pending)
    with qtbot.waitSignal(panel.pendingImageRemoved, timeout=1000) as blocker:
        qtbot.mouseClick(panel.pending[1].remove, Qt.MouseButton.LeftButton)
    assert blocker.args == [1]
    with qtbot.waitSignal(panel.imageClicked, timeout=1000) as blocker:
        qtbot.mouseClick(panel.pending[2].thumb, Qt.MouseButton.LeftButton)
    assert blocker.args == [images[2].content_hash]
    panel.set_pending_images([])
    assert panel.pending == []
    assert not panel._strip.isVisibleTo(panel)


def test_thumbnail_in_a_bubble_emits_its_hash(panel, qtbot):
    image = make_image("orange", (640, 480))
    panel.add_user_message("What is this?", [image])
    thumb = last(panel).thumbs[0]
    assert thumb.iconSize().width() == 64
    with qtbot.waitSignal(panel.imageClicked, timeout=1000) as blocker:
        qtbot.mouseClick(thumb, Qt.MouseButton.LeftButton)
    assert blocker.args == [image.content_hash]
