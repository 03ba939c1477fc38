"""The engine in a separate process, so that an MLX abort never takes the window down.

Owns the request/event protocol (``_protocol``), the worker that runs an :class:`Engine` in the
child process (``_worker``) and the GUI-facing client that starts it and talks to it
(``_client``: :class:`~lfmdesk.core.EngineProcess`).

May import: ``engine``, ``models`` and the top level. Nothing else in the core imports this
package; the window uses it through ``lfmdesk.core.EngineProcess``.
"""
