"""LFM2 function calling: parsing calls, loading tool specs, rendering tools and results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lfmdesk.core._errors import ToolSpecError
from lfmdesk.core.answers._tool_specs import (
    load_tool_specs,
    tool_response_text,
    tools_system_prompt,
)
from lfmdesk.core.answers._tools import (
    MARKERS,
    TOOL_CALL_END,
    TOOL_CALL_START,
    TOOL_RESPONSE_END,
    TOOL_RESPONSE_START,
    ToolCall,
    ToolCallParse,
    parse_tool_calls,
)


def block(body: str) -> str:
    return f"{TOOL_CALL_START}{body}{TOOL_CALL_END}"


def calls(text: str) -> list[dict]:
    """The calls in ``text`` as plain dicts; fails if anything was reported as an error."""
    parsed = parse_tool_calls(text)
    assert parsed.errors == ()
    return [c.to_dict() for c in parsed.calls]


# --- parsing ------------------------------------------------------------------------------


def test_single_call_with_text_after():
    text = block('[get_weather(city="Paris")]') + "Checking the weather in Paris."
    parsed = parse_tool_calls(text)
    assert parsed == ToolCallParse(
        (ToolCall("get_weather", {"city": "Paris"}),), "Checking the weather in Paris.", ()
    )


def test_several_calls_keep_their_order_and_types():
    text = block("[search(q='cats', limit=5), convert(x=-1.5, exact=True, unit=None)]")
    assert calls(text) == [
        {"name": "search", "arguments": {"q": "cats", "limit": 5}},
        {"name": "convert", "arguments": {"x": -1.5, "exact": True, "unit": None}},
    ]


@pytest.mark.parametrize(
    "value",
    [
        'a, b = "c"',
        "brackets ] ) } [ ( {",
        'it\'s "quoted"',
        "東京の天気",
        "مرحبا بالعالم",
        "back\\slash and \n newline",
        "call_me(x=1), other()",
        TOOL_CALL_END.replace("|", "¦"),
    ],
)
def test_string_arguments_survive_any_content(value):
    assert calls(block(f"[f(text={value!r}, n=1)]")) == [
        {"name": "f", "arguments": {"text": value, "n": 1}}
    ]


def test_nested_lists_and_dicts():
    text = block('[plot(points=[[1, 2], [3, 4.5]], style={"color": "red", "tags": ["a", {}]})]')
    assert calls(text) == [
        {
            "name": "plot",
            "arguments": {
                "points": [[1, 2], [3, 4.5]],
                "style": {"color": "red", "tags": ["a", {}]},
            },
        }
    ]


def test_tuples_become_lists_and_json_names_are_literals():
    text = block("[f(size=(1, 2), on=true, off=false, nothing=null)]")
    assert calls(text) == [
        {"name": "f", "arguments": {"size": [1, 2], "on": True, "off": False, "nothing": None}}
    ]


def test_text_before_between_and_after_blocks_is_the_content():
    text = "Let me look.\n" + block("[a(x=1)]") + " and " + block("[b(y=2)]") + "\nDone.<|im_end|>"
    parsed = parse_tool_calls(text)
    assert [c.name for c in parsed.calls] == ["a", "b"]
    assert parsed.content == "Let me look.\nand\nDone.<|im_end|>"


def test_no_markers_means_no_calls_and_the_text_as_content():
    text = "The weather in Paris is sunny. [f(x=1)] is how I would call it."
    assert parse_tool_calls(text) == ToolCallParse((), text, ())


def test_stray_markers_are_removed_from_the_content():
    parsed = parse_tool_calls(f"Hello {TOOL_RESPONSE_START}there{TOOL_CALL_END}")
    assert parsed.calls == ()
    assert parsed.content == "Hello there"


def test_code_is_rejected_and_never_run(tmp_path):
    canary = tmp_path / "ran"
    payloads = [
        f"__import__('pathlib').Path({str(canary)!r}).touch()",
        f"f(x=__import__('pathlib').Path({str(canary)!r}).touch())",
        f"f(x=open({str(canary)!r}, 'w'))",
        "f(x=[i for i in range(10**9)])",
        "f(x=lambda: 1)",
        "f(x=1 + 2)",
    ]
    parsed = parse_tool_calls(block("[" + ", ".join(payloads) + ", ok(a=1)]"))
    assert not canary.exists()
    assert parsed.calls == (ToolCall("ok", {"a": 1}),)
    assert parsed.errors[0].startswith("call 1: not a plain function call: __import__(")
    assert parsed.errors[1].startswith("call 2: arguments must be literals: f(x=__import__(")
    assert len(parsed.errors) == len(payloads)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("[f(1, a=2)]", "call 1: positional arguments are not allowed, use name=value: f(1, a=2)"),
        ("[f(**opts)]", "call 1: arguments must be literals: f(**opts)"),
        ("[f(a={1, 2})]", "call 1: arguments must be literals: f(a={1, 2})"),
        ("[f(a=b'x')]", "call 1: arguments must be literals: f(a=b'x')"),
        ("[f(a=1j)]", "call 1: arguments must be literals: f(a=1j)"),
        ("[f(a={1: 2})]", "call 1: arguments must be literals: f(a={1: 2})"),
        ("[f(a=1, a=2)]", "call 1: argument a given twice: f(a=1, a=2)"),
        ("[42]", "call 1: not a tool call: 42"),
    ],
)
def test_bad_calls_are_reported_not_kept(body, error):
    parsed = parse_tool_calls(block(body))
    assert parsed.calls == ()
    assert parsed.errors == (error,)


def test_one_bad_call_does_not_lose_the_others():
    parsed = parse_tool_calls(block("[a(x=1), b(y=os.getcwd()), c(z=3)]"))
    assert [c.name for c in parsed.calls] == ["a", "c"]
    assert parsed.errors == ("call 2: arguments must be literals: b(y=os.getcwd())",)


def test_broken_syntax_in_one_call_keeps_the_others():
    parsed = parse_tool_calls(block("[a(x=1), b(y=), c(z=3)]"))
    assert [c.name for c in parsed.calls] == ["a", "c"]
    assert parsed.errors == ("call 2: not valid call syntax: b(y=)",)


def test_missing_end_marker_keeps_the_complete_calls():
    parsed = parse_tool_calls(TOOL_CALL_START + '[a(x=1), b(text="cut in the mid')
    assert parsed.calls == (ToolCall("a", {"x": 1}),)
    assert parsed.errors == (
        f"block 1: no {TOOL_CALL_END}, the answer was cut off",
        "call 2: cut off before the call was complete",
    )


def test_missing_end_marker_with_a_complete_list():
    parsed = parse_tool_calls(TOOL_CALL_START + "[a(x=1)]")
    assert parsed.calls == (ToolCall("a", {"x": 1}),)
    assert parsed.errors == (f"block 1: no {TOOL_CALL_END}, the answer was cut off",)


def test_a_block_without_end_marker_before_the_next_block():
    parsed = parse_tool_calls(TOOL_CALL_START + "[a(x=1)] " + block("[b(y=2)]") + " ok")
    assert [c.name for c in parsed.calls] == ["a", "b"]
    assert parsed.errors == (f"block 1: no {TOOL_CALL_END}",)
    assert parsed.content == "ok"


def test_dotted_names_and_calls_without_brackets():
    assert calls(block("math.sqrt(x=2)")) == [{"name": "math.sqrt", "arguments": {"x": 2}}]


def test_json_style_calls():
    body = (
        '[{"name": "get_weather", "arguments": {"city": "東京", "metric": true}}, '
        '{"name": "ping", "arguments": "{\\"host\\": \\"a\\"}"}, '
        '{"type": "function", "function": {"name": "now", "arguments": {}}}]'
    )
    assert calls(block(body)) == [
        {"name": "get_weather", "arguments": {"city": "東京", "metric": True}},
        {"name": "ping", "arguments": {"host": "a"}},
        {"name": "now", "arguments": {}},
    ]


def test_json_objects_that_are_not_calls_are_errors():
    parsed = parse_tool_calls(block('[{"arguments": {}}, {"name": "f", "arguments": 3}]'))
    assert parsed.calls == ()
    assert [e.split(":")[0] for e in parsed.errors] == ["call 1", "call 2"]


def test_call_arguments_are_read_only_and_to_dict_copies():
    call = parse_tool_calls(block("[f(items=[1, 2])]")).calls[0]
    with pytest.raises(TypeError):
        call.arguments["items"] = []  # type: ignore[index]
    plain = call.to_dict()
    plain["arguments"]["items"].append(3)
    assert call.arguments["items"] == [1, 2]
    assert json.loads(json.dumps(plain)) == plain


def test_huge_or_deep_input_is_an_error_not_a_crash():
    for body in ["[f(a=" + "9" * 5000 + ")]", "[f(a=" + "[" * 5000 + ")]", "[f(a=" + "-" * 50_000]:
        parsed = parse_tool_calls(block(body))
        assert parsed.calls == ()
        assert len(parsed.errors) == 1


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_never_raises_on_any_text(text):
    parsed = parse_tool_calls(text)
    assert isinstance(parsed, ToolCallParse)
    assert not any(marker in parsed.content for marker in MARKERS)


PIECES = [
    TOOL_CALL_START, TOOL_CALL_END, "[", "]", "(", ")", "{", "}", ",", "=", ":", "f", "a",
    "os.system", "'x'", '"y"', "1", "-", "1e999", "true", "None", "__import__", "'", '"',
    "\\", " ", "\n", "**", "lambda", '"name"', '"arguments"',
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60))
def test_parse_never_raises_on_call_like_garbage(pieces):
    parsed = parse_tool_calls("".join(pieces))
    for call in parsed.calls:
        json.dumps(call.to_dict())


# --- tool specs ---------------------------------------------------------------------------

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_specs_from_a_file_path_and_a_path_object(tmp_path):
    path = tmp_path / "tools.json"
    path.write_text(json.dumps([WEATHER]), encoding="utf-8")
    assert load_tool_specs(str(path)) == (WEATHER,)
    assert load_tool_specs(path) == (WEATHER,)


def test_specs_from_json_text_openai_style_and_wrapped():
    openai = {"type": "function", "function": WEATHER}
    assert load_tool_specs(json.dumps([openai])) == (WEATHER,)
    assert load_tool_specs(json.dumps({"tools": [openai, {"name": "now"}]})) == (
        WEATHER,
        {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}}},
    )
    assert load_tool_specs(json.dumps(WEATHER)) == (WEATHER,)


def test_specs_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "tools.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([WEATHER]).encode())
    assert load_tool_specs(path) == (WEATHER,)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("[]", "must hold a JSON list of tools"),
        ('{"tools": 3}', "must hold a JSON list of tools"),
        ("[1]", "tool 1 in the tool JSON is not a JSON object"),
        ('[{"description": "x"}]', "name must be an identifier"),
        (
            '[{"name": "get weather"}]',
            "name must be an identifier like get_weather, got 'get weather'",
        ),
        ('[{"name": "class"}]', "got 'class'"),
        ('[{"name": "f", "description": 3}]', "description must be a string"),
        ('[{"name": "f", "parameters": []}]', "parameters must be a JSON Schema object"),
        ('[{"type": "retrieval"}]', "only function tools are supported"),
        ('[{"type": "function", "function": "f"}]', '"function" must be an object'),
        ('[{"name": "f"}, {"name": "f"}]', "defines f more than once"),
        ('[{"name": "f",}]', "is not valid JSON (line 1, column 15)"),
        ("[" * 100_000, "nested too deeply"),
        ("no-such-file.json", "tool file not found: no-such-file.json"),
    ],
)
def test_bad_specs_raise_one_line_tool_spec_errors(source, message):
    with pytest.raises(ToolSpecError) as err:
        load_tool_specs(source)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unreadable_spec_files(tmp_path):
    binary = tmp_path / "tools.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    cases = [(binary, "is not UTF-8"), (tmp_path, "is a folder"), ("bad\x00name", "not found")]
    for source, message in cases:
        with pytest.raises(ToolSpecError, match=message):
            load_tool_specs(source)


# --- rendering ----------------------------------------------------------------------------

# The tools part of LFM2's public chat template (LFM2.5 renders tools the same way).
LFM2_TEMPLATE = (
    '{%- set ns = namespace(system_prompt="") -%}'
    '{%- if messages[0]["role"] == "system" -%}'
    '{%- set ns.system_prompt = messages[0]["content"] -%}{%- set messages = messages[1:] -%}'
    "{%- endif -%}"
    "{%- if tools -%}"
    '{%- set ns.system_prompt = ns.system_prompt + ("\\n" if ns.system_prompt else "")'
    ' + "List of tools: <|tool_list_start|>[" -%}'
    "{%- for tool in tools -%}"
    "{%- if tool is not string -%}{%- set tool = tool | tojson -%}{%- endif -%}"
    "{%- set ns.system_prompt = ns.system_prompt + tool -%}"
    '{%- if not loop.last -%}{%- set ns.system_prompt = ns.system_prompt + ", " -%}{%- endif -%}'
    "{%- endfor -%}"
    '{%- set ns.system_prompt = ns.system_prompt + "]<|tool_list_end|>" -%}'
    "{%- endif -%}"
    "{{- ns.system_prompt -}}"
)


def test_system_prompt_text():
    assert tools_system_prompt([WEATHER], "Be brief.") == (
        "Be brief.\nList of tools: <|tool_list_start|>["
        '{"name": "get_weather", "description": "Current weather for a city.", '
        '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}'
        "]<|tool_list_end|>"
    )
    assert tools_system_prompt([], "Be brief.") == "Be brief."


@pytest.mark.parametrize("system", ["", "Be brief.", "日本語で答えて"])
def test_system_prompt_matches_the_chat_template(system):
    pytest.importorskip("jinja2")
    from transformers.utils.chat_template_utils import render_jinja_template

    tools = [WEATHER, {"name": "now", "description": "Heure à Paris — ünïcode", "parameters": {}}]
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": "hi"}
    ]
    rendered, _ = render_jinja_template([messages], tools=tools, chat_template=LFM2_TEMPLATE)
    assert tools_system_prompt(tools, system) == rendered[0]


def test_system_prompt_accepts_read_only_mappings():
    from types import MappingProxyType

    frozen = MappingProxyType({**WEATHER, "parameters": MappingProxyType(WEATHER["parameters"])})
    assert tools_system_prompt([frozen]) == tools_system_prompt([WEATHER])


def test_system_prompt_rejects_what_json_cannot_hold():
    with pytest.raises(ToolSpecError, match="tool 1 cannot be written as JSON"):
        tools_system_prompt([{"name": "f", "parameters": {"x": object()}}])


def test_tool_response_wraps_strings_as_they_are_and_encodes_the_rest():
    assert tool_response_text("22 °C") == f"{TOOL_RESPONSE_START}22 °C{TOOL_RESPONSE_END}"
    assert tool_response_text({"temp": 22, "city": "東京"}) == (
        f'{TOOL_RESPONSE_START}{{"temp": 22, "city": "東京"}}{TOOL_RESPONSE_END}'
    )
    assert tool_response_text([1, None]) == f"{TOOL_RESPONSE_START}[1, null]{TOOL_RESPONSE_END}"
    assert tool_response_text(Path("/x")) == f'{TOOL_RESPONSE_START}"/x"{TOOL_RESPONSE_END}'


def test_round_trip_call_then_response():
    tools = load_tool_specs(json.dumps([WEATHER]))
    answer = block('[get_weather(city="Paris")]')
    call = parse_tool_calls(answer).calls[0]
    assert call.name in {t["name"] for t in tools}
    reply = tool_response_text({"city": call.arguments["city"], "temp": 21})
    assert reply.startswith(TOOL_RESPONSE_START) and reply.endswith(TOOL_RESPONSE_END)
