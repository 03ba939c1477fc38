"""The window's message and menu slots: where it speaks, and Help, Show Folder and Quit.

A mixin of :class:`~lfmdesk.gui._window.MainWindow`, kept apart so the window module stays
about layout and wiring. Passing news and a user's own mistakes are toasts; problems that
last are banners, with a topic when they end by themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from PySide6.QtCore import QCoreApplication, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QWidget

from lfmdesk.gui._banner import Banner, Toast
from lfmdesk.gui._menus import Menus
from lfmdesk.gui.annotate._workspace import Workspace
from lfmdesk.gui.chat._panel import ChatPanel
from lfmdesk.gui.support._about import AboutDialog

__all__ = ["WindowSlots"]


class WindowSlots:
    """Messages (toast, banner) and the Help, Show Folder and Quit menu items."""

    # Provided by the window.
    toast: Toast
    banner: Banner
    chat: ChatPanel
    workspace: Workspace
    menu_actions: Menus
    about_dialog: AboutDialog | None
    choose_model_folder: Callable[[], None]
    loaded_model_name: Callable[[], str]
    close: Callable[[], bool]

    @Slot(str)
    def show_message(self, message: str) -> None:
        """Passing news ("Copied 3 boxes as JSON"): a toast over the picture."""
        self.toast.show_message(message, "info")

    @Slot(str)
    def show_problem(self, message: str) -> None:
        """Something the user just did failed (not an image, cannot send): a toast."""
        self.toast.show_message(message, "error")

    @Slot(str, str)
    def show_warning(self, message: str, topic: str = "") -> None:
        """A problem that lasts (a save failed, a permission is missing): the banner, until
        dismissed or, with a ``topic``, until the problem is gone."""
        self.banner.show_message(message, kind="warning", action_text="Dismiss", topic=topic)

    @Slot(str)
    def show_live_problem(self, message: str) -> None:
        """Live mode's problem; it goes away once live mode answers again."""
        self.banner.show_message(message, kind="warning", action_text="Dismiss", topic="live")

    @Slot()
    def _on_live_resumed(self) -> None:
        self.banner.clear("live")

    @Slot()
    def _on_banner_action(self) -> None:
        # The action button of a banner does what its topic asks; the rest only dismiss.
        actions: dict[str, Callable[[], None]] = {"model": self.choose_model_folder}
        action = actions.get(self.banner.topic)
        if action is not None:
            action()

    @Slot()
    def _sync_chat_actions(self) -> None:
        self.menu_actions.stop.setEnabled(self.chat.can_stop())
        self.menu_actions.regenerate.setEnabled(self.chat.can_regenerate())

    def show_project_folder(self) -> None:
        """Open the project folder (Captures until another is opened) in Finder or Files."""
        root = self.workspace.project.root
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(root))):
            self.show_problem(f"cannot show {root}: no file manager answered")

    def show_about(self) -> None:
        """Help ▸ About lfmdesk."""
        self.about_dialog = AboutDialog(self.loaded_model_name(), cast("QWidget", self))
        self.about_dialog.show()

    def quit_app(self) -> None:
        """File ▸ Quit: close the window (saving everything), then end the app."""
        if self.close():
            QCoreApplication.quit()
