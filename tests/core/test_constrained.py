"""Constrained decoding on CPU: the real engine and llguidance on the tiny random checkpoints.

Random weights emit garbage when free; under the Detect grammar every answer must be a JSON
list of boxes that the tolerant parser keeps whole.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lfmdesk.core import (
    ChatRequest,
    ChatThread,
    Engine,
    InputError,
    LoadedImage,
    SamplingSettings,
    TextDelta,
    detection_request,
    load_image,
    parse_detections,
)
from lfmdesk.core.chat._store import ConversationStore
from lfmdesk.core.engine._constrained import (
    GrammarTokenizer,
    apply_token_bitmask,
    constraint_for_detection,
    constraint_for_json_schema,
    logits_processor,
)

LABEL_SETS = (
    ("car",),
    ("car", "person"),
    ("cat", "dog", "bird"),
    ("猫", 'a "quoted" thing'),
    ("traffic light",),
)
BUDGETS = (512, 48, 100, 20, 300)  # 48: the live preset's answer budget


def image(seed: int, width: int, height: int) -> LoadedImage:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((height, width, 3)) * 255).astype("uint8")
    return load_image(Image.fromarray(pixels))


def answer(engine: Engine, request: ChatRequest) -> str:
    return "".join(e.text for e in engine.stream_chat(request) if isinstance(e, TextDelta))


def strict_boxes(text: str) -> list[dict[str, object]] | None:
    """The answer as the model card's format, read strictly; None when it is not."""
    try:
        items = json.loads(text)
    except ValueError:
        return None
    ok = isinstance(items, list) and all(
        isinstance(i, dict) and set(i) == {"label", "bbox"} and len(i["bbox"]) == 4 for i in items
    )
    return items if ok else None


@pytest.fixture(scope="module")
def grammar_tokenizer(fixture_models: dict[str, Path]) -> GrammarTokenizer:
    from transformers import AutoTokenizer

    return GrammarTokenizer(AutoTokenizer.from_pretrained(str(fixture_models["8bit"])))


def test_fifty_constrained_detect_answers_parse_whole_with_requested_labels(engine) -> None:
    rng = np.random.default_rng(7)
    for n in range(50):
        labels = LABEL_SETS[n % len(LABEL_SETS)]
        img = image(n, int(rng.integers(8, 120)), int(rng.integers(8, 120)))
        sampling = SamplingSettings(
            temperature=(0.0, 1.0)[n % 2], max_tokens=BUDGETS[n % len(BUDGETS)], seed=n
        )
        text = answer(engine, detection_request(img, labels, sampling))
        items = strict_boxes(text)
        assert items is not None, f"answer {n} is not a box list: {text!r}"
        result = parse_detections(text, img.width, img.height)
        assert result.dropped == () and not result.truncated, (n, text, result.dropped)
        assert len(result.detections) == len(items)
        assert {d.label for d in result.detections} <= set(labels)
        assert all(0 <= v <= 1 for item in items for v in item["bbox"])  # type: ignore[attr-defined]


def test_the_same_requests_free_give_garbage(engine) -> None:
    # Without the grammar the random model does not write the format: the test above can fail.
    free = SamplingSettings(temperature=0.0, max_tokens=60, constrained=False)
    texts = [answer(engine, detection_request(image(n, 64, 48), ("car",), free)) for n in range(3)]
    assert all(strict_boxes(t) is None for t in texts), texts


def test_a_never_ending_model_is_closed_within_the_budget(grammar_tokenizer) -> None:
    """Whatever allowed token a model picks (here: one that always wants another item),
    the array closes before max_tokens, with no empty or repeated box, on any image size."""
    import mlx.core as mx

    tok = grammar_tokenizer
    vocab = tok.vocab_size
    eager = [i for i in range(vocab) if (tok.token_bytes(i) or b"").startswith((b",", b"0."))]
    eos = 7
    for seed in range(24):
        rng = np.random.default_rng(seed)
        labels = LABEL_SETS[seed % 4]
        width, height = ((1, 1), (3, 2), (64, 48), (900, 700))[seed % 4]
        budget = (10, 30, 48, 77, 150, 300)[seed % 6]
        proc = logits_processor(
            constraint_for_detection(labels), tok, max_tokens=budget, image_size=(width, height)
        )
        ids = [0]
        for _ in range(budget):
            logits = rng.normal(size=(1, vocab)).astype(np.float32)
            logits[0, eager] += 6.0
            logits[0, eos] -= 20.0
            token = int(mx.argmax(proc(mx.array(ids), mx.array(logits)), axis=-1).item())
            if token == eos:
                break
            ids.append(token)
        text = b"".join(tok.token_bytes(t) or b"" for t in ids[1:]).decode()
        assert strict_boxes(text) is not None, (seed, budget, text)
        result = parse_detections(text, width, height)
        assert result.dropped == () and not result.truncated, (seed, text, result.dropped)


def test_cpu_mask_equals_llguidance_reference() -> None:
    import llguidance.numpy
    import mlx.core as mx

    rng = np.random.default_rng(0)
    for vocab, words in ((64, 2), (100, 4), (70, 2)):  # exact, mask longer, vocab longer
        logits = rng.normal(size=(1, vocab)).astype(np.float32)
        mask = rng.integers(-(2**31), 2**31, size=(1, words), dtype=np.int64).astype(np.int32)
        expected = logits.copy()
        llguidance.numpy.apply_token_bitmask_inplace(expected, mask)
        got = np.array(apply_token_bitmask(mx.array(logits), mask))
        np.testing.assert_array_equal(got, expected)
        flat = np.array(apply_token_bitmask(mx.array(logits[0]), mask[0]))
        np.testing.assert_array_equal(flat, expected[0])


def test_json_schema_answers_are_valid_on_cpu(engine) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 6}, "ok": {"type": "boolean"}},
        "required": ["name", "ok"],
        "additionalProperties": False,
    }
    constraint = constraint_for_json_schema(json.dumps(schema))
    for n in range(3):
        request = ChatRequest.single(
            "Describe it as JSON.",
            [image(n, 32, 32)],
            sampling=SamplingSettings(temperature=1.0, seed=n, max_tokens=64),
            constraint=constraint,
        )
        data = json.loads(answer(engine, request))
        assert set(data) == {"name", "ok"}
        assert isinstance(data["ok"], bool) and len(data["name"]) <= 6


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"type": "frobnicate"}, "cannot be used"),
    ],
)
def test_a_bad_schema_is_a_one_line_input_error(schema, message) -> None:
    with pytest.raises(InputError, match=message) as err:
        constraint_for_json_schema(schema)
    assert "\n" not in str(err.value)


def test_detect_requests_carry_the_grammar_and_free_chat_never_does(tmp_path) -> None:
    img = image(0, 16, 16)
    assert SamplingSettings().constrained is True
    constrained = detection_request(img, "car, person")
    assert constrained.constraint is not None
    assert constrained.constraint.labels == ("car", "person")
    free = detection_request(img, "car", SamplingSettings(constrained=False))
    assert free.constraint is None
    # The engine process receives requests pickled.
    assert pickle.loads(pickle.dumps(constrained)) == constrained

    thread = ChatThread(ConversationStore(tmp_path).new(), images={})
    thread.attach(img)
    thread.add_detect_turn("cat")
    request = thread.request(SamplingSettings())
    assert request.constraint is not None and request.constraint.labels == ("cat",)
    off = thread.request(dataclasses.replace(SamplingSettings(), constrained=False))
    assert off.constraint is None
    thread.begin_answer()
    thread.apply(TextDelta("[]"))
    thread.mark_interrupted()
    thread.add_user_turn("and what colour is it?")
    assert thread.request(SamplingSettings()).constraint is None


def test_a_detection_schema_is_offered_for_remote_backends() -> None:
    schema = json.loads(constraint_for_detection(["car", "dog"]).schema)
    assert schema["items"]["properties"]["label"]["enum"] == ["car", "dog"]
    with pytest.raises(InputError):
        constraint_for_detection(" , ")


def test_mlx_vlms_own_processor_needs_metal_where_ours_does_not(grammar_tokenizer) -> None:
    import mlx.core as mx
    from mlx_vlm.structured import LLGuidanceLogitsProcessor

    constraint = constraint_for_detection(["car"])
    logits = mx.array(np.random.default_rng(0).normal(size=(1, grammar_tokenizer.vocab_size)))
    ours = logits_processor(constraint, grammar_tokenizer, max_tokens=64, image_size=(64, 64))
    masked = np.array(ours(mx.array([0]), logits))
    allowed = [grammar_tokenizer.token_bytes(int(i)) for i in np.flatnonzero(masked > -np.inf)]
    assert allowed and all(b is not None and b.startswith(b"[") for b in allowed)
    theirs = LLGuidanceLogitsProcessor(constraint.grammar, grammar_tokenizer.llg)
    if mx.metal.is_available():
        np.testing.assert_array_equal(np.array(theirs(mx.array([0]), logits)), masked)
    else:
        with pytest.raises(Exception, match="Metal"):
            mx.eval(theirs(mx.array([0]), logits))


def test_a_detect_answer_asked_for_by_schema_is_decoded_exactly_as_detect() -> None:
    # A remote lfmdesk gets a constrained Detect as response_format: the same grammar and guard
    # make its answer byte-identical to the local one.
    from lfmdesk.core import constraint_for_detection, constraint_for_json_schema

    detect = constraint_for_detection("car, person")
    assert constraint_for_json_schema(json.loads(detect.schema)) == detect
    other = json.loads(detect.schema)
    other["maxItems"] = 3  # any other schema stays a schema
    assert constraint_for_json_schema(other).kind == "json_schema"
