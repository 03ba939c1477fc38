"""Chat templates render under limits: a few MB of text and a few seconds, whatever they say.

transformers renders every chat template (``tokenizer.apply_chat_template``,
``processor.apply_chat_template``, mlx-vlm's prompt helpers) through one function,
``transformers.utils.chat_template_utils._compile_jinja_template``. :func:`install_template_limits`
replaces it with one that compiles into a copy of transformers' own sandboxed environment (same
extensions, filters, tests and globals, so templates render to the same text) whose operations
are priced before they run (:mod:`._budget`):

* ``*``, ``**``, ``+`` and ``%`` (Jinja's intercepted operators), every call (string methods
  such as ``center`` or ``replace``, macros, ``lipsum``) and every filter;
* ``~`` concatenation and the output of macros, ``{% set %}`` blocks and ``{{ ... }}``;
* the rendered text, counted as it streams, and a deadline checked on every template line.

A template over the limits stops with a one-line :class:`TemplateLimitError`, which the engine
reports as the template failing. Replacing a private function of transformers is deliberate: it
is the one place every caller's rendering passes through; a transformers without it makes
loading a model fail loudly (the tests would too) rather than render without limits.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from jinja2 import Template
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from lfmdesk.core._errors import EngineError
from lfmdesk.core.engine.prompt._budget import (
    Budget,
    TemplateLimitError,
    activate,
    current,
    deactivate,
    price_binop,
    price_call,
    text_size,
)

__all__ = ["MAX_TEMPLATE_CHARS", "TemplateLimitError", "install_template_limits", "limits"]

MAX_TEMPLATE_CHARS = 256_000  # real LFM2 templates are ~3 KB; large HF ones ~30 KB


class _Limits:
    """The limits of one render: ``base + per_input_char * input`` characters, ``seconds``."""

    base = 2_000_000
    per_input_char = 2
    seconds = 3.0


limits = _Limits()


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` routed through the environment so it can be priced."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = (
                "(environment.join_markup if context.eval_ctx.volatile else environment.join_text)"
            )
        else:
            join = (
                "environment.join_markup" if frame.eval_ctx.autoescape else "environment.join_text"
            )
        self.write(f"{join}((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _priced_output(value: Any) -> Any:
    """``finalize`` of every ``{{ ... }}``: the text it will become must fit."""
    budget = current()
    budget.allow(text_size(value, budget.limit), "one output")
    return value


def _bounded_concat(parts: Iterable[str]) -> str:
    """``environment.concat``: joins the output of macros and ``{% set %}`` blocks."""
    items = list(parts)
    current().allow(sum(len(p) for p in items), "a macro or block")
    return "".join(items)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator
    concat = staticmethod(_bounded_concat)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        price_binop(budget, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        budget.spend(result)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        args = price_call(budget, __obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        budget.spend(result)
        return result

    def join_text(self, parts: Iterable[Any]) -> str:
        items = list(parts)
        budget = current()
        budget.allow(text_size(items, budget.limit), "joining with ~")
        return str_join(items)

    def join_markup(self, parts: Iterable[Any]) -> str:
        items = list(parts)
        budget = current()
        budget.allow(6 * text_size(items, budget.limit), "joining with ~")
        return markup_join(items)  # Markup: already escaped, must not be escaped again


class _BoundedTemplate(Template):
    def render(self, *args: Any, **kwargs: Any) -> str:
        """Render with a fresh :class:`Budget`: output, work and time limited."""
        size = limits.base + limits.per_input_char * text_size((args, kwargs), 1 << 62)
        budget = Budget(size, limits.seconds)
        token = activate(budget)
        previous = sys.gettrace()
        sys.settrace(_line_tracer(budget))
        try:
            pieces: list[str] = []
            total = 0
            for piece in self.generate(*args, **kwargs):
                total += len(piece)
                budget.allow(total, "the rendered prompt")
                pieces.append(piece)
            return "".join(pieces)
        finally:
            sys.settrace(previous)
            deactivate(token)


_BoundedEnvironment.template_class = _BoundedTemplate


def _line_tracer(budget: Budget) -> Callable[[FrameType, str, Any], Any]:
    """A trace function that checks the deadline as template code runs its lines (loops too).

    The clock is read every 256 lines: a line of template code takes well under a microsecond.
    """
    lines = 0

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal lines
        lines += 1
        if not lines & 0xFF:
            budget.tick()
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        return on_line if frame.f_code.co_filename == "<template>" else None

    return on_call


# -- filters -----------------------------------------------------------------------------------

_Price = Callable[[Budget, Any, tuple[Any, ...], dict[str, Any]], Any]


def _arg(rest: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    return rest[index] if len(rest) > index else kwargs.get(name, default)


def _price_text(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    budget.allow(text_size(value, budget.limit), "a filter")
    return value


def _price_escaped(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    budget.allow(6 * text_size(value, budget.limit), "escaping")
    return value


def _price_center(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    width = _arg(rest, kw, 0, "width", 80)
    budget.allow(max(text_size(value, budget.limit), int(width)), "center")
    return value


def _price_indent(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    width = _arg(rest, kw, 0, "width", 4)
    step = len(width) if isinstance(width, str) else int(width)
    lines = str(value).count("\n") + 1
    budget.allow(len(str(value)) + lines * max(step, 0), "indent")
    return value


def _price_replace(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    text, old, new = (
        str(value),
        str(_arg(rest, kw, 0, "old", "")),
        str(_arg(rest, kw, 1, "new", "")),
    )
    hits = text.count(old) if old else len(text) + 1
    budget.allow(len(text) + hits * max(len(new) - len(old), 0), "replace")
    return value


def _price_join(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    items = list(value)
    glue = str(_arg(rest, kw, 0, "d", ""))
    budget.allow(text_size(items, budget.limit) + len(glue) * len(items), "join")
    return items


def _price_format(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    price_binop(budget, "%", str(value), tuple(kw.values()) if kw else rest)
    return value


def _price_wordwrap(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    wrap = _arg(rest, kw, 2, "wrapstring", None) or "\n"
    budget.allow(len(str(value)) * (1 + len(str(wrap))), "wordwrap")
    return value


def _price_tojson(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    indent = _arg(rest, kw, 1, "indent", None)
    separators = _arg(rest, kw, 2, "separators", None) or ()
    step = len(indent) if isinstance(indent, str) else int(indent or 0)
    spread = 2 + 8 * max(step, 0) + sum(len(str(s)) for s in separators)
    budget.allow(spread * text_size(value, budget.limit), "tojson")
    return value


def _price_sum(budget: Budget, value: Any, rest: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    # With a number to start from, sum() can only add numbers: no quadratic list building.
    if not isinstance(_arg(rest, kw, 1, "start", 0), (int, float)):
        raise TemplateLimitError("the sum filter adds numbers only")
    return value


_FILTER_PRICES: dict[str, _Price] = {
    "center": _price_center,
    "indent": _price_indent,
    "replace": _price_replace,
    "join": _price_join,
    "format": _price_format,
    "wordwrap": _price_wordwrap,
    "tojson": _price_tojson,
    "sum": _price_sum,
    **dict.fromkeys(
        ("e", "escape", "forceescape", "urlize", "xmlattr", "urlencode"), _price_escaped
    ),
}


def _priced_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    price = _FILTER_PRICES.get(name, _price_text)
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)  # keeps jinja_pass_arg, so Jinja passes the same arguments
    def priced(*args: Any, **kwargs: Any) -> Any:
        if len(args) <= skip:
            return func(*args, **kwargs)
        budget = current()
        head, value, rest = args[:skip], args[skip], args[skip + 1 :]
        price_call(budget, None, (*rest, *kwargs.values()), {})
        result = func(*head, price(budget, value, rest, kwargs), *rest, **kwargs)
        budget.spend(result)
        return result

    return priced


# -- installing ---------------------------------------------------------------------------------


def _bounded_copy(reference: Any) -> _BoundedEnvironment:
    """transformers' environment, rebuilt on :class:`_BoundedEnvironment`."""
    env = _BoundedEnvironment(
        trim_blocks=reference.trim_blocks,
        lstrip_blocks=reference.lstrip_blocks,
        keep_trailing_newline=reference.keep_trailing_newline,
        autoescape=reference.autoescape,
        extensions=[type(ext) for ext in reference.extensions.values()],
        finalize=_priced_output,
    )
    env.filters = {name: _priced_filter(name, f) for name, f in reference.filters.items()}
    env.tests = dict(reference.tests)
    env.globals = dict(reference.globals)
    return env


_install_lock = threading.Lock()
_installed: list[Callable[[str], Template]] = []


def install_template_limits() -> None:
    """Make transformers compile every chat template under lfmdesk's limits (once per process).

    Raises:
        EngineError: this transformers has no template compiler to replace.
    """
    with _install_lock:
        if _installed:
            return
        try:
            from transformers.utils import chat_template_utils as ctu

            env = _bounded_copy(ctu._compile_jinja_template("").environment)
        except (ImportError, AttributeError) as exc:
            raise EngineError(
                f"cannot limit chat templates with this transformers version ({exc}); "
                "install the transformers version mlx-vlm asks for"
            ) from None

        @functools.lru_cache(maxsize=32)
        def compile_limited(chat_template: str) -> Template:
            if len(chat_template) > MAX_TEMPLATE_CHARS:
                raise TemplateLimitError(
                    f"the chat template is {len(chat_template) // 1000} KB; lfmdesk reads "
                    f"templates up to {MAX_TEMPLATE_CHARS // 1000} KB"
                )
            return env.from_string(chat_template)

        ctu._compile_jinja_template = compile_limited
        _installed.append(compile_limited)
