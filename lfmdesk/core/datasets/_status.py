"""What the project panel lists: each image, its box count and where it stands.

Reading the annotation files happens here, not in the widget; the panel only shows rows::

    rows = project_rows(project)                   # [ImageRow("street.png", 3, DETECTED, ...)]
    done, left = batch_counts(rows, "car, person")  # "Resume — 7 left" when done > 0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lfmdesk.core._errors import InputError
from lfmdesk.core.answers._grounding import split_labels
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.datasets._project import Project

__all__ = [
    "DETECTED",
    "EDITED",
    "FAILED",
    "NOT_RUN",
    "ImageRow",
    "batch_counts",
    "image_row",
    "project_rows",
]

NOT_RUN = "not run"
DETECTED = "detected"
EDITED = "edited by you"
FAILED = "failed"


@dataclass(frozen=True)
class ImageRow:
    """One image of the project as the panel lists it.

    Attributes:
        key: the project's name for the image.
        boxes: how many boxes it has.
        status: :data:`NOT_RUN`, :data:`DETECTED`, :data:`EDITED` or :data:`FAILED`.
        detected: the labels the model last looked for; None if it never ran.
        message: why it failed (a damaged annotation file, an engine error); "" otherwise.
    """

    key: str
    boxes: int
    status: str
    detected: tuple[str, ...] | None = None
    message: str = ""


def image_row(key: str, ann: ImageAnnotation | None) -> ImageRow:
    """The row for ``key`` given its annotation (None: nothing saved yet)."""
    if ann is None:
        return ImageRow(key, 0, NOT_RUN)
    if ann.edited:
        status = EDITED
    elif ann.detected is not None:
        status = DETECTED
    else:
        status = NOT_RUN
    return ImageRow(key, len(ann.boxes), status, ann.detected)


def project_rows(project: Project) -> list[ImageRow]:
    """A row per image of ``project``, in project order; damaged files show as failed."""
    rows = []
    for key in project.images():
        try:
            rows.append(image_row(key, project.load(key)))
        except InputError as exc:
            rows.append(ImageRow(key, 0, FAILED, None, str(exc)))
    return rows


def batch_role(row: ImageRow, wanted: Sequence[str], *, redo: bool = False) -> str:
    """What a batch looking for ``wanted`` does with ``row``: the one rule for Detect all.

    Returns "problem" (damaged annotation file: skipped), "edited" (a person's work: left
    alone), "done" (already detected with the same labels, any order or case) or "todo".
    """
    if row.status == FAILED:
        return "problem"
    if row.status == EDITED:
        return "edited"
    same = {x.casefold() for x in row.detected or ()} == {x.casefold() for x in wanted}
    return "done" if wanted and not redo and row.detected is not None and same else "todo"


def batch_counts(rows: Sequence[ImageRow], labels: str) -> tuple[int, int]:
    """``(done, left)`` for a batch over ``rows`` looking for ``labels``, without reading
    files; a failed row counts as left (an engine failure is tried again)."""
    wanted = split_labels(labels)
    roles = [batch_role(row, wanted) for row in rows]
    return roles.count("done"), roles.count("todo") + roles.count("problem")
