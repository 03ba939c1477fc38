"""The window's engine process serving the API, and answering from a remote server.

A real spawned engine process (scripted engine): the API answers from the same engine as the
window's chats, neither blocks the other, serving stops on request and with the process; a
LoadModel with a server URL makes every chat go to that server.
"""

from __future__ import annotations

import threading

import openai
import pytest
from test_worker import Done, collect

from lfmdesk.core import (
    ChatEventMsg,
    ChatFinished,
    ChatRequest,
    EngineProcess,
    LoadModel,
    ModelFailed,
    ModelLoaded,
    ServingState,
    StartChat,
    StartServing,
    StopServing,
    TextDelta,
)
from lfmdesk.core.testing import Fault, FaultyServer


def has(kind: type) -> Done:
    return lambda events: any(isinstance(e, kind) for e in events)


@pytest.fixture
def engine():
    proc = EngineProcess("scripted", {"answers": ["Window answer."], "token_delay": 0.05})
    proc.start()
    proc.send(LoadModel("scripted-model"))
    collect(proc, has(ModelLoaded))
    yield proc
    proc.stop()


def test_the_api_is_served_from_the_engine_process_beside_window_chats(engine) -> None:
    engine.send(StartServing(port=0))
    (state,) = [e for e in collect(engine, has(ServingState)) if isinstance(e, ServingState)]
    assert state.url and state.url.startswith("http://127.0.0.1:")
    client = openai.OpenAI(base_url=state.url, api_key="unused", max_retries=0, timeout=30)
    model = client.models.list().data[0].id
    replies: list[str] = []

    def api() -> None:
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        replies.append(reply.choices[0].message.content)

    thread = threading.Thread(target=api)
    thread.start()
    engine.send(StartChat(1, ChatRequest.single("hello")))
    events = collect(engine, lambda ev: any(isinstance(e, ChatFinished) for e in ev))
    thread.join(30)
    window = "".join(
        e.event.text
        for e in events
        if isinstance(e, ChatEventMsg) and isinstance(e.event, TextDelta)
    )
    assert window == "Window answer."
    assert replies == ["Window answer."]
    engine.send(StopServing())
    (stopped,) = [e for e in collect(engine, has(ServingState)) if isinstance(e, ServingState)]
    assert stopped.url is None
    with pytest.raises(openai.APIConnectionError):
        client.models.list()


def test_a_busy_port_is_a_visible_one_line_failure(engine) -> None:
    with FaultyServer() as other:
        port = int(other.url.rsplit(":", 1)[1].split("/")[0])
        engine.send(StartServing(port=port))
        (state,) = [e for e in collect(engine, has(ServingState)) if isinstance(e, ServingState)]
    assert state.url is None
    assert f"cannot serve on 127.0.0.1:{port}" in state.message and "\n" not in state.message


def test_serving_beyond_this_machine_needs_a_key(engine) -> None:
    engine.send(StartServing(host="0.0.0.0", port=0))
    (state,) = [e for e in collect(engine, has(ServingState)) if isinstance(e, ServingState)]
    assert state.url is None and "API key" in state.message


def test_a_server_url_as_the_model_sends_chats_to_that_server(engine) -> None:
    with FaultyServer([Fault(text="From the GPU box.")]) as server:
        engine.send(LoadModel(server.url, api_key="sk-remote"))
        loaded = [e for e in collect(engine, has(ModelLoaded)) if isinstance(e, ModelLoaded)]
        engine.send(StartChat(2, ChatRequest.single("hello")))
        events = collect(engine, has(ChatFinished))
    assert loaded[0].info.name == "faulty-model" and loaded[0].info.device == "remote"
    text = "".join(
        e.event.text
        for e in events
        if isinstance(e, ChatEventMsg) and isinstance(e.event, TextDelta)
    )
    assert text == "From the GPU box."
    assert "sk-remote" not in repr(LoadModel(server.url, api_key="sk-remote"))


def test_an_unreachable_server_keeps_the_loaded_model(engine) -> None:
    engine.send(LoadModel("http://127.0.0.1:9/v1"))
    failed = [e for e in collect(engine, has(ModelFailed)) if isinstance(e, ModelFailed)]
    assert "cannot reach http://127.0.0.1:9/v1" in failed[0].message
    engine.send(StartChat(3, ChatRequest.single("still there?")))
    events = collect(engine, has(ChatFinished))
    assert any(isinstance(e, ChatEventMsg) and isinstance(e.event, TextDelta) for e in events)
