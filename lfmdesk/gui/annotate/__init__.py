"""The annotation workspace: undoable edits and autosave (``_editor``), the labels and project
panels, Detect all (``_batch``), export/import dialogs, screen capture (``_capture``), all
wired by ``_workspace``. The data model is Qt-free: ``lfmdesk.core.datasets``.
"""
