"""Downloading through the fake hub: progress, no Python files, cancel + resume, faults."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import constants
from safetensors.numpy import save_file

from lfmdesk.core._errors import (
    DownloadCancelled,
    DownloadError,
    ModelInvalidError,
    ModelNotFoundError,
)
from lfmdesk.core.models._store import (
    DownloadDone,
    DownloadProgress,
    download,
    ensure_model,
    list_cached,
    local_snapshot,
    resolve_model,
    verify_model_dir,
)
from lfmdesk.core.testing._fakehub import FakeHub

REPO = "LiquidAI/LFM2.5-VL-450M-MLX-8bit"
WEIGHTS = "model.safetensors"


def make_hub_repo(folder: Path, *, model_type: str = "lfm2-vl") -> Path:
    """A ~2 MB repo as on the hub: configs, template, weights, and files lfmdesk must skip."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 128000}))
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    (folder / "modeling_lfm2_vl.py").write_text("import os; os.system('echo pwned')\n")
    (folder / "README.md").write_text("# model card\n")
    rng = np.random.default_rng(0)
    save_file({"w": rng.standard_normal(500_000).astype(np.float32)}, str(folder / WEIGHTS))
    return folder


@pytest.fixture
def hub_repo(tmp_path: Path) -> Path:
    return make_hub_repo(tmp_path / "hub-repo")


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake hub is local: whatever the environment says, these tests may use the network API.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def expected_total(repo: Path) -> int:
    return sum(f.stat().st_size for f in repo.iterdir() if f.suffix != ".py")


def resolve_gets(hub: FakeHub, name: str) -> list[str | None]:
    """The Range headers of every GET of ``name``."""
    return [
        r.range
        for r in hub.requests
        if r.method == "GET" and r.path.endswith(f"/resolve/{hub.commit(REPO)}/{name}")
    ]


def consume(
    events: Iterator[DownloadProgress | DownloadDone],
) -> tuple[list[DownloadProgress], DownloadDone]:
    progress: list[DownloadProgress] = []
    for event in events:
        if isinstance(event, DownloadDone):
            return progress, event
        progress.append(event)
    raise AssertionError("no DownloadDone")


def test_download_reports_progress_and_lands_a_verified_snapshot(
    tmp_path: Path, hub_repo: Path
) -> None:
    cache = tmp_path / "cache"
    with FakeHub({REPO: hub_repo}, chunk_delay=0.002) as hub:
        progress, done = consume(download(REPO, cache_dir=cache, endpoint=hub.endpoint))
    total = expected_total(hub_repo)
    assert progress and all(p.total_bytes == total and p.repo_id == REPO for p in progress)
    dones = [p.done_bytes for p in progress]
    assert dones == sorted(dones) and dones[-1] == total
    assert any(p.current_file == WEIGHTS and 0 < p.done_bytes < total for p in progress)
    assert done.repo_id == REPO and done.path.is_relative_to(cache)
    verify_model_dir(done.path)
    assert (done.path / WEIGHTS).read_bytes() == (hub_repo / WEIGHTS).read_bytes()
    # Python files are never fetched, not even into blobs; the model card (licence) is.
    assert not [p for p in cache.rglob("*") if p.suffix == ".py"]
    assert not [r for r in hub.requests if r.path.endswith(".py")]
    assert (done.path / "README.md").read_text() == "# model card\n"
    # It is a normal hub cache entry: found again without network, and listed.
    assert local_snapshot(REPO, cache_dir=cache) == done.path
    [cached] = list_cached(cache)
    assert cached.complete and cached.size_bytes >= total


def test_second_download_fetches_nothing(tmp_path: Path, hub_repo: Path) -> None:
    cache = tmp_path / "cache"
    with FakeHub({REPO: hub_repo}) as hub:
        _, first = consume(download(REPO, cache_dir=cache, endpoint=hub.endpoint))
        hub.clear_requests()
        _, second = consume(download(REPO, cache_dir=cache, endpoint=hub.endpoint))
        assert second.path == first.path
        assert [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path] == []


def test_cancel_stops_quickly_and_the_next_download_resumes(tmp_path: Path, hub_repo: Path) -> None:
    cache = tmp_path / "cache"
    cancel = threading.Event()
    # 32 KiB every 50 ms: the rest of the weights would take another 2 s.
    with FakeHub({REPO: hub_repo}, chunk_size=32 * 1024, chunk_delay=0.05) as hub:
        cancelled_at = 0.0
        with pytest.raises(DownloadCancelled) as err:
            for event in download(REPO, cache_dir=cache, endpoint=hub.endpoint, cancel=cancel):
                assert isinstance(event, DownloadProgress)
                if (
                    event.current_file == WEIGHTS
                    and event.done_bytes > 700_000
                    and not cancel.is_set()
                ):
                    cancel.set()
                    cancelled_at = time.monotonic()
        assert time.monotonic() - cancelled_at < 1.0
        assert REPO in str(err.value) and "\n" not in str(err.value)
        [partial] = list(cache.rglob("*.incomplete"))
        kept = partial.stat().st_size
        assert 0 < kept < (hub_repo / WEIGHTS).stat().st_size
        assert local_snapshot(REPO, cache_dir=cache) is None

        hub.chunk_delay = 0.0
        progress, done = consume(download(REPO, cache_dir=cache, endpoint=hub.endpoint))
        ranges = resolve_gets(hub, WEIGHTS)
    assert ranges[0] is None and ranges[-1] == f"bytes={kept}-"
    first = next(p for p in progress if p.current_file == WEIGHTS)
    assert first.done_bytes >= kept  # resumed bytes count as done from the start
    verify_model_dir(done.path)
    assert (done.path / WEIGHTS).read_bytes() == (hub_repo / WEIGHTS).read_bytes()
    assert not list(cache.rglob("*.incomplete"))


def test_abandoning_the_generator_stops_the_worker(tmp_path: Path, hub_repo: Path) -> None:
    cache = tmp_path / "cache"
    with FakeHub({REPO: hub_repo}, chunk_size=16 * 1024, chunk_delay=0.05) as hub:
        events = download(REPO, cache_dir=cache, endpoint=hub.endpoint)
        for event in events:
            if (
                isinstance(event, DownloadProgress)
                and event.current_file == WEIGHTS
                and event.done_bytes
            ):
                break
        events.close()  # type: ignore[attr-defined]
        time.sleep(0.5)
        served = len(hub.requests)
        time.sleep(0.5)
        assert len(hub.requests) == served
        [partial] = list(cache.rglob("*.incomplete"))
        size = partial.stat().st_size
        time.sleep(0.3)
        assert partial.stat().st_size == size  # nobody writes it any more


def test_a_connection_cut_mid_file_recovers_with_a_range_request(
    tmp_path: Path, hub_repo: Path
) -> None:
    cache = tmp_path / "cache"
    with FakeHub({REPO: hub_repo}) as hub:
        hub.cut_after(WEIGHTS, 300_000)
        _, done = consume(download(REPO, cache_dir=cache, endpoint=hub.endpoint))
        ranges = resolve_gets(hub, WEIGHTS)
    assert ranges == [None, "bytes=300000-"]
    assert (done.path / WEIGHTS).read_bytes() == (hub_repo / WEIGHTS).read_bytes()


def test_a_file_that_changed_on_the_hub_is_caught_by_its_checksum(
    tmp_path: Path, hub_repo: Path
) -> None:
    cache = tmp_path / "cache"
    with FakeHub({REPO: hub_repo}) as hub:
        weights = hub_repo / WEIGHTS
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF  # same size, different bytes than the sha256 the hub announced
        weights.write_bytes(bytes(data))
        with pytest.raises(DownloadError) as err:
            consume(download(REPO, cache_dir=cache, endpoint=hub.endpoint))
    assert "corrupted" in str(err.value) and "\n" not in str(err.value)
    assert not list(cache.rglob("*.incomplete"))  # a corrupt partial is not kept for resuming


def test_unknown_repo_is_model_not_found(tmp_path: Path, hub_repo: Path) -> None:
    with FakeHub({REPO: hub_repo}) as hub, pytest.raises(ModelNotFoundError) as err:
        consume(download("someone/nothing", cache_dir=tmp_path / "c", endpoint=hub.endpoint))
    assert "someone/nothing" in str(err.value) and "\n" not in str(err.value)


def test_hub_offline_mode_fails_the_download_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_repo: Path
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with FakeHub({REPO: hub_repo}) as hub, pytest.raises(ModelNotFoundError) as err:
        consume(download(REPO, cache_dir=tmp_path / "c", endpoint=hub.endpoint))
    assert hub.requests == []
    assert REPO in str(err.value) and "--model" in str(err.value)


def test_a_repo_that_is_not_lfm2_vl_is_refused_after_download(tmp_path: Path) -> None:
    repo = make_hub_repo(tmp_path / "llama", model_type="llama")
    with FakeHub({"someone/llama": repo}) as hub, pytest.raises(ModelInvalidError) as err:
        consume(download("someone/llama", cache_dir=tmp_path / "c", endpoint=hub.endpoint))
    assert "llama" in str(err.value)


def test_ensure_model_downloads_then_serves_from_cache(tmp_path: Path, hub_repo: Path) -> None:
    cache = tmp_path / "cache"
    ref = resolve_model("8bit")
    with FakeHub({REPO: hub_repo}) as hub:
        _, done = consume(ensure_model(ref, cache_dir=cache, endpoint=hub.endpoint))
    # The hub is gone now; offline mode still finds the model.
    assert list(ensure_model(ref, cache_dir=cache, offline=True)) == [done]


def test_fake_hub_serves_ranges_and_404s(hub_repo: Path) -> None:
    import httpx2

    with FakeHub({REPO: hub_repo}) as hub:
        commit = hub.commit(REPO)
        url = f"{hub.endpoint}/{REPO}/resolve/main/{WEIGHTS}"
        part = httpx2.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == (hub_repo / WEIGHTS).read_bytes()[10:20]
        assert part.headers["X-Repo-Commit"] == commit
        assert httpx2.get(url, headers={"Range": "bytes=999999999-"}).status_code == 416
        missing = httpx2.get(f"{hub.endpoint}/nobody/nothing/resolve/main/x")
        assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RepoNotFound"
        escape = httpx2.get(f"{hub.endpoint}/{REPO}/resolve/main/..%2F..%2Fetc%2Fpasswd")
        assert escape.status_code == 404
        assert hub.endpoint.startswith("http://127.0.0.1:")


def test_fake_hub_closes_promptly_with_a_slow_response_in_flight(hub_repo: Path) -> None:
    import httpx2

    hub = FakeHub({REPO: hub_repo}, chunk_size=1024, chunk_delay=0.2).start()
    url = f"{hub.endpoint}/{REPO}/resolve/main/{WEIGHTS}"
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            httpx2.get(url, timeout=30)
        except httpx2.HTTPError as err:
            errors.append(err)

    client = threading.Thread(target=fetch)
    client.start()
    time.sleep(0.3)
    started = time.monotonic()
    hub.close()
    client.join(timeout=5)
    assert time.monotonic() - started < 2 and not client.is_alive()
    assert errors  # the response was cut, not completed


def test_a_shipped_test_checkpoint_downloads_whole_and_verifies(
    tmp_path: Path, fixture_models: dict[str, Path]
) -> None:
    source = fixture_models["8bit"]
    with FakeHub({REPO: source}) as hub:
        _, done = consume(download(REPO, cache_dir=tmp_path / "cache", endpoint=hub.endpoint))
    verify_model_dir(done.path)
    wanted = sorted(p.name for p in source.iterdir())
    assert sorted(p.name for p in done.path.iterdir()) == wanted
    for name in wanted:
        assert (done.path / name).read_bytes() == (source / name).read_bytes(), name
