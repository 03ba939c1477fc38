"""A chat template comes from the model folder: it renders under limits of size and time.

Jinja's sandbox stops attribute tricks, not ``{{ 'x' * 10**10 }}`` (9.8 GB before this was
limited) or a loop that never ends. Each bomb below must fail in one line, in seconds, without
the memory; real templates must render exactly as transformers renders them.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile import copy_model, error_lines, one_line, run_cli
from PIL import Image

from lfmdesk.core import ChatRequest, Engine, Message, load_image
from lfmdesk.core._errors import EngineError

BOMBS = {
    "repeat": "{{ 'x' * 10**9 }}",
    "center-filter": "{{ 'x' | center(10**9) }}",
    "str-method": "{{ 'x'.ljust(10**9) }}",
    "format-width": "{{ '%1000000000s' % 'x' }}",
    "doubling-with-tilde": (
        "{% set ns = namespace(s='x') %}{% for i in range(30) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "block-of-copies": (
        "{% set b = 'x' * 100000 %}{% set y %}{% for i in range(10000) %}{{ b }}"
        "{% endfor %}{% endset %}{{ y | length }}"
    ),
}


def _peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@pytest.fixture
def engine_with_template(
    fixture_models: dict[str, Path], tmp_path: Path
) -> Callable[[str], Engine]:
    def make(template: str) -> Engine:
        folder = copy_model(
            fixture_models["8bit"], tmp_path / f"model-{len(list(tmp_path.iterdir()))}"
        )
        (folder / "chat_template.jinja").write_text(template)
        engine = Engine()
        engine.load(folder)
        return engine

    return make


@pytest.mark.parametrize("bomb", BOMBS)
def test_a_template_that_builds_gigabytes_fails_in_one_line(
    engine_with_template: Callable[[str], Engine], bomb: str
) -> None:
    engine = engine_with_template(BOMBS[bomb])
    before = _peak_bytes()
    started = time.monotonic()
    with pytest.raises(EngineError) as err:
        engine.render_prompt(ChatRequest.single("hi"))
    assert time.monotonic() - started < 5
    assert "chat template" in one_line(str(err.value))
    assert _peak_bytes() - before < 300_000_000


def test_a_template_that_never_ends_is_stopped_by_the_deadline(
    engine_with_template: Callable[[str], Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lfmdesk.core.engine.prompt import _template

    monkeypatch.setattr(_template.limits, "seconds", 0.5)
    # 64 million empty iterations: several seconds of pure Jinja without the deadline.
    engine = engine_with_template(
        "{% for a in range(8000) %}{% for b in range(8000) %}{% endfor %}{% endfor %}hi"
    )
    started = time.monotonic()
    with pytest.raises(EngineError) as err:
        engine.render_prompt(ChatRequest.single("hi"))
    assert time.monotonic() - started < 3
    assert "ran longer than 0.5 s" in one_line(str(err.value))


def test_ask_with_a_bomb_template_fails_in_one_line(
    fixture_models: dict[str, Path], tmp_path: Path
) -> None:
    folder = copy_model(fixture_models["8bit"], tmp_path / "model")
    (folder / "chat_template.jinja").write_text(BOMBS["repeat"])
    image = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(image)
    started = time.monotonic()
    proc = run_cli("ask", str(image), "-p", "hi", "--model", str(folder))
    assert time.monotonic() - started < 60
    assert proc.returncode != 0 and proc.stdout == ""
    [line] = error_lines(proc)
    assert "chat template" in line and "Traceback" not in proc.stderr


def test_a_huge_template_file_is_refused(engine_with_template: Callable[[str], Engine]) -> None:
    engine = engine_with_template("{# " + "x" * 300_000 + " #}{{ messages }}")
    with pytest.raises(EngineError) as err:
        engine.render_prompt(ChatRequest.single("hi"))
    assert "KB" in one_line(str(err.value))


def test_a_long_conversation_still_renders(fixture_models: dict[str, Path]) -> None:
    engine = Engine()
    engine.load(fixture_models["8bit"])
    long_text = "word " * 1_000_000  # 5 MB: more than the fixed part of the limit
    prompt = engine.render_prompt(ChatRequest.single(long_text))
    assert long_text in prompt


# -- real templates render exactly as transformers renders them -------------------------------

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
CONVERSATIONS = {
    "tools-and-tool-turn": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '<|tool_call_start|>[get_weather(city="Paris")]'},
        {"role": "tool", "content": '{"temp_c": 21}'},
    ],
    "images-multi-turn": [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Ünïcode, «quotes» & <tags>"},
    ],
}


@pytest.mark.parametrize("checkpoint", ["8bit", "v1"])
@pytest.mark.parametrize("conversation", CONVERSATIONS)
def test_real_templates_render_as_transformers_renders_them(
    fixture_models: dict[str, Path], checkpoint: str, conversation: str
) -> None:
    from transformers import AutoTokenizer
    from transformers.utils import chat_template_utils as ctu

    from lfmdesk.core.engine.prompt._template import install_template_limits

    install_template_limits()
    tokenizer = AutoTokenizer.from_pretrained(fixture_models[checkpoint])
    template = tokenizer.chat_template
    variables = {
        "messages": CONVERSATIONS[conversation],
        "tools": TOOLS if conversation.startswith("tools") else None,
        "add_generation_prompt": True,
        **tokenizer.special_tokens_map,
    }
    unlimited = ctu._cached_compile_jinja_template(template).render(**variables)
    limited = ctu._compile_jinja_template(template).render(**variables)
    assert limited == unlimited
    assert type(ctu._compile_jinja_template(template)).__name__ == "_BoundedTemplate"


def test_the_engine_prompt_is_unchanged_by_the_limits(fixture_models: dict[str, Path]) -> None:
    engine = Engine()
    engine.load(fixture_models["8bit"])
    image = load_image(Image.new("RGB", (64, 64), (10, 200, 10)))
    request = ChatRequest(
        messages=(
            Message("system", "Be brief."),
            Message("user", "What is this?", images=(image,)),
            Message("assistant", "A green square."),
            Message("user", json.dumps({"more": "please"})),
        )
    )
    prompt = engine.render_prompt(request)
    assert prompt.count("<image>") == 1 and prompt.endswith("<|im_start|>assistant\n")
    assert '{"more": "please"}<|im_end|>' in prompt
