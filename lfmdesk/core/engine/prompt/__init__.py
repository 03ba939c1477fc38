"""The prompt: from a conversation to the exact token ids the model reads.

Owns rendering a request with the checkpoint's chat template (``_render``), the sandbox with size
and time limits every template renders under (``_template``, priced by ``_budget``), and turning
the rendered text into ids with exactly one BOS and only the template's own markup special
(``_tokens``): text from a person, the model or a tool never becomes a control token.

May import: the request types (``engine._chat``), ``answers`` (tool-call text) and the top
level. Never MLX, and nothing else of ``engine``: the engine uses the prompt, not the other way
round.
"""
