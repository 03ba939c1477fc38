"""The "Remote server…" dialog: answer from an OpenAI-compatible server (vLLM, lfmdesk serve).

    dialog = RemoteDialog(parent, url="http://gpu-box:8000/v1")
    if dialog.exec():
        client.load_model(dialog.url, api_key=dialog.api_key)

The key is kept in memory while the window runs and never saved.
"""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

__all__ = ["RemoteDialog", "remote_url_problem"]


def remote_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a server's base URL (one line), or None when it can."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Give the server's base URL, e.g. http://gpu-box:8000/v1"
    return None


class RemoteDialog(QDialog):
    """Asks for a server URL and (optionally) its API key."""

    def __init__(self, parent: QWidget | None = None, url: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Remote server")
        self._url = QLineEdit(url)
        self._url.setObjectName("remoteUrl")
        self._url.setPlaceholderText("http://gpu-box:8000/v1")
        self._key = QLineEdit()
        self._key.setObjectName("remoteKey")
        self._key.setEchoMode(QLineEdit.EchoMode.Password)
        self._key.setPlaceholderText("none")
        self._problem = QLabel()
        self._problem.setObjectName("remoteProblem")
        self._problem.setStyleSheet("color: #b00020")
        note = QLabel(
            "Answers, Detect, batches and live mode run on this OpenAI-compatible server "
            "(vLLM, or lfmdesk serve on another Mac). The key is kept only while lfmdesk runs."
        )
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Server URL", self._url)
        form.addRow("API key", self._key)
        self._buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self._buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Connect")
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self._problem)
        layout.addWidget(self._buttons)
        self._buttons.accepted.connect(self.accept)
        self._buttons.rejected.connect(self.reject)
        self._url.textChanged.connect(self._check)
        self._check(url)

    @property
    def url(self) -> str:
        """The URL as typed, without surrounding spaces or a trailing slash."""
        return self._url.text().strip().rstrip("/")

    @property
    def api_key(self) -> str | None:
        """The key, or None when left empty."""
        return self._key.text().strip() or None

    @Slot(str)
    def _check(self, text: str) -> None:
        problem = remote_url_problem(text) if text.strip() else None
        self._problem.setText(problem or "")
        self._problem.setVisible(bool(problem))
        ok = self._buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(text.strip()) and problem is None)
