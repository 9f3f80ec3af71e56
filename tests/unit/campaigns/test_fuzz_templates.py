"""Fuzzing campaign templates, where a stranger's text becomes code that runs on this machine.

Templates are generated from the pieces people (and attackers) write: fields, filters,
format specs with any width, loops with any count, nested, macros calling themselves,
concatenation and repetition. The contract, through the public entry points
(``compile_templates`` and ``render``):

- a template either compiles or is refused in one line (``TemplateError``) naming its part;
- a compiled template either renders, each part within the documented size, or is refused
  in one line naming the part and, for a limit, the limit (template_limits.py);
- no other exception escapes, whatever the template or the subscriber's data;
- rendering is a function of template and data: the same twice gives the same result.

Bounded examples (``SETTINGS``): these run in the normal suite.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from desktop_app.core.campaigns import template_limits
from desktop_app.core.campaigns.templates import (
    RenderedContent,
    TemplateError,
    TemplateSet,
    compile_templates,
    render,
    template_context,
)

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Numbers where the limits are: small, around each limit, and far past it.
NUMBER = st.one_of(
    st.integers(min_value=-3, max_value=12),
    st.sampled_from([999, 10_000, 10_001, 100_000, 1_000_000, 5_000_001, 999_999_999]),
)
FIELD = st.sampled_from(["name", "email", "city", "fields.city", "fields['city']", "missing"])
LITERAL = st.one_of(
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="'\\"), max_size=8
    ).map(lambda t: f"'{t}'"),
    NUMBER.map(str),
    st.sampled_from(["[1, 2]", "{'a': 1}", "none", "true", "1.5"]),
)


def _expression(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(FIELD, LITERAL)
    if depth <= 0:
        return leaf
    inner = _expression(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(inner, st.sampled_from(["~", "+", "*", "%", "-"]), inner).map(" ".join),
        st.tuples(inner, NUMBER).map(lambda p: f"{p[0]} * {p[1]}"),
        st.tuples(NUMBER, inner).map(lambda p: f"'%{p[0]}s' % {p[1]}"),
        st.tuples(NUMBER, inner).map(lambda p: f"'%{p[0]}s'|format({p[1]})"),
        st.tuples(NUMBER, inner).map(lambda p: f"'{{:>{p[0]}}}'.format({p[1]})"),
        st.tuples(inner, st.sampled_from(["center", "indent", "truncate", "wordwrap"]), NUMBER)
        .map(lambda p: f"({p[0]})|string|{p[1]}({p[2]})"),
        st.tuples(inner, st.sampled_from(["upper", "length", "list", "tojson", "e", "trim"]))
        .map(lambda p: f"({p[0]})|{p[1]}"),
        st.tuples(NUMBER, NUMBER).map(lambda p: f"range({p[0]})|batch({p[1]}, 'x')|list"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]})|string|replace('a', {p[1]})"),
        st.tuples(inner, NUMBER).map(lambda p: f"[{p[0]}] * {p[1]}"),
        st.tuples(inner).map(lambda p: f"({p[0]}).upper()"),
        st.tuples(NUMBER).map(lambda p: f"lipsum({p[0]})"),
    )  # fmt: skip


def _body(depth: int) -> st.SearchStrategy[str]:
    output = _expression(2).map(lambda e: "{{ " + e + " }}")
    text = st.sampled_from(["Hello ", "<p>", "\n", "é", "{#c#}", "{{", "{%", "}}", "%}"])
    if depth <= 0:
        return st.lists(st.one_of(output, text), max_size=4).map("".join)
    inner = _body(depth - 1)
    loop = st.tuples(NUMBER, inner).map(
        lambda p: "{% for i in range(" + str(p[0]) + ") %}" + p[1] + "{% endfor %}"
    )
    condition = st.tuples(_expression(1), inner).map(
        lambda p: "{% if " + p[0] + " %}" + p[1] + "{% endif %}"
    )
    assign = st.tuples(_expression(1), inner).map(
        lambda p: "{% set v = " + p[0] + " %}" + p[1] + "{{ v }}"
    )
    capture = inner.map(lambda b: "{% set c %}" + b + "{% endset %}{{ c ~ c }}")
    macro = st.tuples(NUMBER, st.sampled_from(["", "{{ f(n - 1) }}{{ f(n - 1) }}"])).map(
        lambda p: (
            "{% macro f(n) %}{% if n > 0 %}x" + p[1] + "{% endif %}{% endmacro %}"
            "{{ f(" + str(p[0]) + ") }}"
        )
    )
    return st.lists(
        st.one_of(output, text, loop, condition, assign, capture, macro), max_size=4
    ).map("".join)


TEMPLATE = _body(2)
SUBSCRIBER_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["{{ 7 * 7 }}", "{% for %}", "%999999999s", "\x00", "Ann\r\nBcc: x"]),
)


@pytest.fixture(autouse=True)
def quick_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same code, smaller numbers: a hostile example stops in milliseconds, not seconds,
    # so many examples fit in the normal suite. The limits' own values are tested in
    # test_template_limits.py.
    monkeypatch.setattr(template_limits, "MAX_STEPS", 20_000)
    monkeypatch.setattr(template_limits, "MAX_BUILT", 2_000_000)
    monkeypatch.setattr(template_limits, "TIME_LIMIT", 1.0)


def _one_line(error: TemplateError, part: str) -> str:
    message = str(error)
    assert "\n" not in message and "\r" not in message, repr(message)
    assert message.startswith(f"{part} template"), message
    return message


def _outcome(template_set: TemplateSet, context: dict[str, object]) -> RenderedContent | str:
    """What rendering gives: the content, or the refusal's one line."""
    try:
        return render(template_set, context)
    except TemplateError as error:
        message = str(error)
        assert "\n" not in message and "\r" not in message, repr(message)
        return message


@SETTINGS
@given(
    source=TEMPLATE,
    part=st.sampled_from(["text", "html"]),
    name=SUBSCRIBER_TEXT,
    city=SUBSCRIBER_TEXT,
)
@example(
    source="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    part="text",
    name="",
    city="",
)
@example(source="{{ '%999999999s'|format('x') }}", part="html", name="", city="")
@example(source="{{ name }} {{ city }}", part="text", name="{{ 7 * 7 }}", city="\x00")
def test_a_template_renders_or_is_refused_in_one_line(
    source: str, part: str, name: str, city: str
) -> None:
    template_set = (
        TemplateSet(subject="s", text=source)
        if part == "text"
        else TemplateSet(subject="s", html=source)
    )
    label = "HTML" if part == "html" else "text"
    try:
        compile_templates(template_set)
    except TemplateError as error:
        _one_line(error, label)
        return
    context = template_context(email="ann@example.net", name=name, fields={"city": city})
    first = _outcome(template_set, context)
    if isinstance(first, str):
        assert first.startswith(f"{label} template"), first
    else:
        for rendered in (first.subject, first.text, first.html):
            assert rendered is None or len(rendered) <= template_limits.MAX_RENDERED_LENGTH
            assert rendered is None or "\x00" not in rendered
        if name == "{{ 7 * 7 }}":  # data is data: a subscriber's text is never run
            assert "49" not in (first.html or first.text)
    again = _outcome(template_set, context)
    # lipsum() is random and the clock is the clock; everything else renders the same.
    if "lipsum" not in source and not any(
        isinstance(outcome, str) and "took longer than" in outcome for outcome in (first, again)
    ):
        same = again == first  # not in the assert: pytest would diff megabytes of text
        assert same, "the same template and data rendered differently"


@SETTINGS
@given(subject=TEMPLATE)
def test_a_subject_template_renders_to_one_line_or_is_refused(subject: str) -> None:
    template_set = TemplateSet(subject=subject, text="x")
    try:
        content = render(template_set, template_context(email="ann@example.net", name="Ann"))
    except TemplateError as error:
        _one_line(error, "subject")
        return
    assert "\n" not in content.subject and "\r" not in content.subject
