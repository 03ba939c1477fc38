"""The window's menus: File, Edit, View, Capture, Chat and Help, each action with one owner.

A key belongs to exactly one action: a key bound both on a widget and on a menu action is
"ambiguous" to Qt, which then fires neither (Esc and ⌘⇧R did nothing in the chat box before).
Chat ▸ Stop and Chat ▸ Regenerate own Esc and ⌘⇧R and are enabled only when they can act, so a
disabled Esc still reaches the widget with the focus (closing an inline editor, cancelling a
drawn box).

    menus = install_menus(window)
    menus.stop.isEnabled()              # follows ChatPanel.can_stop()
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

from lfmdesk.gui.chat._panel import REGENERATE_KEYS, STOP_KEYS

if TYPE_CHECKING:
    from lfmdesk.gui._window import MainWindow

__all__ = ["MENU_NAMES", "Menus", "folder_action_text", "install_menus"]

MENU_NAMES = ("&File", "&Edit", "&View", "&Capture", "&Chat", "&Help")
# Qt maps Ctrl to ⌘ on macOS; these keys are the same on every platform (Qt's standard keys
# for Preferences and Quit are empty on Linux).
SETTINGS_KEYS = "Ctrl+,"
QUIT_KEYS = "Ctrl+Q"

Shortcut = QKeySequence | QKeySequence.StandardKey | str | None


def folder_action_text() -> str:
    """The menu item's text: what the desktop calls showing a folder."""
    return "Show Project Folder in Finder" if sys.platform == "darwin" else "Show Project Folder"


@dataclass(frozen=True)
class Menus:
    """The actions the window changes after building them."""

    boxes: QAction
    stop: QAction
    regenerate: QAction
    settings: QAction
    quit: QAction
    about: QAction
    show_folder: QAction


def add_action(
    window: MainWindow,
    menu_name: str,
    text: str,
    slot: Callable[[], object],
    shortcut: Shortcut = None,
    checkable: bool = False,
) -> QAction:
    """One action in ``menu_name`` (the factory the workspace and live mode use too)."""
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setCheckable(checkable)
    action.triggered.connect(slot)
    window.menus[menu_name].addAction(action)
    return action


def install_menus(window: MainWindow) -> Menus:
    """Build the menu bar and toolbar of ``window``; returns the actions it updates later."""
    bar = window.menuBar()
    window.menus = {name: bar.addMenu(name) for name in MENU_NAMES[:-1]}

    def add(*args: object, **kwargs: object) -> QAction:
        return add_action(window, *args, **kwargs)  # type: ignore[arg-type]

    keys = QKeySequence.StandardKey
    c = window.controller
    add("&File", "&Open Image…", window.open_images, keys.Open)
    add("&File", "&New Chat", c.new_conversation, keys.New)
    add("&File", "Conversations…", window.history_dock.toggleViewAction().trigger, "Ctrl+Shift+O")
    add("&File", "Use a Local Model Folder…", window.choose_model_folder)
    show_folder = add("&File", folder_action_text(), window.show_project_folder)
    window.menus["&File"].addSeparator()
    add("&File", "&Close Window", window.close, keys.Close)
    quit_action = add("&File", "&Quit lfmdesk", window.quit_app, QUIT_KEYS)
    quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    add("&Edit", "&Paste Image", window.paste, keys.Paste)
    boxes = add("&View", "Show &Boxes", window.toggle_boxes, "Ctrl+B", checkable=True)
    boxes.setChecked(True)
    settings = add("&View", "&Settings…", window.toggle_settings, SETTINGS_KEYS)
    settings.setMenuRole(QAction.MenuRole.PreferencesRole)
    add("&View", "Show &Prompt", c.request_prompt, "Ctrl+Shift+P")
    stop = add("&Chat", "&Stop", c.stop, STOP_KEYS)
    regenerate = add("&Chat", "&Regenerate", c.regenerate, REGENERATE_KEYS)
    for dock in (window.project_dock, window.labels_dock, window.live_dock):
        window.menus["&View"].addAction(dock.toggleViewAction())
    window.toolbar = window.addToolBar("Tools")
    window.toolbar.setObjectName("toolbar")
    window.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    window.workspace.install_actions(add, window.menus, window.toolbar)
    window.live.install_actions(add, window.menus, window.toolbar)
    window.trainer.install(add)
    # Help last, so it stays the rightmost menu whatever the rooms above added.
    window.menus["&Help"] = bar.addMenu("&Help")
    about = add("&Help", "&About lfmdesk", window.show_about)
    about.setMenuRole(QAction.MenuRole.AboutRole)
    return Menus(boxes, stop, regenerate, settings, quit_action, about, show_folder)
