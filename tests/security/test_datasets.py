"""Hostile datasets and export folders: nothing escapes its folder, hangs or half-imports.

Each test builds the attack on disk, runs lfmdesk on it and checks what a user would see:
a one-line error or a skipped file with a warning, and that nothing outside the target
folder (or inside the project, for a refused import) changed.
"""

from __future__ import annotations

import errno
import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hostile import assert_clean, fifo, make_project, picture, run_cli, snapshot

from lfmdesk.core import InputError, LfmdeskError
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets.formats._table import export_dataset, import_dataset

# --- export: OUT is checked before anything is written ---------------------------------------


def test_export_writes_nothing_through_a_symlinked_labels_folder(project, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "a.txt").write_text("my notes\n")
    out = tmp_path / "out"
    export_dataset(project, "yolo", out)  # an earlier export: OUT is ours
    before = snapshot(victim)
    for sub in ("labels", "images"):
        target = out / sub
        for path in sorted(target.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        target.rmdir()
        target.symlink_to(victim)
        with pytest.raises(InputError, match="symbolic link") as info:
            export_dataset(project, "yolo", out)
        assert "\n" not in str(info.value)
        assert snapshot(victim) == before
        target.unlink()
        target.mkdir()


def test_export_never_follows_a_symlink_standing_in_for_a_file(project, tmp_path):
    out = tmp_path / "out"
    export_dataset(project, "coco", out)
    secret = tmp_path / "secret.json"
    secret.write_text('{"keep": true}\n')
    (out / "annotations.json").unlink()
    (out / "annotations.json").symlink_to(secret)
    export_dataset(project, "coco", out)
    assert secret.read_text() == '{"keep": true}\n'  # the link was replaced, not followed
    assert not (out / "annotations.json").is_symlink()


@pytest.mark.parametrize("where", ["home", "above home"])
def test_export_refuses_the_home_folder(project, tmp_path, monkeypatch, where):
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    out = home if where == "home" else home.parent
    before = snapshot(tmp_path / "home")
    with pytest.raises(InputError, match="system or home folder"):
        export_dataset(project, "coco", out, overwrite=True)
    assert snapshot(tmp_path / "home") == before


def test_export_refuses_the_file_system_root_before_writing(project, monkeypatch):
    import lfmdesk.core._atomic as atomic

    def no_writes(path: Path) -> None:
        raise AssertionError(f"tried to write {path}")

    monkeypatch.setattr(atomic, "_open_temp", no_writes)  # safety net: never touch "/"
    with pytest.raises(InputError, match="system or home folder"):
        export_dataset(project, "coco", Path("/"), overwrite=True)


def test_export_refuses_a_folder_of_other_files_unless_overwrite(project, tmp_path):
    from lfmdesk.core import FolderNotEmptyError

    out = tmp_path / "mine"
    out.mkdir()
    picture(out / "images" / "a.png", color="white")  # the user's own file, same name
    (out / "annotations.json").write_text("my own annotations\n")
    before = snapshot(out)
    with pytest.raises(FolderNotEmptyError, match="not an lfmdesk export") as info:
        export_dataset(project, "coco", out)
    assert "\n" not in str(info.value)
    assert snapshot(out) == before
    report = export_dataset(project, "coco", out, overwrite=True)  # asked for: replaced
    assert report.images == 3 and (out / ".lfmdesk-export.json").is_file()
    export_dataset(project, "yolo", out)  # now an lfmdesk export: no question asked


def test_export_into_an_empty_or_new_folder_needs_no_overwrite(project, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")
    export_dataset(project, "labelme", tmp_path / "empty")
    export_dataset(project, "labelme", tmp_path / "new" / "folder")


def test_cli_export_names_the_overwrite_flag(project, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.pdf").write_bytes(b"%PDF")
    proc = run_cli("export", str(project.root), "-f", "voc", "-o", str(out))
    assert_clean(proc, code=2)
    assert "--overwrite" in proc.stderr and not (out / "Annotations").exists()
    proc = run_cli("export", str(project.root), "-f", "voc", "-o", str(out), "--overwrite")
    assert_clean(proc, code=0)
    assert (out / "thesis.pdf").read_bytes() == b"%PDF"


# --- annotation files that point outside the project -----------------------------------------


def _external_attack(tmp_path: Path) -> Project:
    """A project two folders down whose _external annotation's "image" climbs out of it.

    ``../../../x/src.png`` names ``tmp/x/src.png`` as the image; its annotation would be
    saved as ``.lfmdesk/annotations/../../../x/src.png.json`` (outside the project) and
    exported as ``OUT/images/../../../x/src.png`` (outside OUT).
    """
    picture(tmp_path / "x" / "src.png", (32, 32), "white")
    project = make_project(tmp_path / "p1" / "p2" / "proj")
    folder = project.meta / "annotations" / "_external"
    folder.mkdir(parents=True)
    doc = {
        "schema_version": 1,
        "image": "../../../x/src.png",
        "width": 32,
        "height": 32,
        "boxes": [{"label": "car", "box_px": [1, 1, 9, 9], "source": "person"}],
    }
    (folder / "deadbeef-src.png.json").write_text(json.dumps(doc))
    return project


def _outside(tmp_path: Path, target: str) -> dict[str, object]:
    """Every file outside ``target`` (the folders on the way to it may be created)."""
    on_the_way = {str(p) for p in Path(target).parents}
    return {
        k: v
        for k, v in snapshot(tmp_path).items()
        if not k.startswith(target) and k not in on_the_way
    }


def test_an_external_annotation_cannot_make_export_write_outside_out(tmp_path):
    project = _external_attack(tmp_path)
    before = _outside(tmp_path, "o1/o2/out")
    assert "../../../x/src.png" not in project.images()
    report = export_dataset(project, "coco", tmp_path / "o1" / "o2" / "out", layout="nested")
    assert report.images == 3
    assert _outside(tmp_path, "o1/o2/out") == before
    assert any("cannot leave the project folder" in w for w in project.warnings)


def test_an_external_annotation_cannot_make_annotate_write_outside(tmp_path):
    from lfmdesk.core import annotate_project, parse_detections

    project = _external_attack(tmp_path)
    before = _outside(tmp_path, "p1/p2/proj")

    def detect(image, labels, cancel):  # the model's part; what is under test is the saving
        answer = '[{"label": "car", "bbox": [0.1, 0.1, 0.5, 0.5]}]'
        return parse_detections(answer, image.width, image.height)

    events = list(annotate_project(project, "car", detect))
    assert _outside(tmp_path, "p1/p2/proj") == before
    assert events[-1].annotated == 1  # c.png; the other two were a person's


def test_the_cli_warns_once_about_an_external_annotation_that_escapes(tmp_path):
    project = _external_attack(tmp_path)
    proc = run_cli("export", str(project.root), "-f", "coco", "-o", str(tmp_path / "out"))
    assert_clean(proc, code=0)
    assert proc.stderr.count("cannot leave the project folder") == 1


@pytest.mark.parametrize("key", ["../outside.png", "a/../../x.png", "/etc/../etc/passwd", ""])
def test_keys_that_escape_are_refused(project, key):
    with pytest.raises(InputError):
        project.annotation_path(key)
    with pytest.raises(InputError):
        project.image_path(key)


# --- import: only files under the dataset folder, never through links -----------------------


def _voc_with_path(src: Path, stored: Path) -> None:
    (src / "Annotations").mkdir(parents=True)
    (src / "Annotations" / "a.xml").write_text(
        "<annotation><filename>gone.png</filename>"
        f"<path>{stored}</path><size><width>64</width><height>48</height></size>"
        "<object><name>car</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>9</xmax>"
        "<ymax>9</ymax></bndbox></object></annotation>"
    )


def test_voc_path_outside_the_dataset_is_not_copied_in(tmp_path):
    private = picture(tmp_path / "private" / "photo.png", (64, 48), "white")
    src = tmp_path / "ds"
    _voc_with_path(src, private)
    target = tmp_path / "p"
    target.mkdir()
    report = import_dataset(src, "voc", Project(target))
    assert report.images == 0 and report.copied == 0
    assert not any(p.suffix == ".png" for p in target.rglob("*"))


def test_voc_path_inside_the_dataset_is_still_used(tmp_path):
    src = tmp_path / "ds"
    inside = picture(src / "elsewhere" / "photo.png", (64, 48), "white")
    _voc_with_path(src, inside)
    (tmp_path / "p").mkdir()
    report = import_dataset(src, "voc", Project(tmp_path / "p"))
    assert (report.images, report.boxes) == (1, 1)


def test_labelme_imagepath_outside_the_dataset_is_not_copied_in(tmp_path):
    private = picture(tmp_path / "private" / "photo.png", (64, 48), "white")
    src = tmp_path / "lm"
    src.mkdir()
    doc = {
        "shapes": [{"label": "car", "points": [[1, 1], [9, 9]], "shape_type": "rectangle"}],
        "imagePath": os.path.relpath(private, src),
        "imageData": None,
    }
    (src / "x.json").write_text(json.dumps(doc))
    target = tmp_path / "p"
    target.mkdir()
    report = import_dataset(src, "labelme", Project(target))
    assert report.copied == 0 and report.images == 0
    assert not any(p.suffix == ".png" for p in target.rglob("*"))


def test_a_symlinked_image_leading_out_of_the_dataset_is_not_copied_in(project, tmp_path):
    out = export_dataset(project, "coco", tmp_path / "out").out
    private = picture(tmp_path / "private.png", (64, 48), "white")
    (out / "images" / "a.png").unlink()
    (out / "images" / "a.png").symlink_to(private)
    (tmp_path / "t").mkdir()
    target = Project(tmp_path / "t")
    report = import_dataset(out, "coco", target)
    assert "a.png" not in target.images() and report.images == 2


@pytest.mark.parametrize("linked", [".lfmdesk", "trips"])
def test_import_never_writes_through_a_symlinked_project_folder(project, tmp_path, linked):
    out = export_dataset(project, "coco", tmp_path / "out").out
    victim = tmp_path / "victim"
    victim.mkdir()
    target_root = tmp_path / "target"
    target_root.mkdir()
    (target_root / linked).symlink_to(victim)
    before, victim_before = snapshot(target_root), snapshot(victim)
    with pytest.raises(LfmdeskError, match="symbolic link") as info:
        import_dataset(out, "coco", Project(target_root))
    assert "\n" not in str(info.value)
    assert snapshot(victim) == victim_before and snapshot(target_root) == before


# --- import: staged, then committed; a person's boxes win -------------------------------------


def test_a_write_failure_mid_import_leaves_the_project_as_it_was(project, tmp_path, monkeypatch):
    import lfmdesk.core._atomic as atomic

    out = export_dataset(project, "coco", tmp_path / "out").out
    picture(tmp_path / "target" / "other.png", color="black")
    target = Project(tmp_path / "target")
    before = snapshot(target.root)
    real, calls = atomic._copy_into, []

    def disk_full_on_the_second_copy(source, fh):
        calls.append(source)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(source, fh)

    monkeypatch.setattr(atomic, "_copy_into", disk_full_on_the_second_copy)
    with pytest.raises(
        LfmdeskError, match=r"c.png: cannot write \(No space left on device\); nothing"
    ):
        import_dataset(out, "coco", target)
    assert snapshot(target.root) == before


def test_a_failure_while_renaming_puts_back_what_was_replaced(project, tmp_path, monkeypatch):
    out = export_dataset(project, "coco", tmp_path / "out").out
    (tmp_path / "t").mkdir()
    target = Project(tmp_path / "t")
    import_dataset(out, "coco", target)
    for key in target.images():  # make them the model's boxes: an import may replace those
        ann = target.load(key)
        target.save(type(ann)(ann.image, ann.width, ann.height, ann.boxes, ("car",), False))
    doc = json.loads((out / "annotations.json").read_text())
    for record in doc["annotations"]:
        record["bbox"] = [5, 5, 2, 2]
    (out / "annotations.json").write_text(json.dumps(doc))
    before = snapshot(target.root)
    real, calls = os.replace, []

    def fail_on_the_third(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_the_third)
    with pytest.raises(LfmdeskError, match="nothing was imported"):
        import_dataset(out, "coco", target)
    monkeypatch.undo()
    assert len(calls) >= 3 and snapshot(target.root) == before


def test_import_keeps_the_boxes_a_person_edited_on_the_same_image(project, tmp_path):
    out = export_dataset(project, "coco", tmp_path / "out").out
    doc = json.loads((out / "annotations.json").read_text())
    for ann in doc["annotations"]:
        ann["bbox"] = [0, 0, 5, 5]  # someone else's boxes for byte-identical images
    (out / "annotations.json").write_text(json.dumps(doc))
    mine = {k: project.load(k) for k in ("a.png", "trips/b.png")}
    report = import_dataset(out, "coco", project)
    assert set(report.kept) == {"a.png", "trips/b.png"}
    for key, ann in mine.items():
        assert project.load(key) == ann


# --- wrong format, damaged and endless files -------------------------------------------------


def test_cli_wrong_format_is_an_error_exit_2(project, tmp_path):
    out = export_dataset(project, "coco", tmp_path / "out").out
    proc = run_cli("import", str(out), "-f", "yolo", "--into", str(tmp_path / "t"))
    assert_clean(proc, code=2)
    assert "looks like a COCO dataset" in proc.stderr and not (tmp_path / "t").exists()


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path):
    src = tmp_path / "ds"
    picture(src / "images" / "a.png")
    (src / "labels").mkdir()
    (src / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    lines = ["a: &a [l, l, l, l, l, l, l, l, l]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    lines.append("names: *i")
    (src / "data.yaml").write_text("\n".join(lines) + "\n")
    assert len((src / "data.yaml").read_bytes()) < 400  # the reported one was 336 bytes
    code = (
        "import resource, sys;"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
        "from lfmdesk.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    import subprocess
    import sys

    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "import",
            str(src),
            "-f",
            "yolo",
            "--into",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert_clean(proc, code=2)
    assert "alias" in proc.stderr and time.monotonic() - started < 30


def test_a_nested_list_of_names_is_refused(tmp_path):
    src = tmp_path / "ds"
    picture(src / "images" / "a.png")
    (src / "labels").mkdir()
    (src / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (src / "data.yaml").write_text("names: [[a, [b]], c]\n")
    (tmp_path / "t").mkdir()
    with pytest.raises(InputError, match="plain value"):
        import_dataset(src, "yolo", Project(tmp_path / "t"))


@pytest.mark.parametrize(
    ("fmt", "make"),
    [
        ("coco", lambda d: fifo(d / "annotations.json")),
        ("labelme", lambda d: fifo(d / "a.json")),
        ("voc", lambda d: fifo(d / "Annotations" / "a.xml")),
    ],
)
def test_a_fifo_in_a_dataset_never_hangs(tmp_path, no_hang, fmt, make):
    src = tmp_path / "ds"
    picture(src / "images" / "a.png")
    make(src)
    (tmp_path / "t").mkdir()
    target = Project(tmp_path / "t")
    with pytest.raises(InputError) as info:
        import_dataset(src, fmt, target)
    assert "\n" not in str(info.value)
    assert list(target.root.iterdir()) == []


def test_a_fifo_as_an_annotation_file_never_hangs_export(project, tmp_path, no_hang):
    fifo(project.annotation_path("c.png"))
    report = export_dataset(project, "coco", tmp_path / "out")
    assert [k for k, _ in report.skipped] == ["c.png"] and report.images == 2
    assert "FIFO" in report.skipped[0][1]


@pytest.mark.parametrize(
    "damage",
    [
        b"\xff\xfe\x00garbage",  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # nested until RecursionError
        b'{"image": "c.png", "width": 1e999, "height": 5}',  # overflows to infinity
        b'{"image": "c.png", "width": ' + b"9" * 5000 + b', "height": 5}',  # 5000 digits
        b'{"image": "c.png", "width": 20, "height": 20, "boxes": [{"label": [1], "box_px": 3}]}',
    ],
)
def test_a_damaged_annotation_is_skipped_with_one_warning(project, tmp_path, damage):
    project.annotation_path("c.png").parent.mkdir(parents=True, exist_ok=True)
    project.annotation_path("c.png").write_bytes(damage)
    out = tmp_path / "out"
    proc = run_cli("export", str(project.root), "-f", "coco", "-o", str(out))
    assert_clean(proc, code=1)
    warnings = [line for line in proc.stderr.splitlines() if "c.png" in line]
    assert len(warnings) == 1 and warnings[0].startswith("lfmdesk: warning: skipped c.png")
    names = [i["file_name"] for i in json.loads((out / "annotations.json").read_text())["images"]]
    assert names == ["a.png", "trips/b.png"]
    assert project.annotation_path("c.png").read_bytes() == damage  # kept as it was


def test_one_unreadable_image_does_not_block_the_export(project, tmp_path):
    (project.root / "broken.png").write_bytes(b"not a picture at all")
    proc = run_cli("export", str(project.root), "-f", "yolo", "-o", str(tmp_path / "out"))
    assert_clean(proc, code=1)
    lines = [line for line in proc.stderr.splitlines() if "broken.png" in line]
    assert len(lines) == 1 and lines[0].startswith("lfmdesk: warning: skipped broken.png")
    assert proc.stdout.startswith("Exported 3 images, 2 boxes as YOLO")
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == [
        "a.png",
        "c.png",
        "trips__b.png",
    ]


# --- labels ----------------------------------------------------------------------------------


def test_hostile_labels_make_valid_files_for_every_tool(tmp_path):
    root = tmp_path / "p"
    picture(root / "a.png", (64, 48))
    project = Project(root)
    ann = project.load_or_empty("a.png")
    from lfmdesk.core.datasets._annotations import add_box, make_box

    for label in ("red\x1b[31m car", "bus\nstop", "line\u2028sep\x85end", "tab\tbed\x00"):
        ann = add_box(ann, make_box(label, (1, 1, 9, 9), ann.width, ann.height))
    project.save(ann)
    assert [b.label for b in ann.boxes] == ["red[31m car", "bus stop", "line sep end", "tab bed"]
    for fmt in ("voc", "yolo"):
        export_dataset(project, fmt, tmp_path / fmt)
    ET.parse(tmp_path / "voc" / "Annotations" / "a.xml")  # valid XML
    names = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text("utf-8"))["names"]
    classes = (tmp_path / "yolo" / "classes.txt").read_text("utf-8").splitlines()
    assert list(names.values()) == classes and len(classes) == 4


@pytest.mark.parametrize("bad", ["\ufffe", "\ud800", "\uffff"])
def test_unrepresentable_labels_are_refused_in_one_line(tmp_path, bad):
    from lfmdesk.core.datasets._annotations import make_box

    with pytest.raises(InputError, match="cannot be saved") as info:
        make_box(f"car{bad}", (1, 1, 9, 9), 20, 20)
    assert "\n" not in str(info.value)


def test_an_unrepresentable_label_in_a_dataset_is_a_one_line_import_error(project, tmp_path):
    out = export_dataset(project, "coco", tmp_path / "out").out
    text = (out / "annotations.json").read_text().replace('"name": "car"', '"name": "car\\ud800"')
    (out / "annotations.json").write_text(text)
    (tmp_path / "t").mkdir()
    with pytest.raises(InputError, match="cannot be saved"):
        import_dataset(out, "coco", Project(tmp_path / "t"))
    assert list((tmp_path / "t").iterdir()) == []


def test_import_notes_are_escaped_on_the_terminal(tmp_path):
    src = tmp_path / "coco"
    picture(src / "images" / "a.png")
    doc = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "\x1b]0;pwned\x07\nlfmdesk: error: fake.png", "width": 1},
        ],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        "categories": [{"id": 1, "name": "car"}],
    }
    (src / "annotations.json").write_text(json.dumps(doc))
    proc = run_cli("import", str(src), "-f", "coco", "--into", str(tmp_path / "t"))
    assert_clean(proc, code=0)
    assert "\\x1b]0;pwned\\x07\\nlfmdesk: error: fake.png" in proc.stderr
    assert not any(line.startswith("lfmdesk: error") for line in proc.stderr.splitlines())
