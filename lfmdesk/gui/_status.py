"""The status-bar strip: engine state, the last answer's numbers, canvas hover, "Show prompt".

::

    strip = StatusStrip()
    window.statusBar().addPermanentWidget(strip, 1)
    strip.set_engine_state("Ready")
    strip.set_stats(stats)        # GenerationStats -> "TTFT 0.42 s · 38.1 tok/s · ..."
    strip.set_hover("x 312, y 87")
    strip.showPromptRequested.connect(window.show_prompt)
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from lfmdesk.core import GenerationStats, format_size

__all__ = ["StatusStrip", "format_stats", "stats_tooltip"]


_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    # objectName lets tests and style sheets find parts; the stubs reject it as a keyword.
    widget.setObjectName(name)
    return widget


_ANSWERING = "Answering…"
_FINISH_TEXT: dict[str, str] = {
    "stop": "",
    "length": "stopped at max tokens",
    "cancelled": "stopped by you",
}


def _vision_text(stats: GenerationStats) -> str:
    if stats.images <= 0:
        return ""
    if stats.vision_cache_hits >= stats.images:
        return "vision cache hit"
    text = f"vision encoded {stats.vision_seconds:.2f} s"
    if stats.vision_cache_hits:
        text += f" ({stats.vision_cache_hits}/{stats.images} cached)"
    return text


def _prompt_text(stats: GenerationStats) -> str:
    new = stats.prompt_tokens - stats.cached_prompt_tokens
    if stats.cached_prompt_tokens <= 0:
        return f"prompt {stats.prompt_tokens} tokens"
    return f"prompt {new}/{stats.prompt_tokens} new"


def format_stats(stats: GenerationStats) -> str:
    """One compact line for the status bar.

    Example: "TTFT 0.42 s · 38.1 tok/s · 256 image tokens · vision cache hit ·
    prompt 12/281 new · peak 1.2 GB".
    """
    parts = [
        f"TTFT {stats.ttft_seconds:.2f} s",
        f"{stats.decode_tps:.1f} tok/s",
        f"{stats.image_tokens} image tokens" if stats.images > 0 else "",
        _vision_text(stats),
        _prompt_text(stats),
        f"peak {format_size(stats.peak_memory_bytes)}" if stats.peak_memory_bytes > 0 else "",
        _FINISH_TEXT.get(stats.finish_reason, stats.finish_reason),
    ]
    return " · ".join(part for part in parts if part)


def stats_tooltip(stats: GenerationStats) -> str:
    """Every number of the generation, one per line, for the strip's tooltip."""
    rows = (
        ("Time to first token", f"{stats.ttft_seconds:.3f} s"),
        ("Tokens generated", str(stats.decode_tokens)),
        ("Decode speed", f"{stats.decode_tps:.1f} tokens/s"),
        ("Prompt tokens", str(stats.prompt_tokens)),
        ("Reused from last turn", str(stats.cached_prompt_tokens)),
        ("Images", str(stats.images)),
        ("Image tokens", str(stats.image_tokens)),
        ("Images from vision cache", str(stats.vision_cache_hits)),
        ("Vision encoding", f"{stats.vision_seconds:.3f} s"),
        ("Peak memory", format_size(stats.peak_memory_bytes)),
        ("Finished because", stats.finish_reason),
    )
    return "\n".join(f"{name}: {value}" for name, value in rows)


def _separator() -> QFrame:
    line = QFrame()
    line.setFrameShape(QFrame.Shape.VLine)
    line.setFrameShadow(QFrame.Shadow.Sunken)
    return line


class StatusStrip(QWidget):
    """Engine state | generation stats | hover coordinates | "Show prompt".

    Signals:
        showPromptRequested(): the user wants to see the rendered prompt of the last answer.
    """

    showPromptRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build an empty strip (no state, no stats, "Show prompt" enabled)."""
        super().__init__(parent)
        self._engine = _named(QLabel(), "statusEngine")
        self._stats = _named(QLabel(), "statusStats")
        self._stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._hover = _named(QLabel(), "statusHover")
        self._prompt = _named(QPushButton("Show prompt"), "statusShowPrompt")
        self._prompt.setFlat(True)
        self._style_prompt_as_link()
        self._prompt.setCursor(Qt.CursorShape.PointingHandCursor)
        self._prompt.setToolTip("Show the exact text the model was given, image tokens included")
        self._stats_sep = _separator()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self._engine)
        layout.addWidget(self._stats_sep)
        layout.addWidget(self._stats, 1)
        layout.addWidget(self._hover)
        layout.addWidget(self._prompt)
        self._prompt.clicked.connect(self._on_prompt)
        self._state = ""
        self._answering = False
        self.set_stats(None)

    def set_engine_state(self, text: str) -> None:
        """Show the engine's state, e.g. "Ready", "Loading…", "Engine restarted"."""
        self._state = text
        self._engine.setText(_ANSWERING if self._answering and text == "Ready" else text)

    @Slot(bool)
    def set_answering(self, answering: bool) -> None:
        """An answer is being written: say so, and clear the last answer's numbers (the
        new ones replace them when it ends)."""
        self._answering = answering
        if answering:
            self.set_stats(None)
        self.set_engine_state(self._state)

    def engine_text(self) -> str:
        """The engine state shown now."""
        return self._engine.text()

    def stats_text(self) -> str:
        """The numbers shown now ("" for none)."""
        return self._stats.text()

    def set_stats(self, stats: GenerationStats | None) -> None:
        """Show the numbers of the last answer; ``None`` clears them."""
        text = format_stats(stats) if stats is not None else ""
        self._stats.setText(text)
        self._stats.setToolTip(stats_tooltip(stats) if stats is not None else "")
        self._stats_sep.setVisible(bool(text))

    def set_hover(self, text: str) -> None:
        """Show where the pointer is on the image canvas ("" hides it)."""
        self._hover.setText(text)

    def set_prompt_available(self, available: bool) -> None:
        """Enable or disable "Show prompt" (e.g. before the first answer)."""
        self._prompt.setEnabled(available)

    def changeEvent(self, event: QEvent) -> None:
        """Follow light/dark switches: the link colour comes from the current palette."""
        if event.type() == QEvent.Type.PaletteChange:
            self._style_prompt_as_link()
        super().changeEvent(event)

    def _style_prompt_as_link(self) -> None:
        link = self.palette()
        link.setColor(QPalette.ColorRole.ButtonText, link.color(QPalette.ColorRole.Link))
        self._prompt.setPalette(link)

    @Slot()
    def _on_prompt(self) -> None:
        self.showPromptRequested.emit()
