"""The chat presenter: the Qt-free ``ChatThread`` one side, the engine and the views the other.

It turns user intents (send, detect, stop, regenerate, edit, attach) into conversation changes
and engine requests, and engine events into view updates. It never blocks: the engine is a
separate process, images decode in a thread pool, saves are small JSON files.

    controller = ChatController(client, store, chat_panel, settings=lambda: (sampling, vision),
                                tools=drawer.tools)
    controller.imageShown.connect(canvas.set_image)

``tools()`` may raise :class:`InputError` (tools switched on with invalid definitions): the
question is then not sent, the user is told why and keeps the text they typed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QWidget

from lfmdesk.core import (
    ChatThread,
    Conversation,
    ConversationStore,
    Detection,
    GenerationStats,
    InputError,
    LfmdeskError,
    LoadedImage,
    Notice,
    SamplingSettings,
    TextDelta,
    Turn,
    VisionSettings,
    parse_tool_calls,
    plan_tiles,
)
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui.chat._panel import ChatPanel
from lfmdesk.gui.chat._turn_text import answer_footer, answer_text
from lfmdesk.gui.support._image_loader import ImageLoader

__all__ = ["ChatController"]

SettingsSource = Callable[[], tuple[SamplingSettings, VisionSettings]]


class ChatController(QObject):
    """Drives one conversation at a time between the views and the engine process."""

    imageShown = Signal(object)  # LoadedImage | None: what the canvas should show
    detectionsShown = Signal(object)  # tuple[Detection, ...]
    # A fresh detection answer: (LoadedImage, tuple[Detection, ...], tuple[str, ...] labels).
    detected = Signal(object, object, object)
    statsChanged = Signal(object)  # GenerationStats
    busyChanged = Signal(bool)
    imagesInConversation = Signal(bool)  # tools are off while true
    conversationSaved = Signal(str)  # conversation id
    promptReady = Signal(str, int, int)  # rendered prompt, images, image tokens
    problem = Signal(str)  # one line the window shows (a toast)

    def __init__(
        self,
        client: EngineClient,
        store: ConversationStore,
        panel: ChatPanel,
        settings: SettingsSource,
        tools: Callable[[], tuple[dict[str, Any], ...]],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.client, self.store, self.panel = client, store, panel
        self._settings, self._tools = settings, tools
        self.chat_thread = ChatThread(store.new(), {})
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lfmdesk-save")
        self._rid: int | None = None
        self._prompt_rid: int | None = None
        self._prompt_images = (0, 0)
        self.loader = ImageLoader(self, after_load=store.save_image)
        self.loader.loaded.connect(self.attach)
        self.loader.failed.connect(self._report)
        panel.sendRequested.connect(self.send)
        panel.detectRequested.connect(self.detect)
        panel.stopRequested.connect(self.stop)
        panel.regenerateRequested.connect(self.regenerate)
        panel.editLastRequested.connect(self.edit_last)
        panel.pendingImageRemoved.connect(self.detach)
        panel.imageClicked.connect(self.show_image)
        panel.toolResultRequested.connect(self.answer_tool_call)
        client.chatEvent.connect(self.on_chat_event)
        client.chatFinished.connect(self.on_chat_finished)
        client.chatFailed.connect(self.on_chat_failed)
        client.promptText.connect(self.on_prompt_text)

    @property
    def busy(self) -> bool:
        """An answer is being written."""
        return self._rid is not None

    # --- user intents ------------------------------------------------------------------

    @Slot(str)
    def send(self, text: str) -> None:
        """Ask ``text`` with the pending images (nothing is sent when it cannot be answered)."""
        images = list(self.chat_thread.pending_images)
        if not self._tools_ok() or not self._try(lambda: self.chat_thread.add_user_turn(text)):
            if text.strip() and not self.panel.input_text().strip():
                self.panel.set_input_text(text)  # what the user typed is not lost
            return
        self.panel.add_user_message(text.strip(), images)
        self._after_question()

    @Slot(str)
    def detect(self, labels: str) -> None:
        """Send the grounding prompt for ``labels`` about the pending or the last image."""
        turn = self._try(lambda: self.chat_thread.add_detect_turn(labels))
        if not turn:
            return
        images = [self.chat_thread.images[i] for i in turn.image_ids]
        self.panel.add_user_message(f"Find: {labels.strip()}", images, kind="detect")
        self._after_question()

    @Slot()
    def stop(self) -> None:
        """Stop the answer being written (it is kept, marked interrupted)."""
        if self._rid is not None:
            self.client.cancel(self._rid)

    @Slot()
    def regenerate(self) -> None:
        """Ask the last question again."""
        sampling, vision = self._settings()
        request = self._try(lambda: self.chat_thread.regenerate(sampling, vision, self._tools()))
        if request:
            self.panel.truncate_to_last_user()
            self._ask()

    @Slot(str)
    def edit_last(self, text: str) -> None:
        """Replace the last question and ask it again."""
        if self._tools_ok() and self._try(lambda: self.chat_thread.edit_last_user(text)):
            self.panel.truncate_to_last_user(text.strip())
            self._ask()

    @Slot(object)
    def attach(self, image: LoadedImage) -> None:
        """Add a decoded image to the next question and show it."""
        self.chat_thread.attach(image)
        self.panel.set_pending_images(self.chat_thread.pending_images)
        self.imageShown.emit(image)
        self.imagesInConversation.emit(True)
        for note in image.notes:
            self.panel.add_notice(f"{image.source}: {note}")

    @Slot(object)
    def show_only(self, image: LoadedImage) -> None:
        """Make ``image`` the one image of the next question (a project image was picked)."""
        self.chat_thread.pending_images.clear()
        self.attach(image)

    def can_ask(self) -> bool:
        """Whether a question could be sent now (idle, and the input is enabled)."""
        return self._rid is None and self.panel.input_enabled()

    @Slot(int)
    def detach(self, index: int) -> None:
        """Remove a pending image."""
        if self._try(lambda: self.chat_thread.detach(index)):
            self.panel.set_pending_images(self.chat_thread.pending_images)
            self.imagesInConversation.emit(self._has_images())

    @Slot(str)
    def show_image(self, content_hash: str) -> None:
        """Show a conversation image (a thumbnail was clicked), with its boxes if any."""
        image = self.chat_thread.images.get(content_hash)
        if image is not None:
            self.imageShown.emit(image)
            detected = self.chat_thread.current_detection_image()
            same = detected is not None and detected.content_hash == content_hash
            self.detectionsShown.emit(self.chat_thread.current_detections() if same else ())

    @Slot(int)
    def answer_tool_call(self, index: int) -> None:
        """Ask the user for a tool's result and send it back as a tool turn."""
        from lfmdesk.gui.chat._tools_drawer import ToolResultDialog

        calls = self.chat_thread.last_tool_calls()
        if not 0 <= index < len(calls) or not self._tools_ok():
            return
        parent = self.panel if isinstance(self.panel, QWidget) else None
        result = ToolResultDialog.get_result(parent, calls[index])
        if result is not None and self._try(lambda: self.chat_thread.add_tool_result(result)):
            self.panel.add_user_message(f"Tool result ({calls[index].name}): {result}", kind="tool")
            self._after_question()

    def request_prompt(self) -> None:
        """Ask the engine for the rendered prompt of the conversation (→ promptReady)."""
        sampling, vision = self._settings()
        request = self._try(lambda: self.chat_thread.request(sampling, vision, self._tools()))
        if request:
            self._prompt_rid = self.client.render_prompt(request)
            plans = [plan_tiles(i.width, i.height, request.vision) for i in request.images]
            self._prompt_images = (len(plans), sum(p.image_tokens for p in plans))

    # --- conversations -----------------------------------------------------------------

    def new_conversation(self) -> None:
        """Start an empty conversation (the current one is already saved)."""
        self.stop()
        self._load(ChatThread(self.store.new(), {}))

    def open_conversation(self, conversation_id: str) -> None:
        """Reopen a saved conversation: its turns, images and boxes."""
        try:
            conversation = self.store.load(conversation_id)
            images = self.store.load_images(conversation)
        except LfmdeskError as exc:
            self._report(str(exc))
            return
        self.stop()
        self._load(ChatThread(conversation, images))
        missing = self.chat_thread.missing_images()
        if missing:
            where = self.store.images_dir
            line = (
                f"{len(missing)} image{'s' if len(missing) > 1 else ''} of this conversation "
                f"could not be found in {where}: it is shown without "
                f"{'them' if len(missing) > 1 else 'it'}, and going on needs a new chat"
            )
            self.panel.add_notice(line)
            self._report(line)

    def _load(self, thread: ChatThread) -> None:
        self._rid = None
        self.chat_thread = thread
        self.panel.clear()
        self.panel.set_busy(False)
        self.panel.set_pending_images([])
        for turn in thread.turns:
            self._show_turn(turn)
        self.imageShown.emit(thread.current_detection_image() or thread.last_image())
        self.detectionsShown.emit(thread.current_detections())
        self.imagesInConversation.emit(self._has_images())
        self.busyChanged.emit(False)

    def _show_turn(self, turn: Turn) -> None:
        if turn.role == "assistant":
            self.panel.add_assistant_message(answer_text(turn), **self._answer_view(turn))
        elif turn.role == "user":
            known = self.chat_thread.images
            images = [known[i] for i in turn.image_ids if i in known]
            text = turn.text if turn.kind != "detect" else "Find: " + turn.text.split(":", 1)[-1]
            self.panel.add_user_message(text.split(". Response must")[0], images, kind=turn.kind)
        elif turn.role == "tool":
            self.panel.add_user_message(f"Tool result: {turn.text}", kind="tool")

    def save(self) -> None:
        """Save the conversation and every image it uses (atomic, fsync'd) on the writer
        thread, in order."""
        conversation = self.chat_thread.conversation
        if conversation.turns:
            self._writer.submit(self._write, conversation, dict(self.chat_thread.images))

    def _write(self, conversation: Conversation, images: dict[str, LoadedImage]) -> None:
        # Runs on the writer thread; the signals are queued to the GUI thread.
        try:
            self.store.save(conversation, images)
        except (OSError, LfmdeskError) as exc:
            self.problem.emit(f"could not save the conversation: {exc}")
            return
        self.conversationSaved.emit(conversation.id)

    def flush(self) -> None:
        """Wait for pending saves (window closing)."""
        self._writer.shutdown(wait=True)

    # --- engine events -----------------------------------------------------------------

    def _after_question(self) -> None:
        self.panel.set_pending_images([])
        self.save()
        self._ask()

    def _ask(self) -> None:
        sampling, vision = self._settings()
        request = self._try(lambda: self.chat_thread.request(sampling, vision, self._tools()))
        if not request:
            return
        try:
            self.chat_thread.begin_answer()
        except InputError as exc:
            self._report(str(exc))
            return
        self.panel.begin_answer()
        self.panel.set_busy(True)
        self._rid = self.client.start_chat(request)
        self.busyChanged.emit(True)

    @Slot(int, object)
    def on_chat_event(self, request_id: int, event: object) -> None:
        """Stream text, show notices, finish the answer on stats."""
        if request_id != self._rid:
            return
        if isinstance(event, TextDelta):
            self.chat_thread.apply(event)
            self.panel.append_answer(event.text)
        elif isinstance(event, Notice):
            self.panel.add_notice(event.message)
        elif isinstance(event, GenerationStats):
            turn = self.chat_thread.apply(event)
            if turn is not None:
                self._finish(turn)
            self.statsChanged.emit(event)

    def _finish(self, turn: Turn) -> None:
        self.panel.finish_answer(text=answer_text(turn), **self._answer_view(turn))
        if turn.kind == "detect":
            image = self.chat_thread.current_detection_image()
            self.imageShown.emit(image)
            self.detectionsShown.emit(turn.detections)
            if image is not None and not turn.interrupted:
                labels = self.chat_thread.current_detection_labels()
                self.detected.emit(image, turn.detections, labels)
        self.save()

    def _answer_view(self, turn: Turn) -> dict[str, Any]:
        calls = parse_tool_calls(turn.text).calls if turn.kind == "tool_calls" else ()
        return {
            "interrupted": turn.interrupted,
            "footer": answer_footer(turn),
            "raw": turn.text if turn.kind == "detect" else None,
            "tool_calls": calls,
        }

    @Slot(int)
    def on_chat_finished(self, request_id: int) -> None:
        """The engine is done with the request."""
        if request_id == self._rid:
            self._idle()

    @Slot(int, str)
    def on_chat_failed(self, request_id: int, message: str) -> None:
        """The answer failed or the engine died: keep what was written, marked interrupted."""
        if request_id != self._rid:
            return
        turn = self.chat_thread.mark_interrupted()
        if turn is not None:
            self.panel.finish_answer(text=answer_text(turn), **self._answer_view(turn))
        self.panel.add_notice(message)
        self._report(f"The answer failed: {message}")  # the notice may be scrolled away
        self.save()
        self._idle()

    @Slot(int, str)
    def on_prompt_text(self, request_id: int, text: str) -> None:
        """Pass the rendered prompt on to whoever shows it."""
        if request_id == self._prompt_rid:
            self.promptReady.emit(text, *self._prompt_images)

    def _idle(self) -> None:
        self._rid = None
        self.panel.set_busy(False)
        self.busyChanged.emit(False)

    # --- helpers -----------------------------------------------------------------------

    def _has_images(self) -> bool:
        return bool(self.chat_thread.pending_images) or self.chat_thread.last_image() is not None

    def _tools_ok(self) -> bool:
        """Whether the tools in effect can be read (invalid ones are reported, not dropped)."""
        return self._try(lambda: self._tools() or True) is not None

    def _try(self, action: Callable[[], Any]) -> Any:
        """``action()``, or None after reporting the user's mistake (an InputError)."""
        try:
            return action()
        except InputError as exc:
            self._report(str(exc))
            return None

    @Slot(str)
    def _report(self, message: str) -> None:
        self.problem.emit(message)

    def current_detections(self) -> Sequence[Detection]:
        """Boxes of the latest detection answer."""
        return self.chat_thread.current_detections()
