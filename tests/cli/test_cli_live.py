"""``lfmdesk live`` end to end: the real engine on the tiny fixture, a short generated GIF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lfmdesk.cli import main
from lfmdesk.core.testing import moving_box_frames

FRAMES = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames at 40 ms: 1.2 s of sliding box, more frames than the model can keep up with."""
    frames = list(moving_box_frames(FRAMES, 160, 120))
    path = tmp_path_factory.mktemp("clip") / "box.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40, loop=0)
    return path


def _model(fixture_models: dict[str, Path]) -> list[str]:
    return ["--model", str(fixture_models["8bit"]), "--temperature", "0", "--max-tokens", "6"]


def test_live_prints_one_line_per_analysed_frame_and_a_summary(
    clip: Path, fixture_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["live", str(clip), *_model(fixture_models)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    frames = [int(line.split()[1]) for line in lines]
    assert all(line.startswith("frame ") and " ms  " in line for line in lines)
    assert frames == sorted(set(frames)) and frames[-1] == FRAMES - 1
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"analysed {len(lines)}/{FRAMES} frames, ")
    assert f"{FRAMES - len(lines)} skipped" in summary and "median latency" in summary


def test_live_json_detect_gives_one_object_per_line(
    clip: Path, fixture_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["live", str(clip), "--detect", "box, cup", "--json", "--as-fast-as-possible"]
    assert main([*args, *_model(fixture_models)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    frames, summary = rows[:-1], rows[-1]
    assert [r["frame"] for r in frames] == list(range(FRAMES))  # every frame, in order
    assert all(r["type"] == "frame" and isinstance(r["detections"], list) for r in frames)
    assert (frames[0]["width"], frames[0]["height"]) == (160, 120)
    assert summary["type"] == "summary"
    assert (summary["offered"], summary["analysed"], summary["skipped"]) == (FRAMES, FRAMES, 0)
    assert summary["median_latency_ms"] >= summary["median_inference_ms"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/clip.mp4"], "open MP4/MOV videos in the app"),
        (["{tmp}/absent.gif"], "no such file or folder"),
        (["{tmp}", "--detect", " , "], "live detect needs something to watch for"),
        (["{tmp}", "--max-tokens", "600"], "max_tokens must be between 1 and 512"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    argv = ["live", *(a.replace("{tmp}", str(tmp_path)) for a in args), "--model", "nowhere"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
