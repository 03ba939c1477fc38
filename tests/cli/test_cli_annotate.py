"""``lfmdesk annotate`` on a real fixture model: a JSON line per image, resume, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lfmdesk.cli import main
from lfmdesk.core import Project


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "shots"
    folder.mkdir()
    for i, size in enumerate([(96, 64), (64, 96), (80, 80)]):
        Image.new("RGB", size, (40 * i, 120, 200)).save(folder / f"shot{i}.png")
    return folder


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_annotate_runs_the_model_per_image_then_resumes(
    fixture_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    model = ["--model", str(fixture_models["8bit"]), "--max-tokens", "8"]
    assert main(["annotate", str(folder), "--labels", "car, person", "--json", *model]) == 0
    first = _lines(capsys.readouterr().out)
    assert [(r["image"], r["status"]) for r in first] == [
        ("shot0.png", "annotated"),
        ("shot1.png", "annotated"),
        ("shot2.png", "annotated"),
    ]
    assert (first[1]["width"], first[1]["height"]) == (64, 96)
    saved = Project(folder).load("shot2.png")
    assert saved is not None and saved.detected == ("car", "person")

    out = tmp_path / "dataset"
    args = ["annotate", str(folder), "-l", "person,car", "--json", "--format", "yolo"]
    assert main([*args, "--out", str(out), *model]) == 0
    captured = capsys.readouterr()
    assert {r["status"] for r in _lines(captured.out)} == {"skipped"}  # resumed: nothing left
    assert "3 skipped" in captured.err
    assert sorted(p.name for p in (out / "labels").iterdir()) == [
        "shot0.txt",
        "shot1.txt",
        "shot2.txt",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "coco"], "--format needs --out"),
        (["--labels", " , "], "no labels"),
    ],
)
def test_annotate_bad_input_is_one_line_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    folder = _folder(tmp_path)
    args = ["annotate", str(folder), *extra]
    if "--labels" not in extra:
        args += ["--labels", "car"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (folder / ".lfmdesk").exists()


def test_annotate_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", str(tmp_path / "nope"), "--labels", "car"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_annotate_in_batches_saves_what_one_at_a_time_saves(
    fixture_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["--model", str(fixture_models["8bit"]), "--max-tokens", "12", "--temperature", "0"]
    runs = {}
    for batch in ("1", "3"):
        (tmp_path / batch).mkdir()
        folder = _folder(tmp_path / batch)
        args = ["annotate", str(folder), "--labels", "car", "--json", "--batch", batch, *model]
        assert main(args) == 0
        lines = _lines(capsys.readouterr().out)
        assert sorted(r["image"] for r in lines) == ["shot0.png", "shot1.png", "shot2.png"]
        runs[batch] = {r["image"]: Project(folder).load(str(r["image"])) for r in lines}
    assert runs["1"] == runs["3"]


def test_annotate_batch_must_be_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    assert main(["annotate", str(folder), "--labels", "car", "--batch", "0"]) == 2
    err = capsys.readouterr().err
    assert "--batch must be at least 1" in err and err.count("\n") == 1
    assert not (folder / ".lfmdesk").exists()
