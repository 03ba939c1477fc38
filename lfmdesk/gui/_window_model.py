"""The window's model slots: load, download progress, loaded, failed, engine crashed.

A mixin of :class:`~lfmdesk.gui._window.MainWindow`, kept apart so the window module stays
about layout and wiring.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFileDialog, QStackedWidget, QWidget

from lfmdesk.core import AppSettings, ModelInfo
from lfmdesk.gui._banner import Banner
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui._status import StatusStrip
from lfmdesk.gui.chat._panel import ChatPanel
from lfmdesk.gui.models._model_bar import ModelBar, ModelRow, remote_title, row_key
from lfmdesk.gui.models._welcome import WelcomePanel
from lfmdesk.gui.train._rows import with_adapters

__all__ = ["ModelSlots", "model_summary"]


def model_summary(info: ModelInfo) -> str:
    """E.g. "LiquidAI/LFM2.5-VL-450M-MLX-8bit · 8-bit · float32 on CPU" (" · adapter cats"
    when one is applied)."""
    if info.device == "remote":
        return f"{info.name} · on a remote server"
    bits = f"{info.bits}-bit" if info.bits else "bf16"
    text = f"{info.name} · {bits} · {info.compute_dtype} on {info.device.upper()}"
    return f"{text} · adapter {info.adapter.name}" if info.adapter else text


class ModelSlots:
    """Keeps the model bar, welcome panel, status strip and chat input in step with the engine.

    They show what the engine really holds: a failed switch puts the picker back on the
    model still loaded (or on none, when the failure came after the old one was freed) and
    explains the failure in the banner, with its advice and a "Use a Local Folder…" button.
    """

    # Provided by the window.
    client: EngineClient
    settings: AppSettings
    model_bar: ModelBar
    welcome: WelcomePanel
    status: StatusStrip
    chat: ChatPanel
    banner: Banner
    stack: QStackedWidget
    main: QWidget
    _rows: list[ModelRow]
    _save_settings: Callable[[AppSettings], None]
    serve_port: int = 8000  # where the Serve button serves the API (tests use 0: any free port)
    _loaded: tuple[str, ModelInfo] | None = None

    def loaded_model_name(self) -> str:
        """The name of the model loaded now ("" for none)."""
        return self._loaded[1].name if self._loaded is not None else ""

    @Slot(str)
    def load_model(self, spec: str) -> None:
        """Switch to ``spec`` (downloads first if needed; never blocks)."""
        self.model_bar.set_state("loading", f"Preparing {spec}…")
        self.status.set_engine_state("Loading model…")
        self.client.load_model(spec)

    @Slot(str, object)
    def load_remote(self, url: str, api_key: str | None) -> None:
        """Answer from the OpenAI-compatible server at ``url`` (the key stays in memory)."""
        self.model_bar.set_state("loading", f"Connecting to {url}…")
        self.status.set_engine_state("Connecting…")
        self.client.load_model(url, api_key)

    @Slot(bool)
    def set_serving(self, on: bool) -> None:
        """The Serve button: serve the loaded model over the API on this Mac, or stop."""
        if on:
            self.client.start_serving(self.serve_port)
        else:
            self.client.stop_serving()

    @Slot(str, str)
    def load_adapter(self, spec: str, adapter: str) -> None:
        """Switch to ``spec`` with the trained ``adapter`` on top (never blocks)."""
        self.model_bar.set_state("loading", f"Preparing {spec} with adapter {adapter}…")
        self.status.set_engine_state("Loading model…")
        self.client.load_model(spec, adapter=adapter)

    @Slot()
    def refresh_adapters(self) -> None:
        """List the adapters in the store under their base models (after training)."""
        self._rows = with_adapters(self._rows)
        self.model_bar.set_rows(self._rows, self.model_bar.current)

    def choose_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.main, "Choose a model folder")
        if folder:
            self.load_model(folder)

    @Slot(str, str)
    def on_model_phase(self, spec: str, phase: str) -> None:
        state = "downloading" if phase == "downloading" else "loading"
        self.model_bar.set_state(state, f"{phase.capitalize()} {spec}…")
        self.status.set_engine_state(f"{phase.capitalize()}…")

    @Slot(object)
    def on_download_progress(self, progress: object) -> None:
        done, total = getattr(progress, "done_bytes", 0), getattr(progress, "total_bytes", 0)
        self.model_bar.set_progress(done, total)
        self.welcome.set_progress(done, total)

    @Slot(str, object)
    def on_model_loaded(self, spec: str, info: ModelInfo) -> None:
        self._loaded = (spec, info)
        if spec not in {row.spec for row in self._rows}:  # a folder, a repo id or a server
            remote = info.device == "remote"
            title = remote_title(spec) if remote else info.name
            self._rows.append(ModelRow(spec, title, size_bytes=0, downloaded=not remote))
        adapter = info.adapter.name if info.adapter else None
        self.model_bar.set_rows(self._rows, row_key(spec, adapter))
        self.model_bar.set_state("ready", model_summary(info))
        self.status.set_engine_state("Ready")
        self.stack.setCurrentWidget(self.main)
        self.chat.set_input_enabled(True)
        for topic in ("engine", "model"):  # the engine is back, a model answers: old news
            self.banner.clear(topic)
        if spec != self.settings.model:
            self.settings = dataclasses.replace(self.settings, model=spec)
            self._save_settings(self.settings)

    @Slot(str, str, bool)
    def on_model_failed(self, spec: str, message: str, cancelled: bool) -> None:
        if self.client.loaded_spec is None:
            self._loaded = None
        text = "Download cancelled" if cancelled else message
        if self._loaded is not None:  # the previous model is still loaded and answering
            loaded_spec, info = self._loaded
            self.model_bar.set_rows(self._rows, loaded_spec)
            self.model_bar.set_state("ready", model_summary(info))
            self.status.set_engine_state("Ready")
            if not cancelled:
                self._explain_failure(spec, message, f" Still using {info.name}.")
            return
        self.model_bar.set_rows(self._rows, "")
        self.model_bar.set_state("none" if cancelled else "error", "" if cancelled else text)
        self.welcome.set_error(text)
        self.status.set_engine_state("No model" if cancelled else "Model failed")
        self.chat.set_input_enabled(False, "No model loaded: choose one in the bar above")
        if not cancelled:
            self._explain_failure(spec, message, "")

    def _explain_failure(self, spec: str, message: str, still: str) -> None:
        if self.stack.currentWidget() is self.welcome:
            return  # the welcome panel shows it under its own "Use a local folder…" button
        self.banner.show_message(
            f"Could not load {spec}: {message.rstrip('.')}.{still}",
            kind="error",
            action_text="Use a Local Folder…",
            topic="model",
        )

    @Slot(str)
    def on_engine_crashed(self, message: str) -> None:
        reload = " and reloading the model" if self.client.loaded_spec is not None else ""
        self.banner.show_message(
            f"{message[0].upper()}{message[1:]}. A new engine is starting{reload}; your "
            "conversation and boxes are safe. The interrupted answer is marked.",
            kind="warning",
            action_text="Dismiss",
            topic="engine",
            timeout_ms=0 if reload else 15_000,  # no model to reload: nothing left to wait for
        )
        if reload:
            self.chat.set_input_enabled(False, "Restarting the engine…")
            self.model_bar.set_state("loading", "Restarting the engine…")
            self.status.set_engine_state("Restarting the engine…")
