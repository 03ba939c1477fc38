"""Decoding images off the GUI thread: a 12-megapixel JPEG takes longer than a frame.

loader = ImageLoader()
loader.loaded.connect(controller.on_image_loaded)   # (LoadedImage)
loader.failed.connect(controller.on_image_failed)   # (one-line message)
loader.loadingChanged.connect(canvas.set_loading)    # "Opening a.jpg…", then ""
loader.load_paths(["/tmp/a.jpg"])
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

from lfmdesk.core import LoadedImage, load_image
from lfmdesk.gui.support._jobs import PoolJob

__all__ = ["ImageLoader"]


class ImageLoader(QObject):
    """Loads images in a thread pool; results arrive as queued signals on the GUI thread.

    Signals:
        loaded(object): a decoded :class:`LoadedImage`.
        failed(str): one line saying why a file could not be read.
        loadingChanged(str): what is being read, e.g. "Opening photo.jpg…"; "" when done.
            A 24-megapixel photo takes seconds: the window says so meanwhile.
    """

    loaded = Signal(object)  # LoadedImage
    failed = Signal(str)
    loadingChanged = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        after_load: Callable[[LoadedImage], object] | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._after = after_load  # e.g. the conversation store's save_image, off the GUI thread
        self._pending = 0
        self.loaded.connect(self._one_done)
        self.failed.connect(self._one_done)

    def _then(self, image: LoadedImage) -> LoadedImage:
        from lfmdesk.gui.support._qtimage import prepare_display

        prepare_display(image)  # canvas image and thumbnails, off the GUI thread
        if self._after is not None:
            self._after(image)
        return image

    def _load_path(self, path: str) -> LoadedImage:
        return self._then(load_image(path))

    def _start(self, work: Callable[[], LoadedImage], what: str) -> None:
        self._pending += 1
        self.loadingChanged.emit(f"Opening {what}…")
        self._pool.start(PoolJob(work, self.loaded.emit, self.failed.emit))

    @Slot()
    def _one_done(self, *_result: object) -> None:
        self._pending = max(0, self._pending - 1)
        if not self._pending:
            self.loadingChanged.emit("")

    @property
    def loading(self) -> bool:
        """Images are being read."""
        return self._pending > 0

    def load_paths(self, paths: Sequence[str]) -> None:
        """Decode each file (EXIF orientation, bombs refused...) in the background."""
        for path in paths:
            self._start(functools.partial(self._load_path, path), Path(path).name)

    def load_image_object(self, image: LoadedImage) -> None:
        """An already decoded image (a camera frame, a test): only the after-load step."""
        self.load_from(lambda: image)

    def load_from(self, make: Callable[[], LoadedImage], what: str = "the image") -> None:
        """``make()`` (e.g. save a capture, then read it) off the GUI thread, then as usual."""
        self._start(lambda: self._then(make()), what)

    def load_qimage(self, image: QImage) -> None:
        """Pasted or dropped image data: encode to PNG and load it like a file."""
        from lfmdesk.gui.support._qtimage import qimage_to_loaded

        copy = image.copy()  # the clipboard's image may change under us
        self._start(lambda: self._then(qimage_to_loaded(copy)), "the pasted image")

    def wait(self) -> None:
        """Block until queued loads are done (tests and shutdown only)."""
        self._pool.waitForDone()
