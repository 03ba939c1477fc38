"""What one chat-template render may cost, and what each Jinja operation would produce.

A chat template comes from the model folder: it is data, run in Jinja's sandbox, which stops
attribute tricks but not ``{{ 'x' * 10**10 }}`` (9.8 GB) or a loop that never ends. Every
operation that can make a value much larger than its inputs is priced here *before* it runs:
repetition, big powers, ``%``-formatting widths, the string methods and filters that pad,
repeat or join. A :class:`Budget` holds one render's limits: the size of any one value, the
text all operations may produce together, and a deadline.
"""

from __future__ import annotations

import contextvars
import re
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jinja2.exceptions import SecurityError

__all__ = [
    "Budget",
    "TemplateLimitError",
    "activate",
    "current",
    "deactivate",
    "price_binop",
    "price_call",
    "text_size",
]

MAX_INT_BITS = 100_000  # ~30,000 digits: more than any template counts with
_WORK_FACTOR = 16  # all operations together may produce this many times the output limit
_PERCENT_SPEC = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:[^{}]*?(\d+)")


class TemplateLimitError(SecurityError):
    """A chat template tried to produce too much text, or ran too long."""


def _chars(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n} bytes"


class Budget:
    """One render's limits.

    Args:
        limit: Most characters (or items) any one value, and the output, may have.
        seconds: Wall-clock time the render may take; ``None`` for no deadline.
    """

    def __init__(self, limit: int, seconds: float | None) -> None:
        self.limit = limit
        self.seconds = seconds
        self._work_left = limit * _WORK_FACTOR
        self._deadline = None if seconds is None else time.monotonic() + seconds

    def tick(self) -> None:
        """Raise once the deadline has passed."""
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise TemplateLimitError(f"the chat template ran longer than {self.seconds:g} s")

    def allow(self, size: int, what: str) -> None:
        """Raise if a value of ``size`` characters (or items) would be too large."""
        if size > self.limit:
            raise TemplateLimitError(
                f"{what} would make {_chars(size)}, more than the {_chars(self.limit)} "
                "lfmdesk lets a chat template produce"
            )
        self.tick()

    def spend(self, value: Any) -> None:
        """Count a value an operation produced against the render's total."""
        if isinstance(value, (str, bytes, list, tuple, dict)):
            self.allow(len(value), "one value")
            self._work_left -= len(value)
            if self._work_left < 0:
                raise TemplateLimitError(
                    f"the chat template built more than {_chars(self.limit * _WORK_FACTOR)} "
                    "of text in all"
                )


_CURRENT: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "lfmdesk_template_budget", default=None
)
_DEFAULT_LIMIT = 1_000_000


def current() -> Budget:
    """The budget of the render in progress; outside one (compile-time folding), a fresh one."""
    return _CURRENT.get() or Budget(_DEFAULT_LIMIT, None)


def activate(budget: Budget) -> contextvars.Token[Budget | None]:
    """Make ``budget`` the current one; pass the token to :func:`deactivate`."""
    return _CURRENT.set(budget)


def deactivate(token: contextvars.Token[Budget | None]) -> None:
    """Restore the budget that was current before :func:`activate`."""
    _CURRENT.reset(token)


def text_size(value: Any, cap: int) -> int:
    """About how many characters ``str(value)`` has; stops counting once past ``cap``."""
    total, stack = 0, [value]
    while stack and total <= cap:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, Mapping):
            total += 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 * len(item)
            stack.extend(item)
        else:
            total += 24
    return total


def _big_int(value: Any) -> bool:
    return isinstance(value, int) and value.bit_length() > MAX_INT_BITS


def price_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """Raise if ``left <operator> right`` would be too large (``*``, ``**``, ``+``, ``%``)."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0:
        if right * max(1, abs(left).bit_length() - 1) > MAX_INT_BITS:
            raise TemplateLimitError(f"{left} ** {right} is too large a number")
    elif operator == "*" and ints:
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError("the chat template multiplies too large numbers")
    elif operator == "*":
        count, seq = (left, right) if isinstance(left, int) else (right, left)
        if isinstance(count, int) and hasattr(seq, "__len__"):
            budget.allow(len(seq) * max(count, 0), f"{type(seq).__name__} * {count}")
    elif operator == "+" and isinstance(left, (str, bytes, list, tuple)):
        if hasattr(right, "__len__"):
            budget.allow(len(left) + len(right), "joining two values")
    elif operator == "%" and isinstance(left, str):
        _price_percent(budget, left, right)


def _price_percent(budget: Budget, spec: str, args: Any) -> None:
    values = args if isinstance(args, tuple) else (args,)
    widths = [int(n) for m in _PERCENT_SPEC.finditer(spec) for n in m.groups() if n and n != "*"]
    widths += [abs(v) for v in values if isinstance(v, int)] if "*" in spec else []
    budget.allow(len(spec) + sum(widths) + text_size(values, budget.limit), "%-formatting")


def _price_format(budget: Budget, spec: str, args: Iterable[Any]) -> None:
    widths = [int(m.group(1)) for m in _BRACE_SPEC.finditer(spec)]
    values = list(args)
    widths += [abs(v) for v in values if isinstance(v, int)]
    budget.allow(len(spec) + sum(widths) + text_size(values, budget.limit), "str.format")


def _check_int_args(args: Iterable[Any]) -> None:
    if any(_big_int(a) for a in args):
        raise TemplateLimitError("the chat template passes too large a number")


# str/bytes method name -> predicted length of the result from (self, args).
_Predict = Callable[[Any, tuple[Any, ...]], int]
_STRING_METHODS: dict[str, _Predict] = {
    "center": lambda s, a: max(len(s), int(a[0])) if a else len(s),
    "ljust": lambda s, a: max(len(s), int(a[0])) if a else len(s),
    "rjust": lambda s, a: max(len(s), int(a[0])) if a else len(s),
    "zfill": lambda s, a: max(len(s), int(a[0])) if a else len(s),
    "expandtabs": lambda s, a: (
        len(s) + s.count("\t" if isinstance(s, str) else b"\t") * max(int(a[0]) if a else 8, 0)
    ),
    "replace": lambda s, a: (
        len(s) + (s.count(a[0]) if a[0] else len(s) + 1) * max(len(a[1]) - len(a[0]), 0)
        if len(a) >= 2
        else len(s)
    ),
    "translate": lambda s, a: (
        len(s) * max([len(v) for v in a[0].values() if hasattr(v, "__len__")] + [1])
        if a and isinstance(a[0], Mapping)
        else len(s)
    ),
}


def price_call(budget: Budget, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Raise if calling ``obj`` would produce too much; return the args to call it with.

    ``str.join`` of a lazy iterable is materialized here, so it can be priced and still joined.
    """
    budget.tick()
    _check_int_args((*args, *kwargs.values()))
    inner = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(inner, "__self__", None)
    name = getattr(inner, "__name__", "")
    if isinstance(owner, (str, bytes)):
        if name == "join" and args:
            items = list(args[0])
            size = text_size(items, budget.limit) + len(owner) * len(items)
            budget.allow(size, "str.join")
            return (items, *args[1:])
        if name in ("format", "format_map") and isinstance(owner, str):
            values = [*args, *kwargs.values()]
            if name == "format_map" and args and isinstance(args[0], Mapping):
                values = list(args[0].values())
            _price_format(budget, owner, values)
        elif name in _STRING_METHODS:
            budget.allow(_STRING_METHODS[name](owner, args), f"str.{name}")
    elif name == "generate_lorem_ipsum":  # Jinja's lipsum(n, html, min, max)
        n = int(args[0]) if args else int(kwargs.get("n", 5))
        budget.allow(n * int(kwargs.get("max", args[3] if len(args) > 3 else 100)) * 12, "lipsum")
    return args
