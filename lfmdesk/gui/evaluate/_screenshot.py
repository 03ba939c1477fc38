"""``python -m lfmdesk.gui.evaluate._screenshot OUT.png``: the README's Evaluate Boxes picture.

Three frames of the synthetic street scene (``lfmdesk.gui._screenshots``) with a person's boxes
on the objects, evaluated with scripted engine processes whose answers are what a good model
would say, except that the constrained run misses the dog in the last frame and the free run
adds a false box to the second. No model weights are needed.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

from lfmdesk.core import (
    EngineProcess,
    Project,
    SamplingSettings,
    VisionSettings,
    make_box,
)
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.gui._screenshots import OBJECTS, SIZE, settle, street_scene, wait
from lfmdesk.gui.evaluate._dialog import EvaluateDialog

_SHIFTS = (0, 160, 320)


def _answer(dx: int, *, drop: str | None = None, extra: bool = False) -> str:
    """A good answer for the frame whose car moved ``dx`` pixels (or a flawed one)."""
    w, h = SIZE
    items = []
    for label, (x1, y1, x2, y2) in OBJECTS.items():
        shift = dx if label == "car" else 0
        box = [(x1 + shift) / w, y1 / h, (x2 + shift) / w, y2 / h]
        if label != drop:
            items.append({"label": label, "bbox": [round(v, 3) for v in box]})
    if extra:
        items.append({"label": "person", "bbox": [0.05, 0.05, 0.12, 0.3]})
    return json.dumps(items)


def _project(root: Path) -> Project:
    project = Project(root)
    project.save_labels(list(OBJECTS))
    for n, dx in enumerate(_SHIFTS):
        scene = street_scene(car_dx=dx)
        scene.image.save(root / f"frame{n}.png")
        boxes = []
        for label, (x1, y1, x2, y2) in OBJECTS.items():
            shift = dx if label == "car" else 0
            boxes.append(make_box(label, (x1 + shift, y1, x2 + shift, y2), *SIZE))
        project.save(ImageAnnotation(f"frame{n}.png", *SIZE, tuple(boxes), edited=True))
    return project


def _answers() -> list[str]:
    """The engine's answers in turn: the constrained run, then the free one."""
    constrained = [_answer(0), _answer(160), _answer(320, drop="dog")]
    free = [_answer(0), _answer(160, extra=True), _answer(320)]
    return constrained + free


def main(out: Path) -> None:
    """Evaluate the scripted street project and save the dialog."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "street"
        root.mkdir()
        project = _project(root)
        options = {"answers": _answers(), "token_delay": 0.0, "load_delay": 0.0}
        dialog = EvaluateDialog(
            project,
            lambda: EngineProcess("scripted", options),
            "auto",
            "8bit",
            lambda: (SamplingSettings(), VisionSettings()),
        )
        dialog.show()
        dialog.start_button.click()
        wait(dialog.worker.done, 60_000)
        dialog.resize(1200, 820)
        settle(1200)
        dialog.grab().save(str(out))
        print(out)
        dialog.close()
    del app


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "evaluate.png"))
