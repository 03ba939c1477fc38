"""Help ▸ About lfmdesk: the version, and the licences of lfmdesk and of the models it runs.

lfmdesk is MIT-licensed; the LFM2.5-VL and LFM2-VL weights it downloads are Liquid AI's, under
the LFM Open License v1.0, which limits free commercial use. A user must be able to find both.

    AboutDialog(model="LiquidAI/LFM2.5-VL-450M-MLX-8bit", parent=window).show()
"""

from __future__ import annotations

import html
from importlib import metadata

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

import lfmdesk

__all__ = ["LFM_LICENSE", "LFM_LICENSE_URL", "AboutDialog", "about_html"]

LFM_LICENSE = "LFM Open License v1.0"
LFM_LICENSE_URL = "https://www.liquid.ai/lfm-license"
_QT_LICENSE_URL = "https://doc.qt.io/qtforpython-6/licenses.html"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def about_html(model: str = "") -> str:
    """The dialog's text (rich text; ``model`` is the loaded model's name, if any)."""
    loaded = f"<p>Model loaded: {html.escape(model)}</p>" if model else ""
    return (
        f"<h2>lfmdesk {html.escape(lfmdesk.__version__)}</h2>"
        "<p>Ask Liquid AI's LFM2.5-VL vision-language model about images, find objects and "
        "annotate datasets — on this computer, through MLX.</p>"
        f"{loaded}"
        "<p><b>lfmdesk</b> is free software under the MIT License.</p>"
        "<p><b>The models</b> (LFM2.5-VL, LFM2-VL) are Liquid AI's and are licensed under the "
        f'<a href="{LFM_LICENSE_URL}">{LFM_LICENSE}</a>: free for research, non-profits and '
        "companies under USD 10 million in annual revenue; larger companies need a commercial "
        "licence from Liquid AI. Each model folder carries its licence in its README.</p>"
        f"<p>Built with Qt for Python (PySide6 {html.escape(_version('PySide6'))}, "
        f'<a href="{_QT_LICENSE_URL}">LGPLv3</a>), MLX and mlx-vlm '
        f"{html.escape(_version('mlx-vlm'))}.</p>"
    )


class AboutDialog(QDialog):
    """Version and licences, with links that open in the browser."""

    def __init__(self, model: str = "", parent: QWidget | None = None) -> None:
        """Build the dialog; ``model`` names the loaded model ("" for none)."""
        super().__init__(parent)
        self.setWindowTitle("About lfmdesk")
        self.text = QLabel(about_html(model), self)
        self.text.setObjectName("aboutText")
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setWordWrap(True)
        self.text.setOpenExternalLinks(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)
