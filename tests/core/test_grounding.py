"""Grounding prompt and the tolerant detection parser (model text -> pixel boxes)."""

from __future__ import annotations

import json
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lfmdesk.core._errors import InputError
from lfmdesk.core.answers._grounding import (
    GROUNDING_TEMPLATE,
    MAX_DETECTIONS,
    DetectionResult,
    grounding_prompt,
    parse_detections,
    split_labels,
)

W, H = 640, 480


def boxes(result: DetectionResult) -> list[tuple[str, tuple[int, int, int, int]]]:
    """(label, pixel box) pairs, the part of a result a user sees drawn."""
    return [(d.label, d.box_px) for d in result.detections]


def item(label: str, box: list[float]) -> str:
    return json.dumps({"label": label, "bbox": box})


# --- prompt -------------------------------------------------------------------------------


def test_prompt_is_the_model_card_text():
    assert grounding_prompt("cat, dog") == (
        "Detect all instances of: cat, dog. Response must be a JSON array: "
        '[{"label": ..., "bbox": [x1, y1, x2, y2]}, ...]. Coordinates are normalized to [0,1].'
    )
    assert GROUNDING_TEMPLATE.count("{query}") == 1


def test_prompt_accepts_a_list_and_strips_blanks():
    assert grounding_prompt(["  cat ", "", "dog"]) == grounding_prompt("cat, dog")
    assert grounding_prompt(["red car, blue car"]) == grounding_prompt("red car, blue car")


@pytest.mark.parametrize("labels", ["", "  , ,, ", [], ["", "  "]])
def test_prompt_without_a_label_is_a_one_line_input_error(labels):
    with pytest.raises(InputError) as err:
        grounding_prompt(labels)
    assert "\n" not in str(err.value)


def test_split_labels_drops_blanks_and_repeats_keeping_order():
    assert split_labels("cat, dog ,,") == ("cat", "dog")
    assert split_labels("dog; Cat\ncat ,  hot   dog , DOG") == ("dog", "Cat", "hot dog")
    assert split_labels("   ") == ()


# --- canned model answers -----------------------------------------------------------------

TYPICAL = (
    '[{"label": "cat", "bbox": [0.12, 0.3, 0.55, 0.9]}, '
    '{"label": "dog", "bbox": [0.6, 0.2, 0.95, 0.88]}]'
)

CANNED = [
    ("typical", TYPICAL, [("cat", (77, 144, 352, 432)), ("dog", (384, 96, 608, 422))]),
    (
        "fenced with prose",
        "Here are the objects I found:\n```json\n"
        '[{"label": "person", "bbox": [0.25, 0.1, 0.5, 0.95]}]\n```\nLet me know if...',
        [("person", (160, 48, 320, 456))],
    ),
    (
        "python repr",
        "[{'label': 'car', 'bbox': [0.0, 0.5, 0.25, 1.0]}]",
        [("car", (0, 240, 160, 480))],
    ),
    (
        "trailing commas",
        '[{"label": "cup", "bbox": [0.5, 0.5, 0.75, 0.75],},]',
        [("cup", (320, 240, 480, 360))],
    ),
    (
        "python literals",
        '[{"label": "chair", "bbox": [0.2, 0.4, 0.4, 0.9], "occluded": True, "score": None}]',
        [("chair", (128, 192, 256, 432))],
    ),
    (
        "objects wrapper, name key",
        '{"objects": [{"name": "bird", "bbox": [0.1, 0.1, 0.2, 0.3]}]}',
        [("bird", (64, 48, 128, 144))],
    ),
    (
        "single top-level object",
        '{"label": "tree", "bbox": [0.7, 0.05, 0.98, 0.6]}',
        [("tree", (448, 24, 627, 288))],
    ),
    (
        "swapped corners",
        '[{"label": "ball", "bbox": [0.5, 0.6, 0.4, 0.5]}]',
        [("ball", (256, 240, 320, 288))],
    ),
    (
        "slight overshoot is clamped",
        '[{"label": "kite", "bbox": [-0.05, 0.9, 0.3, 1.04]}]',
        [("kite", (0, 432, 192, 480))],
    ),
    (
        "bbox_2d per-mille",
        '[{"bbox_2d": [100, 200, 500, 800], "label": "dog"}]',
        [("dog", (64, 96, 320, 384))],
    ),
    (
        "pixel box key",
        '[{"class": "sign", "box": [32, 48, 320, 240]}]',
        [("sign", (32, 48, 320, 240))],
    ),
    ("missing label", '[{"bbox": [0.0, 0.0, 0.5, 0.5]}]', [("object", (0, 0, 320, 240))]),
    (
        "unquoted keys",
        '[{label: "phone", bbox: [0.45, 0.45, 0.55, 0.55]}]',
        [("phone", (288, 216, 352, 264))],
    ),
    (
        "prose with brackets and apostrophes first",
        'Sure! Here\'s the list [as requested]:\n[{"label": "lamp", "bbox": [0.8, 0.1, 0.9, 0.4]}]',
        [("lamp", (512, 48, 576, 192))],
    ),
    (
        "braces instead of brackets",
        '{{"label": "a", "bbox": [0.1, 0.1, 0.2, 0.2]}, '
        '{"label": "b", "bbox": [0.3, 0.3, 0.4, 0.4]}}',
        [("a", (64, 48, 128, 96)), ("b", (192, 144, 256, 192))],
    ),
    (
        "bbox list never closed",
        '[{"label": "mug", "bbox": [0.1, 0.1, 0.2, 0.2}]',
        [("mug", (64, 48, 128, 96))],
    ),
    (
        "unicode labels and escapes",
        '[{"label": "\\u732b", "bbox": [0, 0, 1, 1]}, {"label": "犬", "bbox": [0.5, 0, 1, 0.5]}]',
        [("猫", (0, 0, 640, 480)), ("犬", (320, 0, 640, 240))],
    ),
    (
        "quoted numbers",
        '[{"label": "pen", "bbox": ["0.1", "0.2", "0.3", "0.4"]}]',
        [("pen", (64, 96, 192, 192))],
    ),
    (
        "bare box lists",
        "[[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.7]]",
        [("object", (64, 96, 192, 192)), ("object", (320, 240, 384, 336))],
    ),
    (
        "box as a string",
        '[{"label": "tv", "bbox": "[0.25, 0.25, 0.75, 0.75]"}]',
        [("tv", (160, 120, 480, 360))],
    ),
    (
        "escaped emoji pair and a lone half",
        '[{"label": "\\ud83d\\ude00", "bbox": [0, 0, 1, 1]}, '
        '{"label": "x\\ud800", "bbox": [0, 0, 0.5, 1]}]',
        [("\U0001f600", (0, 0, 640, 480)), ("x\ufffd", (0, 0, 320, 480))],
    ),
    ("nothing found, empty list", "[]", []),
    ("nothing found, prose", "I could not find any cats in this image.", []),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CANNED], ids=[c[0] for c in CANNED])
def test_canned_answers_give_exact_pixel_boxes(text, expected):
    result = parse_detections(text, W, H)
    assert boxes(result) == expected
    assert not result.truncated


def test_normalized_boxes_are_kept_and_ordered():
    result = parse_detections(TYPICAL, W, H)
    assert result.scale == "normalized"
    assert [d.box for d in result.detections] == [(0.12, 0.3, 0.55, 0.9), (0.6, 0.2, 0.95, 0.88)]
    assert result.dropped == ()


def test_output_cut_in_the_fifth_object_keeps_the_four_complete_ones():
    full = "[" + ", ".join(item(f"o{i}", [i / 10, 0.1, i / 10 + 0.05, 0.2]) for i in range(1, 6))
    cut = full[: full.rindex('"bbox"') + 14]
    result = parse_detections(cut, W, H)
    assert [d.label for d in result.detections] == ["o1", "o2", "o3", "o4"]
    assert result.truncated


def test_cut_right_after_a_comma_is_truncated_too():
    result = parse_detections("[" + item("cat", [0.1, 0.1, 0.2, 0.2]) + ",", W, H)
    assert boxes(result) == [("cat", (64, 48, 128, 96))]
    assert result.truncated


def test_prose_with_an_open_bracket_is_not_called_truncated():
    result = parse_detections("No objects [none found", W, H)
    assert result.detections == ()
    assert not result.truncated
    assert result.scale is None


def test_bad_boxes_are_dropped_with_a_reason_each():
    text = (
        '[{"label": "a", "bbox": [NaN, 0, 1, 1]}, {"label": "b", "bbox": [0.1, 0.2, 0.3]},'
        ' {"label": "c", "bbox": ["x", 0, 1, 1]}, {"label": "d", "bbox": [0.5, 0.5, 0.5, 0.6]},'
        ' {"label": "e"}, {"label": "f", "bbox": [0.1, 0.1, 0.2, Infinity]},'
        ' {"label": "g", "bbox": [0.5, 0.5, 0.5004, 0.6]}, {"label": "h", "bbox": 7},'
        ' {"label": "ok", "bbox": [0.1, 0.1, 0.2, 0.2]}]'
    )
    result = parse_detections(text, W, H)
    assert boxes(result) == [("ok", (64, 48, 128, 96))]
    assert result.dropped == (
        "item 1: NaN or infinite coordinate",
        "item 2: box has 3 values, expected 4",
        "item 3: non-numeric box",
        "item 4: zero-area box",
        "item 5: no box",
        "item 6: NaN or infinite coordinate",
        "item 7: zero-area box",
        "item 8: box is not a list of 4 numbers",
    )


def test_runaway_repetition_is_collapsed_and_reported():
    cat = item("cat", [0.1, 0.1, 0.3, 0.3])
    text = "[" + ", ".join([cat] * 30 + [item("dog", [0.5, 0.5, 0.7, 0.7]), cat]) + "]"
    result = parse_detections(text, W, H)
    assert [d.label for d in result.detections] == ["cat", "dog"]
    assert result.dropped == ("items 2-32: 30 repeats of item 1",)


def test_a_single_repeat_names_the_item():
    cat = item("cat", [0.1, 0.1, 0.3, 0.3])
    result = parse_detections(f"[{cat}, {cat}]", W, H)
    assert result.dropped == ("item 2: repeat of item 1",)


def test_detections_stop_at_the_cap():
    many = [item("o", [i / 1000, 0.1, i / 1000 + 0.5, 0.9]) for i in range(250)]
    result = parse_detections("[" + ",".join(many) + "]", 4000, 3000)
    assert len(result.detections) == MAX_DETECTIONS
    assert result.dropped[-1] == "stopped at 200 detections; 50 more items ignored"


# --- scale --------------------------------------------------------------------------------


def test_per_mille_is_chosen_on_an_image_larger_than_1000():
    result = parse_detections(item("bus", [100, 250, 600, 750]), 1920, 1080)
    assert result.scale == "per-mille"
    assert boxes(result) == [("bus", (192, 270, 1152, 810))]


def test_values_that_cannot_be_pixels_are_per_mille():
    result = parse_detections(item("bus", [100, 250, 600, 750]), W, H)  # y 750 > 480
    assert result.scale == "per-mille"
    assert boxes(result) == [("bus", (64, 120, 384, 360))]


def test_values_that_fit_a_small_image_are_pixels():
    result = parse_detections(item("bus", [100, 250, 600, 450]), W, H)
    assert result.scale == "pixels"
    assert boxes(result) == [("bus", (100, 250, 600, 450))]


def test_pixels_above_1000_are_clamped_to_the_image():
    result = parse_detections(item("car", [1100, 700, 1300, 900]), 1200, 800)
    assert result.scale == "pixels"
    assert boxes(result) == [("car", (1100, 700, 1200, 800))]
    assert result.detections[0].box == (0.916667, 0.875, 1.0, 1.0)  # rounded to 6 places


def test_scale_is_decided_once_for_the_whole_answer():
    # One per-mille box makes the whole answer per-mille: the small one becomes tiny.
    text = "[" + item("a", [0.5, 0.5, 1.0, 1.0]) + "," + item("b", [100, 100, 900, 900]) + "]"
    result = parse_detections(text, W, H)
    assert result.scale == "per-mille"
    assert boxes(result) == [("b", (64, 48, 576, 432))]
    assert result.dropped == ("item 1: zero-area box",)


def test_a_box_wholly_outside_the_image_is_dropped():
    text = "[" + item("a", [1200, 10, 1500, 90]) + "," + item("b", [10, 10, 50, 50]) + "]"
    result = parse_detections(text, W, H)
    assert result.scale == "pixels"
    assert boxes(result) == [("b", (10, 10, 50, 50))]
    assert result.dropped == ("item 1: box outside the image",)


def test_result_to_dict_is_json_ready():
    data = parse_detections(TYPICAL, W, H).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["detections"][0] == {
        "label": "cat",
        "box": [0.12, 0.3, 0.55, 0.9],
        "box_px": [77, 144, 352, 432],
    }
    assert (data["scale"], data["truncated"], data["dropped"]) == ("normalized", False, [])


def test_a_non_positive_image_size_is_a_caller_error():
    with pytest.raises(ValueError):
        parse_detections(TYPICAL, 0, 480)


# --- robustness ---------------------------------------------------------------------------


def check_invariants(result: DetectionResult, width: int, height: int) -> None:
    assert len(result.detections) <= MAX_DETECTIONS
    for d in result.detections:
        x1, y1, x2, y2 = d.box
        assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
        px1, py1, px2, py2 = d.box_px
        assert 0 <= px1 < px2 <= width and 0 <= py1 < py2 <= height
        assert d.label.encode("utf-8")  # no lone surrogates from \ud800-style escapes
    assert result.scale in (None, "normalized", "per-mille", "pixels")
    json.dumps(result.to_dict(), allow_nan=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(), st.integers(1, 5000), st.integers(1, 5000))
def test_never_raises_on_any_text(text, width, height):
    check_invariants(parse_detections(text, width, height), width, height)


PIECES = [
    "[", "]", "{", "}", ",", ":", '"label"', '"bbox"', "'box'", "bbox_2d", '"cat"', "'dog'",
    "0.5", "0", "1", "1e309", "-3", "999", "1000.5", "NaN", "Infinity", "true", "None", '"',
    "'", "\\", " ", "\n", "```json", "x", "\\u12", '"\\"', "objects", "0.1, 0.2, 0.3, 0.4",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=80))
def test_never_raises_on_json_like_garbage(pieces):
    check_invariants(parse_detections("".join(pieces), W, H), W, H)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-2000, 2000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.integers(0, 400))
def test_never_raises_on_cut_json(value, cut):
    text = json.dumps(value)
    check_invariants(parse_detections(text[:cut], W, H), W, H)


@pytest.mark.parametrize(
    "pattern",
    [
        '"\\',
        "'\\",
        "[",
        "{",
        "[x ",
        "[0.1,",
        "[]",
        '{"a":',
        "a",
        '["\\',
        "[" + item("c", [0, 0, 1, 1]),
    ],
)
def test_a_megabyte_of_garbage_finishes_fast(pattern):
    text = (pattern * (1_000_000 // len(pattern) + 1))[:1_000_000]
    start = time.perf_counter()
    check_invariants(parse_detections(text, W, H), W, H)
    assert time.perf_counter() - start < 5.0


def test_a_megabyte_of_random_characters_finishes_fast():
    rng = random.Random(7)
    text = "".join(rng.choice("[]{}\",:'0123456789.abc \n\\-e") for _ in range(1_000_000))
    start = time.perf_counter()
    check_invariants(parse_detections(text, W, H), W, H)
    assert time.perf_counter() - start < 5.0
