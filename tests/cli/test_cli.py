"""The ``lfmdesk`` command line, run as a user runs it (a subprocess) on fixture checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lfmdesk.core import VisionSettings, plan_tiles


def lfmdesk(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lfmdesk", *args],
        input=stdin,
        text=True,
        capture_output=True,
        env=full_env,
        timeout=timeout,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [
        ln
        for ln in proc.stderr.splitlines()
        if ln.strip() and "warning" not in ln.lower() and "Ignoring" not in ln
    ]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "photo.png"
    rng = np.random.default_rng(4)
    Image.fromarray((rng.random((360, 480, 3)) * 255).astype("uint8")).save(path)
    return path


GREEDY = ("--temperature", "0", "--repetition-penalty", "1", "--max-tokens", "12")


def test_ask_json_tokens_equal_raw_mlx_vlm(fixture_models, photo) -> None:
    from mlx_vlm import generate, load

    from lfmdesk.core import ChatRequest, Engine, load_image
    from lfmdesk.core.engine._tiling import apply_vision_settings

    model_dir = fixture_models["8bit"]
    proc = lfmdesk(
        "ask",
        str(photo),
        "-p",
        "What is this?",
        "--model",
        str(model_dir),
        "--compute",
        "native",
        "--seed",
        "0",
        "--json",
        *GREEDY,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # Raw mlx-vlm, same checkpoint, image, prompt text and settings.
    engine = Engine(compute="native")
    engine.load(model_dir)
    prompt = engine.render_prompt(ChatRequest.single("What is this?", [load_image(photo)]))
    model, processor = load(str(model_dir))
    apply_vision_settings(processor.image_processor, VisionSettings())
    raw = generate(model, processor, prompt, image=[str(photo)], max_tokens=12, temperature=0.0)
    eos = processor.tokenizer.eos_token_id
    assert out["stats"]["token_ids"] == [t for t in raw.token_ids if t != eos]
    assert out["stats"]["image_tokens"] == plan_tiles(480, 360, VisionSettings()).image_tokens


def test_ask_streams_text_to_stdout(fixture_models, photo) -> None:
    proc = lfmdesk(
        "ask", str(photo), "-p", "hi", "--model", str(fixture_models["4bit"]), "--stats", *GREEDY
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("\n") and len(proc.stdout) > 1
    assert "prompt tokens" in proc.stderr and "tok/s" in proc.stderr
    # transformers' advice about a missing PyTorch means nothing here (lfmdesk never uses it).
    assert "PyTorch" not in proc.stderr, proc.stderr


def test_detect_prints_valid_json_and_draws(fixture_models, photo, tmp_path) -> None:
    out_png = tmp_path / "boxes.png"
    proc = lfmdesk(
        "detect",
        str(photo),
        "--labels",
        "cat, dog",
        "--model",
        str(fixture_models["8bit"]),
        "--draw",
        str(out_png),
        *GREEDY,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["labels"] == ["cat", "dog"]
    assert (data["width"], data["height"]) == (480, 360)
    assert isinstance(data["detections"], list) and "raw" in data and "dropped" in data
    with Image.open(out_png) as drawn:
        assert drawn.size == (480, 360)


def test_detect_refuses_to_draw_over_its_input(fixture_models, photo) -> None:
    before = photo.read_bytes()
    proc = lfmdesk(
        "detect",
        str(photo),
        "--labels",
        "cat",
        "--model",
        str(fixture_models["8bit"]),
        "--draw",
        str(photo),
        *GREEDY,
    )
    assert proc.returncode == 2
    assert "refusing to overwrite" in one_line_error(proc)
    assert photo.read_bytes() == before


def test_offline_with_nothing_cached_names_repo_and_folder_option(photo, tmp_path) -> None:
    proc = lfmdesk(
        "ask",
        "--model",
        "8bit",
        str(photo),
        "-p",
        "hi",
        env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty")},
    )
    assert proc.returncode != 0
    line = one_line_error(proc)
    assert "LiquidAI/LFM2.5-VL-450M-MLX-8bit" in line and "--model" in line


@pytest.mark.parametrize("kind", ["truncated", "bomb", "text", "missing"])
def test_bad_image_is_one_line_and_exit_2(tmp_path, photo, kind) -> None:
    path = tmp_path / f"{kind}.png"
    if kind == "truncated":
        path.write_bytes(photo.read_bytes()[:2000])
    elif kind == "bomb":
        Image.new("L", (30000, 30000 // 8)).save(path)  # header claims 90 Mpx
    elif kind == "text":
        path.write_text("not an image at all")
    proc = lfmdesk("ask", str(path), "-p", "hi", "--model", "/nonexistent")
    assert proc.returncode == 2, proc.stderr
    assert str(path.name) in one_line_error(proc)


def test_out_of_range_setting_is_exit_2(photo) -> None:
    proc = lfmdesk("tiles", str(photo), "--max-image-tokens", "5000")
    assert proc.returncode == 2
    assert "max_image_tokens must be between" in one_line_error(proc)


def test_tiles_json_reports_the_planned_image_tokens(photo) -> None:
    proc = lfmdesk(
        "tiles", str(photo), "--json", "--max-image-tokens", "64", "--min-image-tokens", "16"
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    vision = VisionSettings(max_image_tokens=64, min_image_tokens=16)
    assert plan["image_tokens"] == plan_tiles(480, 360, vision).image_tokens
    text = lfmdesk("tiles", str(photo))
    assert "image tokens:" in text.stdout


def test_tools_prints_parsed_calls_and_rejects_bad_specs(fixture_models, tmp_path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(
        json.dumps(
            [
                {
                    "name": "get_weather",
                    "description": "Weather by city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ]
        )
    )
    proc = lfmdesk(
        "tools",
        "--tools",
        str(tools),
        "-p",
        "Weather in Paris?",
        "--json",
        "--model",
        str(fixture_models["8bit"]),
        *GREEDY,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"text", "content", "calls", "errors"}
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    proc = lfmdesk("tools", "--tools", str(bad), "-p", "x", "--model", str(fixture_models["8bit"]))
    assert proc.returncode == 2
    one_line_error(proc)


def test_chat_repl_keeps_history_and_attaches_images(fixture_models, photo) -> None:
    script = f"hello\n/image {photo}\nwhat is this?\n/image /no/such.png\n/quit\n"
    proc = lfmdesk("chat", "--model", str(fixture_models["8bit"]), *GREEDY, stdin=script)
    assert proc.returncode == 0, proc.stderr
    assert "attached" in proc.stderr and "no/such.png" in proc.stderr
    assert proc.stdout.count("\n") >= 2  # two streamed answers


def test_models_list_shows_the_variants() -> None:
    proc = lfmdesk("models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    keys = {r["key"] for r in rows}
    assert {"4bit", "5bit", "6bit", "8bit", "bf16"} <= keys
    assert [r["key"] for r in rows if r["default"]] == ["8bit"]


def test_help_lists_the_commands() -> None:
    proc = lfmdesk("--help")
    assert proc.returncode == 0
    assert all(cmd in proc.stdout for cmd in ("ask", "detect", "chat", "tools", "tiles", "models"))


def test_window_self_test_answers_about_a_picture(fixture_models) -> None:
    """`lfmdesk --model FOLDER --self-test`: the window, its engine process and the model."""
    proc = lfmdesk(
        "--model", str(fixture_models["8bit"]), "--self-test", env={"QT_QPA_PLATFORM": "offscreen"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "self-test: ok:" in proc.stdout and "image tokens" in proc.stdout
