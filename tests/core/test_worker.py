"""The engine process through a real spawned process: scripted engine, and once the real one."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lfmdesk.core import (
    Cancel,
    CancelDownload,
    ChatEventMsg,
    ChatFailed,
    ChatFinished,
    ChatRequest,
    DownloadProgress,
    EngineEvent,
    EngineProcess,
    EngineStarted,
    GenerationStats,
    LoadModel,
    ModelFailed,
    ModelLoaded,
    ModelPhase,
    PromptText,
    RenderPrompt,
    SamplingSettings,
    StartChat,
    TextDelta,
    load_image,
)
from lfmdesk.core.testing._scripted import DEFAULT_ANSWER

_ids = itertools.count(1)
Done = Callable[[list[EngineEvent]], bool]


def collect(proc: EngineProcess, done: Done, timeout: float = 30.0) -> list[EngineEvent]:
    """Events until ``done(events)`` holds; fails (never hangs) on timeout or a dead process."""
    events: list[EngineEvent] = []
    deadline = time.monotonic() + timeout
    while not done(events):
        assert time.monotonic() < deadline, f"timed out; got {events}"
        assert proc.is_alive(), f"engine process died; got {events}"
        events += proc.wait_events(0.2)
    return events


def finished(rid: int) -> Done:
    return lambda events: any(
        isinstance(e, (ChatFinished, ChatFailed, PromptText)) and e.request_id == rid
        for e in events
    )


def model_done(spec: str) -> Done:
    return lambda events: any(
        isinstance(e, (ModelLoaded, ModelFailed)) and e.spec == spec for e in events
    )


def chat_events(events: list[EngineEvent], rid: int) -> list[object]:
    return [e.event for e in events if isinstance(e, ChatEventMsg) and e.request_id == rid]


def answer_text(events: list[EngineEvent], rid: int) -> str:
    return "".join(e.text for e in chat_events(events, rid) if isinstance(e, TextDelta))


def stats_of(events: list[EngineEvent], rid: int) -> GenerationStats:
    (stats,) = [e for e in chat_events(events, rid) if isinstance(e, GenerationStats)]
    return stats


@pytest.fixture(scope="module")
def scripted() -> Iterator[EngineProcess]:
    proc = EngineProcess("scripted", {"token_delay": 0.05, "load_delay": 0.0, "download_steps": 20})
    proc.start()
    proc.send(LoadModel("8bit"))
    collect(proc, model_done("8bit"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("worker-hf")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        proc = EngineProcess("real")
        proc.start()  # the child copies the environment now
    yield proc
    proc.stop()


def test_the_process_announces_itself_and_stops_cleanly() -> None:
    proc = EngineProcess("scripted", {"load_delay": 0.0})
    proc.start()
    (started,) = collect(proc, lambda ev: bool(ev), timeout=15)
    assert started == EngineStarted(proc.pid or -1)
    proc.stop()
    assert not proc.is_alive()
    assert proc.exitcode == 0


def test_load_reports_phases_progress_then_loaded(scripted: EngineProcess) -> None:
    scripted.send(LoadModel("LiquidAI/Some-Model"))
    events = collect(scripted, model_done("LiquidAI/Some-Model"))
    phases = [e.phase for e in events if isinstance(e, ModelPhase)]
    assert phases == ["resolving", "downloading", "loading"]
    progress = [e for e in events if isinstance(e, DownloadProgress)]
    assert len(progress) == 20
    assert progress[-1].done_bytes == progress[-1].total_bytes
    assert isinstance(events[-1], ModelLoaded)
    assert events[-1].info.name == "Some-Model"


def test_cancel_download_fails_the_load_as_cancelled(scripted: EngineProcess) -> None:
    scripted.send(LoadModel("org/slow"))
    collect(scripted, lambda ev: any(isinstance(e, DownloadProgress) for e in ev))
    scripted.send(CancelDownload())
    events = collect(scripted, model_done("org/slow"), timeout=5)
    assert isinstance(events[-1], ModelFailed)
    assert events[-1].cancelled
    assert "\n" not in events[-1].message


def test_a_newer_load_replaces_a_download_in_progress(scripted: EngineProcess) -> None:
    scripted.send(LoadModel("org/first"))
    collect(scripted, lambda ev: any(isinstance(e, DownloadProgress) for e in ev))
    scripted.send(LoadModel("org/second"))
    events = collect(scripted, model_done("org/second"))
    first = [e for e in events if isinstance(e, ModelFailed) and e.spec == "org/first"]
    assert len(first) == 1 and first[0].cancelled
    assert isinstance(events[-1], ModelLoaded) and events[-1].spec == "org/second"


def test_chat_streams_text_then_stats_then_finished(scripted: EngineProcess) -> None:
    rid = next(_ids)
    scripted.send(StartChat(rid, ChatRequest.single("Say something")))
    events = collect(scripted, finished(rid))
    mine = [e for e in events if getattr(e, "request_id", None) == rid]
    assert isinstance(mine[-1], ChatFinished)
    assert isinstance(mine[-2], ChatEventMsg) and isinstance(mine[-2].event, GenerationStats)
    assert answer_text(events, rid) == DEFAULT_ANSWER
    assert len([e for e in chat_events(events, rid) if isinstance(e, TextDelta)]) > 3
    assert stats_of(events, rid).finish_reason == "stop"


def test_cancel_stops_a_running_answer_within_a_token(scripted: EngineProcess) -> None:
    rid = next(_ids)
    scripted.send(StartChat(rid, ChatRequest.single("Talk")))
    collect(scripted, lambda ev: bool(chat_events(ev, rid)))
    sent = time.monotonic()
    scripted.send(Cancel(rid))
    events = collect(scripted, finished(rid), timeout=5)
    assert time.monotonic() - sent < 1.0
    stats = stats_of(events, rid)
    assert stats.finish_reason == "cancelled"
    assert stats.decode_tokens < len(DEFAULT_ANSWER) // 3


def test_cancel_drops_a_queued_request_at_once(scripted: EngineProcess) -> None:
    first, second, third = next(_ids), next(_ids), next(_ids)
    scripted.send(StartChat(first, ChatRequest.single("one")))
    scripted.send(StartChat(second, ChatRequest.single("two")))
    scripted.send(Cancel(second))
    scripted.send(RenderPrompt(third, ChatRequest.single("three")))  # runs after the others
    events = collect(scripted, finished(third))
    ends = [e.request_id for e in events if isinstance(e, ChatFinished)]
    assert ends == [second, first]  # the dropped one ends at once, and only once
    assert stats_of(events, second).finish_reason == "cancelled"
    assert stats_of(events, second).decode_tokens == 0
    assert answer_text(events, second) == ""
    assert answer_text(events, first) == DEFAULT_ANSWER


def test_render_prompt_answers_with_the_prompt_text(scripted: EngineProcess) -> None:
    rid = next(_ids)
    scripted.send(RenderPrompt(rid, ChatRequest.single("Where is the cat?")))
    (text,) = [e for e in collect(scripted, finished(rid)) if isinstance(e, PromptText)]
    assert text.request_id == rid
    assert "Where is the cat?" in text.text


def test_kill_mid_answer_is_noticed_without_hanging() -> None:
    proc = EngineProcess("scripted", {"token_delay": 0.2, "load_delay": 0.0})
    proc.start()
    proc.send(LoadModel("x"))
    proc.send(StartChat(1, ChatRequest.single("Talk")))
    collect(proc, lambda ev: bool(chat_events(ev, 1)))
    proc.kill()
    started = time.monotonic()
    while proc.is_alive():
        proc.poll_events()
        assert time.monotonic() - started < 5
    assert isinstance(proc.poll_events(), list)  # at EOF: returns, never blocks
    assert proc.exitcode == -9
    proc.send(StartChat(2, ChatRequest.single("anyone?")))  # dropped, no error
    proc.stop()


def test_bad_requests_fail_in_one_line_and_the_process_carries_on(real: EngineProcess) -> None:
    real.send(LoadModel("/no/such/model/folder"))
    events = collect(real, model_done("/no/such/model/folder"), timeout=30)
    failed = events[-1]
    assert isinstance(failed, ModelFailed) and not failed.cancelled
    assert "does not exist" in failed.message and "\n" not in failed.message
    rid = next(_ids)
    real.send(StartChat(rid, ChatRequest.single("hello")))
    (error,) = [e for e in collect(real, finished(rid)) if isinstance(e, ChatFailed)]
    assert "no model is loaded" in error.message
    assert real.is_alive()


def test_real_engine_loads_and_answers_with_an_image(
    real: EngineProcess, fixture_models: dict[str, Path]
) -> None:
    spec = str(fixture_models["8bit"])
    real.send(LoadModel(spec))
    events = collect(real, model_done(spec), timeout=60)
    assert isinstance(events[-1], ModelLoaded), events[-1]
    assert events[-1].info.bits == 8
    pixels = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype("uint8")
    image = load_image(Image.fromarray(pixels))
    sampling = SamplingSettings(temperature=0.0, max_tokens=4)
    rid = next(_ids)
    real.send(StartChat(rid, ChatRequest.single("What is this?", [image], sampling=sampling)))
    events = collect(real, finished(rid), timeout=60)
    assert isinstance(events[-1], ChatFinished), events[-1]
    stats = stats_of(events, rid)
    assert stats.images == 1 and stats.image_tokens > 0
    assert 1 <= stats.decode_tokens <= 4
