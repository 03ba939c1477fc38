"""The engine: LFM2-VL answering in this process, over mlx-vlm.

Owns loading a model folder (``_engine``; with mlx-vlm's built-in LFM2-VL classes only, from
a staging folder that holds no code: ``_loader``), the BLAS/backend choice made before MLX is
imported (``_backend``), the prompt — a conversation rendered with the chat template under
size and time limits and turned into token ids with only the template's markup special
(``prompt/``) —, the prefix-cache session (``_session``), the vision-feature cache
(``_vision_cache``), the fast CPU vision tower patched in at load (``_fast_vision``), the
tiling planner (``_tiling``), constrained decoding (``_constrained``, with the Detect grammar
and its guard in ``_detect_grammar``), continuous batching of many requests on one engine
(``_batch``) and the chat request/event types every caller speaks (``_chat``).

May import: ``models`` (to read a model folder), ``images``, ``answers``, and the top-level
``_errors``/``_settings``/``_atomic``/``_files``. Never ``chat``, ``datasets``, ``live`` or
``process``: they stand on the engine, not under it. MLX is imported here and nowhere above.
"""
