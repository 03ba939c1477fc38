"""What the app bundle says about itself: names, version, Info.plist and PyInstaller inputs.

``lfmdesk.spec`` and ``build.py`` import this module (so do the tests), which keeps the
bundle's identity in one place. It imports nothing heavy: no PyInstaller, no Qt.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = [
    "APP_NAME",
    "BUNDLE_ID",
    "DOCUMENT_TYPES",
    "EXCLUDED_DISTS",
    "EXCLUDES",
    "MIN_MACOS",
    "ROOT",
    "TRANSFORMERS_MODELS",
    "bundled_data",
    "dmg_name",
    "info_plist",
    "tarball_name",
    "version",
]

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "lfmdesk"
BUNDLE_ID = "io.github.lfmdesk"
# MLX's Metal backend needs macOS 13.5 or newer (its wheels are built for it).
MIN_MACOS = "13.5"

CAMERA_TEXT = (
    "lfmdesk shows your camera in Live mode so the model on this Mac can describe what it "
    "sees and draw boxes around the objects you ask for. Frames never leave your Mac."
)
SCREEN_TEXT = (
    "lfmdesk captures the screen (or a region you drag) when you choose Capture Screen or "
    "Capture Region, so the model can find objects in it. Captures stay on your Mac."
)

# What Finder may hand lfmdesk ("Open With", a drop on the Dock icon): images go to the chat,
# videos to live mode. "Alternate": offered, never made the default app for these types.
DOCUMENT_TYPES = (
    {
        "CFBundleTypeName": "Image",
        "CFBundleTypeRole": "Viewer",
        "LSHandlerRank": "Alternate",
        "LSItemContentTypes": ["public.image"],
    },
    {
        "CFBundleTypeName": "Video",
        "CFBundleTypeRole": "Viewer",
        "LSHandlerRank": "Alternate",
        "LSItemContentTypes": ["public.movie"],
    },
)

# transformers imports its model packages lazily, by name: PyInstaller cannot see them.
TRANSFORMERS_MODELS = ("auto", "encoder_decoder", "lfm2", "lfm2_vl", "siglip2")

# Installed next to mlx-vlm (it depends on them, or the benchmark does) but never imported by
# the app; leaving them out keeps the bundle near 500 MB instead of 1.5 GB.
EXCLUDES = (
    "torch",
    "torchvision",
    "torchaudio",
    "torchgen",
    "tensorflow",
    "jax",
    "scipy",
    "sympy",
    "pyarrow",
    "pandas",
    "datasets",
    "cv2",
    "mlx_audio",
    "matplotlib",
    "IPython",
    "gradio",
    "numba",
    "sklearn",
    "tkinter",
    "pytest",
    "hypothesis",
    "mypy",
    "lfmdesk.bench",
    "lfmdesk.perf",
)


# Their metadata comes along with transformers' and mlx-vlm's; the code itself is excluded.
EXCLUDED_DISTS = (
    "torch",
    "scipy",
    "sympy",
    "opencv_python",
    "datasets",
    "pandas",
    "pyarrow",
    "mlx_audio",
)


def bundled_data(dest: str) -> bool:
    """Whether a data file PyInstaller collected belongs in the bundle (``dest``: its path there).

    transformers' hook copies the source of all ~550 model packages (42 MB); the app needs
    the few in :data:`TRANSFORMERS_MODELS`. Metadata of excluded distributions is dropped.
    """
    parts = Path(dest).parts
    if len(parts) > 3 and parts[:2] == ("transformers", "models"):
        return parts[2] in TRANSFORMERS_MODELS
    top = parts[0] if parts else ""
    if top.endswith(".dist-info"):
        return top.split("-")[0].lower() not in EXCLUDED_DISTS
    return True


def version() -> str:
    """``lfmdesk.__version__``, read from the source so building needs no import of lfmdesk."""
    text = (ROOT / "lfmdesk" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("lfmdesk/__init__.py has no __version__")
    return match.group(1)


def info_plist() -> dict[str, Any]:
    """The Info.plist entries of lfmdesk.app (PyInstaller adds the executable and icon keys)."""
    ver = version()
    return {
        "CFBundleName": APP_NAME,
        "CFBundleDisplayName": APP_NAME,
        "CFBundleIdentifier": BUNDLE_ID,
        "CFBundleShortVersionString": ver,
        "CFBundleVersion": ver,
        "CFBundlePackageType": "APPL",
        "LSMinimumSystemVersion": MIN_MACOS,
        # MLX runs on Apple Silicon only: never offer to open the app under Rosetta.
        "LSArchitecturePriority": ["arm64"],
        "LSRequiresNativeExecution": True,
        "LSApplicationCategoryType": "public.app-category.productivity",
        "NSHighResolutionCapable": True,
        "NSRequiresAquaSystemAppearance": False,
        "NSCameraUsageDescription": CAMERA_TEXT,
        # macOS words the Screen Recording prompt itself; this key records why for the
        # reviewer and for the versions that show it.
        "NSScreenCaptureUsageDescription": SCREEN_TEXT,
        "NSHumanReadableCopyright": "MIT License",
        "CFBundleDocumentTypes": [dict(t) for t in DOCUMENT_TYPES],
    }


def dmg_name(ver: str | None = None) -> str:
    """The disk image's file name, e.g. ``lfmdesk-0.1.0-arm64.dmg``."""
    return f"{APP_NAME}-{ver or version()}-arm64.dmg"


def tarball_name(ver: str | None = None, machine: str = "x86_64") -> str:
    """The Linux archive's file name, e.g. ``lfmdesk-0.1.0-linux-x86_64.tar.gz``."""
    return f"{APP_NAME}-{ver or version()}-linux-{machine}.tar.gz"
