"""Live mode without a window: the newest-frame-wins slot, live settings turned into requests,
answers read back, latency statistics (``_loop``), and the generator the CLI, the soak test
and the benchmark drive (``_session``).

May import: ``engine``, ``datasets`` (the Detect request), ``answers``, ``images`` and the top
level. Never ``process`` or ``chat``.
"""
