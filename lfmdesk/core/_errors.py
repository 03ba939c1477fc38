"""The exceptions lfmdesk raises.

Every error a user can cause is an ``LfmdeskError`` whose message is one line that says
what went wrong and what to do; the CLI prints it and exits non-zero, the GUI shows it.

    LfmdeskError
    ├── InputError                  bad input from the user (CLI exit code 2)
    │   ├── ImageError              not an image, truncated, too large (bomb)
    │   ├── SettingsError           a setting outside its allowed range (or a damaged file)
    │   ├── ToolSpecError           tool definitions that are not valid JSON tools
    │   └── FolderNotEmptyError     an export folder holding other files (needs overwrite)
    ├── ModelError                  a model that cannot be found, fetched or trusted
    │   ├── ModelNotFoundError      offline / unknown repo and nothing cached
    │   ├── ModelInvalidError       folder fails verification (half-downloaded, .py files, ...)
    │   └── DownloadError           the download failed part-way (resumable)
    │       └── DownloadCancelled   the user cancelled a download
    └── EngineError                 generation could not run (no model loaded, MLX failure)
"""

from __future__ import annotations

__all__ = [
    "DownloadCancelled",
    "DownloadError",
    "EngineError",
    "FolderNotEmptyError",
    "ImageError",
    "InputError",
    "LfmdeskError",
    "ModelError",
    "ModelInvalidError",
    "ModelNotFoundError",
    "SettingsError",
    "ToolSpecError",
    "one_line",
]


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with every run of whitespace (newlines included) made one space.

    Messages from Qt, MLX or the OS sometimes span lines; a status bar, a banner and the
    engine protocol show one. ``limit`` cuts longer text with an ellipsis.
    """
    flat = " ".join(text.split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


class LfmdeskError(Exception):
    """Base of every error lfmdesk raises on purpose; ``str(err)`` is one line."""

    exit_code = 1


class InputError(LfmdeskError):
    """The user gave input lfmdesk cannot use."""

    exit_code = 2


class ImageError(InputError):
    """An image that cannot be read safely."""


class SettingsError(InputError):
    """A setting outside its allowed range; the message names the field and the range."""


class ToolSpecError(InputError):
    """Tool definitions that are not a JSON list of function specs."""


class FolderNotEmptyError(InputError):
    """An export folder that holds files and is not an earlier lfmdesk export.

    Exporting there could replace a user's files of the same names; the caller asks the
    user and passes ``overwrite=True`` to go ahead.
    """


class ModelError(LfmdeskError):
    """A model that cannot be found, downloaded or trusted."""

    exit_code = 3


class ModelNotFoundError(ModelError):
    """Nothing cached and the hub cannot be reached (or the repo does not exist)."""


class ModelInvalidError(ModelError):
    """A model folder that fails verification and must not be loaded."""


class DownloadError(ModelError):
    """A download failed part-way; running it again resumes."""


class DownloadCancelled(DownloadError):
    """The user cancelled a download; partial files stay for a later resume."""


class EngineError(LfmdeskError):
    """Generation could not run."""

    exit_code = 4
