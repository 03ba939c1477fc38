"""Hub answers are untrusted: what a download fetches, and where its answers may write.

Through the fake hub (``lfmdesk.core.testing.FakeHub``) a hostile hub sends an ETag, a file
name or a commit id that would be a path outside the cache, or serves a repo holding native
code next to the model. Nothing may be written outside the cache, nothing executable fetched,
and what lfmdesk downloads must be a snapshot other Hugging Face tools accept offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile import copy_model, one_line, set_config, write_native
from huggingface_hub import constants, snapshot_download

from lfmdesk.core import DownloadDone, Engine, download, ensure_model, resolve_model
from lfmdesk.core._errors import DownloadError
from lfmdesk.core.testing import FakeHub

REPO = "LiquidAI/LFM2.5-VL-450M-MLX-8bit"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where a payload writes if it runs; the tests assert it never appears."""
    return tmp_path / "PWNED"


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake hub is local: whatever the environment says, these tests may use the network API.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def fetch(hub: FakeHub, cache: Path) -> DownloadDone:
    *_, done = download(REPO, cache_dir=cache, endpoint=hub.endpoint)
    assert isinstance(done, DownloadDone)
    return done


@pytest.fixture
def repo(fixture_models: dict[str, Path], tmp_path: Path) -> Path:
    """LiquidAI's MLX repo layout: the model plus its card, licence and .gitattributes."""
    folder = copy_model(fixture_models["8bit"], tmp_path / "hub" / "repo")
    (folder / "README.md").write_text("---\nlicense: other\n---\n# LFM2.5-VL\n")
    (folder / "LICENSE").write_text("LFM Open License v1.0\n")
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
    return folder


# -- answers that would be paths outside the cache ---------------------------------------------

HOSTILE_ANSWERS = {
    "etag": lambda hub: hub.send_etag("config.json", "../../../../escaped"),
    "lfs-etag": lambda hub: hub.send_etag("model.safetensors", "../../../../escaped"),
    "file-name": lambda hub: hub.list_as("model.safetensors", "../../../../escaped.safetensors"),
    "commit": lambda hub: hub.report_commit("../../../../escaped"),
}


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS)
def test_hostile_hub_answers_write_nothing_outside_the_cache(
    repo: Path, tmp_path: Path, answer: str
) -> None:
    cache = tmp_path / "work" / "a" / "b" / "cache"
    cache.mkdir(parents=True)
    before = files_under(tmp_path) - files_under(cache)
    with FakeHub({REPO: repo}) as hub:
        HOSTILE_ANSWERS[answer](hub)
        with pytest.raises(DownloadError) as err:
            fetch(hub, cache)
    assert "not downloading" in one_line(str(err.value))
    assert files_under(tmp_path) - files_under(cache) == before


def test_huggingface_hub_never_asks_the_hub_for_a_file_a_second_time(
    repo: Path, tmp_path: Path
) -> None:
    # huggingface_hub would build a blob path from its own, unchecked, ETag answer.
    with FakeHub({REPO: repo}) as hub:
        fetch(hub, tmp_path / "cache")
        heads = [r.path for r in hub.requests if r.method == "HEAD"]
    assert sorted(heads) == sorted(set(heads)), heads


# -- only what a model needs, never code ------------------------------------------------------


def test_a_repo_with_native_code_downloads_and_loads_without_running_it(
    repo: Path, tmp_path: Path, marker: Path
) -> None:
    # tokenizer_ext.so matched the old allow-pattern `tokenizer*`; the config names it.
    write_native(repo / "tokenizer_ext.so", marker)
    set_config(repo, model_file="tokenizer_ext.so")
    cache = tmp_path / "cache"
    with FakeHub({REPO: repo}) as hub:
        *_, done = ensure_model(resolve_model(REPO), cache_dir=cache, endpoint=hub.endpoint)
        fetched = {r.path.rsplit("/", 1)[-1] for r in hub.requests if "/resolve/" in r.path}
    assert "tokenizer_ext.so" not in fetched
    assert not list(cache.rglob("tokenizer_ext.so"))
    Engine().load(done.path)
    assert not marker.exists()


def test_downloads_fetch_exact_names_and_never_executables(repo: Path, tmp_path: Path) -> None:
    extras = [
        "tokenizer_ext.so",
        "tokenizer.pyc",
        "tokenizer_helper.py",
        "libfast.dylib",
        "model.so.1",
        "pytorch_model.bin",
        "optimizer.pkl",
        "tokenizer.model",
        "notes.txt",
        "data/train.jsonl",
    ]
    for name in extras:
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_bytes(b"not for lfmdesk")
    with FakeHub({REPO: repo}) as hub:
        done = fetch(hub, tmp_path / "cache")
    got = {p.relative_to(done.path).as_posix() for p in done.path.rglob("*") if p.is_file()}
    assert got == {
        "config.json",
        "generation_config.json",
        "processor_config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
        "model.safetensors",
        "model.safetensors.index.json",
        "README.md",
        "LICENSE",
        ".gitattributes",
    }


def test_a_downloaded_snapshot_is_complete_for_other_tools_offline(
    repo: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with FakeHub({REPO: repo}) as hub:
        done = fetch(hub, cache)
    # What `hf download` and transformers do offline: every file of the repo must be there.
    folder = snapshot_download(REPO, cache_dir=cache, local_files_only=True)
    assert Path(folder) == done.path
    assert json.loads((done.path / "config.json").read_text())["model_type"] == "lfm2_vl"
