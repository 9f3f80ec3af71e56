"""Limits on what rendering one message may cost (issue 14, item 1).

Each hostile template here took seconds to minutes and gigabytes of memory, or ran for as
long as it was let, before these limits; now each is one ``TemplateError`` line naming the
limit. Memory is measured with tracemalloc (what Python allocated), never wall-clock time.
"""

from __future__ import annotations

import tracemalloc

import pytest

from desktop_app.core.campaigns import template_limits
from desktop_app.core.campaigns.templates import (
    TemplateError,
    TemplateSet,
    compile_templates,
    render,
    template_context,
)

CONTEXT = template_context(email="ann@example.net", name="Ann", fields={"city": "Oslo"})
#: Far below what any of these asked for before the limits (1 GB and more).
MEMORY_CEILING = 150 * 1024 * 1024

WIDTH = "more than the 10,000 a template may use"
VALUE = "more than the 5,000,000 one value may hold"
IN_ALL = "builds more than 50,000,000 characters in all"
STEPS = "stopped after 1,000,000 steps (loop turns and calls), the limit for one message"
#: A million macro calls can take longer than the clock allows on a slow machine: either
#: limit stopping it is right.
STEPS_OR_TIME = (STEPS, "took longer than 2 seconds, the limit for one message")

HOSTILE = [
    # The two reproductions of the issue.
    ("{{ '%999999999s'|format('x') }}", WIDTH),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", STEPS),
    # The same width by every other road to it.
    ("{{ '%*s' % (999999999, 'x') }}", WIDTH),
    ("{{ '%.999999999f' % 1.5 }}", WIDTH),
    ("{{ '{:999999999}'.format('x') }}", WIDTH),
    ("{{ '{:{w}}'.format('x', w=999999999) }}", WIDTH),
    ("{{ '{x:>999999999}'.format_map({'x': 1}) }}", WIDTH),
    ("{{ '%s' ~ ('%' ~ '9' * 5000 ~ 's') % 'x' }}", "5,000-digit number"),
    ("{{ 'x'|center(999999999) }}", WIDTH),
    ("{{ 'x'|indent(999999999) }}", WIDTH),
    ("{{ 'x'.ljust(999999999) }}", WIDTH),
    ("{{ 'x'.zfill(999999999) }}", WIDTH),
    ("{{ range(10)|batch(999999999, 'x')|list }}", WIDTH),
    ("{{ range(10)|slice(999999999, 'x')|list }}", WIDTH),
    ("{{ {'a': 1}|tojson(indent=999999999) }}", WIDTH),
    ("{{ lipsum(1000000) }}", WIDTH),
    # One call that multiplies its input.
    ("{{ ('x' * 1000000).replace('x', 'xxxxxxxxxx') }}", VALUE),
    ("{{ ('x' * 1000000)|replace('x', 'xxxxxxxxxx') }}", VALUE),
    ("{{ ('\t' * 1000000).expandtabs(100) }}", VALUE),
    ("{{ ('x' * 1000000).join(['a'] * 100) }}", VALUE),
    # Values doubled, or kept, turn after turn.
    ("{% set a = 'x' * 1000000 %}{% set b = a ~ a ~ a %}{{ (b ~ b)|length }}", VALUE),
    ("{% set a = 'x' * 1000000 %}{% set b = a + a + a %}{{ (b + b)|length }}", VALUE),
    (
        "{% set ns = namespace(kept=[]) %}{% for i in range(100000) %}"
        "{% set ns.kept = ns.kept + [('x' * 1000000) ~ i] %}{% endfor %}{{ ns.kept|length }}",
        IN_ALL,
    ),
    # Output captured, not written: static text and expressions alike.
    (
        "{% set x %}{% for i in range(100000) %}" + "y" * 10000 + "{% endfor %}{% endset %}"
        "{{ x|length }}",
        IN_ALL,
    ),
    (
        "{% set big = 'y' * 1000000 %}{% set x %}{% for i in range(100000) %}{{ big }}"
        "{% endfor %}{% endset %}{{ x|length }}",
        IN_ALL,
    ),
    # Calls that fan out without a single loop.
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(40) }}",
        STEPS_OR_TIME,
    ),
    # The rendered part itself.
    ("{% for i in range(10) %}{{ 'x' * 1000000 }}{% endfor %}", "renders to more than 5,000,000"),
]


@pytest.mark.parametrize(("source", "limit"), HOSTILE)
def test_a_hostile_template_is_one_line_naming_the_limit(
    source: str, limit: str | tuple[str, ...]
) -> None:
    compile_templates(TemplateSet(subject="s", text=source))  # compiling costs nothing
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError) as caught:
            render(TemplateSet(subject="s", text=source), CONTEXT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    # The part always; the line too unless it is the whole part's output that is too long.
    assert message.startswith("text template")
    assert any(wanted in message for wanted in ((limit,) if isinstance(limit, str) else limit))
    assert "\n" not in message
    assert peak < MEMORY_CEILING, f"{peak:,} bytes allocated"


@pytest.mark.parametrize("part", ["subject", "html", "text"])
def test_every_part_is_under_the_limits(part: str) -> None:
    sources = {"subject": "s", "html": "<p>x</p>", "text": "x"}
    sources[part] = "{{ 'x'|center(999999999) }}"
    with pytest.raises(TemplateError, match=WIDTH):
        render(TemplateSet(**sources), CONTEXT)


def test_the_limits_are_per_message_not_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each message has its steps of its own: three messages of 60% of the limit all render,
    # while one message of twice that is stopped. A small limit keeps the test quick.
    monkeypatch.setattr(template_limits, "MAX_STEPS", 10_000)
    loop = "{% for i in range(60) %}{% for j in range(100) %}{% endfor %}{% endfor %}"
    for _ in range(3):
        assert render(TemplateSet(subject="s", text=loop + "ok"), CONTEXT).text == "ok"
    with pytest.raises(TemplateError, match="stopped after 10,000 steps"):
        render(TemplateSet(subject="s", text=loop + loop + "ok"), CONTEXT)


def test_the_time_limit_stops_a_slow_template(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each call here is slow (a 1,000,000-character string searched) and builds nothing, so
    # the step and size limits are far away; the clock is what stops it. A short limit keeps
    # the test quick.
    monkeypatch.setattr(template_limits, "TIME_LIMIT", 0.05)
    source = "{% set a = 'x' * 1000000 %}{% for i in range(100000) %}{{ a.count('y') }}{% endfor %}"
    with pytest.raises(TemplateError, match=r"took longer than 0\.05 seconds, the limit"):
        render(TemplateSet(subject="s", text=source), CONTEXT)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '%05d'|format(42) }} {{ '%-6s|' % 'ab' }}", "00042 ab    |"),
        ("{{ '%.2f' % 3.14159 }}", "3.14"),
        ("{{ '{:>6}'.format('ab') }}|{{ '{:{w}}'.format('ab', w=4) }}|", "    ab|ab  |"),
        ("{{ 'ab'|center(6) }}|{{ 'a\nb'|indent(2) }}", "  ab  |a\n  b"),
        ("{{ range(5)|batch(2, 0)|list }}", "[[0, 1], [2, 3], [4, 0]]"),
        ("{{ ', '.join(['a', 'b']) }} {{ ['a', 'b']|join('-') }}", "a, b a-b"),
        ("{{ 'aa'|replace('a', 'bc') }} {{ range(5)|slice(2)|list }}", "bcbc [[0, 1, 2], [3, 4]]"),
        ("{{ 1 + 2 }} {{ 7 % 3 }} {{ [1] + [2] }}", "3 1 [1, 2]"),
        ("{{ '=' * 40 }}", "=" * 40),
    ],
)  # fmt: skip
def test_ordinary_templates_render_as_before(source: str, expected: str) -> None:
    assert render(TemplateSet(subject="s", text=source), CONTEXT).text == expected


def test_a_large_ordinary_newsletter_is_well_inside_the_limits() -> None:
    # 2,000 rows, each with a few filters and a format: a big real newsletter.
    rows = [{"title": f"Item {i}", "price": i * 1.25} for i in range(2000)]
    source = (
        "{% for row in rows %}<tr><td>{{ loop.index }}</td><td>{{ row.title|upper }}</td>"
        "<td>{{ '%.2f'|format(row.price) }}</td></tr>{% endfor %}"
    )
    context = {**CONTEXT, "rows": rows}
    html = render(TemplateSet(subject="s", html=source), context).html
    assert html is not None and html.count("<tr>") == 2000
    assert "<td>ITEM 1999</td><td>2498.75</td>" in html
