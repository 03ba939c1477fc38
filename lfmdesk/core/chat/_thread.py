"""The ChatThread a chat window drives: the conversation being shown, edited and answered.

Plain Python, no Qt. It turns the user's actions into turns and engine requests, and engine
events into the answer turn (detections parsed, tool calls recognised, interruptions kept)::

    thread = ChatThread(store.new(), images={})
    thread.attach(load_image("photo.jpg"))
    thread.add_user_turn("What is in this picture?")
    request = thread.request(sampling, vision)       # send StartChat(request_id, request)
    thread.begin_answer()
    for event in events_of_that_request:             # TextDelta..., GenerationStats
        thread.apply(event)
    store.save(thread.conversation)
"""

from __future__ import annotations

import time
import types
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from lfmdesk.core._errors import InputError, one_line
from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.answers._grounding import (
    GROUNDING_TEMPLATE,
    Detection,
    grounding_prompt,
    parse_detections,
    split_labels,
)
from lfmdesk.core.answers._tools import ToolCall, parse_tool_calls
from lfmdesk.core.chat._conversation import DEFAULT_TITLE, Conversation, Turn
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, GenerationStats, Message, TextDelta
from lfmdesk.core.engine._constrained import Constraint, constraint_for_detection
from lfmdesk.core.images._load import LoadedImage

__all__ = ["ChatThread"]

_TITLE_CHARS = 40
_DETECT_PREFIX, _DETECT_SUFFIX = GROUNDING_TEMPLATE.split("{query}")


def _trim(text: str, limit: int = _TITLE_CHARS) -> str:
    flat = one_line(text)
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut[limit // 2 :] else cut
    return head.rstrip(" ,.;:") + "…"


def _detect_labels(prompt: str) -> str:
    return prompt[len(_DETECT_PREFIX) :].split(_DETECT_SUFFIX, 1)[0]


class ChatThread:
    """The conversation a chat window shows and edits (plain Python, no Qt).

    Args:
        conversation: the conversation to continue (``store.new()`` for a fresh one).
        images: the images its turns refer to, by content hash (``store.load_images``).
    """

    def __init__(self, conversation: Conversation, images: Mapping[str, LoadedImage]) -> None:
        self._base = conversation
        self._turns: list[Turn] = list(conversation.turns)
        self._images: dict[str, LoadedImage] = dict(images)
        self._updated = conversation.updated
        self._answer: list[str] | None = None
        self.pending_images: list[LoadedImage] = []

    # --- what the window shows -----------------------------------------------------------

    @property
    def conversation(self) -> Conversation:
        """The conversation now; an answer in progress is included, marked interrupted."""
        turns = list(self._turns)
        if self._answer is not None:
            turns.append(self._answer_turn(None))
        return replace(self._base, title=self.title, updated=self._updated, turns=tuple(turns))

    @property
    def turns(self) -> tuple[Turn, ...]:
        """The finished turns, oldest first (the answer in progress is not among them)."""
        return tuple(self._turns)

    @property
    def images(self) -> Mapping[str, LoadedImage]:
        """Every image the turns refer to, by content hash (save new ones to the store)."""
        return types.MappingProxyType(self._images)

    @property
    def busy(self) -> bool:
        """An answer is in progress (between :meth:`begin_answer` and its end)."""
        return self._answer is not None

    @property
    def partial_answer(self) -> str:
        """The text of the answer in progress so far ("" when idle)."""
        return "".join(self._answer or ())

    @property
    def title(self) -> str:
        """The first user message, trimmed to about 40 characters."""
        first = next((t for t in self._turns if t.role == "user"), None)
        if first is None:
            return self._base.title or DEFAULT_TITLE
        if first.kind == "detect":
            return _trim(f"Detect: {_detect_labels(first.text)}")
        return _trim(first.text) or ("Image" if first.image_ids else DEFAULT_TITLE)

    def last_image(self) -> LoadedImage | None:
        """The most recent image in the conversation (pending ones not included)."""
        for turn in reversed(self._turns):
            for image_id in reversed(turn.image_ids):
                if image_id in self._images:
                    return self._images[image_id]
        return None

    def _latest_detect(self) -> int | None:
        for index in range(len(self._turns) - 1, -1, -1):
            if self._turns[index].kind == "detect" and self._turns[index].role == "assistant":
                return index
        return None

    def current_detections(self) -> tuple[Detection, ...]:
        """The detections of the latest detection answer, or ()."""
        index = self._latest_detect()
        return self._turns[index].detections if index is not None else ()

    def current_detection_image(self) -> LoadedImage | None:
        """The image the latest detection answer's boxes belong to, or None."""
        index = self._latest_detect()
        if index is None or index == 0:
            return None
        return self._question_image(self._turns[index - 1])

    def current_detection_labels(self) -> tuple[str, ...]:
        """The labels the latest detection answer was asked for, or ()."""
        index = self._latest_detect()
        if index is None or index == 0:
            return ()
        return split_labels(_detect_labels(self._turns[index - 1].text))

    def missing_images(self) -> tuple[str, ...]:
        """Content hashes the turns refer to that are not in :attr:`images` (a store that
        lost them): such a conversation can be read, not continued."""
        used = dict.fromkeys(i for t in self._turns for i in t.image_ids)
        return tuple(i for i in used if i not in self._images)

    def last_tool_calls(self) -> tuple[ToolCall, ...]:
        """The calls of the last turn when it is an assistant's tool-call answer, else ()."""
        if not self._turns or self._turns[-1].kind != "tool_calls":
            return ()
        return parse_tool_calls(self._turns[-1].text).calls

    # --- the next user turn --------------------------------------------------------------

    def attach(self, image: LoadedImage) -> None:
        """Add ``image`` to the next user turn."""
        self.pending_images.append(image)

    def detach(self, index: int) -> LoadedImage:
        """Remove and return pending image ``index``.

        Raises:
            InputError: there is no pending image at ``index``.
        """
        if not 0 <= index < len(self.pending_images):
            raise InputError(f"no attached image number {index + 1} to remove")
        return self.pending_images.pop(index)

    def add_user_turn(self, text: str) -> Turn:
        """Add a user turn with ``text`` and the pending images (which are then cleared).

        Raises:
            InputError: an answer is in progress, or there is neither text nor an image.
        """
        self._require_idle()
        images = tuple(self.pending_images)
        if not text.strip() and not images:
            raise InputError("type a message or attach an image first")
        return self._add_question(Turn("user", text.strip(), self._keep(images)))

    def add_detect_turn(self, labels: str | Sequence[str]) -> Turn:
        """Add a detection request for ``labels`` on the pending image(s), else the last image.

        Raises:
            InputError: no labels, no image at all, or an answer is in progress.
        """
        self._require_idle()
        prompt = grounding_prompt(labels)
        last = self.last_image()
        images = tuple(self.pending_images) or ((last,) if last is not None else ())
        if not images:
            raise InputError("attach an image first, then ask what to detect in it")
        return self._add_question(Turn("user", prompt, self._keep(images), kind="detect"))

    def add_tool_result(self, text: str) -> Turn:
        """Add a tool turn with a tool's result (plain text or JSON), to be answered next."""
        self._require_idle()
        return self._add_question(Turn("tool", text, kind="tool_result"))

    def _keep(self, images: tuple[LoadedImage, ...]) -> tuple[str, ...]:
        for image in images:
            self._images.setdefault(image.content_hash, image)
        return tuple(image.content_hash for image in images)

    def _add_question(self, turn: Turn) -> Turn:
        self._turns.append(turn)
        if turn.role == "user":
            self.pending_images.clear()
        self._touch()
        return turn

    def _touch(self) -> None:
        self._updated = max(time.time(), self._updated)

    def _require_idle(self) -> None:
        if self._answer is not None:
            raise InputError("an answer is still being written; wait for it or stop it first")
        missing = self.missing_images()
        if missing:
            raise InputError(_missing_text(missing))

    # --- answers -------------------------------------------------------------------------

    def begin_answer(self) -> None:
        """Start collecting the assistant's answer to the last user or tool turn.

        Raises:
            InputError: an answer is already in progress, or there is nothing to answer.
        """
        self._require_idle()
        if not self._turns or self._turns[-1].role not in ("user", "tool"):
            raise InputError("nothing to answer: send a message first")
        self._answer = []

    def apply(self, event: ChatEvent) -> Turn | None:
        """Feed one engine event; returns the finished answer turn on GenerationStats.

        TextDelta extends the answer; GenerationStats finishes it (detections parsed for a
        detection request, tool calls recognised, interrupted when cancelled); a Notice is
        the window's to show. Events when no answer is in progress are ignored.
        """
        if self._answer is None:
            return None
        if isinstance(event, TextDelta):
            self._answer.append(event.text)
        elif isinstance(event, GenerationStats):
            return self._finish(event)
        return None

    def mark_interrupted(self) -> Turn | None:
        """End the answer in progress as interrupted (the engine died); keeps its text."""
        return self._finish(None) if self._answer is not None else None

    def _finish(self, stats: GenerationStats | None) -> Turn:
        turn = self._answer_turn(stats)
        self._answer = None
        self._turns.append(turn)
        self._touch()
        return turn

    def _question_image(self, question: Turn) -> LoadedImage | None:
        ids = [i for i in question.image_ids if i in self._images]
        return self._images[ids[-1]] if ids else None

    def _answer_turn(self, stats: GenerationStats | None) -> Turn:
        text = "".join(self._answer or ())
        interrupted = stats is None or stats.finish_reason == "cancelled"
        answer = Turn("assistant", text, interrupted=interrupted, stats=stats)
        question = self._turns[-1]
        image = self._question_image(question)
        if question.kind == "detect" and image is not None:
            found = parse_detections(text, image.width, image.height)
            return replace(
                answer, kind="detect", detections=found.detections, dropped=found.dropped
            )
        calls = parse_tool_calls(text)
        if calls.calls or calls.errors:
            return replace(answer, kind="tool_calls", dropped=calls.errors)
        return answer

    # --- going back ----------------------------------------------------------------------

    def regenerate(
        self,
        sampling: SamplingSettings | None = None,
        vision: VisionSettings | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
    ) -> ChatRequest:
        """Drop the last answer and return the request that asks for it again.

        Raises:
            InputError: an answer is in progress, or there is no question to answer again.
        """
        self._require_idle()
        if self._turns and self._turns[-1].role == "assistant":
            self._turns.pop()
            self._touch()
        if not self._turns or self._turns[-1].role not in ("user", "tool"):
            raise InputError("nothing to regenerate: send a message first")
        return self.request(sampling, vision, tools)

    def edit_last_user(self, text: str) -> Turn:
        """Replace the last user message's text and drop every turn after it.

        Raises:
            InputError: an answer is in progress, there is no user message, or the new
                text is empty and the message has no image.
        """
        self._require_idle()
        index = next((i for i in range(len(self._turns) - 1, -1, -1) if self._is_user(i)), None)
        if index is None:
            raise InputError("there is no message to edit yet")
        old = self._turns[index]
        if not text.strip() and not old.image_ids:
            raise InputError("type a message or attach an image first")
        still_detect = old.kind == "detect" and text.strip().startswith(_DETECT_PREFIX)
        edited = replace(old, text=text.strip(), kind="detect" if still_detect else "chat")
        self._turns[index:] = [edited]
        self._touch()
        return edited

    def _is_user(self, index: int) -> bool:
        return self._turns[index].role == "user"

    # --- to the engine -------------------------------------------------------------------

    def request(
        self,
        sampling: SamplingSettings | None = None,
        vision: VisionSettings | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
    ) -> ChatRequest:
        """The whole conversation as an engine request (partial answers as they are).

        Raises:
            InputError: the conversation is empty, or one of its images is missing.
        """
        if not self._turns:
            raise InputError("nothing to send: type a message first")
        sampling = sampling or SamplingSettings()
        messages = tuple(Message(t.role, t.text, self._resolve(t.image_ids)) for t in self._turns)
        constraint = self._detect_constraint() if sampling.constrained else None
        return ChatRequest(messages, sampling, vision or VisionSettings(), tuple(tools), constraint)

    def _detect_constraint(self) -> Constraint | None:
        """The Detect grammar when the turn to answer is a detection request."""
        last = self._turns[-1]
        if last.kind != "detect" or last.role != "user":
            return None
        labels = split_labels(_detect_labels(last.text))
        return constraint_for_detection(labels) if labels else None

    def _resolve(self, image_ids: tuple[str, ...]) -> tuple[LoadedImage, ...]:
        missing = [i for i in image_ids if i not in self._images]
        if missing:
            raise InputError(_missing_text(missing))
        return tuple(self._images[i] for i in image_ids)


def _missing_text(missing: Sequence[str]) -> str:
    count = f"{len(missing)} images" if len(missing) > 1 else "an image"
    return (
        f"{count} of this conversation ({missing[0][:12]}…) is missing from the store, so the "
        "chat cannot go on; start a new chat and attach the image again"
    )
