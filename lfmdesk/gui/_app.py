"""Starting the window: ``lfmdesk`` (optionally ``--model SPEC``)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lfmdesk.core import (
    DEFAULT_VARIANT_KEY,
    VARIANTS,
    AppSettings,
    ConversationStore,
    LfmdeskError,
    LoadedSettings,
    list_cached,
    open_settings,
    resolve_model,
    save_settings,
)
from lfmdesk.gui.models._model_bar import ModelRow
from lfmdesk.gui.support._display import display_problem, platform_plugin_line
from lfmdesk.gui.train._rows import with_adapters

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

__all__ = ["model_rows", "run_app"]


def model_rows() -> list[ModelRow]:
    """The switcher's rows: every known variant, with what is downloaded and its size."""
    cached = {c.repo_id: c for c in list_cached()}
    rows = []
    for v in VARIANTS:
        hit = cached.get(v.repo_id)
        bits = f"{v.bits}-bit" if v.bits else "bf16"
        rows.append(
            ModelRow(
                spec=v.key,
                title=f"{v.family} · {bits}",
                size_bytes=hit.size_bytes if hit else v.size_bytes,
                downloaded=bool(hit and hit.complete),
                is_default=v.key == DEFAULT_VARIANT_KEY,
            )
        )
    return rows


def _startup_model(spec: str | None, settings: AppSettings, rows: list[ModelRow]) -> str | None:
    """What to load at start: ``--model``, else the saved choice if it is on disk."""
    if spec:
        return spec
    if settings.model.lower().startswith(("http://", "https://")):
        return settings.model  # the remote server chosen last (its key was not saved)
    try:
        ref = resolve_model(settings.model)
    except LfmdeskError:
        return None
    if ref.folder is not None:
        return str(ref.folder)
    downloaded = {r.spec for r in rows if r.downloaded}
    return settings.model if ref.variant and ref.variant.key in downloaded else None


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lfmdesk", description="Open the lfmdesk window.")
    p.add_argument("--model", "-m", help="variant key, repo id or model folder to load")
    p.add_argument("--compute", choices=("auto", "native", "float32"), default="auto")
    p.add_argument(
        "--self-test",
        action="store_true",
        help="load the model, ask one question about a picture, exit 0 if it worked",
    )
    p.add_argument(
        "--engine", choices=("real", "scripted"), default="real", help=argparse.SUPPRESS
    )  # scripted: demos and screenshots without a model
    return p.parse_args(list(argv))


def _application() -> QApplication:
    """The QApplication; Qt's fatal "platform plugin" paragraph becomes one line and exit 1."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    said: list[str] = []

    def handler(kind: QtMsgType, _context: object, message: str) -> None:
        said.append(message)
        if kind == QtMsgType.QtFatalMsg:
            print(f"lfmdesk: {platform_plugin_line(said)}", file=sys.stderr, flush=True)
            os._exit(1)  # Qt would abort() next: no core dump, no "reinstalling may fix this"

    qInstallMessageHandler(handler)
    try:
        app = QApplication(sys.argv[:1])
    finally:
        qInstallMessageHandler(None)
    for message in said:  # what Qt said on the way up, as it would have said it
        print(message, file=sys.stderr)
    return app


def run_app(argv: Sequence[str]) -> int:
    """Open the window and run the event loop; returns the exit code."""
    args = _parse(argv)
    problem = display_problem()
    if problem is not None:
        print(f"lfmdesk: {problem}", file=sys.stderr)
        return 1
    # Qt Multimedia reports every optional library it could not load (VA-API, PipeWire) and
    # FFmpeg's stream summary on each video: noise in a terminal, unless asked for.
    os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia*=false;qt.rhi*=false")
    from lfmdesk.gui._engine_client import EngineClient
    from lfmdesk.gui._icon import app_icon
    from lfmdesk.gui._window import MainWindow
    from lfmdesk.gui.support._file_open import FileOpenForwarder
    from lfmdesk.gui.support._gc import GuiThreadCollector
    from lfmdesk.gui.support._startup_trace import trace_first_paint
    from lfmdesk.gui.support._ui_state import UiState

    app = _application()
    GuiThreadCollector(app)  # a Qt object must never be freed on a worker thread: see _gc
    app.setApplicationName("lfmdesk")
    app.setOrganizationName("lfmdesk")
    app.setWindowIcon(app_icon())
    # Images dropped on the Dock icon or opened with "Open With" (macOS), even at launch.
    opener = FileOpenForwarder(app)
    app.installEventFilter(opener)
    loaded = open_settings()  # never fails: a broken settings file must not stop the app
    settings = loaded.settings
    warning = _settings_warning(loaded)
    if warning:
        print(f"lfmdesk: warning: {warning}", file=sys.stderr)
    rows = with_adapters(model_rows())
    startup = _startup_model(args.model, settings, rows)
    client = EngineClient(engine_factory=args.engine, compute=args.compute)
    window = MainWindow(
        client,
        ConversationStore(),
        settings,
        rows,
        has_model=startup is not None,
        save_settings=_saver(),
        ui_state=UiState(),
    )
    trace_first_paint(window)  # python -m lfmdesk.bench --startup
    window.show()
    if warning:
        window.show_warning(warning)
    opener.set_target(window.open_files)
    client.start()
    if args.self_test:
        if startup is None:
            print("self-test: no model to test; pass --model", file=sys.stderr)
            return 1
        from lfmdesk.gui._self_test import SelfTest

        SelfTest(window)
    if startup is not None:
        window.load_model(startup)
    return int(app.exec())


def _settings_warning(loaded: LoadedSettings) -> str:
    """One line about a settings file that could not be used as it is; "" when it could."""
    if loaded.newer is not None:
        return (
            f"Settings were saved by a newer lfmdesk (version {loaded.newer}): changes "
            "made here last until you quit and are not saved over them"
            + (f" ({loaded.problem})" if loaded.problem else "")
        )
    if loaded.problem:
        return f"{loaded.problem}; the file is kept (renamed .bad-DATE) when settings are saved"
    return ""


def _saver() -> Callable[[AppSettings], None]:
    told: set[str] = set()

    def save(settings: AppSettings) -> None:
        try:
            save_settings(settings)
        except (OSError, LfmdeskError) as exc:
            if str(exc) not in told:  # once: settings are saved on every change
                told.add(str(exc))
                print(f"lfmdesk: warning: cannot save settings: {exc}", file=sys.stderr)

    return save
