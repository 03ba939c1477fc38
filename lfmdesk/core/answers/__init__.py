"""Reading what the model says: grounding (the Detect prompt and its tolerant JSON parser,
``_grounding``) and LFM2's pythonic tool calls (``_tools``; parsed, never evaluated), and the
tool text lfmdesk writes back (``_tool_specs``: definitions read from a file, the tool list in
the system prompt, results and past calls).

Pure text in, frozen dataclasses out. May import only the top-level ``_errors``.
"""
