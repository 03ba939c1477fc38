"""Keep ``None``, ``True`` and ``False`` alive under shiboken6 6.12 on CPython 3.11.

shiboken6 6.12.0 gives back one reference to ``None`` that it never took on every call to a
Qt method that returns void (``label.setText``, ``pen.setWidth``, ``painter.drawText``...):
measured here, 1000 ``setText`` calls lower ``sys.getrefcount(None)`` by exactly 1000. After
roughly 5,000-25,000 such calls the count reaches zero and CPython aborts with "Fatal Python
error: none_dealloc" — a window would die within minutes of use. Since CPython 3.12 these
singletons are immortal and the bug is harmless; before 3.12 we give them the same
protection by raising their reference counts far beyond anything a session can spend.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["guard_singletons"]

_HEADROOM = 1 << 60  # ~1e18 calls; positive in a 64-bit Py_ssize_t


def guard_singletons() -> bool:
    """Make None/True/False effectively immortal on CPython < 3.12; True if it did."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    for obj in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field
        if refcount.value < _HEADROOM:
            refcount.value += _HEADROOM
    return True
