"""The app icon, from the SVG wherever lfmdesk runs: source tree, wheel or app bundle.

``resources/lfmdesk.svg`` is the source. Installs from a wheel have no ``resources/``, so a
copy ships inside the package (``lfmdesk/gui/lfmdesk.svg``, package data; a test keeps the
two identical). The PyInstaller bundle carries both: the package copy beside this module and
``resources/lfmdesk.svg`` under ``sys._MEIPASS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon

__all__ = ["app_icon", "icon_path"]

_NAME = "lfmdesk.svg"


def icon_path() -> Path | None:
    """The first icon SVG that exists: package copy, bundle's resources/, source tree's."""
    here = Path(__file__).resolve().parent
    candidates = [here / _NAME]
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources" / _NAME)
    candidates.append(here.parent.parent / "resources" / _NAME)
    return next((p for p in candidates if p.is_file()), None)


def app_icon() -> QIcon:
    """The lfmdesk icon (scalable); an empty QIcon if the SVG cannot be found.

    Example::

        app.setWindowIcon(app_icon())
    """
    path = icon_path()
    return QIcon(str(path)) if path is not None else QIcon()
