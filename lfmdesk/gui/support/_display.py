"""Is there a display to open the window on? Checked before Qt is asked, in one line.

Without one, Qt's xcb plugin aborts the process with a paragraph that ends "Reinstalling the
application may fix this problem" — wrong advice for a machine without a desktop session.
:func:`display_problem` looks first (no Qt involved: environment variables and the display
server's socket), so ``lfmdesk`` can say what is wrong and exit non-zero.

    problem = display_problem()
    if problem:
        print(f"lfmdesk: {problem}", file=sys.stderr)
        return 1
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["display_problem", "platform_plugin_line"]

# Platforms that draw without a display server (tests, screenshots, remote frame buffers).
_HEADLESS = frozenset({"offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"})
_X_DISPLAY = re.compile(r"^(?P<host>[^:]*):(?P<number>\d+)(?:\.\d+)?$")
_CONNECT_SECONDS = 1.0
_ADVICE = (
    "run lfmdesk inside a desktop session, use the command line instead (lfmdesk --help), "
    "or set QT_QPA_PLATFORM=offscreen to run the window without a screen"
)


def _x_server_answers(display: str) -> bool:
    match = _X_DISPLAY.match(display)
    if match is None:
        return False
    host, number = match["host"], int(match["number"])
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        addresses: list[tuple[int, object]] = [(socket.AF_UNIX, path)]
        if sys.platform.startswith("linux"):
            addresses.append((socket.AF_UNIX, "\0" + path))  # the abstract twin
        if not host:
            addresses.append((socket.AF_INET, ("localhost", 6000 + number)))
    else:
        addresses = [(socket.AF_INET, (host, 6000 + number))]
    for family, address in addresses:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(_CONNECT_SECONDS)
                sock.connect(address)  # type: ignore[arg-type]
                return True
        except OSError:
            continue
    return False


def _wayland_answers(env: Mapping[str, str]) -> bool:
    name = env.get("WAYLAND_DISPLAY", "")
    if not name:
        return False
    path = Path(name) if os.path.isabs(name) else Path(env.get("XDG_RUNTIME_DIR", "/")) / name
    return path.exists()


def display_problem(env: Mapping[str, str] | None = None, platform: str = "") -> str | None:
    """Why the window cannot open here (one line), or None when it can (or cannot tell).

    Args:
        env: the environment (``os.environ`` by default).
        platform: ``sys.platform`` by default; macOS and Windows always have a display.
    """
    env = os.environ if env is None else env
    if (platform or sys.platform) in ("darwin", "win32"):
        return None
    requested = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if requested in _HEADLESS:
        return None
    if requested not in ("", "xcb", "wayland", "wayland-egl"):
        return None  # a plugin we do not know: let Qt try it
    display = env.get("DISPLAY", "")
    if requested != "xcb" and _wayland_answers(env):
        return None
    if requested not in ("wayland", "wayland-egl") and display and _x_server_answers(display):
        return None
    if not display and not env.get("WAYLAND_DISPLAY"):
        return f"no display to open the window on (DISPLAY is not set); {_ADVICE}"
    shown = display or env.get("WAYLAND_DISPLAY", "")
    return f"cannot reach the display {shown!r} (is its server running?); {_ADVICE}"


def platform_plugin_line(messages: list[str]) -> str:
    """One line for Qt's fatal "could not load the Qt platform plugin" paragraph."""
    text = " ".join(" ".join(messages).split())
    plugin = re.search(r'platform plugin "([^"]+)"', text)
    name = plugin.group(1) if plugin else "?"
    return (
        f"cannot open the window: Qt could not start its {name!r} platform plugin "
        "(on Linux: sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 "
        f"libxkbcommon-x11-0); {_ADVICE}"
    )
