"""A model folder is data, never code: hostile folders load no code, escape nothing, never hang.

mlx-vlm imports whatever ``config.json`` names in ``model_file``. Each attack below puts a
payload that writes a marker file the moment it is imported (a ``.pyc``, a native ``.so`` with
a constructor, a ``.py`` by absolute path, by ``../`` path, or inside a symlinked subfolder) and
loads the folder the ways a user does: the engine, ``lfmdesk ask`` on a folder, ``lfmdesk ask``
on a cached repo offline, and the window's engine process. The marker must never appear.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hostile import (
    copy_model,
    error_lines,
    finishes_within,
    one_line,
    put_in_cache,
    run_cli,
    set_config,
    write_native,
    write_py,
    write_pyc,
)
from PIL import Image

from lfmdesk.core import (
    ChatRequest,
    Engine,
    EngineEvent,
    EngineProcess,
    LoadModel,
    ModelFailed,
    ModelLoaded,
    ensure_model,
    list_cached,
    resolve_model,
    verify_model_dir,
)
from lfmdesk.core._errors import ModelInvalidError

REPO = "LiquidAI/LFM2.5-VL-450M-MLX-8bit"
V1_REPO = "mlx-community/LFM2-VL-450M-8bit"

Attack = Callable[[Path, Path, Path], None]  # (model folder, a folder outside it, marker)


def _pyc(folder: Path, outside: Path, marker: Path) -> None:
    write_pyc(folder / "evil.pyc", marker)
    set_config(folder, model_file="evil.pyc")


def _native(folder: Path, outside: Path, marker: Path) -> None:
    write_native(folder / "evil.so", marker)
    set_config(folder, model_file="evil.so")


def _absolute(folder: Path, outside: Path, marker: Path) -> None:
    set_config(folder, model_file=str(write_py(outside / "evil.py", marker)))


def _dotdot(folder: Path, outside: Path, marker: Path) -> None:
    write_py(folder.parent / "evil.py", marker)
    set_config(folder, model_file="../evil.py")


def _symlinked_subfolder(folder: Path, outside: Path, marker: Path) -> None:
    write_py(outside / "evil.py", marker)
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    set_config(folder, model_file="sub/evil.py")


ATTACKS: dict[str, Attack] = {
    "pyc": _pyc,
    "native-so": _native,
    "absolute-path": _absolute,
    "dotdot-path": _dotdot,
    "py-in-symlinked-subfolder": _symlinked_subfolder,
}


def hostile_folder(src: Path, root: Path, attack: str, marker: Path) -> Path:
    folder = copy_model(src, root / "model")
    outside = root / "outside"
    outside.mkdir()
    ATTACKS[attack](folder, outside, marker)
    return folder


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where a payload writes if it runs; the tests assert it never appears."""
    return tmp_path / "PWNED"


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    return path


# -- model_file: the engine, the CLI, cached repos offline, the engine process -----------------


@pytest.mark.parametrize("attack", ATTACKS)
def test_engine_load_runs_no_code_named_by_the_config(
    fixture_models: dict[str, Path], tmp_path: Path, marker: Path, attack: str
) -> None:
    folder = hostile_folder(fixture_models["8bit"], tmp_path, attack, marker)
    engine = Engine()
    try:
        info = engine.load(folder)
    finally:
        assert not marker.exists(), marker.read_text()
    # It loaded mlx-vlm's own LFM2-VL and says once what it ignored.
    assert "im_start" in engine.render_prompt(ChatRequest.single("hi"))
    assert any("model_file in config.json" in n for n in info.notices), info.notices


@pytest.mark.parametrize("attack", ATTACKS)
def test_ask_runs_no_code_from_a_local_folder(
    fixture_models: dict[str, Path], tmp_path: Path, marker: Path, photo: Path, attack: str
) -> None:
    folder = hostile_folder(fixture_models["8bit"], tmp_path, attack, marker)
    proc = run_cli("ask", str(photo), "-p", "hi", "--model", str(folder), "--max-tokens", "2")
    assert not marker.exists(), marker.read_text()
    assert proc.returncode == 0, proc.stderr
    assert "model_file in config.json" in proc.stderr
    assert error_lines(proc) == [], proc.stderr


@pytest.mark.parametrize("attack", ["native-so", "py-in-symlinked-subfolder"])
def test_ask_runs_no_code_from_a_cached_repo_offline(
    fixture_models: dict[str, Path], tmp_path: Path, marker: Path, photo: Path, attack: str
) -> None:
    folder = hostile_folder(fixture_models["8bit"], tmp_path, attack, marker)
    cache = tmp_path / "hf-cache"
    put_in_cache(cache, REPO, folder)
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    proc = run_cli("ask", str(photo), "-p", "hi", "--model", "8bit", "--max-tokens", "2", env=env)
    assert not marker.exists(), marker.read_text()
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def engine_process(tmp_path: Path) -> Iterator[EngineProcess]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_CACHE", str(tmp_path / "worker-hf"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        proc = EngineProcess("real")
        proc.start()
    yield proc
    proc.stop()


def _load_in(proc: EngineProcess, spec: str) -> EngineEvent:
    proc.send(LoadModel(spec))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.is_alive()
        for event in proc.wait_events(0.2):
            if isinstance(event, (ModelLoaded, ModelFailed)) and event.spec == spec:
                return event
    raise AssertionError(f"{spec} did not load in time")


def test_the_engine_process_runs_no_code_from_any_hostile_folder(
    fixture_models: dict[str, Path], tmp_path: Path, engine_process: EngineProcess
) -> None:
    markers = []
    for attack in ATTACKS:
        marker = tmp_path / f"PWNED-{attack}"
        folder = hostile_folder(fixture_models["8bit"], tmp_path / attack, attack, marker)
        markers.append(marker)
        event = _load_in(engine_process, str(folder))
        assert [m.name for m in markers if m.exists()] == []
        assert isinstance(event, ModelLoaded), event
        assert any("model_file in config.json" in n for n in event.info.notices)


# -- tokenizers, shared caches and converted v1 repos -----------------------------------------


def test_a_tokenizer_that_needs_remote_code_is_refused_in_one_line(
    fixture_models: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    folder = copy_model(fixture_models["8bit"], tmp_path / "model")
    write_py(folder / "tokenization_evil.py", marker)
    set_config(
        folder,
        "tokenizer_config.json",
        tokenizer_class="EvilTokenizer",
        auto_map={"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]},
    )
    with pytest.raises(ModelInvalidError) as err:
        Engine().load(folder)
    assert "EvilTokenizer" in one_line(str(err.value)) and "never runs" in str(err.value)
    assert not marker.exists()


def _v1_with_remote_code(fixture_models: dict[str, Path], folder: Path, marker: Path) -> Path:
    """A first-generation checkpoint as mlx-community ships it: auto_map plus its .py files."""
    copy_model(fixture_models["v1"], folder)
    write_py(folder / "modeling_lfm2_vl.py", marker)
    write_py(folder / "processing_lfm2_vl.py", marker)
    return folder


def test_a_shared_cache_snapshot_with_python_files_is_used_not_refused(
    fixture_models: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    # mlx-vlm or `hf download` fetched the repo's .py files into the same snapshot.
    src = _v1_with_remote_code(fixture_models, tmp_path / "v1", marker)
    cache = tmp_path / "hf-cache"
    snapshot = put_in_cache(cache, V1_REPO, src)
    [cached] = [c for c in list_cached(cache) if c.repo_id == V1_REPO]
    assert cached.complete
    events = list(ensure_model(resolve_model("v1-450m-8bit"), cache_dir=cache, offline=True))
    assert events[-1].path == snapshot
    info = Engine().load(snapshot)
    assert not marker.exists()
    [notice] = info.notices
    assert "modeling_lfm2_vl.py" in notice and "auto_map" in notice and "never runs" in notice


def test_mlx_vlm_convert_output_of_a_v1_repo_loads(
    fixture_models: dict[str, Path], tmp_path: Path, marker: Path
) -> None:
    from lfmdesk.core.testing._checkpoints import _run_convert

    src = _v1_with_remote_code(fixture_models, tmp_path / "v1", marker)
    out = tmp_path / "v1-mlx-8bit"
    _run_convert(src, out, 8)
    assert (out / "modeling_lfm2_vl.py").exists()  # mlx_vlm.convert copies the .py files
    info = Engine().load(out)
    assert info.bits == 8 and not marker.exists()


def test_what_was_ignored_is_said_once(
    fixture_models: dict[str, Path], tmp_path: Path, marker: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = hostile_folder(fixture_models["8bit"], tmp_path, "pyc", marker)
    engine = Engine()
    with caplog.at_level(logging.WARNING, logger="lfmdesk"):
        engine.load(folder)
        engine.load(folder)
    said = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(said) == 1 and "evil.pyc" in said[0] and "model_file" in said[0], said


# -- weights named by the index stay inside the folder ----------------------------------------


def _index_names(name: Callable[[Path], str]) -> Callable[[Path, Path], None]:
    def damage(folder: Path, outside: Path) -> None:
        weights = folder / "model.safetensors"
        shutil.move(weights, outside / "model.safetensors")
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"x": name(outside / "model.safetensors")}})
        )

    return damage


def _link_outside(folder: Path, outside: Path) -> None:
    shutil.move(folder / "model.safetensors", outside / "model.safetensors")
    (folder / "model.safetensors").symlink_to(outside / "model.safetensors")


@pytest.mark.parametrize(
    "damage",
    [
        _index_names(lambda w: "../outside/model.safetensors"),
        _index_names(lambda w: str(w)),
        _link_outside,
    ],
    ids=["dotdot-in-index", "absolute-in-index", "symlink-to-outside"],
)
def test_weights_outside_the_folder_are_refused(
    fixture_models: dict[str, Path], tmp_path: Path, damage: Callable[[Path, Path], None]
) -> None:
    folder = copy_model(fixture_models["8bit"], tmp_path / "model")
    outside = tmp_path / "outside"
    outside.mkdir()
    damage(folder, outside)
    with pytest.raises(ModelInvalidError) as err:
        Engine().load(folder)
    assert "model.safetensors" in one_line(str(err.value))


def test_a_cache_snapshot_may_link_into_its_own_blobs(
    fixture_models: dict[str, Path], tmp_path: Path
) -> None:
    snapshot = put_in_cache(tmp_path / "hf-cache", REPO, fixture_models["8bit"])
    assert (snapshot / "model.safetensors").is_symlink()
    assert verify_model_dir(snapshot).weights == ("model.safetensors",)


# -- FIFOs and devices never hang the loader ---------------------------------------------------


@pytest.mark.parametrize(
    "name", ["config.json", "tokenizer.json", "model.safetensors", "chat_template.jinja"]
)
def test_a_fifo_in_the_folder_is_refused_at_once(
    fixture_models: dict[str, Path], tmp_path: Path, name: str
) -> None:
    folder = copy_model(fixture_models["8bit"], tmp_path / "model")
    (folder / name).unlink()
    os.mkfifo(folder / name)
    with pytest.raises(ModelInvalidError) as err:
        finishes_within(10, lambda: Engine().load(folder), unblock=folder / name)
    assert name in one_line(str(err.value)) and "regular file" in str(err.value)


def test_weights_that_are_a_device_are_refused(
    fixture_models: dict[str, Path], tmp_path: Path
) -> None:
    folder = copy_model(fixture_models["8bit"], tmp_path / "model")
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to("/dev/zero")
    with pytest.raises(ModelInvalidError) as err:
        finishes_within(10, lambda: verify_model_dir(folder))
    assert "model.safetensors" in one_line(str(err.value))


def test_a_first_generation_repo_with_only_auto_map_loads_without_a_warning(
    fixture_models: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    # Every LFM2-VL v1 repo names its remote code in auto_map; with no code beside it, nothing
    # is being ignored that exists, so there is nothing to warn about.
    with caplog.at_level(logging.WARNING, logger="lfmdesk"):
        info = Engine().load(fixture_models["v1"])
    assert info.notices == ()
    assert not [r for r in caplog.records if "ignored" in r.getMessage()]
