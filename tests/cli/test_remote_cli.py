"""Every model command with ``--backend URL``, against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from lfmdesk.core import Project
from lfmdesk.core.testing import Fault, FaultyServer

BOXES = json.dumps([{"label": "car", "bbox": [0.25, 0.5, 0.75, 1.0]}])


def lfmdesk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lfmdesk", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def folder_of_images(path: Path, count: int) -> Path:
    path.mkdir()
    for n in range(count):
        Image.new("RGB", (80, 40), (n * 20 % 255, 90, 30)).save(path / f"{n:03d}.png")
    return path


def test_ask_and_detect_run_on_the_server(tmp_path) -> None:
    image = tmp_path / "car.png"
    Image.new("RGB", (200, 100), "blue").save(image)
    with FaultyServer(
        [Fault(text="A blue square."), Fault(prompt_tokens=1)], Fault(text=BOXES)
    ) as s:
        asked = lfmdesk("ask", str(image), "-p", "What is it?", "--backend", s.url)
        found = lfmdesk("detect", str(image), "--labels", "car", "--backend", s.url)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout == "A blue square.\n"
    assert found.returncode == 0, found.stderr
    detections = json.loads(found.stdout)["detections"]
    assert [(d["label"], d["box_px"]) for d in detections] == [("car", [50, 50, 150, 100])]
    assert s.bodies[0]["messages"][0]["content"][1] == {"type": "text", "text": "What is it?"}


def test_annotate_with_concurrency_saves_every_result_and_never_exceeds_n(tmp_path) -> None:
    folder = folder_of_images(tmp_path / "shots", 12)
    with FaultyServer(default=Fault(text=BOXES, seconds=0.2)) as server:
        proc = lfmdesk(
            "annotate",
            str(folder),
            "--labels",
            "car",
            "--backend",
            server.url,
            "--concurrency",
            "3",
            "--api-key-env",
            "LFM_KEY",
            "--json",
            env={"LFM_KEY": "sk-never-shown"},
        )
    assert proc.returncode == 0, proc.stderr
    assert server.max_in_flight == 3
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(line["image"] for line in lines) == [f"{n:03d}.png" for n in range(12)]
    assert all(line["status"] == "annotated" for line in lines)
    saved = Project(folder).load("007.png")
    assert saved is not None and [(b.label, b.source) for b in saved.boxes] == [("car", "model")]
    assert "sk-never-shown" not in proc.stdout + proc.stderr
    assert "12 annotated, 0 skipped, 0 failed" in proc.stderr


def test_annotate_resumes_remotely_like_locally(tmp_path) -> None:
    folder = folder_of_images(tmp_path / "shots", 4)
    faults = [Fault("status", 400, message="no such model")]
    with FaultyServer(faults, Fault(text=BOXES)) as server:
        first = lfmdesk("annotate", str(folder), "-l", "car", "--backend", server.url)
        second = lfmdesk("annotate", str(folder), "-l", "car", "--backend", server.url)
    assert first.returncode == 1 and "no such model" in first.stderr
    assert "3 annotated" in first.stderr and "1 failed" in first.stderr
    assert second.returncode == 0 and "1 annotated, 3 skipped, 0 failed" in second.stderr


def test_backend_flag_errors_are_one_line(tmp_path) -> None:
    folder = folder_of_images(tmp_path / "shots", 1)
    local = lfmdesk("annotate", str(folder), "-l", "car", "--concurrency", "4")
    assert local.returncode == 2
    assert local.stderr.strip() == (
        "lfmdesk: error: --concurrency needs --backend URL: the local engine answers one at a time"
    )
    with FaultyServer() as server:
        unset = lfmdesk("ask", "-p", "hi", "--backend", server.url, "--api-key-env", "NOPE_XYZ")
    assert unset.returncode == 2
    assert unset.stderr.strip() == (
        "lfmdesk: error: environment variable NOPE_XYZ is not set; put the API key in it"
    )
    bad = lfmdesk("ask", "-p", "hi", "--backend", "gpu-box:8000")
    assert bad.returncode == 2 and "is not a server URL" in bad.stderr
    gone = lfmdesk("ask", "-p", "hi", "--backend", "http://127.0.0.1:9/v1")
    assert gone.returncode == 3 and "cannot reach http://127.0.0.1:9/v1" in gone.stderr
    assert all("Traceback" not in p.stderr for p in (local, unset, bad, gone))


def test_chat_and_live_run_on_the_server(tmp_path) -> None:
    frames = [Image.new("RGB", (64, 48), (40 * i, 0, 0)) for i in range(3)]
    gif = tmp_path / "clip.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50)
    with FaultyServer(default=Fault(text=BOXES)) as server:
        chat = subprocess.run(
            [sys.executable, "-m", "lfmdesk", "chat", "--backend", server.url],
            input="hello\nand again\n/quit\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        live = lfmdesk(
            "live",
            str(gif),
            "--detect",
            "car",
            "--as-fast-as-possible",
            "--json",
            "--backend",
            server.url,
        )
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.count(BOXES) == 2
    history = server.bodies[1]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[1]["content"] == BOXES
    assert live.returncode == 0, live.stderr
    lines = [json.loads(line) for line in live.stdout.splitlines()]
    frames_seen = [line for line in lines if line["type"] == "frame"]
    assert len(frames_seen) == 3
    assert frames_seen[0]["detections"][0]["label"] == "car"
    assert lines[-1]["type"] == "summary" and lines[-1]["analysed"] == 3
