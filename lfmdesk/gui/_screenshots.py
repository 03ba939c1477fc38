"""``python -m lfmdesk.gui._screenshots OUT_DIR``: the README's screenshots, reproducibly.

Runs the real window with the scripted engine (no model weights are needed, and random-weight
test models cannot find anything), on a synthetic street scene whose scripted detections sit
on the objects drawn. Run it under a real display (Xvfb on Linux) for true window rendering.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw
from PySide6.QtCore import QEventLoop, QTimer, SignalInstance
from PySide6.QtWidgets import QApplication

from lfmdesk.core import AppSettings, ConversationStore, LiveSettings, LoadedImage, load_image
from lfmdesk.gui._app import model_rows
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui._window import MainWindow
from lfmdesk.gui.live._video_writer import write_video
from lfmdesk.gui.support._qtimage import pil_to_qimage
from lfmdesk.gui.support._ui_state import UiState

SIZE = (1600, 1000)
OBJECTS = {
    "car": (180, 640, 700, 900),
    "person": (980, 420, 1130, 900),
    "dog": (1200, 760, 1420, 900),
}


def street_scene(car_dx: int = 0) -> LoadedImage:
    """Sky, road, a red car, a person and a dog: simple shapes at known places.

    ``car_dx`` drives the car that many pixels to the right (the live-mode video).
    """
    img = Image.new("RGB", SIZE, (135, 190, 235))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 600, SIZE[0], SIZE[1]), fill=(90, 90, 95))
    d.rectangle((0, 560, SIZE[0], 600), fill=(170, 170, 160))
    d.ellipse((1320, 80, 1480, 240), fill=(255, 215, 80))
    x1, y1, x2, y2 = OBJECTS["car"]
    x1, x2 = x1 + car_dx, x2 + car_dx
    d.rounded_rectangle((x1, y1 + 80, x2, y2 - 60), 40, fill=(200, 40, 40))
    d.rounded_rectangle((x1 + 110, y1, x2 - 120, y1 + 110), 30, fill=(180, 30, 30))
    for cx in (x1 + 120, x2 - 120):
        d.ellipse((cx - 70, y2 - 140, cx + 70, y2), fill=(30, 30, 30))
    x1, y1, x2, y2 = OBJECTS["person"]
    d.ellipse((x1 + 40, y1, x2 - 40, y1 + 80), fill=(240, 200, 170))
    d.rectangle((x1 + 20, y1 + 80, x2 - 20, y1 + 300), fill=(40, 90, 160))
    d.rectangle((x1 + 30, y1 + 300, x2 - 30, y2), fill=(50, 50, 60))
    x1, y1, x2, y2 = OBJECTS["dog"]
    d.ellipse((x1, y1 + 30, x2 - 40, y2 - 40), fill=(150, 100, 50))
    d.ellipse((x2 - 90, y1, x2, y1 + 80), fill=(150, 100, 50))
    return load_image(img)


def detection_answer() -> str:
    """What a good model would answer for the scene, in the card's JSON format."""
    w, h = SIZE
    items = [
        {
            "label": label,
            "bbox": [round(x1 / w, 3), round(y1 / h, 3), round(x2 / w, 3), round(y2 / h, 3)],
        }
        for label, (x1, y1, x2, y2) in OBJECTS.items()
    ]
    return json.dumps(items)


ANSWERS = [
    "A city street on a sunny day. In front there is a **red car** parked on the road; to the "
    "right a *person* in a blue jacket is walking a small brown dog.\n\n"
    "- sky: clear, with the sun top right\n- road: grey asphalt with a kerb",
    detection_answer(),
    "الصورة تُظهر شارعًا في يوم مشمس: سيارة حمراء، وشخص يمشي مع كلب صغير.",
    "晴れた日の通りです。赤い車と、小さな犬を散歩させている人が見えます。",
]


def wait(signal: SignalInstance, timeout_ms: int = 20_000) -> None:
    """Run the event loop until ``signal`` fires."""
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()


def settle(ms: int = 400) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def make_window(
    root: Path, answers: list[str], has_model: bool = True, **options: object
) -> MainWindow:
    client = EngineClient(
        engine_factory="scripted", options={"answers": answers, "token_delay": 0.0, **options}
    )
    window = MainWindow(
        client,
        ConversationStore(root / "conversations"),
        AppSettings(),
        model_rows(),
        has_model=has_model,
        save_settings=lambda _s: None,
        ui_state=UiState(root / "ui.json"),
    )
    window.resize(1400, 860)
    window.show()
    client.start()
    return window


def shoot(window: MainWindow, path: Path) -> None:
    settle()
    window.toast.dismiss()  # passing news ("Opened /tmp/…") is not what the picture shows
    window.grab().save(str(path))
    print(path)


def ask(window: MainWindow, text: str, action: Callable[[str], None] | None = None) -> None:
    (action or window.controller.send)(text)
    wait(window.client.chatFinished)


def shoot_editor(root: Path, scene: LoadedImage, out: Path) -> None:
    """A project of three frames: Detect, a person's fixes, Detect all over the rest."""
    project = root / "street-project"
    project.mkdir()
    for name in ("street-01.png", "street-02.png", "street-03.png"):
        scene.image.save(project / name)
    window = make_window(root / "c", [detection_answer()])
    window.resize(1600, 960)
    window.load_model("8bit")
    wait(window.client.modelLoaded)
    ws = window.workspace
    ws.open_project(str(project))
    ws.open_key("street-01.png")
    wait(ws.loader.loaded)
    settle()
    ask(window, "car, person, dog", window.controller.detect)
    editor = ws.editor
    ws.labels.add_label("sun")
    editor.add_box((1318, 78, 1482, 242), "sun")
    ann = editor.annotation
    assert ann is not None
    person = next(b for b in ann.boxes if b.label == "person")
    editor.resize(person.id, (972, 405, 1140, 905))
    ws.start_batch("car, person, dog", False)
    wait(ws.runner.finished)
    window.canvas.select([person.id])
    window.canvas.setFocus()
    shoot(window, out / "editor.png")
    window.close()


def shoot_live(root: Path, out: Path) -> None:
    """Live mode on a video of the street: the car drives, its box follows, the HUD counts."""
    frames = (pil_to_qimage(street_scene(dx).image.resize((800, 500))) for dx in range(0, 720, 3))
    clip = write_video(root / "street.mp4", frames, fps=30.0)
    window = make_window(root / "live", [], red_boxes=True, token_delay=0.01)
    window.resize(1600, 960)
    window.live.panel.set_settings(LiveSettings(mode="detect", watch="car"))
    window.live.settings = window.live.panel.settings()
    window.load_model("8bit")
    wait(window.client.modelLoaded)
    window.live.open_video(clip)
    for _ in range(6):
        wait(window.live.controller.resultShown)
    shoot(window, out / "live.png")
    window.live.stop()
    window.close()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    QApplication.instance() or QApplication(sys.argv[:1])
    scene = street_scene()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # Captures and projects of the screenshot run never touch the user's data folder.
        os.environ["LFMDESK_DATA_DIR"] = str(root / "data")
        shoot_live(root, out)
        shoot_editor(root, scene, out)
        welcome = make_window(root / "a", ANSWERS, has_model=False)
        shoot(welcome, out / "welcome.png")
        welcome.close()

        window = make_window(root / "b", ANSWERS)
        window.load_model("8bit")
        wait(window.client.modelLoaded)
        window.controller.attach(scene)
        ask(window, "What is happening in this picture?")
        shoot(window, out / "chat.png")
        ask(window, "car, person, dog", window.controller.detect)
        shoot(window, out / "boxes.png")
        window.toggle_settings()
        shoot(window, out / "settings-tiles.png")
        window.toggle_settings()
        window.controller.new_conversation()
        ask(window, "ماذا ترى في هذه الصورة؟")
        ask(window, "この写真について日本語で説明してください。")
        shoot(window, out / "rtl-cjk.png")
        window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
