"""Malformed files end in one clear line, never "internal error: OverflowError/TypeError/...".

The cases the attack report listed (huge and infinite numbers, unhashable ids, lists where
text belongs, digits int() cannot read, nesting) run through the CLI; then hypothesis throws
random JSON at every reader that takes files: COCO, LabelMe, VOC, YOLO, annotation files,
conversations and settings. Each may accept the file or refuse it with lfmdesk's own error,
nothing else.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hostile import assert_clean, picture
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lfmdesk.core import ConversationStore, LfmdeskError
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets.formats._table import import_dataset

BIG = 10**400  # json.dumps writes it; float() of it overflows


@pytest.fixture
def cli(capsys):
    """``lfmdesk ARGS`` in this process (faster than a fresh one); a CompletedProcess back."""
    from lfmdesk.cli import main

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


def _coco(images=None, annotations=None, categories=None) -> dict:
    return {
        "images": images if images is not None else [{"id": 1, "file_name": "a.png"}],
        "annotations": annotations
        if annotations is not None
        else [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        "categories": categories if categories is not None else [{"id": 1, "name": "car"}],
    }


COCO_CASES = {
    "bbox of huge ints": _coco(
        annotations=[{"image_id": 1, "category_id": 1, "bbox": [BIG, 1, 5, 5]}]
    ),
    "bbox of infinities": "INFINITY",
    "category id a list": _coco(categories=[{"id": [1], "name": "car"}]),
    "category id a dict": _coco(
        annotations=[{"image_id": 1, "category_id": {"a": 1}, "bbox": [1, 1, 5, 5]}]
    ),
    "image id a list": _coco(images=[{"id": [1], "file_name": "a.png"}]),
    "image_id a dict": _coco(
        annotations=[{"image_id": {}, "category_id": 1, "bbox": [1, 1, 5, 5]}]
    ),
    "nested": "NESTED",
}


def _write_coco(folder: Path, doc: object) -> None:
    picture(folder / "images" / "a.png")
    if doc == "INFINITY":
        text = json.dumps(_coco()).replace("[1, 1, 5, 5]", "[1e999, 1, 5, 5]")
    elif doc == "NESTED":
        text = '{"images": ' + "[" * 30_000 + "]" * 30_000 + "}"
    else:
        text = json.dumps(doc)
    (folder / "annotations.json").write_text(text)


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_hostile_coco_files_are_one_line_errors(tmp_path, case, cli):
    _write_coco(tmp_path / "ds", COCO_CASES[case])
    proc = cli("import", str(tmp_path / "ds"), "-f", "coco", "--into", str(tmp_path / "p"))
    assert proc.returncode in (0, 2), proc.stderr
    assert_clean(proc, code=proc.returncode)


YOLO_LINES = {
    "superscript class": "² 0.5 0.5 0.1 0.1",
    "arabic-indic class": "٣ 0.5 0.5 0.1 0.1",
    "huge coordinate": "0 1e400 0.5 0.1 0.1",
}


@pytest.mark.parametrize("case", list(YOLO_LINES))
def test_hostile_yolo_lines_are_one_line_errors(tmp_path, case, cli):
    src = tmp_path / "ds"
    picture(src / "images" / "a.png")
    (src / "labels").mkdir()
    (src / "labels" / "a.txt").write_text(YOLO_LINES[case] + "\n")
    (src / "classes.txt").write_text("car\n")
    proc = cli("import", str(src), "-f", "yolo", "--into", str(tmp_path / "p"))
    assert_clean(proc, code=2)


YAML_FILES = {
    "names of maps": "names: {0: {a: 1}}\n",
    "names keyed by floats": "names: {0.5: car}\n",
    "a tagged object": "names: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
    "deep": "names: " + "[" * 5000 + "]" * 5000 + "\n",
}


@pytest.mark.parametrize("case", list(YAML_FILES))
def test_hostile_data_yaml_is_a_one_line_error(tmp_path, case, cli):
    src = tmp_path / "ds"
    picture(src / "images" / "a.png")
    (src / "labels").mkdir()
    (src / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (src / "data.yaml").write_text(YAML_FILES[case])
    proc = cli("import", str(src), "-f", "yolo", "--into", str(tmp_path / "p"))
    assert_clean(proc, code=2)


VOC_VALUES = {
    "huge xmin": ("9" * 400, "1"),
    "nested": ("<a>" * 5000 + "1" + "</a>" * 5000, "1"),
}


@pytest.mark.parametrize("case", list(VOC_VALUES))
def test_hostile_voc_values_are_one_line_errors(tmp_path, case, cli):
    xmin, ymin = VOC_VALUES[case]
    src = tmp_path / "ds"
    picture(src / "JPEGImages" / "a.png")
    (src / "Annotations").mkdir()
    (src / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>a.png</filename><object><name>car</name><bndbox>"
        f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>9</xmax><ymax>9</ymax>"
        "</bndbox></object></annotation>"
    )
    proc = cli("import", str(src), "-f", "voc", "--into", str(tmp_path / "p"))
    assert_clean(proc, code=2)


# (shapes, exit code): strings of digits are read as numbers, an unknown shape is skipped.
LABELME_SHAPES = {
    "points of huge ints": ([{"label": "a", "points": [[BIG, 1], [2, 2]]}], 2),
    "label a dict": ([{"label": {"x": 1}, "points": [[1, 1], [2, 2]]}], 2),
    "points of strings": ([{"label": "a", "points": [["1", "1"], ["2", "2"]]}], 0),
    "shape_type a list": ([{"label": "a", "points": [[1, 1], [2, 2]], "shape_type": ["x"]}], 0),
}


@pytest.mark.parametrize("case", list(LABELME_SHAPES))
def test_hostile_labelme_files_are_one_line_errors(tmp_path, case, cli):
    src = tmp_path / "ds"
    picture(src / "a.png")
    shapes, code = LABELME_SHAPES[case]
    doc = {"shapes": shapes, "imagePath": "a.png", "imageData": None}
    (src / "a.json").write_text(json.dumps(doc))
    proc = cli("import", str(src), "-f", "labelme", "--into", str(tmp_path / "p"))
    assert_clean(proc, code=code)


# --- random JSON at every reader -------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=70),
    st.sampled_from([BIG, -BIG, 2**64, 10**20]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.sampled_from(["a.png", "car", "1", "../a.png", "\x1b[2J", "\ud800", "\ufffe"]),
)
_KEYS = st.sampled_from(
    ["id", "name", "label", "image", "width", "mode", "turns", "role", "text", "schema_version"]
)
JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)
# Files shaped like the real ones, with a random value at any place.
NUMBERS = st.lists(_SCALARS, min_size=0, max_size=5)
ANNOTATION = st.fixed_dictionaries(
    {
        "image": st.just("a.png") | _SCALARS,
        "width": st.just(64) | _SCALARS,
        "height": st.just(48) | _SCALARS,
        "boxes": st.lists(
            st.fixed_dictionaries({"label": _SCALARS, "box_px": NUMBERS}) | JSON, max_size=3
        )
        | JSON,
        "detected": JSON,
        "edited": JSON,
        "schema_version": _SCALARS,
    }
)
COCO = st.fixed_dictionaries(
    {
        "images": st.lists(
            st.fixed_dictionaries({"id": _SCALARS, "file_name": st.just("a.png") | _SCALARS}),
            max_size=3,
        )
        | JSON,
        "annotations": st.lists(
            st.fixed_dictionaries({"image_id": _SCALARS, "category_id": _SCALARS, "bbox": NUMBERS}),
            max_size=3,
        )
        | JSON,
        "categories": st.lists(
            st.fixed_dictionaries({"id": _SCALARS, "name": _SCALARS}), max_size=3
        )
        | JSON,
    }
)
LABELME = st.fixed_dictionaries(
    {
        "shapes": st.lists(
            st.fixed_dictionaries(
                {
                    "label": _SCALARS,
                    "points": st.lists(NUMBERS, max_size=3) | JSON,
                    "shape_type": st.sampled_from(["rectangle", "polygon"]) | _SCALARS,
                }
            ),
            max_size=3,
        )
        | JSON,
        "imagePath": st.just("a.png") | _SCALARS,
    }
)
CONVERSATION = st.fixed_dictionaries(
    {
        "id": st.just("c1"),
        "created": _SCALARS,
        "updated": _SCALARS,
        "title": _SCALARS,
        "turns": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "assistant"]) | _SCALARS,
                    "text": st.just("hi") | _SCALARS,
                    "kind": st.just("detect") | _SCALARS,
                    "detections": st.lists(
                        st.fixed_dictionaries(
                            {"label": _SCALARS, "box": NUMBERS, "box_px": NUMBERS}
                        ),
                        max_size=2,
                    )
                    | JSON,
                    "image_ids": JSON,
                }
            ),
            max_size=2,
        )
        | JSON,
        "schema_version": _SCALARS,
    }
)
SETTINGS = st.fixed_dictionaries(
    {
        "schema_version": _SCALARS,
        "model": _SCALARS,
        "sampling": st.dictionaries(
            st.sampled_from(["temperature", "min_p", "max_tokens", "seed"]), _SCALARS
        )
        | JSON,
        "vision": st.dictionaries(
            st.sampled_from(["max_tiles", "min_image_tokens", "do_image_splitting"]), _SCALARS
        )
        | JSON,
        "live": st.dictionaries(st.sampled_from(["mode", "watch", "vision"]), JSON) | JSON,
        "project": _SCALARS,
    }
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _dump(doc: object) -> str:
    # Lone surrogates go to the file as JSON escapes ("\\ud800"), as a hostile tool writes them.
    return json.dumps(doc)


def _one_line(exc: LfmdeskError) -> None:
    assert "\n" not in str(exc)


@FUZZ
@given(doc=COCO)
def test_random_coco_files(tmp_path_factory, doc):
    folder = tmp_path_factory.mktemp("coco")
    picture(folder / "images" / "a.png")
    (folder / "annotations.json").write_text(_dump(doc))
    target = folder.parent / f"{folder.name}-p"
    target.mkdir()
    try:
        import_dataset(folder, "coco", Project(target))
    except LfmdeskError as exc:
        _one_line(exc)


@FUZZ
@given(doc=LABELME)
def test_random_labelme_files(tmp_path_factory, doc):
    folder = tmp_path_factory.mktemp("lm")
    picture(folder / "a.png")
    (folder / "a.json").write_text(_dump(doc))
    target = folder.parent / f"{folder.name}-p"
    target.mkdir()
    try:
        import_dataset(folder, "labelme", Project(target))
    except LfmdeskError as exc:
        _one_line(exc)


@FUZZ
@given(doc=ANNOTATION)
def test_random_annotation_files(tmp_path_factory, doc):
    root = tmp_path_factory.mktemp("proj")
    picture(root / "a.png")
    project = Project(root)
    path = project.annotation_path("a.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dump(doc))
    try:
        ann = project.load("a.png")
        if ann is not None:
            project.save(ann)  # whatever was read can be written back (or refused in one line)
    except LfmdeskError as exc:
        _one_line(exc)


@FUZZ
@given(doc=CONVERSATION)
def test_random_conversations(tmp_path_factory, doc):
    store = ConversationStore(tmp_path_factory.mktemp("conv"))
    (store.root / "c1.json").write_text(_dump(doc))
    try:
        conversation = store.load("c1")
        json.dumps(conversation.to_json())
    except LfmdeskError as exc:
        _one_line(exc)
    store.list()


@FUZZ
@given(doc=SETTINGS | JSON)
def test_random_settings(tmp_path_factory, doc):
    from lfmdesk.core import open_settings, save_settings

    path = tmp_path_factory.mktemp("cfg") / "settings.json"
    path.write_text(_dump(doc))
    loaded = open_settings(path)
    assert "\n" not in loaded.problem
    try:
        save_settings(loaded.settings, path)
    except LfmdeskError as exc:
        _one_line(exc)
