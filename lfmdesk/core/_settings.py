"""Sampling and vision settings: frozen, validated, saved as JSON.

Defaults are the LFM2.5-VL-450M model card's. Every numeric field has an allowed range in
``RANGES``; a value outside it raises :class:`SettingsError` naming the field and the range.

The settings file belongs to the user. :func:`open_settings` never fails (a program must
start): a file it cannot use gives the defaults and a one-line warning. :func:`save_settings`
never destroys what it did not understand: a damaged file (not JSON, not UTF-8, a value out
of range, not a regular file) is first kept as ``settings.json.bad-YYYYMMDD-HHMMSS``, and a
file written by a newer lfmdesk (a higher ``schema_version``) is not replaced at all.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from lfmdesk.core._atomic import keep_damaged, remove_stale_temps, write_text_atomic
from lfmdesk.core._errors import SettingsError
from lfmdesk.core._files import DamagedFileError, MiB, read_json, reason

__all__ = [
    "LIVE_MODES",
    "LIVE_RANGES",
    "LIVE_VISION",
    "RANGES",
    "SCHEMA_VERSION",
    "AppSettings",
    "LiveMode",
    "LiveSettings",
    "LoadedSettings",
    "SamplingSettings",
    "VisionSettings",
    "config_dir",
    "load_settings",
    "open_settings",
    "save_settings",
]

log = logging.getLogger("lfmdesk")

SCHEMA_VERSION = 1

# (low, high) inclusive; None means "no bound on that side".
RANGES: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0.0, 2.0),
    "min_p": (0.0, 1.0),
    "top_p": (0.0, 1.0),
    "top_k": (0, 100_000),
    "repetition_penalty": (1.0, 2.0),
    "max_tokens": (1, 8192),
    "seed": (0, 2**32 - 1),
    "min_image_tokens": (16, 1024),
    "max_image_tokens": (16, 1024),
    # 1 tile with splitting on makes mlx-vlm squash the image; turn splitting off instead.
    "min_tiles": (2, 64),
    "max_tiles": (2, 64),
}

# Live answers must come back within a frame or two, so they are much shorter than chat's.
LIVE_RANGES: dict[str, tuple[float | None, float | None]] = {
    **RANGES,
    "max_tokens": (1, 512),
    "frame_side": (64, 2048),
}

_T = TypeVar("_T")
_SETTINGS_LIMIT = MiB


def _check_range(
    name: str, value: float, ranges: dict[str, tuple[float | None, float | None]]
) -> None:
    low, high = ranges[name]
    bad = isinstance(value, float) and math.isnan(value)
    if bad or (low is not None and value < low) or (high is not None and value > high):
        raise SettingsError(f"{name} must be between {low:g} and {high:g}, got {value}")


def _check_fields(
    obj: object, ranges: dict[str, tuple[float | None, float | None]] = RANGES
) -> None:
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if f.name in ranges and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SettingsError(f"{f.name} must be a number, got {value!r}")
            if f.type in ("int", "int | None") and not isinstance(value, int):
                raise SettingsError(f"{f.name} must be a whole number, got {value!r}")
            _check_range(f.name, value, ranges)
        elif f.type == "bool" and not isinstance(value, bool):
            raise SettingsError(f"{f.name} must be true or false, got {value!r}")


@dataclass(frozen=True)
class SamplingSettings:
    """How tokens are drawn. Defaults: the LFM2.5-VL-450M model card.

    Attributes:
        temperature: 0 means greedy decoding.
        min_p: drop tokens below ``min_p`` times the top token's probability.
        top_p: nucleus sampling; 1.0 disables it.
        top_k: sample among the ``top_k`` most likely tokens; 0 disables it.
        repetition_penalty: 1.0 disables it.
        max_tokens: the most tokens one answer may have.
        seed: fixes the random draws; None draws a fresh seed per answer.
        constrained: Detect answers (Detect, Detect all, live detect, evaluation) are
            decoded under the grammar of a valid box list: requested labels only, numbers
            in [0, 1], no empty or repeated box, closed within ``max_tokens``. Free chat is
            never constrained.
    """

    temperature: float = 0.1
    min_p: float = 0.15
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.05
    max_tokens: int = 512
    seed: int | None = None
    constrained: bool = True

    def __post_init__(self) -> None:
        _check_fields(self)


@dataclass(frozen=True)
class VisionSettings:
    """How an image becomes tokens (the LFM2-VL tiling). Defaults: the LFM2.5 card.

    Liquid's MLX repos ship ``do_image_splitting: false``; the official behaviour (and
    mlx-vlm's) is splitting on, which is the default here.

    Attributes:
        min_image_tokens: fewest tokens for a single-tile image or the thumbnail.
        max_image_tokens: most tokens for a single-tile image or the thumbnail.
        do_image_splitting: split large images into 512 px tiles.
        min_tiles: fewest tiles when splitting.
        max_tiles: most tiles when splitting.
        use_thumbnail: add a downscaled whole-image view after the tiles.
    """

    min_image_tokens: int = 32
    max_image_tokens: int = 256
    do_image_splitting: bool = True
    min_tiles: int = 2
    max_tiles: int = 10
    use_thumbnail: bool = True

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.min_image_tokens > self.max_image_tokens:
            raise SettingsError(
                f"min_image_tokens ({self.min_image_tokens}) must not exceed "
                f"max_image_tokens ({self.max_image_tokens})"
            )
        if self.min_tiles > self.max_tiles:
            raise SettingsError(
                f"min_tiles ({self.min_tiles}) must not exceed max_tiles ({self.max_tiles})"
            )

    def key(self) -> tuple[int, int, bool, int, int, bool]:
        """A hashable identity, used in cache keys so changed tiling never hits stale data."""
        return (
            self.min_image_tokens,
            self.max_image_tokens,
            self.do_image_splitting,
            self.min_tiles,
            self.max_tiles,
            self.use_thumbnail,
        )


# Live mode trades detail for speed: one view of at most 64 tokens, never split into tiles.
LIVE_VISION = VisionSettings(min_image_tokens=32, max_image_tokens=64, do_image_splitting=False)

LiveMode = Literal["caption", "detect"]
LIVE_MODES: tuple[LiveMode, ...] = ("caption", "detect")


@dataclass(frozen=True)
class LiveSettings:
    """How live mode (camera, screen or video) analyses the newest frame.

    Attributes:
        mode: "caption" (answer a question about each frame) or "detect" (find boxes).
        watch: caption: the question ("" means the default caption prompt); detect: the
            comma-separated labels to look for.
        vision: the tiling used for live frames (the fast live preset by default).
        max_tokens: the most tokens one live answer may have.
        frame_side: frames are scaled down so their longest side is at most this many
            pixels before the model sees them.
        hold_frame: show the frame the model analysed, with its answer, instead of the
            running video: the boxes line up exactly, the picture moves at the model's pace.
    """

    mode: LiveMode = "caption"
    watch: str = ""
    vision: VisionSettings = LIVE_VISION
    max_tokens: int = 48
    frame_side: int = 512
    hold_frame: bool = False

    def __post_init__(self) -> None:
        if self.mode not in LIVE_MODES:
            raise SettingsError(
                f"live mode must be one of {', '.join(LIVE_MODES)}, got {self.mode!r}"
            )
        if not isinstance(self.watch, str):
            raise SettingsError(f"live watch must be text, got {self.watch!r}")
        if not isinstance(self.vision, VisionSettings):
            raise SettingsError("live vision must be a set of vision settings")
        _check_fields(self, LIVE_RANGES)


@dataclass(frozen=True)
class AppSettings:
    """Everything lfmdesk remembers between runs."""

    schema_version: int = SCHEMA_VERSION
    model: str = "8bit"
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    vision: VisionSettings = field(default_factory=VisionSettings)
    # The annotation project folder the window opened last; None: the Captures folder.
    project: str | None = None
    detect_after_capture: bool = True
    live: LiveSettings = field(default_factory=LiveSettings)


def _from_dict(cls: type[_T], data: Any) -> _T:
    """Build ``cls`` from a JSON dict, ignoring unknown keys and keeping defaults."""
    if not isinstance(data, dict):
        return cls()
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def settings_from_dict(data: Any) -> AppSettings:
    """Parse a saved settings dict; unknown keys are ignored, bad values raise."""
    if not isinstance(data, dict):
        raise SettingsError("settings file must hold a JSON object")
    model = data.get("model", AppSettings.model)
    project = data.get("project")
    try:
        return AppSettings(
            model=model if isinstance(model, str) else AppSettings.model,
            sampling=_from_dict(SamplingSettings, data.get("sampling")),
            vision=_from_dict(VisionSettings, data.get("vision")),
            project=project if isinstance(project, str) and project else None,
            detect_after_capture=data.get("detect_after_capture") is not False,
            live=_live_from_dict(data.get("live")),
        )
    except (TypeError, ValueError, OverflowError) as exc:  # SettingsError is a ValueError
        if isinstance(exc, SettingsError):
            raise
        raise SettingsError(f"a setting has a value of the wrong kind ({reason(exc)})") from None


def _live_from_dict(data: Any) -> LiveSettings:
    """Live settings from JSON; files written before live mode existed get the defaults."""
    if not isinstance(data, dict):
        return LiveSettings()
    names = {f.name for f in dataclasses.fields(LiveSettings)} - {"vision"}
    fields = {k: v for k, v in data.items() if k in names}
    vision = data.get("vision")
    if isinstance(vision, dict):
        known = {f.name for f in dataclasses.fields(VisionSettings)}
        overrides = {k: v for k, v in vision.items() if k in known}
        fields["vision"] = dataclasses.replace(LIVE_VISION, **overrides)
    return LiveSettings(**fields)


def config_dir() -> Path:
    """The platform's config folder for lfmdesk (``LFMDESK_CONFIG_DIR`` overrides it)."""
    override = os.environ.get("LFMDESK_CONFIG_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("lfmdesk", appauthor=False))


def _settings_path(path: Path | None) -> Path:
    return path or config_dir() / "settings.json"


def _schema(data: Any) -> int:
    version = data.get("schema_version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def _read(path: Path) -> Any:
    """The JSON in the settings file; None when there is none; SettingsError when damaged."""
    try:
        return read_json(path, _SETTINGS_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"cannot read settings {path}: {reason(exc)}") from None
    except DamagedFileError as exc:
        raise SettingsError(f"settings {path}: {exc}") from None


def load_settings(path: Path | None = None) -> AppSettings:
    """Read settings; a missing file gives the defaults, a damaged one raises SettingsError.

    A file written by a newer lfmdesk is read as far as this version understands it.
    """
    path = _settings_path(path)
    data = _read(path)
    if data is None:
        return AppSettings()
    try:
        return settings_from_dict(data)
    except SettingsError as exc:
        raise SettingsError(f"settings {path}: {exc}") from None


@dataclass(frozen=True)
class LoadedSettings:
    """What :func:`open_settings` found.

    Attributes:
        settings: the settings to use (the defaults when the file could not be used).
        problem: one line saying why the file was not used; "" when it was.
        newer: the ``schema_version`` of a file written by a newer lfmdesk (its settings
            are used as far as they are understood, and it is never saved over); else None.
    """

    settings: AppSettings
    problem: str = ""
    newer: int | None = None


def open_settings(path: Path | None = None) -> LoadedSettings:
    """The settings to start with; never raises (see :class:`LoadedSettings`).

    Temporary files a killed save left beside the settings are deleted.
    """
    path = _settings_path(path)
    remove_stale_temps(path.parent)
    try:
        data = _read(path)
    except SettingsError as exc:
        return LoadedSettings(AppSettings(), f"{exc}; using the defaults")
    if data is None:
        return LoadedSettings(AppSettings())
    newer = _schema(data) if _schema(data) > SCHEMA_VERSION else None
    try:
        return LoadedSettings(settings_from_dict(data), "", newer)
    except SettingsError as exc:
        return LoadedSettings(AppSettings(), f"settings {path}: {exc}; using the defaults", newer)


def _keep(path: Path, problem: SettingsError) -> None:
    if path.is_file() and not path.is_symlink():
        kept = keep_damaged(path)
        log.warning("kept the settings lfmdesk could not use (%s) as %s", problem, kept)


def save_settings(settings: AppSettings, path: Path | None = None) -> Path:
    """Write settings as JSON atomically; returns the path written.

    A damaged file there is first kept as ``settings.json.bad-DATE``.

    Raises:
        SettingsError: the file there was written by a newer lfmdesk; it is not replaced.
        OSError: the file cannot be written.
    """
    path = _settings_path(path)
    try:
        data = _read(path)
    except SettingsError as exc:
        _keep(path, exc)
        data = None
    if _schema(data) > SCHEMA_VERSION:
        raise SettingsError(
            f"settings {path} were saved by a newer lfmdesk (version {_schema(data)}); "
            "not saving over them: changes last until you quit"
        )
    if data is not None:
        try:
            settings_from_dict(data)
        except SettingsError as exc:
            _keep(path, exc)
    write_text_atomic(path, json.dumps(dataclasses.asdict(settings), indent=2) + "\n")
    return path
