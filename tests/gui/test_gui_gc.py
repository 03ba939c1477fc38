"""Garbage holding Qt objects is freed on the GUI thread, never on a worker thread (a Qt object
destroyed on a worker while the event loop uses it crashed the Evaluate dialog)."""

from __future__ import annotations

import gc
import threading

from PySide6.QtWidgets import QLabel

from lfmdesk.gui.support._gc import GuiThreadCollector

FREED_ON: list[str] = []  # the thread each _Cycle was freed on


class _Cycle:
    """A closed dialog's leftovers: a widget in a reference cycle, noting where it is freed."""

    def __init__(self) -> None:
        self.me = self
        self.label = QLabel("gone")

    def __del__(self) -> None:
        FREED_ON.append(threading.current_thread().name)


def _busy_worker(out: list[object]) -> None:
    # A worker allocating as the evaluation thread does: enough containers to trip gen 0.
    out.append([[i] for i in range(50_000)])


def test_a_worker_thread_never_collects_qt_garbage(qtbot, _collect_on_the_gui_thread) -> None:
    collector: GuiThreadCollector = _collect_on_the_gui_thread
    assert not gc.isenabled()
    FREED_ON.clear()
    _Cycle()
    made: list[object] = []
    worker = threading.Thread(target=_busy_worker, args=(made,), name="worker")
    worker.start()
    worker.join()
    assert FREED_ON == []  # the worker left it alone
    qtbot.waitUntil(lambda: FREED_ON == ["MainThread"], timeout=5_000)
    assert collector.check() >= 0


def test_stop_gives_collection_back_as_it_was(qapp) -> None:
    gc.enable()
    try:
        collector = GuiThreadCollector(qapp)
        assert not gc.isenabled()
        collector.stop()
        assert gc.isenabled()
    finally:
        gc.disable()  # the fixture's collector owns this test
