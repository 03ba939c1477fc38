"""The engine in a separate process, so that an MLX abort never takes the window down.

Owns the request/event protocol (``_protocol``), the worker that runs an engine in the child
process and serves the API from it when asked (``_worker``), the table of engines it can run
(``_factories``: the real one, the scripted one for GUI tests) and the GUI-facing client that
starts it and talks to it (``_client``: :class:`~lfmdesk.core.EngineProcess`).

May import: ``engine``, ``models``, ``serve``, ``remote``, ``train`` (an adapter is checked
before it loads) and the top level. Nothing else in the core imports this package; the window
uses it through ``lfmdesk.core.EngineProcess``.
"""
