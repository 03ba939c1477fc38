"""``lfmdesk serve`` as users run it (a subprocess on 127.0.0.1), driven by the openai client.

Every response and chunk is parsed by the reference client; the remote backend is checked
against the same real server: byte-identical greedy answers, EXIF-rotated pictures included.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import openai
import pytest
from PIL import Image

from lfmdesk.core import (
    ChatRequest,
    Engine,
    SamplingSettings,
    TextDelta,
    VisionSettings,
    grounding_prompt,
    load_image,
    plan_tiles,
)
from lfmdesk.core.remote import RemoteEngine
from lfmdesk.core.testing import ServeProcess, noise_image

GREEDY = {"temperature": 0, "max_tokens": 12}
GREEDY_BODY = {"repetition_penalty": 1.0}


def data_url(image: Image.Image, fmt: str = "PNG", **save) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    mime = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def noise(w: int, h: int, seed: int = 1) -> Image.Image:
    return noise_image(w, h, seed)


def image_message(text: str, *images: Image.Image) -> list[dict]:
    parts = [{"type": "image_url", "image_url": {"url": data_url(i)}} for i in images]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


@pytest.fixture(scope="module")
def server(fixture_models):
    with ServeProcess(fixture_models["8bit"], "--compute", "native") as proc:
        yield proc


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def model_id(client) -> str:
    return client.models.list().data[0].id


def ask(client, model_id, messages, **kw):
    extra = {**GREEDY_BODY, **kw.pop("extra_body", {})}
    return client.chat.completions.create(
        model=model_id, messages=messages, extra_body=extra, **{**GREEDY, **kw}
    )


def test_models_and_health(server, client, model_id) -> None:
    assert model_id == "lfm2.5-vl-tiny-mlx-8bit"
    health = httpx2.get(server.url.removesuffix("/v1") + "/health").json()
    assert health == {"status": "ok", "model": model_id}


def _prompt_tokens(client, model_id, size, vision) -> int:
    reply = ask(
        client,
        model_id,
        image_message("Describe.", noise(*size)),
        max_tokens=1,
        extra_body={"mm_processor_kwargs": vision},
    )
    return reply.usage.prompt_tokens


def test_usage_prompt_tokens_equal_what_lfmdesk_tiles_predicts(client, model_id) -> None:
    for size, vision in (
        ((400, 300), {}),
        ((1400, 900), {}),  # split into tiles + thumbnail
        ((1400, 900), {"do_image_splitting": False, "min_tiles": 1, "max_tiles": 1}),
        ((640, 480), {"max_image_tokens": 64}),
    ):
        settings = VisionSettings(
            **{k: v for k, v in vision.items() if k not in ("min_tiles", "max_tiles")}
        )
        plan, small = plan_tiles(*size, settings), plan_tiles(64, 64, settings)
        # The same prompt with a 64x64 picture: everything but the image tokens cancels out.
        got = _prompt_tokens(client, model_id, size, vision)
        reference = _prompt_tokens(client, model_id, (64, 64), vision)
        want = plan.image_tokens + plan.marker_tokens - small.image_tokens - small.marker_tokens
        assert got - reference == want, (size, vision)


def test_usage_prompt_tokens_are_the_engines_own_count(client, model_id, fixture_models) -> None:
    image = noise(700, 500, 3)
    reply = ask(client, model_id, image_message("Describe.", image), max_tokens=1)
    request = ChatRequest.single("Describe.", [load_image(image)], sampling=GREEDY_SETTINGS)
    assert reply.usage.prompt_tokens == _local_answer(fixture_models["8bit"], request)[1]


def test_stream_gives_the_same_answer_one_usage_chunk_and_done(server, client, model_id) -> None:
    messages = image_message("What is this?", noise(320, 240))
    whole = ask(client, model_id, messages)
    chunks = list(
        ask(client, model_id, messages, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    raw = httpx2.post(
        server.url + "/chat/completions",
        json={"model": model_id, "messages": messages, "stream": True, "max_tokens": 3},
        timeout=60,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")
    assert all('"usage"' not in line for line in raw.text.splitlines())  # only when asked


def test_card_defaults_apply_when_fields_are_omitted(client, model_id) -> None:
    messages = [{"role": "user", "content": "Say something long."}]

    def sample(**fields) -> str:
        reply = client.chat.completions.create(
            model=model_id, messages=messages, max_tokens=30, seed=3, extra_body=fields
        )
        return reply.choices[0].message.content

    omitted = sample()
    card = sample(temperature=0.1, min_p=0.15, repetition_penalty=1.05)
    other = sample(temperature=1.0, min_p=0.0, repetition_penalty=1.0)
    assert omitted == card
    assert other != card  # the fields do matter, so the equality above says something


def test_top_k_reaches_the_sampler(client, model_id) -> None:
    messages = [{"role": "user", "content": "Say something."}]

    def sample(**fields) -> str:
        reply = client.chat.completions.create(
            model=model_id, messages=messages, max_tokens=20, seed=5, extra_body=fields
        )
        return reply.choices[0].message.content

    greedy = sample(temperature=0.0, repetition_penalty=1.0)
    assert sample(temperature=1.5, min_p=0.0, top_k=1, repetition_penalty=1.0) == greedy
    assert sample(temperature=1.5, min_p=0.0, repetition_penalty=1.0) != greedy


def test_several_images_and_webp_jpeg(client, model_id) -> None:
    a, b = noise(200, 150, 1), noise(150, 200, 2)
    content = [
        {"type": "image_url", "image_url": {"url": data_url(a, "WEBP", lossless=True)}},
        {"type": "image_url", "image_url": {"url": data_url(b, "JPEG", quality=95)}},
        {"type": "text", "text": "Compare."},
    ]
    reply = ask(client, model_id, [{"role": "user", "content": content}], max_tokens=2)
    squares = ask(client, model_id, image_message("Compare.", noise(64, 64), noise(64, 64)))
    plans = [plan_tiles(200, 150, VisionSettings()), plan_tiles(150, 200, VisionSettings())]
    small = plan_tiles(64, 64, VisionSettings())
    assert reply.usage.prompt_tokens - squares.usage.prompt_tokens == sum(
        p.image_tokens + p.marker_tokens - small.image_tokens - small.marker_tokens for p in plans
    )


@pytest.mark.parametrize(
    ("content", "status", "code", "says"),
    [
        ("data:image/png;base64,aGVsbG8=", 400, "invalid_image", "not an image"),
        ("data:image/png;base64,***", 400, "invalid_image", "not valid base64"),
        ("/etc/passwd", 400, "invalid_image", "never reads local files"),
        ("file:///etc/passwd", 400, "invalid_image", "never reads local files"),
        ("http://127.0.0.1:9/x.png", 400, "invalid_image", "--allow-image-urls"),
    ],
)
def test_bad_images_are_400_invalid_image(client, model_id, content, status, code, says) -> None:
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": content}}]}]
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, model_id, messages)
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert says in caught.value.message


def test_unknown_model_is_404_and_the_loaded_model_stays(client, model_id) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        ask(client, "LiquidAI/some-other-model", [{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"
    assert client.models.list().data[0].id == model_id
    assert ask(client, model_id, [{"role": "user", "content": "hi"}]).choices[0].message.content


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"response_format": {"type": "grammar"}}, "response_format.type must be"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": 3}}},
            "json_schema.schema must be an object",
        ),
        ({"n": 2}, "n=2 is not supported"),
        ({"max_tokens": 100000}, "max_tokens must be between"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"mm_processor_kwargs": {"min_tiles": 1}}, "min_tiles must be between"),
    ],
)
def test_requests_the_server_cannot_honour_are_refused_up_front(client, model_id, extra, says):
    body = {"model": model_id, "messages": [{"role": "user", "content": "hi"}], **extra}
    response = httpx2.post(str(client.base_url) + "chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert says in error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize("stream", [False, True])
def test_response_format_json_schema_gives_json_valid_under_the_schema(client, model_id, stream):
    # The fixture model has random weights: without the grammar its answer is never JSON.
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green"]}, "count": {"type": "integer"}},
        "required": ["colour", "count"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    messages = [{"role": "user", "content": "What colour, and how many?"}]
    reply = ask(client, model_id, messages, response_format=fmt, max_tokens=64, stream=stream)
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
    else:
        text = reply.choices[0].message.content
    answer = json.loads(text)
    assert set(answer) == {"colour", "count"}
    assert answer["colour"] in ("red", "green") and isinstance(answer["count"], int)


def test_too_many_images_is_400(client, model_id) -> None:
    messages = image_message("Which?", *[noise(32, 32, i) for i in range(9)])
    with pytest.raises(openai.BadRequestError, match="too many images"):
        ask(client, model_id, messages)


def test_eight_concurrent_requests_all_get_the_sequential_answer(client, model_id) -> None:
    messages = [{"role": "user", "content": "Count to ten."}]
    expected = ask(client, model_id, messages).choices[0].message.content
    results: list[str | None] = [None] * 8

    def run(n: int) -> None:
        reply = ask(client, model_id, messages, stream=n % 2 == 1)
        if n % 2:
            results[n] = "".join(c.choices[0].delta.content or "" for c in reply if c.choices)
        else:
            results[n] = reply.choices[0].message.content

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == [expected] * 8


def test_a_client_that_disconnects_mid_stream_frees_the_engine(client, model_id) -> None:
    long = {"role": "user", "content": "Write a very long story."}
    began = time.perf_counter()
    ask(client, model_id, [long], max_tokens=64)
    per_token = (time.perf_counter() - began) / 64
    # Tools with an image make the engine's first event a Notice: the stream starts at once.
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    messages = image_message("Write a very long story.", noise(64, 64))
    stream = ask(client, model_id, messages, tools=tools, max_tokens=8192, stream=True)
    assert next(iter(stream)).choices[0].delta.role == "assistant"
    stream.close()  # the client goes away after the first chunk
    started = time.perf_counter()
    ask(client, model_id, [{"role": "user", "content": "hi"}], max_tokens=1)
    waited = time.perf_counter() - started
    # Had the abandoned answer run on, this request would wait ~8000 tokens for the engine.
    assert waited < max(5.0, 1000 * per_token)


def test_the_server_prints_its_url_and_stops_on_ctrl_c(fixture_models) -> None:
    proc = ServeProcess(fixture_models["8bit"])
    url = proc.start()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    assert httpx2.post(url + "/chat/completions", json=body, timeout=60).status_code == 200
    assert proc.stop() == 0  # an engine used on its own thread must not abort the exit
    assert "server stopped" in proc.output and "Traceback" not in proc.output


def test_api_key_auth_and_the_key_is_never_printed(fixture_models, tmp_path) -> None:
    secret = "sk-test-4f9a1c"
    with ServeProcess(
        fixture_models["8bit"], "--api-key-env", "MY_KEY", env={"MY_KEY": secret}
    ) as p:
        good = openai.OpenAI(base_url=p.url, api_key=secret, max_retries=0)
        bad = openai.OpenAI(base_url=p.url, api_key="wrong", max_retries=0)
        model = good.models.list().data[0].id
        assert good.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        ).choices
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        assert httpx2.get(p.url.removesuffix("/v1") + "/health").status_code == 200
    assert secret not in p.output and "API key required" in p.output


def test_a_non_loopback_host_needs_a_key(fixture_models) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lfmdesk",
            "serve",
            "--model",
            str(fixture_models["8bit"]),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "lfmdesk: error: serving on 0.0.0.0 lets other machines use the model: give an API key "
        "with --api-key-env VAR (or --api-key KEY), or pass --insecure-no-auth"
    ]


def test_cors_is_off_unless_an_origin_is_given(server, fixture_models) -> None:
    preflight = {
        "Origin": "http://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    plain = httpx2.options(server.url + "/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in plain.headers
    with ServeProcess(fixture_models["8bit"], "--cors", "http://app.example") as p:
        allowed = httpx2.options(p.url + "/chat/completions", headers=preflight)
        other = httpx2.options(
            p.url + "/chat/completions", headers={**preflight, "Origin": "http://evil.example"}
        )
    assert allowed.headers["access-control-allow-origin"] == "http://app.example"
    assert "access-control-allow-origin" not in other.headers


# --- the remote backend against the real server ------------------------------------------


def _local_answer(model_dir: Path, request: ChatRequest) -> tuple[str, int]:
    engine = Engine(compute="native")
    engine.load(model_dir)
    events = list(engine.stream_chat(request))
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events[-1].prompt_tokens


def _remote_answer(url: str, request: ChatRequest) -> tuple[str, int, list]:
    engine = RemoteEngine(url)
    engine.connect()
    events = list(engine.stream_chat(request))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return text, events[-1].prompt_tokens, events


GREEDY_SETTINGS = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_tokens=16)


def test_remote_greedy_answers_are_byte_identical_to_local(server, fixture_models) -> None:
    image = load_image(noise(500, 350, 5))
    request = ChatRequest.single("What is this?", [image], sampling=GREEDY_SETTINGS)
    local_text, local_tokens = _local_answer(fixture_models["8bit"], request)
    remote_text, remote_tokens, events = _remote_answer(server.url, request)
    assert remote_text == local_text
    assert remote_tokens == local_tokens
    assert not any(type(e).__name__ == "Notice" for e in events)  # the parity guard agrees


def test_an_exif_rotated_photo_gives_the_same_answer_and_boxes_remote_and_local(
    server, fixture_models, tmp_path
) -> None:
    stored = noise(480, 320, 9)  # stored landscape, shown portrait (EXIF orientation 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())

    def detect(*where: str) -> dict:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "lfmdesk",
                "detect",
                str(path),
                "--labels",
                "cat",
                "--temperature",
                "0",
                "--repetition-penalty",
                "1",
                "--max-tokens",
                "24",
                *where,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    local = detect("--model", str(fixture_models["8bit"]), "--compute", "native")
    remote = detect("--backend", server.url)
    assert (local["width"], local["height"]) == (320, 480)
    assert remote["raw"] == local["raw"]
    assert remote["detections"] == local["detections"]
    assert remote["stats"]["prompt_tokens"] == local["stats"]["prompt_tokens"]
    # The answer depends on the pixels: the same picture unrotated is answered differently.
    upright = load_image(stored)
    sampling = SamplingSettings(temperature=0.0, repetition_penalty=1.0, max_tokens=24)
    request = ChatRequest.single(grounding_prompt(["cat"]), [upright], sampling=sampling)
    assert _remote_answer(server.url, request)[0] != remote["raw"]
