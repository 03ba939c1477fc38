"""Decoding images off the GUI thread: a 12-megapixel JPEG takes longer than a frame.

loader = ImageLoader()
loader.loaded.connect(controller.on_image_loaded)   # (LoadedImage)
loader.failed.connect(controller.on_image_failed)   # (one-line message)
loader.load_paths(["/tmp/a.jpg"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from lfmdesk.core import LfmdeskError, LoadedImage, load_image

__all__ = ["ImageLoader"]


class _Job(QRunnable):
    def __init__(self, work: Callable[[], LoadedImage], owner: ImageLoader) -> None:
        super().__init__()
        self._work, self._owner = work, owner

    def run(self) -> None:
        try:
            image = self._work()
        except LfmdeskError as exc:
            self._owner.failed.emit(str(exc))
        except Exception as exc:  # a decoder bug must not kill the pool thread silently
            self._owner.failed.emit(f"cannot read image: {type(exc).__name__}: {exc}")
        else:
            self._owner.loaded.emit(image)


class ImageLoader(QObject):
    """Loads images in a thread pool; results arrive as queued signals on the GUI thread."""

    loaded = Signal(object)  # LoadedImage
    failed = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        after_load: Callable[[LoadedImage], object] | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._after = after_load  # e.g. the conversation store's save_image, off the GUI thread

    def _then(self, image: LoadedImage) -> LoadedImage:
        from lfmdesk.gui._qtimage import prepare_display

        prepare_display(image)  # canvas image and thumbnails, off the GUI thread
        if self._after is not None:
            self._after(image)
        return image

    def load_paths(self, paths: Sequence[str]) -> None:
        """Decode each file (EXIF orientation, bombs refused...) in the background."""
        for path in paths:
            self._pool.start(_Job(lambda p=path: self._then(load_image(p)), self))

    def load_image_object(self, image: LoadedImage) -> None:
        """An already decoded image (a camera frame, a test): only the after-load step."""
        self._pool.start(_Job(lambda: self._then(image), self))

    def load_qimage(self, image: QImage) -> None:
        """Pasted or dropped image data: encode to PNG and load it like a file."""
        from lfmdesk.gui._qtimage import qimage_to_loaded

        copy = image.copy()  # the clipboard's image may change under us
        self._pool.start(_Job(lambda: self._then(qimage_to_loaded(copy)), self))

    def wait(self) -> None:
        """Block until queued loads are done (tests and shutdown only)."""
        self._pool.waitForDone()
