"""The PySide6 window: the only package that imports Qt. A thin skin over ``lfmdesk.core``."""

from lfmdesk.gui.support._refcount_guard import guard_singletons

guard_singletons()  # before any Qt call: see _refcount_guard

from lfmdesk.gui._app import run_app  # noqa: E402

__all__ = ["run_app"]
