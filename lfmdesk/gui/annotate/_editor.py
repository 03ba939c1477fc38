"""The Qt side of the annotation model: undoable edits per image, and autosave.

The annotation itself is Qt-free and immutable (:mod:`lfmdesk.core.datasets._annotations`); every
edit here is one :class:`QUndoCommand` holding the annotation before and after. Each image
has its own :class:`QUndoStack` in one :class:`QUndoGroup`, so switching images and coming
back keeps the history, and the Edit menu's Undo/Redo follow the image shown.

::

    editor = AnnotationEditor(project)
    editor.annotationChanged.connect(canvas.set_annotation)
    canvas.boxDrawn.connect(editor.draw_box)
    edit_menu.addAction(editor.group.createUndoAction(window))
    editor.open_image("street.png")
    ...
    editor.flush()                          # on image switch and on close

Autosave: every change restarts a single-shot timer (:data:`SAVE_DELAY_MS`); when it fires
the changed images are written atomically with :meth:`Project.save`. A failed save emits
``problem`` with a one-line message, keeps the image dirty and is retried on the next edit
(or :meth:`flush`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from lfmdesk.core._errors import InputError
from lfmdesk.core.answers._grounding import Detection
from lfmdesk.core.datasets._annotations import (
    ImageAnnotation,
    add_box,
    apply_detections,
    make_box,
    move_boxes,
    relabel_boxes,
    remove_boxes,
    replace_box,
)
from lfmdesk.core.datasets._project import Project, oriented_size

if TYPE_CHECKING:
    from lfmdesk.gui.annotate._labels_panel import LabelsPanel
    from lfmdesk.gui.canvas._canvas import ImageCanvas

__all__ = ["DEFAULT_LABEL", "SAVE_DELAY_MS", "AnnotationEditor", "connect_editor"]

SAVE_DELAY_MS = 400
DEFAULT_LABEL = "object"  # for a box drawn before any label exists
_NUDGE_ID = 1  # QUndoCommand.id() of nudges: consecutive ones merge


class _Snapshot(QUndoCommand):
    """One edit: the annotation before and after (immutable, so keeping both is cheap)."""

    def __init__(
        self,
        editor: AnnotationEditor,
        key: str,
        text: str,
        before: ImageAnnotation,
        after: ImageAnnotation,
        merge_key: frozenset[str] | None = None,
    ) -> None:
        super().__init__(text)
        self._editor = editor
        self._key = key
        self.before = before
        self.after = after
        self.merge_key = merge_key

    def id(self) -> int:
        """Nudges share an id so the stack offers them to :meth:`mergeWith`."""
        return _NUDGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        """Absorb the next nudge of the same boxes: one undo step for a run of arrow keys."""
        if not isinstance(other, _Snapshot) or other.merge_key != self.merge_key:
            return False
        if other.before != self.after:
            return False
        self.after = other.after
        self.setObsolete(self.after == self.before)
        return True

    def redo(self) -> None:
        """Apply the edit."""
        self._editor._set(self._key, self.after)

    def undo(self) -> None:
        """Take the edit back."""
        self._editor._set(self._key, self.before)


class AnnotationEditor(QObject):
    """Undoable edits of the current image's annotation, saved automatically.

    Args:
        project: where annotations are loaded from and saved to; None keeps them in memory.

    Signals:
        annotationChanged(object): the current image's :class:`ImageAnnotation` (or None).
        saved(str): an image's annotation was written (its project key).
        problem(str): a one-line message: a save failed, a file was damaged, an edit refused.
    """

    annotationChanged = Signal(object)
    saved = Signal(str)
    problem = Signal(str)

    def __init__(self, project: Project | None, parent: QObject | None = None) -> None:
        """Create an editor with no image open."""
        super().__init__(parent)
        self.group = QUndoGroup(self)
        self._project = project
        self._stacks: dict[str, QUndoStack] = {}
        self._anns: dict[str, ImageAnnotation] = {}
        self._dirty: set[str] = set()
        self._key: str | None = None
        self._selection: list[str] = []
        self._label = ""
        self.last_save_seconds = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_DELAY_MS)
        self._timer.timeout.connect(self.flush)

    # ------------------------------------------------------------------ images
    @property
    def project(self) -> Project | None:
        """The project annotations are saved to."""
        return self._project

    @property
    def key(self) -> str | None:
        """The project key of the image being edited."""
        return self._key

    @property
    def annotation(self) -> ImageAnnotation | None:
        """The current image's annotation."""
        return self._anns.get(self._key) if self._key is not None else None

    def set_project(self, project: Project | None) -> None:
        """Save what is pending, then start over on ``project`` with no image open."""
        self.flush()
        for stack in self._stacks.values():
            self.group.removeStack(stack)
            stack.deleteLater()
        self._stacks.clear()
        self._anns.clear()
        self._dirty.clear()
        self._project = project
        self._key = None
        self.annotationChanged.emit(None)

    def open_image(self, key: str, annotation: ImageAnnotation | None = None) -> None:
        """Edit the image ``key``; its undo history is kept while the editor lives.

        ``annotation`` (whose ``image`` should be ``key``) is used when given and the image
        has no history here yet; otherwise the
        project's saved one, or an empty one. A damaged file is reported through ``problem``
        and left alone until the first edit replaces it.
        """
        self.flush()
        if key not in self._anns:
            loaded = annotation if annotation is not None else self._load(key)
            if loaded is None:
                self._key = None
                self.annotationChanged.emit(None)
                return
            self._anns[key] = loaded
            self._stacks[key] = QUndoStack(self.group)
        self._key = key
        self._selection = []
        self._stacks[key].setActive(True)
        self.annotationChanged.emit(self._anns[key])

    def _load(self, key: str) -> ImageAnnotation | None:
        project = self._project
        if project is None:
            self.problem.emit(f"{key}: no project to load its boxes from; open a folder first")
            return None
        try:
            return project.load_or_empty(key)
        except InputError as exc:
            message = str(exc)
        try:
            width, height = oriented_size(project.image_path(key))
        except InputError as exc:
            self.problem.emit(str(exc))
            return None
        self.problem.emit(f"{message}; it is kept until you edit this image's boxes")
        return ImageAnnotation.empty(key, width, height)

    def reload(self, key: str, annotation: ImageAnnotation) -> None:
        """``annotation`` was written for ``key`` elsewhere (batch Detect): adopt it.

        An image with history here gets it as one undoable "Detect" step; others load it
        from the project when next opened.
        """
        before = self._anns.get(key)
        if before is not None and before != annotation:
            dirty = key in self._dirty
            self._stacks[key].push(_Snapshot(self, key, "Detect", before, annotation))
            if not dirty:  # the batch has just written exactly this; don't write it again
                self._dirty.discard(key)

    def stack(self, key: str | None = None) -> QUndoStack | None:
        """The undo stack of ``key`` (default: the current image)."""
        return self._stacks.get(key if key is not None else self._key or "")

    # ------------------------------------------------------------------ edits
    def add_box(self, px: Sequence[float], label: str) -> None:
        """Add a person's box at ``px`` = (x1, y1, x2, y2) labelled ``label``."""
        self._edit(
            "Draw box",
            lambda a: add_box(a, make_box(label or DEFAULT_LABEL, px, a.width, a.height)),
        )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete the boxes ``ids``."""
        self._edit_ids(ids, "Delete", lambda a: remove_boxes(a, ids))

    def move(self, ids: Sequence[str], dx: int, dy: int, *, nudge: bool = False) -> None:
        """Move the boxes ``ids`` by (dx, dy); consecutive nudges of the same boxes merge."""
        merge = frozenset(ids) if nudge else None
        self._edit_ids(
            ids, "Nudge" if nudge else "Move", lambda a: move_boxes(a, ids, dx, dy), merge
        )

    def resize(self, box_id: str, px: Sequence[float]) -> None:
        """Give box ``box_id`` the corners ``px``."""

        def change(ann: ImageAnnotation) -> ImageAnnotation:
            old = ann.box(box_id)
            if old is None:
                return ann
            return replace_box(ann, make_box(old.label, px, ann.width, ann.height, box_id=box_id))

        self._edit("Resize", change)

    def relabel(self, ids: Sequence[str], label: str) -> None:
        """Label the boxes ``ids`` ``label``."""
        self._edit_ids(ids, "Relabel", lambda a: relabel_boxes(a, ids, label))

    def apply_detections(self, detections: Sequence[Detection], labels: Sequence[str]) -> None:
        """The model's boxes for ``labels`` replace its old ones (one undoable "Detect")."""
        self._edit("Detect", lambda a: apply_detections(a, detections, labels))

    def _edit_ids(
        self,
        ids: Sequence[str],
        text: str,
        change: Callable[[ImageAnnotation], ImageAnnotation],
        merge: frozenset[str] | None = None,
    ) -> None:
        if ids:
            self._edit(text, change, merge)

    def _edit(
        self,
        text: str,
        change: Callable[[ImageAnnotation], ImageAnnotation],
        merge: frozenset[str] | None = None,
    ) -> None:
        key, before = self._key, self.annotation
        if key is None or before is None:
            return
        try:
            after = change(before)
        except InputError as exc:
            self.problem.emit(str(exc))
            return
        if after != before:
            self._stacks[key].push(_Snapshot(self, key, text, before, after, merge))

    def _set(self, key: str, ann: ImageAnnotation) -> None:
        """Called by commands: make ``ann`` the state of image ``key``, and save it soon."""
        self._anns[key] = ann
        self._dirty.add(key)
        self._timer.start()
        if key == self._key:
            self.annotationChanged.emit(ann)

    # ------------------------------------------------------------------ slots
    @Slot(str)
    def set_current_label(self, label: str) -> None:
        """The label new boxes get (from the labels panel)."""
        self._label = label

    @Slot(list)
    def set_selection(self, ids: list[str]) -> None:
        """The boxes selected on the canvas (what the labels panel's Assign relabels)."""
        self._selection = list(ids)

    @Slot(object)
    def draw_box(self, px: Sequence[float]) -> None:
        """A box drawn on the canvas gets the current label."""
        self.add_box(px, self._label)

    @Slot(list, int, int)
    def move_by(self, ids: list[str], dx: int, dy: int) -> None:
        """A drag on the canvas: one undo step."""
        self.move(ids, dx, dy)

    @Slot(list, int, int)
    def nudge(self, ids: list[str], dx: int, dy: int) -> None:
        """An arrow key on the canvas: merges with the previous nudge of the same boxes."""
        self.move(ids, dx, dy, nudge=True)

    @Slot(str, object)
    def resize_box(self, box_id: str, px: Sequence[float]) -> None:
        """A handle drag on the canvas."""
        self.resize(box_id, px)

    @Slot(list)
    def delete_boxes(self, ids: list[str]) -> None:
        """Delete/Backspace on the canvas."""
        self.delete(ids)

    @Slot(list)
    def relabel_to_current(self, ids: list[str]) -> None:
        """A double-clicked box takes the current label."""
        self.relabel(ids, self._label or DEFAULT_LABEL)

    @Slot(str)
    def relabel_selection(self, label: str) -> None:
        """The labels panel's Assign: the selected boxes take ``label``."""
        self.relabel(self._selection, label)

    # ------------------------------------------------------------------ saving
    def is_dirty(self, key: str | None = None) -> bool:
        """Whether ``key`` (default: the current image) has changes not yet saved."""
        return (key if key is not None else self._key) in self._dirty

    @Slot()
    def flush(self) -> bool:
        """Write every pending change now; True when nothing is left unsaved."""
        self._timer.stop()
        if self._project is None:
            return not self._dirty
        for key in sorted(self._dirty):
            started = time.perf_counter()
            try:
                self._project.save(self._anns[key])
            except (OSError, InputError) as exc:  # InputError: a file from a newer lfmdesk
                reason = str(exc) if isinstance(exc, InputError) else exc.strerror or str(exc)
                self.problem.emit(
                    f"could not save the boxes of {key} ({reason}); "
                    "they are kept and saved again on your next edit"
                )
                continue
            self.last_save_seconds = time.perf_counter() - started
            self._dirty.discard(key)
            self.saved.emit(key)
        return not self._dirty


def connect_editor(
    editor: AnnotationEditor, canvas: ImageCanvas, panel: LabelsPanel | None = None
) -> None:
    """Wire the canvas's intents and the labels panel to ``editor``, and its state back."""
    editor.annotationChanged.connect(canvas.set_annotation)
    canvas.boxDrawn.connect(editor.draw_box)
    canvas.boxesMoved.connect(editor.move_by)
    canvas.boxesNudged.connect(editor.nudge)
    canvas.boxResized.connect(editor.resize_box)
    canvas.deleteRequested.connect(editor.delete_boxes)
    canvas.relabelRequested.connect(editor.relabel_to_current)
    canvas.selectionChanged.connect(editor.set_selection)
    if panel is not None:
        editor.annotationChanged.connect(panel.set_counts)
        panel.currentLabelChanged.connect(editor.set_current_label)
        panel.relabelRequested.connect(editor.relabel_selection)
        editor.set_current_label(panel.current_label())
