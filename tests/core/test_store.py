"""The variant table, resolving what the user typed, verifying folders, the cache listing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants
from safetensors.numpy import save_file

from lfmdesk.core._errors import InputError, ModelInvalidError, ModelNotFoundError
from lfmdesk.core.models._store import (
    DownloadDone,
    ensure_model,
    format_size,
    list_cached,
    local_snapshot,
    remove_cached,
    resolve_model,
    verify_model_dir,
)
from lfmdesk.core.models._variants import DEFAULT_VARIANT_KEY, VARIANTS, find_variant

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "lfm2-vl-450m"
REPO = "LiquidAI/LFM2.5-VL-450M-MLX-8bit"


def make_model_dir(folder: Path, *, shards: int = 1, elems: int = 50_000) -> Path:
    """A small folder shaped like an MLX LFM2-VL repo (auto_map included, as in the real one)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_type": "lfm2-vl",
        "auto_map": {"AutoConfig": "modeling_lfm2_vl.Lfm2VlConfig"},
        "quantization": {"group_size": 64, "bits": 8},
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128000}))
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    if shards == 1:
        save_file({"w": np.arange(elems, dtype=np.float32)}, str(folder / "model.safetensors"))
        return folder
    weight_map = {}
    for i in range(1, shards + 1):
        name = f"model-{i:05d}-of-{shards:05d}.safetensors"
        save_file({f"w{i}": np.full(elems, i, dtype=np.float32)}, str(folder / name))
        weight_map[f"w{i}"] = name
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return folder


def put_in_cache(cache: Path, repo_id: str, src: Path, commit: str = "a" * 40) -> Path:
    """Lay ``src`` out in the hub cache the way huggingface_hub does (blobs + symlinks + refs)."""
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (storage / "blobs").mkdir()
    for i, file in enumerate(sorted(src.iterdir())):
        blob = storage / "blobs" / f"{i:040d}"
        shutil.copyfile(file, blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(commit)
    return snapshot


def refused_endpoint() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def assert_one_line(err: pytest.ExceptionInfo[BaseException], *needles: str) -> None:
    text = str(err.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text, text


# -- variants -------------------------------------------------------------------------------


def test_variant_keys_and_repos_are_unique_and_default_is_450m_8bit() -> None:
    keys = [v.key.lower() for v in VARIANTS]
    repos = [v.repo_id.lower() for v in VARIANTS]
    assert len(set(keys)) == len(keys) and len(set(repos)) == len(repos)
    default = find_variant(DEFAULT_VARIANT_KEY)
    assert default is not None
    assert default.repo_id == REPO and default.bits == 8 and default.family == "LFM2.5-VL-450M"
    assert {v.key for v in VARIANTS} >= {"4bit", "5bit", "6bit", "8bit", "bf16"}


def test_find_variant_by_key_or_repo_any_case() -> None:
    assert find_variant("BF16") == find_variant("liquidai/lfm2.5-vl-450m-mlx-bf16")
    bf16 = find_variant("bf16")
    assert bf16 is not None and bf16.bits is None
    assert find_variant("v1-3b-8bit") is not None
    assert find_variant("7bit") is None


def test_sizes_grow_with_bits_and_model_size() -> None:
    for family in {v.family for v in VARIANTS}:
        ordered = sorted((v for v in VARIANTS if v.family == family), key=lambda v: v.bits or 16)
        sizes = [v.size_bytes for v in ordered]
        assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    small, big = find_variant("8bit"), find_variant("1.6b-8bit")
    assert small is not None and big is not None
    assert 300e6 < small.size_bytes < 800e6 < big.size_bytes
    bf16 = find_variant("bf16")
    assert bf16 is not None and 800e6 < bf16.size_bytes < 1000e6  # ~450M params x 2 bytes


def test_community_conversions_say_so() -> None:
    for variant in VARIANTS:
        community = variant.repo_id.startswith("mlx-community/")
        assert community == ("community" in variant.description)
        assert variant.repo_id.startswith(("LiquidAI/", "mlx-community/"))


# -- resolve_model --------------------------------------------------------------------------


def test_resolve_folder_key_and_repo(tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path / "m")
    ref = resolve_model(str(folder))
    assert ref.folder == folder.resolve() and ref.repo_id is None
    ref = resolve_model("8bit")
    assert ref.repo_id == REPO and ref.variant is not None and ref.folder is None
    ref = resolve_model("liquidai/lfm2.5-vl-450m-mlx-4BIT")
    assert ref.repo_id == "LiquidAI/LFM2.5-VL-450M-MLX-4bit"
    ref = resolve_model("someone/my-finetune")
    assert (ref.repo_id, ref.variant, ref.folder) == ("someone/my-finetune", None, None)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("7bit", "8bit"),  # unknown key: the message lists the valid ones
        ("", "8bit"),
        ("/no/such/folder", "does not exist"),
        ("a/b/c", "unknown model"),
    ],
)
def test_resolve_rejects_bad_specs_in_one_line(spec: str, needle: str) -> None:
    with pytest.raises(InputError) as err:
        resolve_model(spec)
    assert_one_line(err, needle)


def test_resolve_rejects_a_file(tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(InputError) as err:
        resolve_model(str(file))
    assert_one_line(err, "folder")


# -- verify_model_dir -----------------------------------------------------------------------


def test_good_folders_verify(tmp_path: Path) -> None:
    verify_model_dir(make_model_dir(tmp_path / "one"))
    verify_model_dir(make_model_dir(tmp_path / "sharded", shards=3))


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference not present")
def test_real_reference_config_with_auto_map_verifies(tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path / "m")
    for file in REFERENCE.iterdir():
        shutil.copy(file, folder / file.name)
    assert "auto_map" in json.loads((folder / "config.json").read_text())
    verify_model_dir(folder)


def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])


def _drop_shard(folder: Path) -> None:
    (folder / "model-00002-of-00003.safetensors").unlink()


def _model_type(folder: Path) -> None:
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))


def _trust(folder: Path) -> None:
    (folder / "tokenizer_config.json").write_text(json.dumps({"trust_remote_code": True}))


def _partial(folder: Path) -> None:
    (folder / "model.safetensors.incomplete").write_bytes(b"\0" * 10)


def _no_weights(folder: Path) -> None:
    for file in folder.glob("*.safetensors"):
        file.unlink()


def _bad_json(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def _no_config(folder: Path) -> None:
    (folder / "config.json").unlink()


def _header_only(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{")


@pytest.mark.parametrize(
    ("damage", "shards", "needle"),
    [
        (_truncate, 1, "model.safetensors"),
        (_drop_shard, 3, "model-00002-of-00003.safetensors"),
        (_model_type, 1, "llama"),
        (_trust, 1, "trust_remote_code"),
        (_partial, 1, "still being downloaded"),
        (_no_weights, 1, "safetensors"),
        (_bad_json, 1, "config.json"),
        (_no_config, 1, "config.json"),
        (_header_only, 1, "model.safetensors"),
    ],
)
def test_broken_folders_fail_with_one_line(
    tmp_path: Path, damage, shards: int, needle: str
) -> None:
    folder = make_model_dir(tmp_path / "m", shards=shards)
    damage(folder)
    with pytest.raises(ModelInvalidError) as err:
        verify_model_dir(folder)
    assert_one_line(err, str(folder), needle)


def test_missing_folder_fails(tmp_path: Path) -> None:
    with pytest.raises(ModelInvalidError) as err:
        verify_model_dir(tmp_path / "gone")
    assert_one_line(err, "no such folder")


# -- cache: local_snapshot, ensure_model, list, remove --------------------------------------


def test_local_snapshot_finds_complete_and_skips_incomplete(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    snapshot = put_in_cache(cache, REPO, make_model_dir(tmp_path / "src"))
    assert local_snapshot(REPO, cache_dir=cache) == snapshot
    assert local_snapshot("LiquidAI/LFM2.5-VL-450M-MLX-4bit", cache_dir=cache) is None
    weights = (snapshot / "model.safetensors").resolve()  # the blob behind the link
    weights.write_bytes(weights.read_bytes()[:100])
    assert local_snapshot(REPO, cache_dir=cache) is None


def test_ensure_model_uses_the_cache_without_network(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    snapshot = put_in_cache(cache, REPO, make_model_dir(tmp_path / "src"))
    events = list(ensure_model(resolve_model("8bit"), cache_dir=cache, endpoint=refused_endpoint()))
    assert events == [DownloadDone(REPO, snapshot)]


def test_ensure_model_passes_a_good_folder_and_refuses_a_bad_one(tmp_path: Path) -> None:
    folder = make_model_dir(tmp_path / "m")
    assert list(ensure_model(resolve_model(str(folder)))) == [DownloadDone(None, folder.resolve())]
    _truncate(folder)
    with pytest.raises(ModelInvalidError):
        list(ensure_model(resolve_model(str(folder))))


def test_offline_with_nothing_cached_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError) as err:
        list(ensure_model(resolve_model("8bit"), cache_dir=tmp_path / "cache"))
    assert time.monotonic() - started < 1.0
    assert_one_line(err, REPO, "--model")


def test_offline_constant_is_honoured_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError) as err:
        list(ensure_model(resolve_model("6bit"), cache_dir=tmp_path / "cache"))
    assert_one_line(err, "LiquidAI/LFM2.5-VL-450M-MLX-6bit", "--model")


def test_unreachable_hub_with_nothing_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError) as err:
        list(
            ensure_model(
                resolve_model("8bit"), cache_dir=tmp_path / "c", endpoint=refused_endpoint()
            )
        )
    assert time.monotonic() - started < 10
    assert_one_line(err, REPO, "--model")


def test_list_cached_shows_lfm_models_with_size_and_remove_frees_them(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    put_in_cache(cache, REPO, make_model_dir(tmp_path / "a"))
    put_in_cache(cache, "someone/finetune", make_model_dir(tmp_path / "b", elems=10_000))
    other = make_model_dir(tmp_path / "c")
    _model_type(other)
    put_in_cache(cache, "someone/llama", other)
    # A known variant that has only a partial blob so far.
    partial = cache / "models--LiquidAI--LFM2.5-VL-450M-MLX-4bit" / "blobs"
    partial.mkdir(parents=True)
    (partial / ("f" * 64 + ".incomplete")).write_bytes(b"\0" * 12345)

    listed = {m.repo_id: m for m in list_cached(cache)}
    assert set(listed) == {REPO, "someone/finetune", "LiquidAI/LFM2.5-VL-450M-MLX-4bit"}
    assert listed[REPO].complete and listed[REPO].variant == find_variant("8bit")
    blobs = sum(f.stat().st_size for f in (tmp_path / "a").iterdir())
    assert listed[REPO].size_bytes == blobs + 40  # the blobs and refs/main
    assert not listed["LiquidAI/LFM2.5-VL-450M-MLX-4bit"].complete
    assert listed["LiquidAI/LFM2.5-VL-450M-MLX-4bit"].size_bytes == 12345

    assert remove_cached("8bit", cache) == listed[REPO].size_bytes
    assert REPO not in {m.repo_id for m in list_cached(cache)}
    assert remove_cached("someone/finetune", cache) == listed["someone/finetune"].size_bytes
    with pytest.raises(InputError) as err:
        remove_cached(REPO, cache)
    assert_one_line(err, REPO)


def test_list_cached_of_an_empty_or_missing_cache(tmp_path: Path) -> None:
    assert list_cached(tmp_path / "nothing") == []


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1_500, "1.5 KB"),
        (480_000_000, "480 MB"),
        (999_999_999, "1.0 GB"),
        (1_200_000_000, "1.2 GB"),
        (12_345_678_901, "12 GB"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text
