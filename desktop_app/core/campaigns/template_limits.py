"""What rendering one message may cost: steps, time, widths and characters (issue 14).

Jinja2's sandbox keeps a template away from Python's internals; it does not stop one from
asking for a billion-character string (``{{ '%999999999s'|format('x') }}`` took 4.9 GB) or
a loop of 10**10 steps (``range(100000)`` twice, nested). Campaign templates are written by
users and rendered on the machine that sends, in the window's preview too, so every render
of one message (preview, test send, the pre-send check, the send itself) runs under a
:class:`RenderBudget` and these limits, far above what any real mail needs:

- ``MAX_STEPS``: each loop iteration and each call the template makes is a step;
- ``TIME_LIMIT``: seconds for the whole message, looked at every few steps;
- ``MAX_WIDTH``: a width, precision, indent or count handed to an operation that builds a
  value of that size in one go (``format``, ``center``, ``'{:>N}'.format``, ``batch``...)
  is checked *before* it runs, so the memory is never asked for;
- ``MAX_VALUE_LENGTH``: no single value the template builds (a filter's or a call's
  result, a ``~`` concatenation, ``+``, ``*``, ``%``) may be longer;
- ``MAX_BUILT``: the characters built and written in all, which bounds the memory a
  message can hold (a loop storing a new large string on each turn stops here).

The budget reaches the template's code three ways: through the sandbox's hooks (``call``
and the intercepted operators), through the filters, every one of which is wrapped, and
through the template's syntax tree, rewritten at compile time so each ``for`` loop counts
its turns and each piece of output, static text included, is counted as it is written.
Exceeding a limit raises :class:`TemplateLimitError`; ``templates.py`` makes it the usual
one-line ``TemplateError`` naming the part, the line and the limit.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

#: Loop iterations plus calls in one message (a 1,000-row table with ten calls a row is
#: 11,000).
MAX_STEPS = 1_000_000
#: Seconds one message may take to render, all parts together.
TIME_LIMIT = 2.0
#: Largest width, precision, indent or count an operation may build in one go.
MAX_WIDTH = 10_000
#: Longest string or sequence a template may build with * (the sandbox's cap before these).
MAX_REPEAT_LENGTH = 1_000_000
#: Longest single value, and longest rendered part (subject, HTML or text).
MAX_VALUE_LENGTH = 5_000_000
MAX_RENDERED_LENGTH = 5_000_000
#: Characters built and written in all while one message renders.
MAX_BUILT = 50_000_000

#: How many steps go by between two looks at the clock (time.monotonic is cheap, not free).
_CLOCK_EVERY = 128

# Names of the filters the syntax-tree rewrite inserts. A template may name them too: all
# they do is count.
STEP_FILTER = "relaydesk_count_steps"
WRITE_FILTER = "relaydesk_count_written"
BUILD_FILTER = "relaydesk_count_built"


class TemplateLimitError(Exception):
    """A render went past one of the limits above; the text names it, in one line."""


class RenderBudget:
    """The steps, characters and time one message has used so far."""

    def __init__(self) -> None:
        self.steps = 0
        self.built = 0
        self._deadline = time.monotonic() + TIME_LIMIT
        self._until_clock = _CLOCK_EVERY

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateLimitError(
                f"stopped after {MAX_STEPS:,} steps (loop turns and calls), "
                "the limit for one message"
            )
        self._tick()

    def add(self, length: int) -> None:
        self.built += length
        if self.built > MAX_BUILT:
            raise TemplateLimitError(
                f"builds more than {MAX_BUILT:,} characters in all, the limit for one message"
            )
        self._tick()

    def iterate(self, iterable: Iterable[Any], text_per_turn: int) -> Iterator[Any]:
        for item in iterable:
            self.step()
            if text_per_turn:
                self.add(text_per_turn)
            yield item

    def _tick(self) -> None:
        self._until_clock -= 1
        if self._until_clock:
            return
        self._until_clock = _CLOCK_EVERY
        if time.monotonic() > self._deadline:
            raise TemplateLimitError(
                f"took longer than {TIME_LIMIT:g} seconds, the limit for one message"
            )


_CURRENT: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar(
    "relaydesk_render_budget", default=None
)


@contextmanager
def render_budget() -> Iterator[RenderBudget]:
    """The budget of one message, for every render inside the ``with`` (this thread only).

    Outside one (Jinja2 folding constants while it compiles) the stateless checks still
    hold: widths and the length of each value.
    """
    budget = RenderBudget()
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def _step() -> None:
    budget = _CURRENT.get()
    if budget is not None:
        budget.step()


_SIZED = (str, bytes, list, tuple, dict)


def _built(value: Any) -> Any:
    """Check and count a value the template just built; returns it unchanged."""
    if isinstance(value, _SIZED):
        length = len(value)
        if length > MAX_VALUE_LENGTH:
            raise TemplateLimitError(
                f"builds a value of {length:,} characters or items, more than the "
                f"{MAX_VALUE_LENGTH:,} one value may hold"
            )
        budget = _CURRENT.get()
        if budget is not None:
            budget.add(length)
    return value


def _written(value: Any) -> Any:
    """Count a piece of output (static text or an expression's value) as it is written."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.add(len(value) if isinstance(value, str) else len(str(value)))
    return value


# -- widths checked before the value is built ----------------------------------------------


def check_width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_WIDTH:
        raise TemplateLimitError(
            f"{what} asks for {value:,}, more than the {MAX_WIDTH:,} a template may use"
        )


def _check_length(length: int, what: str) -> None:
    if length > MAX_VALUE_LENGTH:
        raise TemplateLimitError(
            f"{what} would build {length:,} characters, more than the "
            f"{MAX_VALUE_LENGTH:,} one value may hold"
        )


def _check_digits(digits: str, what: str) -> None:
    if len(digits) > 100:  # int() of a 5,000-digit string is itself refused by Python
        raise TemplateLimitError(
            f"{what} asks for a {len(digits):,}-digit number, more than the {MAX_WIDTH:,} "
            "a template may use"
        )
    check_width(int(digits), what)


# A printf-style conversion: %[(key)][flags][width][.precision][length]type
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?[a-zA-Z%]")


def check_percent_format(template: str, values: Any) -> None:
    """``template % values`` with no width or precision above ``MAX_WIDTH``."""
    starred = False
    for match in _PERCENT_SPEC.finditer(template):
        for number in match.groups():
            if number == "*":
                starred = True
            elif number:
                _check_digits(number, "a format width")
    if starred:  # the width comes from the values: look at every number among them
        for value in values if isinstance(values, tuple) else (values,):
            check_width(value, "a format width")


def check_brace_format(template: str, args: Iterable[Any], kwargs: Mapping[Any, Any]) -> None:
    """``template.format(*args, **kwargs)`` with no width or precision above ``MAX_WIDTH``."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # malformed: str.format itself says so
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:  # a width given as a field ('{:{w}}'): every number passed counts
            for value in (*args, *kwargs.values()):
                check_width(value, "a format width")
        for digits in re.findall(r"\d+", spec):
            _check_digits(digits, "a format width")


def _check_join(separator: Any, items: Any) -> None:
    if isinstance(items, list | tuple) and isinstance(separator, str | bytes):
        length = sum(len(item) for item in items if isinstance(item, str | bytes))
        _check_length(length + len(separator) * max(len(items) - 1, 0), "join")


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if isinstance(text, str | bytes) and isinstance(new, str | bytes):
        hits = len(text) + 1 if not old else text.count(old)
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        _check_length(len(text) + hits * len(new), "replace")


_STRING_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def check_string_method(owner: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict) -> None:
    """The methods of ``str`` and ``bytes`` that can build a large value in one call."""
    first = args[0] if args else None
    if name in _STRING_WIDTH_METHODS:
        check_width(first if args else kwargs.get("width"), name)
    elif name == "expandtabs":
        size = first if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            _check_length(len(owner) + tabs * size, "expandtabs")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else kwargs.get("count"))
    elif name == "join" and args:
        _check_join(owner, first)
    elif name == "translate" and isinstance(first, Mapping):
        longest = max((len(v) for v in first.values() if isinstance(v, str | bytes)), default=1)
        _check_length(len(owner) * longest, "translate")
    elif name == "format" and isinstance(owner, str):
        check_brace_format(owner, args, kwargs)
    elif name == "format_map" and isinstance(owner, str) and isinstance(first, Mapping):
        check_brace_format(owner, (), first)


# -- the filters, each wrapped -------------------------------------------------------------

#: Arguments of built-in filters that size what they build in one go.
_FILTER_WIDTHS: dict[str, tuple[str, ...]] = {
    "center": ("width",),
    "indent": ("width",),
    "batch": ("linecount",),
    "slice": ("slices",),
    "tojson": ("indent",),
}


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """``original``, with its sizes checked first and its result counted after.

    ``functools.wraps`` copies the ``jinja_pass_arg`` marker too, so a filter that takes
    the context or the environment still gets it (as its first argument, like before).
    """
    try:
        signature: inspect.Signature | None = inspect.signature(original)
    except (TypeError, ValueError):
        signature = None
    widths = _FILTER_WIDTHS.get(name, ())
    inspected = signature is not None and (bool(widths) or name in ("join", "replace"))
    skipped = 1 if signature is not None and _passed_but_unlisted(original, signature) else 0

    @functools.wraps(original)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        # No step counted: a filter's work is bounded by its input, which is counted.
        if inspected:
            assert signature is not None
            try:
                given = signature.bind(*args[skipped:], **kwargs).arguments
            except TypeError:
                given = {}  # a wrong call: the filter itself says so
            for parameter in widths:
                width = given.get(parameter)
                if isinstance(width, str):  # indent("> ") indents with that text
                    width = len(width)
                check_width(width, f"the {name} filter's {parameter}")
            if name == "join":
                _check_join(given.get("d", ""), given.get("value"))
            elif name == "replace":
                _check_replace(
                    given.get("s"), given.get("old"), given.get("new"), given.get("count")
                )
        if name == "format" and args:
            check_percent_format(str(args[0]), kwargs or args[1:])
        return _built(original(*args, **kwargs))

    return bounded


#: What Jinja names the context, environment or evaluation context a filter is passed first.
_PASSED_FIRST = frozenset({"context", "eval_ctx", "environment", "env"})


def _passed_but_unlisted(original: Callable[..., Any], signature: inspect.Signature) -> bool:
    """True when Jinja passes ``original`` a first argument its signature does not show.

    A filter with a sync and an async variant (``slice``, ``list``...) is called with the
    evaluation context first, while ``inspect.signature`` follows ``__wrapped__`` to the
    sync function, whose parameters start at the value.
    """
    if getattr(original, "jinja_pass_arg", None) is None:
        return False
    parameters = list(signature.parameters)
    return not parameters or parameters[0] not in _PASSED_FIRST


def _bounded_lipsum(original: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(original)
    def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        check_width(n, "lipsum's paragraph count")
        check_width(max, "lipsum's word count")
        return _built(original(n, html, min, max))

    return lipsum


@jinja2.pass_context  # a context filter is never run while compiling (constant folding)
def _count_steps(_context: Any, iterable: Any, text_per_turn: int = 0) -> Any:
    budget = _CURRENT.get()
    return iterable if budget is None else budget.iterate(iterable, text_per_turn)


@jinja2.pass_context
def _count_written(_context: Any, value: Any) -> Any:
    return _written(value)


@jinja2.pass_context
def _count_built(_context: Any, value: Any) -> Any:
    return _built(value)


class _CountingRewrite(NodeTransformer):
    """Makes each loop count its turns and the static text of a turn, each ``~`` its
    result and each ``{{ expression }}`` what it writes.

    Static text is counted per loop turn rather than as it is written: wrapping every
    piece of it in a call made a typical campaign render twice as slow, and outside a loop
    it is bounded by the template's own length. The text of a loop nested in another is
    counted for the outer loop's turns too: more than is written, never less.
    """

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        text_per_turn = sum(
            len(data.data) for child in node.body for data in child.find_all(nodes.TemplateData)
        )
        node.iter = _filtered(node.iter, STEP_FILTER, nodes.Const(text_per_turn))  # type: ignore[arg-type]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filtered(node, BUILD_FILTER)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            child if isinstance(child, nodes.TemplateData) else _filtered(child, WRITE_FILTER)
            for child in node.nodes
        ]
        return node


def _filtered(expression: nodes.Expr, filter_name: str, *arguments: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(
        expression, filter_name, list(arguments), [], None, None, lineno=expression.lineno
    )


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, under the limits of this module."""

    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters[STEP_FILTER] = _count_steps
        self.filters[WRITE_FILTER] = _count_written
        self.filters[BUILD_FILTER] = _count_built
        self.globals["lipsum"] = _bounded_lipsum(self.globals["lipsum"])  # type: ignore[arg-type]

    def compile_bounded(self, source: str) -> jinja2.Template:
        """``from_string``, with the syntax tree rewritten to count (see the module)."""
        tree = self.parse(source)
        tree = _CountingRewrite().visit(tree)
        tree.set_environment(self)
        return self.from_string(tree)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 1000:
            raise OverflowError("exponent too large for a template")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_REPEAT_LENGTH
                ):
                    raise OverflowError("repetition too long for a template")
        if operator == "%" and isinstance(left, str):
            check_percent_format(left, right)
        return _built(super().call_binop(context, operator, left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _step()
        # str.format comes wrapped by the sandbox; the method it wraps says whose it is.
        method = getattr(obj, "__wrapped__", obj)
        owner = getattr(method, "__self__", None)
        if isinstance(owner, str | bytes):
            check_string_method(owner, getattr(method, "__name__", ""), args, kwargs)
        return _built(super().call(context, obj, *args, **kwargs))
