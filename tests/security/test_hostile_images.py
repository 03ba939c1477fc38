"""Images are data: no Ghostscript for PostScript in disguise, no hang on a FIFO.

Pillow reads EPS/PostScript by running Ghostscript, whatever the file is called; a ``{} loop``
PostScript file named ``.png`` hung ``tiles``/``ask``/``annotate`` and gs printed onto stdout.
Only the formats lfmdesk documents are opened, from regular files, everywhere a picture is read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile import error_lines, finishes_within, one_line, run_cli
from PIL import EpsImagePlugin, Image

from lfmdesk.core import animation_frames, load_image
from lfmdesk.core._errors import ImageError, InputError
from lfmdesk.core.datasets._project import oriented_size

POSTSCRIPT = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n%%EndComments\n{} loop\nshowpage\n%%EOF\n"
)


@pytest.fixture
def ghostscript_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every time Pillow would start Ghostscript."""
    calls: list[Any] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise OSError("Ghostscript must never run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", record)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    return calls


@pytest.fixture
def disguised(tmp_path: Path) -> Path:
    path = tmp_path / "holiday.png"
    path.write_bytes(POSTSCRIPT)
    return path


def test_postscript_named_png_is_refused_without_ghostscript(
    disguised: Path, ghostscript_calls: list[Any], capfd: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    with pytest.raises(ImageError) as err:
        load_image(disguised)
    assert time.monotonic() - started < 1
    assert ghostscript_calls == []
    assert "not an image lfmdesk can read" in one_line(str(err.value))
    assert capfd.readouterr().out == ""


@pytest.mark.parametrize(
    "reader",
    [oriented_size, lambda p: list(animation_frames(p))],
    ids=["project-image-size", "live-animation"],
)
def test_other_readers_refuse_postscript_too(
    disguised: Path, ghostscript_calls: list[Any], reader: Callable[[Path], object]
) -> None:
    gif = disguised.with_suffix(".gif")
    disguised.rename(gif)
    with pytest.raises((ImageError, InputError)):
        reader(gif)
    assert ghostscript_calls == []


def test_tiles_on_postscript_named_png_fails_fast_with_nothing_on_stdout(
    disguised: Path,
) -> None:
    started = time.monotonic()
    proc = run_cli("tiles", str(disguised), timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = error_lines(proc)
    assert "not an image lfmdesk can read" in line


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA", "PCX", "SGI"])
def test_formats_outside_the_documented_list_are_refused(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"picture.{fmt.lower()}"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(path, format=fmt)
    with pytest.raises(ImageError) as err:
        load_image(path)
    assert "PNG, JPEG, WebP, GIF, BMP, TIFF or HEIC" in one_line(str(err.value))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP"])
def test_documented_formats_still_load(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"picture.{fmt.lower()}"
    Image.new("RGB", (32, 24), (200, 100, 50)).save(path, format=fmt)
    assert load_image(path).image.size == (32, 24)


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError) as err:
        finishes_within(5, lambda: load_image(fifo), unblock=fifo)
    assert "FIFO" in one_line(str(err.value)) and "photo.jpg" in str(err.value)


@pytest.mark.parametrize(
    "reader",
    [oriented_size, lambda p: list(animation_frames(p))],
    ids=["project-image-size", "live-animation"],
)
def test_other_readers_refuse_a_fifo_at_once(
    tmp_path: Path, reader: Callable[[Path], object]
) -> None:
    fifo = tmp_path / "clip.gif"
    os.mkfifo(fifo)
    with pytest.raises((ImageError, InputError)):
        finishes_within(5, lambda: reader(fifo), unblock=fifo)


def test_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    with pytest.raises(ImageError) as err:
        finishes_within(5, lambda: load_image(link))
    assert "device" in one_line(str(err.value))
