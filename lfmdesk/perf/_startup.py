"""Start-up: process start to window visible and to model loaded; the same for ``lfmdesk ask``.

Each run is a fresh process, started the way a user starts it (``python -m lfmdesk``), with
``LFMDESK_STARTUP_TRACE``/``LFMDESK_STARTUP_T0`` set: the window marks its first paint, the
engine marks the end of ``Engine.load`` (in the window's engine process too), both timed from
just before the process was started, so interpreter start-up and every import count. Settings
and data go to a temporary folder. Without a display (Linux) the window runs on Qt's
offscreen platform; a desktop run shows real windows. Best of ``repeat`` runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lfmdesk._trace import TRACE_FILE, TRACE_T0
from lfmdesk.perf._common import bench_image, cache_dir

__all__ = ["StartupRow", "bench_startup", "startup_report"]

TIMEOUT_S = 180.0


@dataclass
class StartupRow:
    name: str
    visible_s: float | None = None  # window visible (app) / None (ask)
    loaded_s: float | None = None  # model loaded
    done_s: float | None = None  # ask: answer printed, process gone
    note: str = ""


def _env(home: Path, trace: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LFMDESK_CONFIG_DIR": str(home / "config"),
            "LFMDESK_DATA_DIR": str(home / "data"),
            TRACE_FILE: str(trace),
            TRACE_T0: repr(time.time()),
        }
    )
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def _marks(trace: Path) -> dict[str, float]:
    if not trace.exists():
        return {}
    found: dict[str, float] = {}
    for line in trace.read_text(encoding="utf-8").splitlines():
        name, _, seconds = line.partition(" ")
        found.setdefault(name, float(seconds))
    return found


def _app_once(model_dir: Path, home: Path) -> dict[str, float]:
    trace = home / "trace.txt"
    env = _env(home, trace)
    cmd = [sys.executable, "-m", "lfmdesk", "--model", str(model_dir)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if {"window-visible", "model-loaded"} <= _marks(trace).keys():
                break
            time.sleep(0.05)
    finally:
        _stop(proc)
    return _marks(trace)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the window and its engine process (one process group)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue


def _ask_once(model_dir: Path, home: Path, image: Path) -> dict[str, float]:
    trace = home / "trace.txt"
    env = _env(home, trace)
    started = float(env[TRACE_T0])
    cmd = [sys.executable, "-m", "lfmdesk", "ask", str(image), "-p", "What is this?"]
    cmd += ["--model", str(model_dir), "--max-tokens", "1"]
    subprocess.run(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=TIMEOUT_S
    )
    marks = _marks(trace)
    marks["done"] = time.time() - started
    return marks


def _best(runs: list[dict[str, float]], name: str) -> float | None:
    values = [run[name] for run in runs if name in run]
    return min(values) if values else None


def bench_startup(model_dir: Path, *, repeat: int = 3) -> list[StartupRow]:
    """Time ``repeat`` fresh starts of the window and of ``lfmdesk ask``."""
    image = bench_image(cache_dir() / "bench-512.png")
    app_runs, ask_runs = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="lfmdesk-startup-") as home:
            app_runs.append(_app_once(model_dir, Path(home)))
        with tempfile.TemporaryDirectory(prefix="lfmdesk-startup-") as home:
            ask_runs.append(_ask_once(model_dir, Path(home), image))
    platform = os.environ.get("QT_QPA_PLATFORM") or (
        "offscreen" if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") else ""
    )
    app = StartupRow(
        "lfmdesk (window)",
        visible_s=_best(app_runs, "window-visible"),
        loaded_s=_best(app_runs, "model-loaded"),
        note=f"Qt platform {platform or 'native'}; model loaded in the engine process",
    )
    ask = StartupRow(
        "lfmdesk ask (1 token)",
        loaded_s=_best(ask_runs, "model-loaded"),
        done_s=_best(ask_runs, "done"),
        note="CLI import, model load, one 512x512 image, one answer token",
    )
    return [app, ask]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def startup_report(rows: list[StartupRow], repeat: int) -> str:
    """The start-up table."""
    lines = [f"{'start-up (from process start)':30} {'window':>8} {'model':>8} {'answer':>8}"]
    for r in rows:
        lines.append(
            f"{r.name:30} {_fmt(r.visible_s):>8} {_fmt(r.loaded_s):>8} {_fmt(r.done_s):>8}"
        )
    visible = rows[0].visible_s
    if visible is not None:
        lines.append(f"window visible {visible:.2f}s after launch (goal <= 1.0s)")
    lines.append(f"  best of {repeat} fresh starts each")
    lines += [f"  {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)
