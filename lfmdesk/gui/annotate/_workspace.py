"""The annotation workspace: project folder, editor, labels, capture and batch Detect, wired.

The window owns one ``Workspace``; it adds the workspace's docks and actions and forwards
the images it shows. Everything here is wiring: the annotation model, project files,
capture naming and batch planning live in the core, the widgets only show them.

    workspace = Workspace(window, canvas, controller, client, settings_now, settings)
    workspace.show_image(loaded)                   # the canvas image: its boxes are loaded
    controller.detected.connect(workspace.on_detected)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMenu, QToolBar

from lfmdesk.core import (
    AppSettings,
    BatchFinished,
    Detection,
    ImageAnnotation,
    InputError,
    LoadedImage,
    Project,
    SamplingSettings,
    VisionSettings,
    boxes_json,
    data_dir,
    load_image,
    split_labels,
)
from lfmdesk.core.evaluate._report import REPORT_JSON, read_report
from lfmdesk.core.evaluate._runner import eval_folder
from lfmdesk.core.images._capture import save_capture
from lfmdesk.gui._controller import ChatController
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui.annotate._batch import BatchRunner
from lfmdesk.gui.annotate._capture import ScreenCapturer
from lfmdesk.gui.annotate._dataset_dialog import DatasetDialog, report_text
from lfmdesk.gui.annotate._editor import AnnotationEditor, connect_editor
from lfmdesk.gui.annotate._labels_panel import LabelsPanel
from lfmdesk.gui.annotate._project_panel import ProjectPanel
from lfmdesk.gui.canvas._canvas import ImageCanvas
from lfmdesk.gui.evaluate._dialog import EvaluateDialog
from lfmdesk.gui.support._image_loader import ImageLoader

__all__ = ["Workspace", "captures_dir"]

AddAction = Callable[..., QAction]


def captures_dir() -> Path:
    """The default project: screen captures and pasted pictures land here."""
    return data_dir() / "Captures"


def _open_project(folder: str | None) -> Project:
    if folder:
        try:
            return Project(folder)
        except InputError:
            pass  # a folder that went away: fall back to Captures, never fail start-up
    captures_dir().mkdir(parents=True, exist_ok=True)
    return Project(captures_dir())


def _stored_capture(image: Image.Image, folder: Path) -> LoadedImage:
    path = save_capture(image, folder)
    return dataclasses.replace(load_image(image), source=str(path))


class Workspace(QObject):
    """Owns the project and connects canvas, editor, panels, capture and batch.

    Signals:
        projectChanged(object): the Project now open.
        message(str): one line for the status bar.
        problem(str, str): one line worth a banner (capture permission, failed saves) and
            its topic ("save", "capture", "batch", "labels", "boxes").
        resolved(str): the problem of that topic is gone (a later save or capture worked).
        mistake(str): a one-line refusal of what the user just did (a toast).
    """

    projectChanged = Signal(object)
    settingsChanged = Signal()  # project folder or "detect after capture" changed
    message = Signal(str)
    problem = Signal(str, str)
    resolved = Signal(str)
    mistake = Signal(str)

    def __init__(
        self,
        window: QMainWindow,
        canvas: ImageCanvas,
        controller: ChatController,
        client: EngineClient,
        settings_now: Callable[[], tuple[SamplingSettings, VisionSettings]],
        settings: AppSettings,
    ) -> None:
        """Open the last project (or Captures) and wire every piece to it."""
        super().__init__(window)
        self.window, self.canvas, self.controller = window, canvas, controller
        self.project = _open_project(settings.project)
        self.detect_after_capture = settings.detect_after_capture
        self.editor = AnnotationEditor(self.project, self)
        self.labels = LabelsPanel(self.project.labels())
        self.panel = ProjectPanel(self.project)
        self.panel.set_labels(list(self.project.labels()))
        self.capturer = ScreenCapturer(window)
        self.runner = BatchRunner(client, settings_now)
        self._client, self._settings_now, self._model = client, settings_now, settings.model
        self._evaluate: EvaluateDialog | None = None
        # Panel clicks show that image (not add it to the next question); captures are
        # saved and read off the GUI thread.
        self.loader = ImageLoader(self)
        self.capture_loader = ImageLoader(self)
        self._image: LoadedImage | None = None
        self._connect_editing()
        self._connect_capture_and_batch()

    def _connect_editing(self) -> None:
        connect_editor(self.editor, self.canvas, self.labels)
        self.editor.saved.connect(self._on_saved)
        self.editor.problem.connect(self._save_failed)
        self.editor.saved.connect(lambda _key: self.resolved.emit("save"))
        self.labels.labelsChanged.connect(self._save_labels)

    def _connect_capture_and_batch(self) -> None:
        self.capturer.captured.connect(self.store_capture)
        self.capturer.problem.connect(self._capture_failed)
        self.capture_loader.loaded.connect(self._on_capture_stored)
        self.capture_loader.failed.connect(self._capture_failed)  # from a pool thread: a slot
        self.panel.imageActivated.connect(self.open_key)
        self.panel.batchRequested.connect(self.start_batch)
        self.panel.cancelRequested.connect(self.runner.cancel)
        self.panel.openFolderRequested.connect(self.choose_folder)
        runner, panel = self.runner, self.panel
        runner.started.connect(panel.batch_started)
        runner.progress.connect(panel.show_progress)
        runner.imageAnnotated.connect(self._on_batch_image)
        runner.imageFailed.connect(panel.mark_failed)
        runner.finished.connect(self._on_batch_finished)
        runner.problem.connect(self._batch_failed)
        runner.started.connect(self._on_batch_started)
        self.loader.loaded.connect(self.controller.show_only)
        self.loader.failed.connect(self.mistake)

    # --- menus and toolbar ---------------------------------------------------------------

    def install_actions(self, add: AddAction, menus: dict[str, QMenu], toolbar: QToolBar) -> None:
        """Add the annotation actions to the window's menus and toolbar.

        ``add(menu, text, slot, shortcut, checkable)`` is the window's action factory.
        """
        keys = QKeySequence.StandardKey
        undo = self.editor.group.createUndoAction(self.window, "&Undo")
        redo = self.editor.group.createRedoAction(self.window, "&Redo")
        undo.setShortcut(QKeySequence(keys.Undo))
        redo.setShortcut(QKeySequence(keys.Redo))
        edit = menus["&Edit"]
        first = edit.actions()[0] if edit.actions() else None
        if first is None:
            edit.addActions([undo, redo])
        else:
            edit.insertActions(first, [undo, redo])
            edit.insertSeparator(first)
        add("&Edit", "Copy Boxes as &JSON", self.copy_boxes, "Ctrl+Shift+C")
        folder = add("&File", "Open &Folder…", self.choose_folder, "Ctrl+Alt+O")
        export = add("&File", "&Export Dataset…", self.open_export, "Ctrl+E")
        add("&File", "&Import Dataset…", self.open_import)
        add("&File", "E&valuate Boxes…", self.open_evaluate)
        screen = add("&Capture", "Capture &Screen", self.capturer.capture_screen, "Ctrl+Shift+1")
        region = add("&Capture", "Capture &Region…", self.capturer.capture_region, "Ctrl+Shift+2")
        add("&Capture", "Image from &Clipboard", self.capturer.capture_clipboard, "Ctrl+Shift+V")
        menus["&Capture"].addSeparator()
        auto = add("&Capture", "&Detect After Capture", self._toggle_auto_detect, None, True)
        auto.setChecked(self.detect_after_capture)
        self.auto_detect_action = auto
        for action in (folder, screen, region, undo, redo, export):
            toolbar.addAction(action)

    @Slot(bool)
    def _toggle_auto_detect(self, on: bool) -> None:
        self.detect_after_capture = on
        self.settingsChanged.emit()

    # --- project -------------------------------------------------------------------------

    @Slot()
    def choose_folder(self) -> None:
        """Ask for a folder of images and open it as the project."""
        folder = QFileDialog.getExistingDirectory(self.window, "Open a folder of images")
        if folder:
            self.open_project(folder)

    def open_project(self, folder: str) -> None:
        """Open ``folder`` as the project (what is pending is saved first)."""
        try:
            project = Project(folder)
        except InputError as exc:
            self.mistake.emit(str(exc))
            return
        if self.runner.running:
            self.runner.cancel()
        self.editor.flush()
        self.project = project
        self.editor.set_project(project)
        self.panel.set_project(project)
        self.panel.set_labels(list(project.labels()))
        self.labels.set_labels(project.labels())
        self.projectChanged.emit(project)
        self.settingsChanged.emit()
        self.message.emit(f"Opened {project.root} · {len(self.panel.keys())} images")
        if self._image is not None:
            self.show_image(self._image)

    @Slot(list)
    def _save_labels(self, labels: list[str]) -> None:
        try:
            self.project.save_labels(labels)
        except (OSError, InputError) as exc:  # InputError: project.json from a newer lfmdesk
            why = str(exc) if isinstance(exc, InputError) else exc.strerror or str(exc)
            self.problem.emit(f"cannot save the label list: {why}", "labels")
        else:
            self.resolved.emit("labels")
        self.panel.suggest_labels(labels)

    # --- images and boxes ----------------------------------------------------------------

    @Slot(object)
    def show_image(self, image: LoadedImage | None) -> None:
        """The canvas shows ``image``: open its annotation (saved boxes come back)."""
        self._image = image
        if image is None:
            return
        try:
            key = self.project.key_for(image, captures_dir())
        except (InputError, OSError) as exc:
            self.problem.emit(f"cannot keep boxes for this image: {exc}", "boxes")
            return
        self.resolved.emit("boxes")
        self.editor.open_image(key)
        self.panel.set_current(key)

    @Slot(str)
    def open_key(self, key: str) -> None:
        """Show the project image ``key`` (decoded off the GUI thread)."""
        self.loader.load_paths([str(self.project.image_path(key))])

    @Slot(str)
    def _on_saved(self, key: str) -> None:
        ann = self.editor.annotation
        if ann is not None and ann.image == key:
            self.panel.update_row(key, ann)

    @Slot(object, object, object)
    def on_detected(
        self, image: LoadedImage, detections: tuple[Detection, ...], labels: tuple[str, ...]
    ) -> None:
        """A chat Detect answered: its boxes become the image's model boxes (undoable)."""
        if self._image is None or image.content_hash != self._image.content_hash:
            self.show_image(image)
        self.editor.apply_detections(detections, labels)
        for label in labels:
            self.labels.add_label(label)

    def copy_boxes(self) -> None:
        """Put the selected boxes (or all) on the clipboard as JSON."""
        ann = self.editor.annotation
        if ann is None:
            self.message.emit("No image to copy boxes from")
            return
        selected = self.canvas.selected_ids()
        QGuiApplication.clipboard().setText(boxes_json(ann, selected or None))
        count = len(selected) if selected else len(ann.boxes)
        self.message.emit(f"Copied {count} boxes as JSON")

    # --- capture -------------------------------------------------------------------------

    @Slot(object)
    def store_capture(self, image: Image.Image) -> None:
        """Save a screen capture or a live snapshot into the project, then show it."""
        # Encoding a full Retina screenshot as PNG takes longer than a frame: off the GUI thread.
        root = self.project.root
        self.capture_loader.load_from(lambda: _stored_capture(image, root), "the capture")

    @Slot(str)
    def _save_failed(self, message: str) -> None:
        self.problem.emit(message, "save")

    @Slot(str)
    def _capture_failed(self, message: str) -> None:
        self.problem.emit(message, "capture")

    @Slot(str)
    def _batch_failed(self, message: str) -> None:
        self.problem.emit(message, "batch")

    @Slot(object)
    def _on_capture_stored(self, loaded: LoadedImage) -> None:
        self.resolved.emit("capture")
        self.panel.refresh()
        self.controller.show_only(loaded)
        self.message.emit(f"Saved {Path(loaded.source).name} in {self.project.root.name}")
        labels = self.labels.labels()
        if self.detect_after_capture and labels and self.controller.can_ask():
            self.controller.detect(", ".join(labels))

    # --- batch ---------------------------------------------------------------------------

    @Slot(str, bool)
    def start_batch(self, labels: str, redo: bool) -> None:
        """Detect ``labels`` in every project image still to do."""
        self.editor.flush()  # a person's last edit must be on disk before the plan reads it
        self.runner.start(self.project, labels, redo)
        if self.runner.running:  # the labels it looks for join the list, like a chat Detect's
            for label in split_labels(labels):
                self.labels.add_label(label, select=False)

    @Slot(object)
    def _on_batch_started(self, _plan: object) -> None:
        self.resolved.emit("batch")
        self.controller.panel.set_input_enabled(False, "Detecting in every image…")

    @Slot(str, object)
    def _on_batch_image(self, key: str, ann: ImageAnnotation) -> None:
        self.panel.update_row(key, ann)
        self.editor.reload(key, ann)

    @Slot(object)
    def _on_batch_finished(self, summary: BatchFinished) -> None:
        self.panel.batch_finished(summary)
        self.controller.panel.set_input_enabled(True)
        state = "stopped" if summary.cancelled else "done"
        self.message.emit(
            f"Detect all {state}: {summary.annotated} annotated, {summary.skipped} skipped, "
            f"{summary.failed} failed"
        )

    def close(self) -> None:
        """The window closes: stop a batch (what it saved stays) and write pending edits."""
        if self.runner.running:
            self.runner.cancel()
        if self._evaluate is not None:
            self._evaluate.close()  # stops a running evaluation; its answers stay cached
        self.editor.flush()

    # --- datasets ------------------------------------------------------------------------

    @Slot()
    def open_export(self) -> None:
        """File ▸ Export Dataset…"""
        self.open_dataset_dialog("export")

    @Slot()
    def open_import(self) -> None:
        """File ▸ Import Dataset…"""
        self.open_dataset_dialog("import")

    def open_dataset_dialog(self, mode: str) -> None:
        """Show the export or import dialog for this project."""
        self.editor.flush()
        dialog = DatasetDialog(mode, self.project, self.editor.key, self.window)
        dialog.finished_work.connect(self._on_dataset_done)
        dialog.show()

    @Slot()
    def open_evaluate(self) -> None:
        """File ▸ Evaluate Boxes…: one dialog per project (reopening shows it again)."""
        self.editor.flush()  # the ground truth is what is on disk
        dialog = self._evaluate
        if dialog is None or dialog.project.root != self.project.root:
            if dialog is not None:
                dialog.close()
            model = self._client.loaded_spec or self._model
            dialog = EvaluateDialog(
                self.project,
                self._client.new_process,
                self._client.compute,
                model,
                self._settings_now,
                self._last_report(),
                self.window,
            )
            self._evaluate = dialog
        dialog.show()
        dialog.raise_()

    def _last_report(self) -> dict[str, Any] | None:
        path = eval_folder(self.project) / REPORT_JSON
        if not path.is_file():
            return None
        try:
            return read_report(path)
        except InputError as exc:
            # The report file is kept as it is; the next evaluation replaces it.
            self.problem.emit(str(exc), "evaluate")
            return None

    @Slot(object)
    def _on_dataset_done(self, report: object) -> None:
        self.message.emit(report_text(report))  # type: ignore[arg-type]
        self.panel.refresh()
        self.labels.set_labels(self.project.labels())
        self.panel.set_labels(list(self.project.labels()))
