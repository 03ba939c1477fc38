"""``lfmdesk train``, ``lfmdesk adapters`` and ``--adapter`` on the real fixture models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lfmdesk.cli import main
from lfmdesk.core.testing import squares_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return squares_project(tmp_path_factory.mktemp("cli-train") / "squares", 12)


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("lfmdesk: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_train_then_detect_list_and_remove(
    project: Path, fixture_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bf16, q8 = str(fixture_models["bf16"]), str(fixture_models["8bit"])
    run = ["train", str(project), "--labels", "square", "--model", bf16, "--name", "cli"]
    assert main([*run, "--steps", "3", "--rank", "16", "--lr", "2e-3"]) == 0
    out, err = capsys.readouterr()
    assert "training 'cli': " in err and "on the CPU in float32" in err
    assert "held-out Detect (greedy), base → adapter:" in out
    assert f"--model {bf16} --adapter cli" in out

    assert main(["adapters", "list", "--json"]) == 0
    (row,) = [r for r in json.loads(capsys.readouterr().out) if r["name"] == "cli"]
    assert row["finished"] and row["base"]["spec"] == bf16 and row["labels"] == ["square"]

    image = str(project / "square-000.png")
    detect = ["detect", image, "--labels", "square", "--temperature", "0", "--max-tokens", "8"]
    assert main([*detect, "--model", bf16, "--adapter", "cli"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == ["square"]
    assert main([*detect, "--model", bf16, "--adapter", "cli", "--max-image-tokens", "64"]) == 0
    assert "trained with max_image_tokens 256 (now 64)" in capsys.readouterr().err

    assert main([*detect, "--model", q8, "--adapter", "cli"]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "'cli' was trained on the bf16 model" in line and f"use --model {bf16}" in line
    assert main([*detect, "--model", bf16, "--adapter", "nope"]) == 2
    assert "no adapter named 'nope'" in _error_line(capsys.readouterr().err)

    assert main(["adapters", "remove", "cli"]) == 0
    assert main(["adapters", "list"]) == 0
    assert "cli " not in capsys.readouterr().out


def test_ctrl_c_saves_and_resume_finishes(project: Path, fixture_models: dict[str, Path]) -> None:
    model = str(fixture_models["bf16"])
    args = [sys.executable, "-m", "lfmdesk", "train", str(project), "--labels", "square"]
    args += ["--model", model, "--steps", "40", "--no-eval", "--name", "sig"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 240
    for line in proc.stderr:  # wait until training runs
        if "training 'sig'" in line or time.monotonic() > deadline:
            break
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert f"continue with: lfmdesk train {project} --name sig --resume" in err
    assert "Traceback" not in err

    env = {**os.environ}
    again = subprocess.run(
        [*args[:4], str(project), "--name", "sig", "--resume", "--steps", "7"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert again.returncode == 2
    assert "was started with steps 40" in _error_line(again.stderr)
    done = subprocess.run(
        [*args[:4], str(project), "--resume", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert (info["name"], info["steps"], info["base_score"]) == ("sig", 40, None)
    assert "resuming at step" in done.stderr


def test_train_refuses_bad_input_in_one_line(
    tmp_path: Path, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", str(empty)]) == 2
    assert "no labels to teach" in _error_line(capsys.readouterr().err)
    assert main(["train", str(empty), "--labels", "cat"]) == 2
    assert "no image has boxes a person made or checked" in _error_line(capsys.readouterr().err)
    assert main(["train", str(project), "--steps", "0"]) == 2
    assert "steps must be between 1" in _error_line(capsys.readouterr().err)
    assert main(["train", str(project), "--resume", "--name", "never"]) == 2
    assert "nothing to resume" in _error_line(capsys.readouterr().err)
