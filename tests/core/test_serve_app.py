"""The server's behaviour that needs control over the engine: tool calls, stop strings, a
crashing engine (503, then restart), a full queue (429 + Retry-After), a disconnect that stops
the real engine within one token, and http(s) image fetching with its size cap and timeout.

The app runs on a real uvicorn over 127.0.0.1 and is driven by the openai client.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import numpy as np
import openai
import pytest
from PIL import Image

from lfmdesk.core import ChatRequest, Engine, TextDelta
from lfmdesk.core.serve._app import ServeOptions, create_app
from lfmdesk.core.serve._host import EngineThread
from lfmdesk.core.serve._images import ImagePolicy
from lfmdesk.core.serve._server import ServerThread, check_exposure, is_loopback
from lfmdesk.core.testing import ScriptedEngine

CALL = '<|tool_call_start|>[get_weather(city="Paris", days=2)]<|tool_call_end|>'
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


class Served:
    def __init__(self, make, options: ServeOptions | None = None, max_queue: int = 16) -> None:
        self.host = EngineThread(make, max_queue=max_queue)
        self.host.start()
        self.server = ServerThread(create_app(self.host, options), "127.0.0.1", 0)
        self.url = self.server.start()
        self.client = openai.OpenAI(base_url=self.url, api_key="k", max_retries=0, timeout=60)
        self.model = self.host.model_info().name

    def close(self) -> None:
        self.server.stop()
        self.host.stop()

    def ask(self, **kw):
        kw.setdefault("messages", [{"role": "user", "content": "hi"}])
        return self.client.chat.completions.create(model=self.model, **kw)


def scripted(*answers: str, delay: float = 0.0):
    def make() -> ScriptedEngine:
        engine = ScriptedEngine(answers=list(answers), token_delay=delay)
        engine.load("scripted")
        return engine

    return make


@pytest.fixture
def served(request):
    instances: list[Served] = []

    def start(make, options=None, max_queue=16) -> Served:
        instances.append(Served(make, options, max_queue))
        return instances[-1]

    yield start
    for instance in instances:
        instance.close()


def test_tool_calls_become_openai_tool_calls(served) -> None:
    s = served(scripted("Let me check. " + CALL))
    reply = s.ask(tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Paris", "days": 2}'


def test_streamed_tool_calls_never_show_the_call_text(served) -> None:
    s = served(scripted("Let me check. " + CALL))
    chunks = list(s.ask(tools=TOOLS, stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content.strip() == "Let me check." and "tool_call" not in content
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [(c.index, c.function.name) for c in calls] == [(0, "get_weather")]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_tool_result_conversation_is_accepted(served) -> None:
    s = served(scripted("It is sunny."))
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'},
    ]
    assert s.ask(messages=messages, tools=TOOLS).choices[0].message.content == "It is sunny."


@pytest.mark.parametrize("stream", [False, True])
def test_stop_strings_end_the_answer_before_them(served, stream) -> None:
    s = served(scripted("Hello there. STOP and more text after it."))
    reply = s.ask(stop=["STOP", "zzz"], stream=stream)
    if stream:
        chunks = list(reply)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        reason = chunks[-1].choices[0].finish_reason
    else:
        text, reason = reply.choices[0].message.content, reply.choices[0].finish_reason
    assert text == "Hello there. "
    assert reason == "stop"


def test_an_engine_failure_is_503_and_the_engine_restarts(served) -> None:
    made: list[ScriptedEngine] = []

    def make() -> ScriptedEngine:
        first = not made
        engine = ScriptedEngine(answers=["!fail: MLX aborted" if first else "Back."], token_delay=0)
        engine.load("scripted")
        made.append(engine)
        return engine

    s = served(make)
    with pytest.raises(openai.InternalServerError) as caught:
        s.ask()
    assert caught.value.status_code == 503
    assert "MLX aborted" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "5"
    assert s.ask().choices[0].message.content == "Back."
    assert s.host.restarts == 1 and len(made) == 2


def test_a_full_queue_answers_429_with_retry_after(served) -> None:
    s = served(scripted("slow " * 40, delay=0.05), max_queue=1)
    results: list[object] = []

    def call() -> None:
        try:
            results.append(s.ask(max_tokens=40))
        except openai.RateLimitError as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(60)
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 2  # one running, one waiting, two refused
    for exc in refused:
        assert exc.status_code == 429 and int(exc.response.headers["retry-after"]) >= 1
    assert sum(not isinstance(r, Exception) for r in results) == 2


def test_a_disconnect_stops_the_real_engine_within_one_token(served, fixture_models) -> None:
    seen: dict[str, object] = {}

    class Watched:
        """The real engine, with a note of every token it makes after the cancel flag is set."""

        def __init__(self) -> None:
            self.engine = Engine(compute="native")
            self.engine.load(fixture_models["8bit"])

        @property
        def info(self):
            return self.engine.info

        def stream_chat(self, request: ChatRequest, *, cancel=None) -> Iterator:
            seen["after_cancel"] = 0

            def note_cancel() -> None:
                if cancel.wait(60):
                    seen["cancelled_at"] = time.monotonic()

            threading.Thread(target=note_cancel, daemon=True).start()
            for event in self.engine.stream_chat(request, cancel=cancel):
                if cancel.is_set():
                    seen["after_cancel"] = int(seen["after_cancel"]) + isinstance(event, TextDelta)
                seen["last"] = event
                yield event

    s = served(Watched)
    # Tools with an image: the engine's first event is a Notice, so the stream starts at once
    # (random weights write bytes that only decode to text in large pieces).
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "hi"}]
    stream = s.ask(
        messages=[{"role": "user", "content": content}],
        tools=TOOLS,
        max_tokens=4000,
        stream=True,
        temperature=0,
    )
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    closed = time.monotonic()
    stream.close()
    deadline = time.monotonic() + 10
    while getattr(seen.get("last"), "finish_reason", None) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = seen["last"]
    assert stats.finish_reason == "cancelled"
    assert stats.decode_tokens < 4000
    assert seen["after_cancel"] <= 1  # within one token of the cancel
    assert float(seen["cancelled_at"]) - closed < 1.0  # the server set it as the client left


class _Images(BaseHTTPRequestHandler):
    png = b""

    def do_GET(self) -> None:
        if self.path == "/slow.png":
            time.sleep(3)
        body = self.png * (50 if self.path == "/big.png" else 1)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def image_site():
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).save(buffer, "PNG")
    _Images.png = buffer.getvalue()
    site = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{site.server_address[1]}"
    site.shutdown()


def test_http_image_urls_only_when_allowed_with_a_size_cap_and_timeout(served, image_site) -> None:
    policy = ImagePolicy(allow_http=True, max_bytes=len(_Images.png) * 10, timeout=1.0)
    s = served(scripted("A picture."), ServeOptions(images=policy))

    def ask_with(url: str):
        content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}]
        return s.ask(messages=[{"role": "user", "content": content}])

    assert ask_with(image_site + "/ok.png").choices[0].message.content == "A picture."
    for path, says in (("/big.png", "larger than"), ("/slow.png", "timed out")):
        with pytest.raises(openai.BadRequestError) as caught:
            ask_with(image_site + path)
        assert caught.value.code == "invalid_image" and says in caught.value.message


def test_data_urls_are_decoded_and_a_huge_body_is_413(served) -> None:
    s = served(scripted("ok"), ServeOptions(max_body_bytes=1 << 20))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "?"}]
    assert s.ask(messages=[{"role": "user", "content": content}]).choices[0].message.content == "ok"
    big = {"model": s.model, "messages": [{"role": "user", "content": "x" * (2 << 20)}]}
    response = httpx2.post(s.url + "/chat/completions", json=big, timeout=30)
    assert response.status_code == 413 and "larger than" in response.json()["error"]["message"]


def test_loopback_needs_no_key_and_anything_else_does() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    check_exposure("127.0.0.1", None, False)
    check_exposure("0.0.0.0", "key", False)
    check_exposure("0.0.0.0", None, True)
    from lfmdesk.core import InputError

    with pytest.raises(InputError, match="--insecure-no-auth"):
        check_exposure("0.0.0.0", None, False)


def test_the_api_key_is_not_in_the_options_repr() -> None:
    assert "s3cret" not in repr(ServeOptions(api_key="s3cret"))


def test_a_server_bug_is_a_500_error_object_not_a_traceback() -> None:
    class Broken:
        def model_info(self):
            return ScriptedEngine().load("scripted")

        def submit(self, request, cancel, deliver):
            raise RuntimeError("scheduler exploded")

    server = ServerThread(create_app(Broken()), "127.0.0.1", 0)
    url = server.start()
    try:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        response = httpx2.post(url + "/chat/completions", json=body, timeout=30)
    finally:
        server.stop()
    assert response.status_code == 500
    assert response.json()["error"] == {
        "message": "internal error: RuntimeError",
        "type": "server_error",
        "param": None,
        "code": None,
    }
