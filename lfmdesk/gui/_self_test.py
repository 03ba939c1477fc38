"""``lfmdesk --model FOLDER --self-test``: open the window, ask one question about an image, exit.

Proves an installation (or an app bundle) carries everything the window, the engine process
and the model need: exit code 0 and one line of facts on success, 1 and the reason otherwise.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QApplication

from lfmdesk.core import LoadedImage, ModelInfo, load_image
from lfmdesk.gui._window import MainWindow

__all__ = ["SelfTest"]

QUESTION = "What is in this picture?"


def test_picture() -> LoadedImage:
    """A small synthetic picture: coloured shapes on a gradient."""
    y, x = np.mgrid[0:384, 0:512]
    pixels = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype("uint8")
    pixels[100:250, 120:300] = (220, 40, 40)
    return load_image(Image.fromarray(pixels))


class SelfTest(QObject):
    """Drives a shown window: wait for the model, attach a picture, ask, check the answer."""

    def __init__(self, window: MainWindow, timeout_s: float = 300.0) -> None:
        super().__init__(window)
        self.window = window
        self.code = 1
        client = window.client
        client.modelLoaded.connect(self.on_loaded)
        client.modelFailed.connect(self.on_failed)
        client.chatFinished.connect(self.on_finished)
        client.chatFailed.connect(self.on_chat_failed)
        window.controller.loader.loaded.connect(self.on_attached)
        QTimer.singleShot(int(timeout_s * 1000), self.on_timeout)

    def _end(self, code: int, line: str) -> None:
        self.code = code
        print(f"self-test: {line}", file=sys.stdout if code == 0 else sys.stderr, flush=True)
        self.window.close()
        QApplication.exit(code)

    @Slot(str, object)
    def on_loaded(self, _spec: str, _info: ModelInfo) -> None:
        self.window.controller.loader.load_image_object(test_picture())

    @Slot(object)
    def on_attached(self, _image: LoadedImage) -> None:
        self.window.controller.send(QUESTION)

    @Slot(int)
    def on_finished(self, _rid: int) -> None:
        turn = self.window.controller.chat_thread.turns[-1]
        stats = turn.stats
        if turn.role != "assistant" or stats is None:
            self._end(1, "the engine finished without an answer")
            return
        self._end(
            0,
            f"ok: {stats.image_tokens} image tokens, {stats.decode_tokens} tokens in "
            f"{stats.ttft_seconds:.2f} s to first token ({stats.finish_reason})",
        )

    @Slot(str, str, bool)
    def on_failed(self, spec: str, message: str, _cancelled: bool) -> None:
        self._end(1, f"cannot load {spec}: {message}")

    @Slot(int, str)
    def on_chat_failed(self, _rid: int, message: str) -> None:
        self._end(1, f"the answer failed: {message}")

    @Slot()
    def on_timeout(self) -> None:
        self._end(1, "timed out")
