"""``lfmdesk eval`` and constrained ``detect``, run as a user runs them, on fixture checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from lfmdesk.core import Project, make_box
from lfmdesk.core.datasets._annotations import ImageAnnotation

LABELS = "red square, blue disc"


def lfmdesk(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lfmdesk", *args],
        text=True,
        capture_output=True,
        env=dict(os.environ),
        timeout=timeout,
    )


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("lfmdesk: error")]


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "shots"
    root.mkdir()
    for n, (w, h) in enumerate(((120, 90), (80, 80), (100, 60))):
        image = Image.new("RGB", (w, h), (120, 140, 160))
        image.paste((220, 30, 30), (10, 10, 40, 40))
        image.save(root / f"shot{n}.png")
        box = make_box("red square", (10, 10, 40, 40), w, h)
        Project(root).save(ImageAnnotation(f"shot{n}.png", w, h, (box,), edited=True))
    Image.new("RGB", (50, 50)).save(root / "no-truth.png")
    return root


def evaluate(project: Path, model: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return lfmdesk(
        "eval", str(project), "--labels", LABELS, "--model", str(model), "--tiling", "max64",
        "--max-tokens", "48", *extra,
    )  # fmt: skip


def test_eval_prints_the_table_writes_the_report_and_reruns_from_the_cache(
    project, fixture_models, tmp_path
) -> None:
    first = evaluate(project, fixture_models["8bit"])
    assert first.returncode == 0, first.stderr
    rows = [ln for ln in first.stdout.splitlines() if "·" in ln]
    assert len(rows) == 2 and sum(r.startswith("*") for r in rows) == 1  # constrained and free
    assert "3 images with ground truth (1 without, skipped); 6 answers, 0 cached" in first.stderr
    report = project / ".lfmdesk" / "eval" / "report.json"
    data = json.loads(report.read_text())
    assert [c["decoding"] for c in data["configurations"]] == ["constrained", "free"]
    assert data["configurations"][0]["parse_failures"] == 0
    assert (project / ".lfmdesk" / "eval" / "report.csv").is_file()

    again = evaluate(project, fixture_models["8bit"], "--json", "--out", str(tmp_path / "r"))
    assert again.returncode == 0, again.stderr
    assert "6 answers, 6 cached" in again.stderr and "loading" not in again.stderr
    assert json.loads(again.stdout) == data
    assert (tmp_path / "r" / "report.json").read_bytes() == report.read_bytes()

    only = evaluate(project, fixture_models["8bit"], "--free")
    rows = [ln for ln in only.stdout.splitlines() if "·" in ln]
    assert len(rows) == 1 and "· max64 · free" in rows[0]
    assert "3 answers, 3 cached" in only.stderr


def test_ctrl_c_keeps_the_answers_and_the_same_command_resumes(project, fixture_models) -> None:
    command = [
        sys.executable, "-m", "lfmdesk", "eval", str(project), "--labels", LABELS,
        "--model", str(fixture_models["8bit"]), "--free", "--max-tokens", "400",
    ]  # fmt: skip
    answers = project / ".lfmdesk" / "eval" / "answers"
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(answers.glob("*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "run again to resume" in stderr and "Traceback" not in stderr
    kept = len(list(answers.glob("*/*.json")))
    assert 1 <= kept < 3
    resumed = lfmdesk(*command[3:])
    assert resumed.returncode == 0, resumed.stderr
    assert f"3 answers, {kept} cached" in resumed.stderr


def test_eval_refuses_bad_input_in_one_line(project, fixture_models, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    Image.new("RGB", (20, 20)).save(empty / "a.png")
    for args in (
        ("eval", str(empty), "--labels", "car", "--model", str(fixture_models["8bit"])),
        ("eval", str(project), "--labels", "car", "--tiling", "huge"),
        ("eval", str(project), "--labels", " , "),
    ):
        proc = lfmdesk(*args)
        assert proc.returncode == 2, proc.stderr
        assert len(errors(proc)) == 1, proc.stderr


def test_detect_answers_are_valid_json_unless_free(fixture_models, tmp_path) -> None:
    image = tmp_path / "photo.png"
    Image.new("RGB", (160, 120), (30, 90, 200)).save(image)
    common = ("detect", str(image), "--labels", "cat, dog", "--model", str(fixture_models["8bit"]))
    constrained = lfmdesk(*common, "--max-tokens", "64")
    assert constrained.returncode == 0, constrained.stderr
    data = json.loads(constrained.stdout)
    assert isinstance(json.loads(data["raw"]), list)
    assert data["dropped"] == [] and {d["label"] for d in data["detections"]} <= {"cat", "dog"}
    free = lfmdesk(*common, "--max-tokens", "64", "--free", "--temperature", "0")
    assert free.returncode == 0, free.stderr
    with pytest.raises(ValueError):
        json.loads(json.loads(free.stdout)["raw"])  # random weights write garbage when free
