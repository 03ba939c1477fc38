"""Python's cyclic garbage collector, run on the GUI thread only.

CPython collects in whichever thread happens to allocate when a threshold trips. In the window
that is often a worker: the evaluation thread, a pool job decoding an image, the engine
client's sender. If the garbage then holds a Qt object (a dialog closed earlier, a wrapper in a
reference cycle), its C++ destructor runs on that worker while the GUI thread's event loop may
be using the object: a segfault inside ``exec()``, measured here with the Evaluate dialog after
the windows of the test suite's earlier tests. So automatic collection is switched off, and a
GUI-thread timer collects by the same thresholds CPython would have used.

    collector = GuiThreadCollector(app)   # once, after the QApplication exists
    ...
    collector.stop()                      # automatic collection back on (tests)
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer, Slot

__all__ = ["GuiThreadCollector"]

# Often enough that garbage from a burst of events (a streamed answer, a live loop) goes within
# a second; a generation-0 check that finds nothing to do costs microseconds.
_INTERVAL_MS = 250


class GuiThreadCollector(QObject):
    """Turns off automatic collection and collects from a GUI-thread timer instead.

    Args:
        parent: Qt parent (the application); the timer lives in the parent's thread, which
            must be the GUI thread.
        interval_ms: how often the thresholds are checked.
    """

    def __init__(self, parent: QObject | None = None, interval_ms: int = _INTERVAL_MS) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(interval_ms)

    @Slot()
    def check(self) -> int:
        """Collect the generations whose thresholds were passed; returns objects freed."""
        counts = gc.get_count()
        freed = 0
        # Same order as CPython: a generation is looked at once the younger one overflowed.
        for generation in range(3):
            if counts[generation] <= self._thresholds[generation]:
                break
            freed = gc.collect(generation)
        return freed

    def stop(self) -> None:
        """Stop the timer and give collection back to CPython (as it was before)."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()
