"""The variant table names repos that exist; tools work where a checkpoint's template lacks them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lfmdesk.core import VARIANTS, ChatRequest, Message, find_variant
from lfmdesk.core.engine.prompt._render import render_prompt
from lfmdesk.core.engine.prompt._tokens import PromptTokens

TOOLS = (
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
)


def test_the_1_6b_variants_are_mlx_community_builds_that_exist() -> None:
    rows = {v.key: v for v in VARIANTS if v.family == "LFM2.5-VL-1.6B"}
    assert {key: v.repo_id for key, v in rows.items()} == {
        "1.6b-4bit": "mlx-community/LFM2.5-VL-1.6B-4bit",
        "1.6b-6bit": "mlx-community/LFM2.5-VL-1.6B-6bit",
        "1.6b-8bit": "mlx-community/LFM2.5-VL-1.6B-8bit",
        "1.6b-bf16": "mlx-community/LFM2.5-VL-1.6B-bf16",
    }
    assert all("mlx-community" in v.description for v in rows.values())
    assert find_variant("1.6b-5bit") is None
    assert not [v for v in VARIANTS if v.repo_id.startswith("LiquidAI/LFM2.5-VL-1.6B")]


def test_no_lfm2_5_3b_variant_until_it_is_known_to_load_without_remote_code() -> None:
    assert not [v for v in VARIANTS if "LFM2.5-VL-3B" in v.repo_id]


@pytest.fixture(scope="module")
def tokenizers(fixture_models: dict[str, Path]) -> dict[str, Any]:
    from transformers import AutoTokenizer

    return {k: AutoTokenizer.from_pretrained(fixture_models[k]) for k in ("8bit", "v1")}


@pytest.mark.parametrize(
    "messages",
    [
        (Message("user", "Weather in Paris?"),),
        (
            Message("system", "Answer briefly."),
            Message("user", "Weather in Paris?"),
            Message("assistant", '<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>'),
            Message("tool", '{"temp_c": 21}'),
        ),
    ],
    ids=["question", "system-call-and-result"],
)
def test_a_template_without_the_tool_macro_gives_the_model_the_same_prompt(
    tokenizers: dict[str, Any], messages: tuple[Message, ...]
) -> None:
    # mlx-community's LFM2.5-VL-1.6B template is reported to lack LFM2.5's tool-list macro, as
    # the first-generation template (the "v1" fixture) does: lfmdesk writes the tool list and
    # wraps tool results itself, exactly as LFM2.5's own template would.
    request = ChatRequest(messages=messages, tools=TOOLS)
    own = render_prompt(tokenizers["8bit"], request, PromptTokens(tokenizers["8bit"], add_bos=True))
    assert "tool_list_start" in own.text
    fallback = render_prompt(
        tokenizers["v1"], request, PromptTokens(tokenizers["v1"], add_bos=True)
    )
    assert "tool_list_start" not in tokenizers["v1"].chat_template
    assert fallback.text == own.text and fallback.tools_used
