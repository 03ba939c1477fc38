"""The main window: canvas and chat side by side, model bar on top, settings in a dock.

The window wires widgets to the chat controller and the engine client; the logic lives in
the controller (conversations) and the core (everything else).
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QSplitter,
    QStackedWidget,
    QTextEdit,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import (
    AppSettings,
    ConversationStore,
    InputError,
    LiveSettings,
    LoadedImage,
    SamplingSettings,
    VisionSettings,
    plan_tiles,
)
from lfmdesk.gui._banner import Banner, Toast
from lfmdesk.gui._controller import ChatController
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui._menus import install_menus
from lfmdesk.gui._status import StatusStrip
from lfmdesk.gui._window_model import ModelSlots
from lfmdesk.gui._window_slots import WindowSlots
from lfmdesk.gui.annotate._workspace import Workspace
from lfmdesk.gui.canvas._canvas import ImageCanvas
from lfmdesk.gui.chat._dialogs import ConversationList, PromptDialog
from lfmdesk.gui.chat._panel import ChatPanel
from lfmdesk.gui.chat._tools_drawer import ToolsDrawer
from lfmdesk.gui.live._mode import LiveMode
from lfmdesk.gui.models._model_bar import ModelBar, ModelRow
from lfmdesk.gui.models._settings_panel import SettingsPanel
from lfmdesk.gui.models._welcome import WelcomePanel
from lfmdesk.gui.support._about import AboutDialog
from lfmdesk.gui.support._ui_state import UiState
from lfmdesk.gui.train._dialog import TrainAction

__all__ = ["MainWindow"]

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.gif *.bmp *.tif *.tiff *.heic *.heif)"


def _freeze_startup_objects() -> None:
    gc.collect()
    gc.freeze()


class MainWindow(ModelSlots, WindowSlots, QMainWindow):
    """lfmdesk's window. Everything it needs comes in through the constructor."""

    def __init__(
        self,
        client: EngineClient,
        store: ConversationStore,
        settings: AppSettings,
        rows: list[ModelRow],
        *,
        has_model: bool,
        save_settings: Callable[[AppSettings], None],
        ui_state: UiState,
    ) -> None:
        super().__init__()
        self.setWindowTitle("lfmdesk")
        self.setAcceptDrops(True)
        self.client, self.settings, self.ui_state = client, settings, ui_state
        self._save_settings = save_settings
        self._current_image: LoadedImage | None = None
        self.prompt_dialog: PromptDialog | None = None
        self.about_dialog: AboutDialog | None = None
        self.menus: dict[str, QMenu] = {}
        self.toolbar: QToolBar
        self._gc_frozen = False
        self._rows = list(rows)
        self._build_widgets(rows, settings)
        self.controller = ChatController(
            client, store, self.chat, self._settings_now, self._tools_now, self
        )
        self.workspace = Workspace(
            self, self.canvas, self.controller, client, self._settings_now, settings
        )
        self.live = LiveMode(
            self,
            self.view_area,
            client,
            settings.live,
            lambda: self.settings.sampling,
            self.workspace.store_capture,
        )
        self.trainer = TrainAction(
            self,
            lambda: self.workspace.project,
            lambda: (self.settings.model, self.settings.vision),
            client.engine_factory,
        )
        self._build_layout()
        self.menu_actions = install_menus(self)
        self.boxes_action = self.menu_actions.boxes
        self._connect()
        self.stack.setCurrentWidget(self.main if has_model else self.welcome)
        if not has_model:  # the picker shows what is loaded: nothing yet
            self.model_bar.set_rows(self._rows, "")
        self.chat.set_input_enabled(False, "Loading the model…")
        self._restore_geometry()
        self._refresh_conversations()

    # --- construction ------------------------------------------------------------------

    def _build_widgets(self, rows: list[ModelRow], settings: AppSettings) -> None:
        self.banner = Banner()
        self.model_bar = ModelBar(rows, settings.model)
        self.canvas = ImageCanvas()
        self.view_area = QStackedWidget()  # the canvas, or the live preview while it runs
        self.view_area.addWidget(self.canvas)
        self.chat = ChatPanel()
        self.tools = ToolsDrawer()
        self.settings_panel = SettingsPanel(settings.sampling, settings.vision)
        self.status = StatusStrip()
        self.welcome = WelcomePanel()
        self.welcome.set_default(next((r for r in rows if r.is_default), None))
        self.conversations = ConversationList()
        self.toast = Toast(self)

    def _build_layout(self) -> None:
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.chat, 1)
        column.addWidget(self.tools)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.view_area)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)
        self.view_area.setMinimumWidth(320)
        right.setMinimumWidth(360)
        self.splitter.setSizes([720, 520])
        self.main = self.splitter
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.main)
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 0)
        outer.addWidget(self.banner)
        outer.addWidget(self.model_bar)
        outer.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.settings_dock = self._dock("Settings", self.settings_panel, "settings")
        self.history_dock = self._dock("Conversations", self.conversations, "conversations")
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.settings_dock)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.history_dock)
        self.project_dock = self._dock("Project", self.workspace.panel, "project")
        self.labels_dock = self._dock("Labels", self.workspace.labels, "labels")
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.project_dock)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.labels_dock)
        self.live_dock = self._dock("Live", self.live.panel, "live")
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.live_dock)
        self.settings_dock.hide()
        self.history_dock.hide()
        self.live_dock.hide()
        self.statusBar().addPermanentWidget(self.status, 1)
        self.toast.set_anchor(self.view_area)

    def _dock(self, title: str, widget: QWidget, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        return dock

    def _connect(self) -> None:
        c, client = self.controller, self.client
        c.imageShown.connect(self.show_image)
        c.detected.connect(self.workspace.on_detected)
        c.statsChanged.connect(self.status.set_stats)
        c.imagesInConversation.connect(self.tools.set_images_attached)
        c.conversationSaved.connect(self._refresh_conversations)
        c.promptReady.connect(self.show_prompt)
        c.problem.connect(self.show_problem)
        c.busyChanged.connect(self.status.set_answering)
        c.loader.loadingChanged.connect(self.canvas.set_loading)
        self.workspace.loader.loadingChanged.connect(self.canvas.set_loading)
        self.workspace.capture_loader.loadingChanged.connect(self.canvas.set_loading)
        self.workspace.panel.showFolderRequested.connect(self.show_project_folder)
        self.chat.actionsChanged.connect(self._sync_chat_actions)
        self.canvas.filesDropped.connect(self.open_files)
        self.canvas.imageDropped.connect(c.loader.load_qimage)
        self.canvas.hoverText.connect(self.status.set_hover)
        self.status.showPromptRequested.connect(c.request_prompt)
        self.model_bar.modelRequested.connect(self.load_model)
        self.model_bar.remoteRequested.connect(self.load_remote)
        self.model_bar.serveToggled.connect(self.set_serving)
        self.model_bar.adapterRequested.connect(self.load_adapter)
        self.trainer.adaptersChanged.connect(self.refresh_adapters)
        self.trainer.adapterChosen.connect(self.load_adapter)
        self.model_bar.cancelRequested.connect(client.cancel_download)
        self.welcome.downloadRequested.connect(self.load_model)
        self.welcome.folderChosen.connect(self.load_model)
        self.welcome.cancelRequested.connect(client.cancel_download)
        self.settings_panel.settingsChanged.connect(self.on_settings_changed)
        self.settings_dock.visibilityChanged.connect(lambda _v: self._update_tile_plan())
        self.conversations.openRequested.connect(c.open_conversation)
        self.conversations.newRequested.connect(c.new_conversation)
        self.conversations.deleteRequested.connect(self.delete_conversation)
        self.banner.actionTriggered.connect(self._on_banner_action)
        self.workspace.message.connect(self.show_message)
        self.workspace.problem.connect(self.show_warning)
        self.workspace.resolved.connect(self.banner.clear)
        self.workspace.mistake.connect(self.show_problem)
        self.workspace.settingsChanged.connect(self._save_workspace_settings)
        self.live.settingsChanged.connect(self._save_live_settings)
        self.live.problem.connect(self.show_live_problem)
        self.live.resumed.connect(self._on_live_resumed)
        self.live.message.connect(self.show_message)
        self.live.controller.runningChanged.connect(self._on_live_running)
        client.modelPhase.connect(self.on_model_phase)
        client.downloadProgress.connect(self.on_download_progress)
        client.modelLoaded.connect(self.on_model_loaded)
        client.modelFailed.connect(self.on_model_failed)
        client.crashed.connect(self.on_engine_crashed)
        client.servingChanged.connect(self.model_bar.set_serving)

    # --- images, settings, views -------------------------------------------------------

    def open_images(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", "", IMAGE_FILTER)
        if paths:
            self.controller.loader.load_paths(paths)

    @Slot(list)
    def open_files(self, paths: list[str]) -> None:
        """Images go to the chat; a video becomes the live source."""
        images = self.live.open_videos_among(paths)
        if images:
            self.controller.loader.load_paths(images)

    def paste(self) -> None:
        """⌘V: an image (data or file) from the clipboard, else a normal text paste."""
        focus = self.focusWidget()
        mime = QGuiApplication.clipboard().mimeData()
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime else []
        if mime is not None and mime.hasImage():
            self.controller.loader.load_qimage(QGuiApplication.clipboard().image())
        elif files:
            self.controller.loader.load_paths(files)
        elif isinstance(focus, (QLineEdit, QPlainTextEdit, QTextEdit)):
            focus.paste()

    @Slot(object)
    def show_image(self, image: LoadedImage | None) -> None:
        self._current_image = image
        self.canvas.set_image(image)
        self.workspace.show_image(image)
        self._update_tile_plan()

    def toggle_boxes(self) -> None:
        self.canvas.set_boxes_visible(self.menu_actions.boxes.isChecked())

    def toggle_settings(self) -> None:
        self.settings_dock.setVisible(not self.settings_dock.isVisible())

    @Slot(object, object)
    def on_settings_changed(self, sampling: SamplingSettings, vision: VisionSettings) -> None:
        self.settings = dataclasses.replace(self.settings, sampling=sampling, vision=vision)
        self._save_settings(self.settings)
        self._update_tile_plan()

    def _settings_now(self) -> tuple[SamplingSettings, VisionSettings]:
        return self.settings.sampling, self.settings.vision

    def _tools_now(self) -> tuple[dict[str, Any], ...]:
        problem = self.tools.problem()
        if problem is not None:
            self.tools.set_expanded(True)  # show the definitions and what is wrong with them
            raise InputError(problem)
        return self.tools.tools()

    def _update_tile_plan(self) -> None:
        """While Settings is open, overlay the exact tiles the model will see."""
        image = self._current_image
        if image is None or not self.settings_dock.isVisible():
            self.canvas.set_tile_plan(None)
            self.settings_panel.set_plan_summary("Open an image to see how it is tiled.")
            return
        plan = plan_tiles(image.width, image.height, self.settings.vision)
        self.canvas.set_tile_plan(plan)
        rows, cols = plan.grid
        thumbnail = " + thumbnail" if plan.thumbnail is not None else ""
        shape = f"{rows}×{cols} tiles{thumbnail}" if plan.tiles else "one view"
        self.settings_panel.set_plan_summary(
            f"{image.width}×{image.height} → {shape} = {plan.image_tokens:,} image tokens"
        )

    @Slot(str, int, int)
    def show_prompt(self, text: str, images: int = 0, image_tokens: int = 0) -> None:
        self.prompt_dialog = PromptDialog(text, self, images=images, image_tokens=image_tokens)
        self.prompt_dialog.show()

    @Slot()
    def _save_workspace_settings(self) -> None:
        ws = self.workspace
        self.settings = dataclasses.replace(
            self.settings,
            project=str(ws.project.root),
            detect_after_capture=ws.detect_after_capture,
        )
        self._save_settings(self.settings)

    @Slot(object)
    def _save_live_settings(self, live: LiveSettings) -> None:
        self.settings = dataclasses.replace(self.settings, live=live)
        self._save_settings(self.settings)

    @Slot(bool)
    def _on_live_running(self, running: bool) -> None:
        if running:
            self.live_dock.show()

    def delete_conversation(self, conversation_id: str) -> None:
        self.controller.store.delete(conversation_id)
        if self.controller.chat_thread.conversation.id == conversation_id:
            self.controller.new_conversation()
        self._refresh_conversations()

    def _refresh_conversations(self, *_args: object) -> None:
        rows = [(s.id, s.title, s.updated, s.turns) for s in self.controller.store.list()]
        self.conversations.set_rows(rows, self.controller.chat_thread.conversation.id)

    # --- window state ------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Files or image data dropped anywhere on the window (the canvas handles its own)."""
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        files = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if files:
            self.open_files(files)
        elif mime.hasImage():
            self.controller.loader.load_qimage(mime.imageData())
        event.acceptProposedAction()

    def _restore_geometry(self) -> None:
        geometry = self.ui_state.geometry()
        if geometry is None or not self.restoreGeometry(QByteArray(geometry)):
            self.resize(1280, 800)

    def showEvent(self, event: QShowEvent) -> None:
        """On first show, move start-up objects out of the garbage collector's way.

        A full collection over everything Qt, PIL and the core created at start-up stalls
        the GUI thread for ~50 ms on a small CPU (measured); frozen, those objects are
        never scanned again, and later collections only see what the session creates.
        """
        super().showEvent(event)
        if not self._gc_frozen:
            self._gc_frozen = True
            QTimer.singleShot(0, _freeze_startup_objects)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.live.close()
        self.workspace.close()
        self.controller.stop()
        self.controller.save()
        self.controller.flush()
        self.ui_state.set_geometry(bytes(self.saveGeometry().data()))
        self.client.stop()
        super().closeEvent(event)
