"""Hostile settings and window-state files: warned about once, kept, never downgraded."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hostile import assert_clean, fifo, picture, run_cli, start_window

from lfmdesk.core import AppSettings, SamplingSettings, SettingsError, load_settings, save_settings

DAMAGED = {
    "not UTF-8": b'{"model": "4bit\xff"}',
    "nested": b'{"sampling": ' * 20_000 + b"{}" + b"}" * 20_000,
    "not JSON": b"{model: 4bit",
    "out of range": b'{"sampling": {"temperature": 99}}',
    "infinite": b'{"sampling": {"temperature": 1e999}}',
    "wrong kind": b'{"live": {"mode": ["caption"]}, "vision": {"max_tiles": "many"}}',
    "not an object": b"[1, 2, 3]",
}


def _config(tmp_path: Path, data: bytes) -> Path:
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    (config / "settings.json").write_bytes(data)
    return config


@pytest.mark.parametrize("data", list(DAMAGED.values()), ids=list(DAMAGED))
def test_the_cli_warns_once_and_uses_the_defaults(tmp_path, data):
    config = _config(tmp_path, data)
    image = picture(tmp_path / "a.png", (100, 80))
    proc = run_cli("tiles", str(image), env={"LFMDESK_CONFIG_DIR": str(config)})
    assert_clean(proc, code=0)
    warnings = [line for line in proc.stderr.splitlines() if "settings" in line]
    assert len(warnings) == 1 and warnings[0].startswith("lfmdesk: warning: ")
    assert "using the defaults" in warnings[0]
    assert proc.stdout.startswith(f"{image}: 100x80")
    assert (config / "settings.json").read_bytes() == data


def test_a_fifo_as_the_settings_file_never_hangs_the_cli(tmp_path):
    config = tmp_path / "config"
    fifo(config / "settings.json")
    image = picture(tmp_path / "a.png")
    proc = run_cli("tiles", str(image), env={"LFMDESK_CONFIG_DIR": str(config)}, timeout=30)
    assert_clean(proc, code=0)
    assert "FIFO" in proc.stderr


@pytest.mark.parametrize("data", list(DAMAGED.values()), ids=list(DAMAGED))
def test_saving_keeps_a_damaged_file_as_bad_first(tmp_path, data):
    config = _config(tmp_path, data)
    path = config / "settings.json"
    save_settings(AppSettings(model="4bit"), path)
    [kept] = list(config.glob("settings.json.bad-*"))
    assert kept.read_bytes() == data
    assert load_settings(path).model == "4bit"


def test_saving_a_good_file_keeps_nothing_aside(tmp_path):
    path = tmp_path / "settings.json"
    save_settings(AppSettings(), path)
    save_settings(AppSettings(model="4bit"), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_a_newer_settings_file_is_read_and_never_downgraded(tmp_path):
    path = tmp_path / "settings.json"
    newer = {
        "schema_version": 999,
        "model": "bf16",
        "sampling": {"temperature": 0.4, "dynatemp": [0.1, 0.9]},
        "plugins": ["x"],
    }
    path.write_text(json.dumps(newer))
    before = path.read_bytes()
    from lfmdesk.core import open_settings

    loaded = open_settings(path)
    assert (loaded.newer, loaded.problem) == (999, "")
    assert loaded.settings.model == "bf16" and loaded.settings.sampling.temperature == 0.4
    with pytest.raises(SettingsError, match="newer lfmdesk") as info:
        save_settings(AppSettings(sampling=SamplingSettings(temperature=0.0)), path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_the_window_says_a_newer_settings_file_is_not_saved_over(tmp_path):
    config = _config(tmp_path, json.dumps({"schema_version": 5, "model": "4bit"}).encode())
    before = (config / "settings.json").read_bytes()
    proc, seen = start_window(tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "newer lfmdesk" in seen["banner"]
    assert (config / "settings.json").read_bytes() == before


def test_the_window_keeps_a_damaged_settings_file(tmp_path):
    config = _config(tmp_path, DAMAGED["out of range"])
    proc, seen = start_window(tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "temperature" in seen["banner"] and "using the defaults" in seen["banner"]
    saved = [p.read_bytes() for p in config.glob("settings.json*")]
    assert DAMAGED["out of range"] in saved  # as it was, or kept as settings.json.bad-DATE


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe", b"[" * 100_000, b'{"geometry": ' * 10_000, b'{"geometry": 7}'],
    ids=["not UTF-8", "nested list", "nested object", "wrong kind"],
)
def test_a_damaged_window_state_is_ignored(tmp_path, data):
    from lfmdesk.gui.support._ui_state import UiState

    path = tmp_path / "ui_state.json"
    path.write_bytes(data)
    assert UiState(path).geometry() is None


def test_a_fifo_as_the_window_state_never_hangs(tmp_path, no_hang):
    from lfmdesk.gui.support._ui_state import UiState

    assert UiState(fifo(tmp_path / "ui_state.json")).geometry() is None


def test_stale_settings_temporary_files_are_removed(tmp_path):
    from lfmdesk.core import open_settings

    dead = tmp_path / ".settings.json.999999999-0123abcd.tmp"
    old = tmp_path / ".settings.json.zz9yx8wv.tmp"
    mine = tmp_path / "notes.tmp"  # not lfmdesk's: never touched
    for path in (dead, old, mine):
        path.write_text("{")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    open_settings(tmp_path / "settings.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp"]
