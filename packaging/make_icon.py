"""Make the app icons from resources/lfmdesk.svg: ``lfmdesk.icns`` (macOS) and ``lfmdesk.png``.

``python packaging/make_icon.py [--svg SVG] [--out DIR]`` (default: ``build/icon``). Every size
is rendered from the vector with Qt's SVG renderer (crisp small sizes instead of a 1024 px
image scaled down) and Pillow writes the ICNS, so no macOS tool (iconutil, sips) is needed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image

__all__ = ["ICNS_PIXELS", "make_icons", "render_svg"]

ROOT = Path(__file__).resolve().parent.parent
# Pixel sizes Pillow stores in an .icns (16@2x ... 512@2x; macOS derives 16@1x from 16@2x).
ICNS_PIXELS = (32, 64, 128, 256, 512, 1024)


def render_svg(svg: Path, size: int) -> Image.Image:
    """Render ``svg`` to a ``size``×``size`` RGBA image (transparent outside the artwork).

    Raises:
        ValueError: the file is not an SVG Qt can read.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG; fix the file or pass --svg")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)  # straight, not premultiplied
    raw = bytes(rgba.constBits())
    return Image.frombuffer("RGBA", (size, size), raw, "raw", "RGBA", rgba.bytesPerLine(), 1)


def make_icons(svg: Path, out_dir: Path) -> dict[str, Path]:
    """Write ``lfmdesk.icns`` and ``lfmdesk.png`` (1024 px) into ``out_dir``.

    Returns:
        ``{"icns": path, "png": path}``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {px: render_svg(svg, px) for px in ICNS_PIXELS}
    largest = images[max(ICNS_PIXELS)]
    paths = {"icns": out_dir / "lfmdesk.icns", "png": out_dir / "lfmdesk.png"}
    for key, path in paths.items():
        tmp = path.with_name(path.name + ".tmp")
        if key == "icns":
            largest.save(tmp, format="ICNS", append_images=list(images.values()))
        else:
            largest.save(tmp, format="PNG")
        tmp.replace(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command line entry; returns the exit code."""
    parser = argparse.ArgumentParser(prog="make_icon.py", description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=ROOT / "resources" / "lfmdesk.svg")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "icon")
    args = parser.parse_args(argv)
    if not args.svg.is_file():
        print(f"make_icon.py: error: {args.svg} does not exist; pass --svg", file=sys.stderr)
        return 2
    try:
        paths = make_icons(args.svg, args.out)
    except ValueError as exc:
        print(f"make_icon.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"icons: {paths['icns']} {paths['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
