"""Hostile projects, annotation files and conversations: skipped with a warning, never fatal.

Also what every atomic write owes the user: the umask and an existing file's mode are kept,
and the temporary files a kill leaves behind are gone on the next run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hostile import (
    assert_clean,
    fifo,
    make_project,
    picture,
    run_cli,
    snapshot,
    start_window,
)

from lfmdesk.core import ConversationStore, InputError
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets._status import FAILED, project_rows

DAMAGE = {
    "not UTF-8": b'{"image": "c.png", "width": 20, "height": 20, "boxes": ["\xff\xfe"]}',
    "nested": b"[" * 50_000 + b"]" * 50_000,
    "nested object": b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
    "infinite width": b'{"image": "c.png", "width": 1e999, "height": 20}',
    "huge number": b'{"image": "c.png", "width": ' + b"7" * 4_400 + b', "height": 20}',
    "string detected": b'{"image": "c.png", "width": 20, "height": 20, "detected": "car"}',
    "box of strings": b'{"image": "c.png", "width": 20, "height": 20, '
    b'"boxes": [{"label": "x", "box_px": ["1", "2", "3", "4"]}]}',
    "NaN": b'{"image": "c.png", "width": NaN, "height": 20}',
}


# --- damaged annotation files ----------------------------------------------------------------


@pytest.mark.parametrize("damage", list(DAMAGE.values()), ids=list(DAMAGE))
def test_a_damaged_annotation_file_shows_as_failed_and_is_kept(project, damage):
    path = project.annotation_path("c.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(damage)
    rows = {row.key: row for row in project_rows(project)}
    assert rows["c.png"].status == FAILED and "\n" not in rows["c.png"].message
    assert rows["a.png"].status != FAILED
    with pytest.raises(InputError, match="damaged annotation file"):
        project.load("c.png")
    assert path.read_bytes() == damage


def test_saving_over_a_damaged_annotation_keeps_it_as_bad(project):
    path = project.annotation_path("c.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(DAMAGE["not UTF-8"])
    from lfmdesk.core.datasets._annotations import ImageAnnotation

    project.save(ImageAnnotation.empty("c.png", 20, 20))
    [kept] = list(path.parent.glob("c.png.json.bad-*"))
    assert kept.read_bytes() == DAMAGE["not UTF-8"]
    assert project.load("c.png") is not None


def test_a_fifo_as_an_annotation_file_never_hangs(project, no_hang):
    fifo(project.annotation_path("c.png"))
    rows = {row.key: row for row in project_rows(project)}
    assert rows["c.png"].status == FAILED and "FIFO" in rows["c.png"].message


def test_a_fifo_as_project_json_never_hangs(project, no_hang):
    fifo(project.meta / "project.json")
    assert project.labels() == ()


def test_a_folder_that_vanishes_during_the_scan_is_skipped(project, monkeypatch):
    real = os.scandir

    def vanishing(path="."):
        if str(path).endswith("trips"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert project.images() == ("a.png", "c.png")
    assert [row.key for row in project_rows(project)] == ["a.png", "c.png"]


def test_an_image_name_with_a_superscript_digit_is_listed(tmp_path):
    picture(tmp_path / "p" / "1²2.png")
    assert Project(tmp_path / "p").images() == ("1²2.png",)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ('"car"', ("car",)),
        ('"car, bus"', ("car", "bus")),
        ('["car", 7, null, ["x"], "car\\u001b[2J", "\\ud800", "  "]', ("car", "7", "car[2J")),
        ("{}", ()),
    ],
)
def test_project_json_labels_are_read_as_labels(project, labels, expected):
    project.meta.mkdir(exist_ok=True)
    (project.meta / "project.json").write_text(f'{{"schema_version": 1, "labels": {labels}}}')
    assert project.labels() == expected


# --- files from a newer lfmdesk --------------------------------------------------------------


def test_an_annotation_from_a_newer_version_is_read_and_never_written_back(project):
    path = project.annotation_path("a.png")
    doc = json.loads(path.read_text())
    doc.update(schema_version=7, polygons=[[1, 2, 3]], boxes=[*doc["boxes"]])
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    ann = project.load("a.png")
    assert ann is not None and len(ann.boxes) == 1  # read as far as this version can
    with pytest.raises(InputError, match="newer lfmdesk") as info:
        project.save(ann)
    assert "\n" not in str(info.value) and path.read_bytes() == before


def test_project_json_from_a_newer_version_is_never_written_back(project):
    project.meta.mkdir(exist_ok=True)
    path = project.meta / "project.json"
    path.write_text('{"schema_version": 3, "labels": ["car"], "groups": {"car": "vehicle"}}')
    before = path.read_bytes()
    assert project.labels() == ("car",)
    with pytest.raises(InputError, match="newer lfmdesk"):
        project.save_labels(["car", "bus"])
    assert path.read_bytes() == before


def test_a_conversation_from_a_newer_version_is_read_and_never_written_back(tmp_path):
    store = ConversationStore(tmp_path / "c")
    conv = store.new()
    store.save(conv)
    path = store.root / f"{conv.id}.json"
    doc = json.loads(path.read_text())
    doc.update(schema_version=4, branches=[])
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    loaded = store.load(conv.id)
    assert loaded.id == conv.id
    with pytest.raises(InputError, match="newer lfmdesk"):
        store.save(loaded)
    assert path.read_bytes() == before
    assert loaded.to_json()["schema_version"] == 1  # never claims a layout it does not write


# --- conversations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff" * 10,
        b"[" * 100_000,
        b'{"id": "x", "turns": [' * 3000,
        b'{"id": "a", "created": 1e999}',
    ],
    ids=["not UTF-8", "nested list", "nested turns", "infinite time"],
)
def test_a_damaged_conversation_is_skipped_with_one_warning(tmp_path, damage):
    store = ConversationStore(tmp_path / "c")
    good = store.new()
    store.save(good)
    (store.root / "bad.json").write_bytes(damage)
    assert [s.id for s in store.list()] == [good.id]
    assert len(store.problems) == 1 and "\n" not in store.problems[0]
    with pytest.raises(InputError):
        store.load("bad")


def test_a_fifo_as_a_conversation_never_hangs(tmp_path, no_hang):
    store = ConversationStore(tmp_path / "c")
    fifo(store.root / "stuck.json")
    assert store.list() == [] and len(store.problems) == 1


# --- atomic writes: modes and debris ---------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, expected):
    from lfmdesk.core.datasets.formats._table import export_dataset

    old = os.umask(umask)
    try:
        project = make_project(tmp_path / "p")
        report = export_dataset(project, "yolo", tmp_path / "out")
    finally:
        os.umask(old)
    assert {_mode(p) for p in report.files} == {expected}
    assert _mode(project.annotation_path("a.png")) == expected


def test_replacing_a_file_keeps_its_mode(project):
    path = project.annotation_path("a.png")
    os.chmod(path, 0o640)
    project.save(project.load("a.png"))
    assert _mode(path) == 0o640


def test_stale_temporary_files_are_removed_on_the_next_run(project):
    folder = project.annotation_path("a.png").parent
    dead = folder / ".a.png.json.999999999-0123abcd.tmp"  # a PID that cannot be running
    old_style = folder / ".a.png.json.k2j4h5g6.tmp"  # tempfile.mkstemp's, a day old
    alive = folder / f".a.png.json.{os.getpid()}-89abcdef.tmp"  # a write in progress
    copy = project.root / "trips" / ".b.png.999999999-00000000.tmp"  # an import's copy
    for path in (dead, old_style, alive, copy):
        path.write_text("{half")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old_style, (day_ago, day_ago))
    Project(project.root)
    assert not dead.exists() and not old_style.exists() and not copy.exists()
    assert alive.exists()


_KILL_AT = textwrap.dedent(
    """
    import os, sys
    count, real = [0], os.replace

    def replace(src, dst):  # the process dies here, as under kill -9: no cleanup runs
        count[0] += 1
        if count[0] == int(sys.argv[1]):
            os._exit(137)
        return real(src, dst)

    os.replace = replace
    from lfmdesk.cli import main
    sys.exit(main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize("at", [1, 4, 12])
def test_a_killed_import_leaves_no_debris_after_the_next_run(tmp_path, at):
    """Killed at a rename: the next run finds whole files and no temporary files."""
    src = tmp_path / "ds"
    for i in range(12):
        picture(src / "images" / f"{i}.png", (32, 32), (i * 20, 0, 0))
    (src / "labels").mkdir()
    for i in range(12):
        (src / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (src / "classes.txt").write_text("car\n")
    target = tmp_path / "t"
    target.mkdir()
    args = ["import", str(src), "-f", "yolo", "--into", str(target)]
    proc = subprocess.run([sys.executable, "-c", _KILL_AT, str(at), *args], timeout=120)
    assert proc.returncode == 137
    assert [p for p in target.rglob("*") if p.name.endswith(".tmp")]  # debris was left
    Project(target)  # the next run
    assert not [p for p in target.rglob("*") if p.name.endswith(".tmp")]
    for path in target.rglob("*.json"):
        json.loads(path.read_text())  # never half a file


# --- the window starts whatever it finds -----------------------------------------------------


def test_the_window_starts_with_every_file_damaged(tmp_path):
    project = make_project(tmp_path / "proj")
    for key, damage in (("c.png", DAMAGE["nested"]), ("trips/b.png", DAMAGE["not UTF-8"])):
        project.annotation_path(key).write_bytes(damage)
    config = tmp_path / "config"
    config.mkdir()
    settings = {"schema_version": 1, "project": str(project.root)}
    (config / "settings.json").write_bytes(json.dumps(settings).encode() + b"\xff")
    (config / "ui_state.json").write_bytes(b'{"geometry": ' * 20_000)
    conversations = tmp_path / "data" / "conversations"
    conversations.mkdir(parents=True)
    (conversations / "deep.json").write_bytes(b'{"id": "deep", "turns": [' * 5_000)
    before = snapshot(config)
    proc, seen = start_window(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "settings" in seen["banner"] and "using the defaults" in seen["banner"]
    assert snapshot(config)["settings.json"] == before["settings.json"]  # kept as it was


def test_the_window_starts_on_a_remembered_project_with_damaged_annotations(tmp_path):
    project = make_project(tmp_path / "proj")
    project.annotation_path("c.png").write_bytes(DAMAGE["not UTF-8"])
    (project.meta / "annotations" / "trips" / "b.png.json").write_bytes(DAMAGE["nested object"])
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps({"project": str(project.root)}))
    proc, seen = start_window(tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert seen["project"] == str(project.root)
    assert dict(map(tuple, seen["rows"])) == {
        "a.png": "edited by you",
        "c.png": FAILED,
        "trips/b.png": FAILED,
    }


def test_the_cli_skips_a_damaged_annotation_in_annotate_with_one_warning(project):
    project.annotation_path("c.png").write_bytes(DAMAGE["nested"])
    proc = run_cli("annotate", str(project.root), "--labels", "car", "--model", "/nonexistent")
    assert_clean(proc, code=0)
    lines = [line for line in proc.stderr.splitlines() if "c.png" in line]
    assert len(lines) == 1 and lines[0].startswith("lfmdesk: warning: skipped c.png")


def test_a_damaged_conversation_is_warned_about_once(tmp_path, caplog):
    store = ConversationStore(tmp_path / "c")
    store.root.mkdir(parents=True)
    (store.root / "bad.json").write_bytes(b"[" * 100_000)
    for _ in range(3):  # the window refreshes its list after every save
        store.list()
    assert sum("bad.json" in r.getMessage() for r in caplog.records) == 1
