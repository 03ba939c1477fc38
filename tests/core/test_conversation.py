"""ChatThread flows driven by the scripted engine, and conversations saved to disk."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lfmdesk.core import (
    ChatThread,
    Conversation,
    ConversationStore,
    GenerationStats,
    InputError,
    LoadedImage,
    TextDelta,
    Turn,
    grounding_prompt,
    load_image,
)
from lfmdesk.core.testing import ScriptedEngine, noise_image
from lfmdesk.core.testing._scripted import DEFAULT_ANSWER, scripted_boxes

TOOL_ANSWER = '<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>'


def make_image(w: int = 64, h: int = 48, seed: int = 0) -> LoadedImage:
    return load_image(noise_image(w, h, seed))


def stats(finish: str = "stop") -> GenerationStats:
    return GenerationStats(10, 0, 0, 0, 0, 0.0, 0.1, 3, 30.0, 1, finish, (1, 2, 3))


@pytest.fixture
def engine() -> ScriptedEngine:
    e = ScriptedEngine(token_delay=0.0, load_delay=0.0)
    e.load("scripted")
    return e


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(tmp_path / "conversations")


def answer(thread: ChatThread, engine: ScriptedEngine) -> Turn:
    request = thread.request()
    thread.begin_answer()
    finished = None
    for event in engine.stream_chat(request):
        finished = thread.apply(event) or finished
    assert finished is not None and not thread.busy
    return finished


def canned(thread: ChatThread, text: str, finish: str = "stop") -> Turn:
    thread.begin_answer()
    thread.apply(TextDelta(text))
    turn = thread.apply(stats(finish))
    assert turn is not None
    return turn


def test_send_streams_into_one_answer_with_stats(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    image = make_image()
    thread.attach(image)
    user = thread.add_user_turn("  What is this?  ")
    assert user.text == "What is this?" and user.image_ids == (image.content_hash,)
    assert thread.pending_images == []
    assert thread.request().messages[0].images == (image,)
    thread.begin_answer()
    assert thread.busy
    thread.apply(TextDelta("A "))
    thread.apply(TextDelta("cat."))
    assert thread.partial_answer == "A cat."
    assert thread.conversation.turns[-1].interrupted  # a save mid-answer keeps the text
    turn = thread.apply(stats())
    assert turn == Turn("assistant", "A cat.", stats=stats())
    assert thread.turns[-1] == turn and not thread.busy
    assert thread.title == "What is this?"


def test_empty_message_is_refused_unless_an_image_is_attached(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    with pytest.raises(InputError, match="type a message"):
        thread.add_user_turn("   ")
    thread.attach(make_image())
    assert thread.add_user_turn("").image_ids
    assert thread.title == "Image"


def test_pending_images_attach_and_detach(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    a, b = make_image(seed=1), make_image(seed=2)
    thread.attach(a)
    thread.attach(b)
    assert thread.detach(0) is a
    assert thread.pending_images == [b]
    with pytest.raises(InputError, match="no attached image number 3"):
        thread.detach(2)
    assert thread.add_user_turn("hi").image_ids == (b.content_hash,)


def test_a_new_turn_waits_for_the_answer_in_progress(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    thread.add_user_turn("hello")
    thread.begin_answer()
    with pytest.raises(InputError, match="still being written"):
        thread.add_user_turn("again")


def test_detect_parses_boxes_and_reuses_the_last_image(
    store: ConversationStore, engine: ScriptedEngine
) -> None:
    thread = ChatThread(store.new(), {})
    with pytest.raises(InputError, match="attach an image first"):
        thread.add_detect_turn(["cat"])
    image = make_image(640, 480)
    thread.attach(image)
    question = thread.add_detect_turn(["cat", "dog"])
    assert question.kind == "detect" and question.text == grounding_prompt("cat, dog")
    result = answer(thread, engine)
    assert result.kind == "detect"
    assert [d.label for d in result.detections] == ["cat", "dog"]
    x1, y1, x2, y2 = scripted_boxes(2)[1]
    assert result.detections[1].box_px == (
        round(x1 * 640),
        round(y1 * 480),
        round(x2 * 640),
        round(y2 * 480),
    )
    assert thread.title == "Detect: cat, dog"
    again = thread.add_detect_turn("bird")  # no pending image: the last one again
    assert again.image_ids == (image.content_hash,)
    answer(thread, engine)
    assert [d.label for d in thread.current_detections()] == ["bird"]
    assert thread.current_detection_image() is image


def test_detect_reads_pixel_boxes_against_the_image_size(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    thread.attach(make_image(400, 300))
    thread.add_detect_turn("cup")
    turn = canned(thread, 'Sure: [{"label": "cup", "bbox": [100, 50, 300, 250]}, {"label": 3}]')
    assert [d.box_px for d in turn.detections] == [(100, 50, 300, 250)]
    assert turn.dropped  # the item without a box is reported


def test_stop_and_engine_death_keep_the_partial_answer(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    thread.add_user_turn("tell me a story")
    stopped = canned(thread, "Once upon", finish="cancelled")
    assert stopped.interrupted and stopped.stats is not None
    thread.add_user_turn("go on")
    thread.begin_answer()
    thread.apply(TextDelta("There was"))
    died = thread.mark_interrupted()
    assert died is not None and died.interrupted and died.text == "There was"
    assert thread.mark_interrupted() is None  # nothing in progress any more
    roles = [(m.role, m.text) for m in thread.request().messages]
    assert roles == [
        ("user", "tell me a story"),
        ("assistant", "Once upon"),
        ("user", "go on"),
        ("assistant", "There was"),
    ]


def test_regenerate_drops_the_last_answer(store: ConversationStore, engine: ScriptedEngine) -> None:
    thread = ChatThread(store.new(), {})
    with pytest.raises(InputError, match="nothing to regenerate"):
        thread.regenerate()
    thread.add_user_turn("hi")
    answer(thread, engine)
    request = thread.regenerate()
    assert [t.role for t in thread.turns] == ["user"]
    assert [m.role for m in request.messages] == ["user"]
    assert answer(thread, engine).text == DEFAULT_ANSWER


def test_edit_last_user_replaces_it_and_drops_what_followed(
    store: ConversationStore, engine: ScriptedEngine
) -> None:
    thread = ChatThread(store.new(), {})
    image = make_image()
    thread.add_user_turn("first")
    answer(thread, engine)
    thread.attach(image)
    thread.add_user_turn("second")
    answer(thread, engine)
    edited = thread.edit_last_user("second, better")
    assert [t.text for t in thread.turns] == ["first", DEFAULT_ANSWER, "second, better"]
    assert edited.image_ids == (image.content_hash,)


def test_tool_calls_are_recognised_and_results_answered(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    thread.add_user_turn("Weather in Paris?")
    turn = canned(thread, TOOL_ANSWER)
    assert turn.kind == "tool_calls"
    (call,) = thread.last_tool_calls()
    assert call.name == "get_weather" and dict(call.arguments) == {"city": "Paris"}
    result = thread.add_tool_result('{"temp_c": 21}')
    assert result.role == "tool" and result.kind == "tool_result"
    assert thread.last_tool_calls() == ()
    assert thread.request().messages[-1].role == "tool"
    assert canned(thread, "It is 21 °C.").kind == "chat"


def test_a_missing_image_is_a_clear_error(store: ConversationStore) -> None:
    conv = Conversation("c1", "t", 0.0, 0.0, (Turn("user", "look", ("ab" * 32,)),))
    with pytest.raises(InputError, match="missing from the store"):
        ChatThread(conv, {}).request()


def exif_rotated_jpeg() -> bytes:
    img = Image.fromarray((np.arange(40 * 30 * 3) % 251).astype("uint8").reshape(30, 40, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = io.BytesIO()
    img.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_store_round_trip_keeps_turns_and_image_pixels(
    store: ConversationStore, engine: ScriptedEngine
) -> None:
    photo = load_image(exif_rotated_jpeg())
    assert (photo.width, photo.height) == (30, 40)
    thread = ChatThread(store.new(), {})
    thread.attach(photo)
    thread.add_detect_turn("cat")
    answer(thread, engine)
    for image in thread.images.values():
        store.save_image(image)
    store.save(thread.conversation)

    again = ConversationStore(store.root)
    (summary,) = again.list()
    assert (summary.title, summary.turns) == ("Detect: cat", 2)
    loaded = again.load(summary.id)
    assert loaded == thread.conversation
    images = again.load_images(loaded)
    restored = images[photo.content_hash]
    assert restored.content_hash == photo.content_hash
    assert np.array_equal(np.asarray(restored.image), np.asarray(photo.image))
    assert ChatThread(loaded, images).current_detections() == thread.current_detections()


def test_saves_are_atomic_and_leave_no_temp_files(store: ConversationStore) -> None:
    conv = store.new()
    store.save(conv)
    store.save_image(make_image())
    store.save(conv)
    names = sorted(p.name for p in store.root.rglob("*") if p.is_file())
    assert len(names) == 2 and f"{conv.id}.json" in names
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]


def test_list_is_newest_first_and_skips_damaged_files(store: ConversationStore) -> None:
    old = Conversation("old", "Old chat", 1.0, 10.0, (Turn("user", "a"),))
    new = Conversation("new", "New chat", 2.0, 20.0, ())
    store.save(old)
    store.save(new)
    (store.root / "broken.json").write_text("{not json", encoding="utf-8")
    (store.root / "wrong.json").write_text('{"id": "wrong", "turns": [{"role": 1}]}')
    assert [s.id for s in store.list()] == ["new", "old"]
    assert len(store.problems) == 2
    assert any("broken.json" in p for p in store.problems)
    assert all("\n" not in p for p in store.problems)
    store.delete("old")
    assert [s.id for s in store.list()] == ["new"]
    with pytest.raises(InputError, match="does not exist"):
        store.load("old")


def test_prune_keeps_images_that_saved_conversations_use(store: ConversationStore) -> None:
    used, orphan = make_image(seed=1), make_image(seed=2)
    store.save_image(used)
    store.save_image(orphan)
    store.save(Conversation("c", "t", 0.0, 0.0, (Turn("user", "x", (used.content_hash,)),)))
    assert store.prune_images() == 1
    assert store.load_image(used.content_hash).content_hash == used.content_hash
    with pytest.raises(InputError, match="missing"):
        store.load_image(orphan.content_hash)


def test_from_json_ignores_unknown_keys_and_rejects_bad_data() -> None:
    conv = Conversation(
        "abc", "Title", 1.0, 2.0, (Turn("user", "hi"), Turn("assistant", "yo", stats=stats()))
    )
    data = json.loads(json.dumps(conv.to_json()))
    data["from_the_future"] = {"x": 1}
    data["turns"][0]["mood"] = "happy"
    assert Conversation.from_json(data) == conv
    data["turns"][1]["role"] = "robot"
    with pytest.raises(InputError, match="turn 2: role must be one of") as err:
        Conversation.from_json(data)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="must be a JSON object"):
        Conversation.from_json([1, 2])
    with pytest.raises(InputError, match="not a valid conversation id"):
        Conversation.from_json({"id": "../../etc/passwd"})


def test_title_is_the_first_message_trimmed_at_a_word(store: ConversationStore) -> None:
    thread = ChatThread(store.new(), {})
    assert thread.title == "New chat"
    thread.add_user_turn("Please describe\nevery object you can see in this kitchen photo")
    assert thread.title == "Please describe every object you can…"
    assert len(thread.title) <= 40


def test_save_stores_every_image_the_turns_use(store: ConversationStore) -> None:
    # An image attached without going through the store (a Project-panel image, a capture)
    # must still come back with its conversation after a restart.
    photo = make_image(seed=7)
    thread = ChatThread(store.new(), {})
    thread.attach(photo)
    thread.add_user_turn("What is this?")
    store.save(thread.conversation, thread.images)

    again = ConversationStore(store.root)
    loaded = again.load(thread.conversation.id)
    images = again.load_images(loaded)
    assert list(images) == [photo.content_hash]
    reopened = ChatThread(loaded, images)
    assert reopened.missing_images() == ()
    reopened.add_user_turn("And now?")  # the chat goes on
    assert reopened.request().images[0].content_hash == photo.content_hash


def test_a_conversation_missing_an_image_refuses_new_questions_with_one_line(
    store: ConversationStore,
) -> None:
    conv = Conversation("c1", "t", 0.0, 0.0, (Turn("user", "look", ("ab" * 32,)),))
    thread = ChatThread(conv, {})
    assert thread.missing_images() == ("ab" * 32,)
    for ask in (
        lambda: thread.add_user_turn("and now?"),
        lambda: thread.add_detect_turn("cat"),
        lambda: thread.add_tool_result("{}"),
        thread.regenerate,
    ):
        with pytest.raises(InputError, match=r"missing from the store.*start a new chat") as err:
            ask()
        assert "\n" not in str(err.value)
    assert thread.turns == conv.turns  # nothing was added that could never be answered
