"""A remote OpenAI-compatible server (vLLM, ``lfmdesk serve``) behind the engine's interface.

Owns :class:`RemoteEngine` (``_engine``): ``stream_chat(request, *, cancel=None)`` yields
``TextDelta``/``Notice`` then one ``GenerationStats``, exactly like the in-process engine, so
ask, detect, chat, annotate, live, the window and evaluation run on a remote server unchanged.
``_wire`` writes a :class:`ChatRequest` in vLLM's wire format (sampling at the top level, an
explicit ``max_tokens``, tiling in ``mm_processor_kwargs``, images as lossless PNG data URLs of
the oriented pixels) and reads answers back (SSE chunks, ``tool_calls`` turned into LFM2's call
text); ``_http`` sends with retries and backoff (429/503/timeouts, honouring ``Retry-After``)
and a cancel that closes the connection at any moment. The parity guard compares the
server's ``usage.prompt_tokens`` with the local tiling planner and says so once when they
differ (boxes would not line up).

May import: ``engine`` (request/event types, the tiling planner), ``images``, ``answers`` and
the top level. Never ``serve``, ``chat``, ``datasets``, ``live`` or ``process``.
"""

from lfmdesk.core.remote._engine import RemoteEngine, is_remote_spec

__all__ = ["RemoteEngine", "is_remote_spec"]
