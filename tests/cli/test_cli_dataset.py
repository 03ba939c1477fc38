"""``lfmdesk export`` / ``lfmdesk import``: summaries, JSON, one-line errors, no MLX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lfmdesk.cli import main
from lfmdesk.core.datasets._annotations import add_box, make_box
from lfmdesk.core.datasets._project import Project

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    Image.new("RGB", (100, 80), (200, 10, 10)).save(root / "one.png")
    Image.new("RGB", (50, 40), (10, 200, 10)).save(root / "sub" / "two.jpg")
    Image.new("RGB", (30, 30), (10, 10, 200)).save(root / "three.png")
    proj = Project(root)
    ann = proj.load_or_empty("one.png")
    ann = add_box(ann, make_box("cat", (1, 2, 50, 60), ann.width, ann.height))
    ann = add_box(ann, make_box("dog", (10, 10, 90, 70), ann.width, ann.height))
    proj.save(ann)
    two = proj.load_or_empty("sub/two.jpg")
    proj.save(add_box(two, make_box("cat", (0, 0, 50, 40), two.width, two.height)))
    return root


def test_export_prints_one_summary_line(project, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(project), "--format", "coco", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert stdout == f"Exported 3 images, 3 boxes as COCO to {out / 'annotations.json'}\n"
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 3


def test_export_json_summary_and_single_image(project, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["export", str(project), "-f", "yolo", "-o", str(out), "--image", "sub/two.jpg"]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["images"], summary["boxes"], summary["format"]) == (1, 1, "yolo")
    assert summary["labels"] == ["cat"]
    assert (out / "labels" / "sub__two.txt").read_text().startswith("0 0.500000 0.500000")


def test_import_creates_the_project_and_prints_a_summary(project, tmp_path, capsys):
    out = tmp_path / "out"
    main(["export", str(project), "--format", "voc", "--out", str(out)])
    capsys.readouterr()
    target = tmp_path / "new" / "project"
    assert main(["import", str(out), "--format", "voc", "--into", str(target)]) == 0
    line = capsys.readouterr().out
    assert line.startswith("Imported 3 images, 3 boxes (2 labels) into")
    assert line.rstrip().endswith("copied 3 images")
    imported = Project(target)
    assert imported.images() == ("one.png", "sub__two.jpg", "three.png")  # VOC is flat
    assert imported.labels() == ("cat", "dog")
    ann = imported.load("one.png")
    assert ann is not None and [b.px for b in ann.boxes] == [(1, 2, 50, 60), (10, 10, 90, 70)]


def test_import_json_summary(project, tmp_path, capsys):
    out = tmp_path / "out"
    main(["export", str(project), "--format", "labelme", "--out", str(out)])
    capsys.readouterr()
    target = tmp_path / "t"
    assert main(["import", str(out), "-f", "labelme", "--into", str(target), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["images"], summary["boxes"], summary["copied"]) == (3, 3, 3)


def test_export_into_the_project_is_a_one_line_error_exit_2(project, capsys):
    before = sorted(p for p in project.rglob("*"))
    code = main(["export", str(project), "--format", "yolo", "--out", str(project / "ds")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("lfmdesk: error: ") and err.count("\n") == 1
    assert "inside the project" in err
    assert sorted(p for p in project.rglob("*")) == before


def test_bad_import_leaves_no_new_project_folder(project, tmp_path, capsys):
    out = tmp_path / "out"
    main(["export", str(project), "--format", "coco", "--out", str(out)])
    (out / "annotations.json").write_text('{"images": 3}')
    capsys.readouterr()
    target = tmp_path / "never" / "made"
    code = main(["import", str(out), "--format", "coco", "--into", str(target)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "annotations.json" in err
    assert not (tmp_path / "never").exists()


def test_import_of_a_missing_source_is_an_error(tmp_path, capsys):
    code = main(["import", str(tmp_path / "nope"), "-f", "yolo", "--into", str(tmp_path / "p")])
    assert code == 2 and "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_export_and_import_do_not_import_mlx(project, tmp_path):
    out, into = str(tmp_path / "o"), str(tmp_path / "p")
    code = (
        "import sys; from lfmdesk.cli import main;"
        f"assert main(['export', {str(project)!r}, '-f', 'coco', '-o', {out!r}]) == 0;"
        f"assert main(['import', {out!r}, '-f', 'coco', '--into', {into!r}]) == 0;"
        "sys.exit(1 if any(m.split('.')[0] in ('mlx', 'mlx_vlm') for m in sys.modules) else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
