"""The chat side of the window: the panel (``_panel``), its message bubbles (``_bubbles``) and
the pieces they are built from (``_parts``), the tools drawer (``_tools_drawer``), and the
"Show prompt" viewer with the conversations sidebar (``_dialogs``).

Widgets only display and emit intents; the presenter is ``lfmdesk.gui._controller``.
"""
