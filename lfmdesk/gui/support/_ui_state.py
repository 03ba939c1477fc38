"""Window state between runs (geometry), as JSON next to the settings — nothing pickled."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from pathlib import Path
from typing import Any

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._files import DamagedFileError, MiB, read_json
from lfmdesk.core._settings import config_dir

__all__ = ["UiState"]

SCHEMA_VERSION = 1


class UiState:
    """``ui_state.json`` in the config folder; unreadable files are ignored, never fatal."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_dir() / "ui_state.json"
        self._data: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        try:  # regular files only, bounded, no deep nesting: a bad file must not stop start-up
            loaded = read_json(self.path, MiB)
        except (OSError, DamagedFileError):
            return
        if isinstance(loaded, dict):
            self._data.update(loaded)

    def geometry(self) -> bytes | None:
        """The saved window geometry, or None."""
        value = self._data.get("geometry")
        if not isinstance(value, str):
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None

    def set_geometry(self, geometry: bytes) -> None:
        """Remember the window geometry (written at once, atomically)."""
        self._data["geometry"] = base64.b64encode(geometry).decode("ascii")
        # Losing the window size is not worth an error dialog.
        with contextlib.suppress(OSError):
            write_text_atomic(self.path, json.dumps(self._data, indent=2) + "\n")
