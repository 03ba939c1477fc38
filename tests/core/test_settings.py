"""Settings: model-card defaults, range checks that name the field, JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lfmdesk.core import (
    AppSettings,
    SamplingSettings,
    SettingsError,
    VisionSettings,
    load_settings,
    save_settings,
)


def test_defaults_are_the_model_card_values() -> None:
    s = AppSettings()
    assert (s.sampling.temperature, s.sampling.min_p, s.sampling.repetition_penalty) == (
        0.1,
        0.15,
        1.05,
    )
    v = s.vision
    assert (v.min_image_tokens, v.max_image_tokens) == (32, 256)
    assert v.do_image_splitting and v.use_thumbnail
    assert (v.min_tiles, v.max_tiles) == (2, 10)
    assert s.model == "8bit"


@pytest.mark.parametrize(
    ("cls", "field", "value", "expected"),
    [
        (SamplingSettings, "temperature", 5.0, "temperature must be between 0 and 2"),
        (SamplingSettings, "min_p", -0.1, "min_p must be between 0 and 1"),
        (SamplingSettings, "max_tokens", 0, "max_tokens must be between 1 and 8192"),
        (SamplingSettings, "temperature", float("nan"), "temperature must be between"),
        (VisionSettings, "max_tiles", 0, "max_tiles must be between 2 and 64"),
        (VisionSettings, "max_image_tokens", 5000, "max_image_tokens must be between 16 and 1024"),
        (VisionSettings, "do_image_splitting", "yes", "do_image_splitting must be true or false"),
        (SamplingSettings, "max_tokens", 1.5, "max_tokens must be a whole number"),
    ],
)
def test_out_of_range_values_name_the_field_and_range(cls, field, value, expected) -> None:
    with pytest.raises(SettingsError, match=expected) as info:
        cls(**{field: value})
    assert "\n" not in str(info.value)


def test_min_above_max_is_rejected() -> None:
    with pytest.raises(SettingsError, match="min_image_tokens"):
        VisionSettings(min_image_tokens=300, max_image_tokens=256)
    with pytest.raises(SettingsError, match="min_tiles"):
        VisionSettings(min_tiles=5, max_tiles=4)


def test_round_trip_through_json(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    original = AppSettings(
        model="4bit",
        sampling=SamplingSettings(temperature=0.0, seed=7),
        vision=VisionSettings(max_image_tokens=128, do_image_splitting=False),
    )
    save_settings(original, path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert load_settings(path) == original


def test_unknown_keys_are_ignored_and_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "absent.json") == AppSettings()
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 9,
                "future": 1,
                "model": "bf16",
                "sampling": {"temperature": 0.5, "brand_new": True},
            }
        )
    )
    loaded = load_settings(path)
    assert loaded.model == "bf16" and loaded.sampling.temperature == 0.5
    assert loaded.vision == VisionSettings()


def test_corrupt_file_is_a_one_line_error_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_settings(path)
    assert path.read_text() == "{not json"


def test_saved_settings_are_in_the_config_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LFMDESK_CONFIG_DIR", str(tmp_path / "cfg"))
    written = save_settings(AppSettings())
    assert written == tmp_path / "cfg" / "settings.json"
    assert list((tmp_path / "cfg").iterdir()) == [written]  # no temp files left behind
