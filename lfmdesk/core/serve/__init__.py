"""An OpenAI-compatible server on the engine: ``lfmdesk serve`` and the window's Serve toggle.

Owns the HTTP face (``_app``: FastAPI routes, auth, CORS, errors as OpenAI error objects),
the mapping between OpenAI's chat-completions JSON and :class:`ChatRequest` / engine events
(``_openai``; ``_text`` holds back stop strings and tool-call text while streaming), image
URLs (``_images``: data URLs, http(s) only when allowed, never a local path), the one
submit/stream seam between the asyncio side and the engine's owner thread (``_host``: a
bounded queue, 429 when full, per-request cancel, restart after an engine failure; the
engine process implements the same seam) and running uvicorn on a thread (``_server``).

May import: ``engine``, ``images``, ``answers``, ``models`` and the top level. Nothing in the
core imports it except ``process`` (the window serves from the engine process).
"""
