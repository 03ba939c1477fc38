"""Model folders: which variants exist, where they are, whether they are whole, how they arrive.

Owns the variant table (``_variants``), resolving a spec to a folder and the Hugging Face
cache (``_store``), checking a folder before anything loads it (``_verify``), and downloading
with progress, resume and cancel (``_download`` over ``_transfer``, which fetches one file).

May import: the top-level ``_errors``/``_atomic``/``_files`` only. Nothing here imports MLX.
"""
