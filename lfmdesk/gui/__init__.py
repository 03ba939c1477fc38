"""The PySide6 window: the only package that imports Qt. A thin skin over ``lfmdesk.core``."""

from lfmdesk.gui._app import run_app

__all__ = ["run_app"]
