"""Conversations: the turns and their images (``_conversation``), saving and listing them on
disk (``_store``), and the chat thread that turns intents (send, detect, regenerate, edit)
into engine requests (``_thread``).

May import: ``engine`` (request/event types), ``answers``, ``images`` and the top level.
Never ``process``, ``datasets`` or ``live``.
"""
