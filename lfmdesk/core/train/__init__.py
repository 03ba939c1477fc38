"""Fine-tuning: LoRA adapters learned from the boxes a person made or checked in a project.

Owns the training set built from a project (``_dataset``: one row per image, the exact Detect
prompt and the model card's JSON answer, a train/validation split by content hash), the adapter
store in lfmdesk's data folder with its metadata (``_store``), the base model an adapter
belongs to and the check before every load (``_base``), a run's settings and saved state
(``_run``), the training generator (``_loop``, events in ``_events``, the MLX steps over
mlx-vlm's LoRA in ``_steps``; Cancel/Ctrl-C saves and a resume continues exactly), the small
held-out Detect score and the report (``_score``, ``_report``), and a child process that runs
training for the window (``_process``).

May import: ``datasets`` (projects, annotations), ``chat`` (the data folder), ``engine``,
``models``, ``images``, ``answers`` and the top level. Never ``process`` or ``live``: the engine
process stands on this room (it checks adapters before loading them), not under it. MLX is
imported only inside functions, through the engine's model.
"""
