"""Reading what the model says: grounding (the Detect prompt and its tolerant JSON parser,
``_grounding``) and LFM2's pythonic tool calls (``_tools``; parsed, never evaluated).

Pure text in, frozen dataclasses out. May import only the top-level ``_errors``.
"""
