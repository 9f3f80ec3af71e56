"""Campaign templates: strict, sandboxed, escaped where HTML, one-line errors."""

from __future__ import annotations

import pytest

from desktop_app.core.campaigns.templates import (
    TemplateError,
    TemplateSet,
    check,
    compile_templates,
    html_to_text,
    render,
    template_context,
)
from desktop_app.core.errors import UserInputError

CONTEXT = template_context(
    email="ann@example.net",
    name="Ann <b>&</b>",
    fields={"city": "Oslo", "plan": "pro"},
    unsubscribe_url="https://example.com/u?t=1",
)


def _error(template_set: TemplateSet) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        check(template_set, CONTEXT)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    return caught.value


def test_context_variables_render_in_every_part() -> None:
    content = render(
        TemplateSet(
            subject="Hi {{ name }} in {{ city }}",
            html="<p>{{ email }} {{ fields.plan }} <a href='{{ unsubscribe_url }}'>x</a></p>",
            text="{{ name }} / {{ plan }}\n",
        ),
        CONTEXT,
    )
    assert content.subject == "Hi Ann <b>&</b> in Oslo"
    assert content.text == "Ann <b>&</b> / pro\n"
    assert content.html == ("<p>ann@example.net pro <a href='https://example.com/u?t=1'>x</a></p>")


def test_autoescape_applies_to_html_only() -> None:
    content = render(
        TemplateSet(subject="{{ name }}", html="<p>{{ name }}</p>", text="{{ name }}"), CONTEXT
    )
    assert content.html == "<p>Ann &lt;b&gt;&amp;&lt;/b&gt;</p>"
    assert content.subject == "Ann <b>&</b>"
    assert content.text == "Ann <b>&</b>"


def test_reserved_names_win_over_custom_fields() -> None:
    context = template_context(email="a@example.net", fields={"unsubscribe_url": "evil"})
    assert context["unsubscribe_url"] == ""
    assert context["fields"]["unsubscribe_url"] == "evil"


@pytest.mark.parametrize("part", ["subject", "html", "text"])
def test_undefined_variable_names_part_line_and_variable(part: str) -> None:
    sources = {"subject": "Hello", "html": "<p>x</p>", "text": "x"}
    sources[part] = "first line\nDear {{ frist_name }},"
    if part == "subject":
        sources[part] = "Dear {{ frist_name }}"
    error = _error(TemplateSet(**sources))
    label = {"subject": "subject", "html": "HTML", "text": "text"}[part]
    line = 1 if part == "subject" else 2
    assert str(error) == f"{label} template, line {line}: 'frist_name' is undefined"


def test_undefined_attribute_is_an_error_not_an_empty_hole() -> None:
    error = _error(TemplateSet(subject="x", text="{{ fields.nope }}"))
    assert error.part == "text"
    assert "nope" in str(error)


def test_syntax_error_is_reported_with_its_line() -> None:
    error = _error(TemplateSet(subject="x", html="<p>\n{% if name %}\n</p>"))
    # Jinja2 reports the line of the block left open.
    assert error.part == "HTML" and error.line == 2
    assert str(error).startswith("HTML template, line 2: Unexpected end of template")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ name.__class__.__init__.__globals__ }}",
        "{{ fields.update({'x': 1}) }}",  # the immutable sandbox: no mutating the context
    ],
)
def test_sandbox_blocks_unsafe_attribute_access(source: str) -> None:
    error = _error(TemplateSet(subject="x", text=source))
    assert "unsafe" in str(error) or "not safely callable" in str(error)


def test_runtime_errors_in_user_templates_are_one_line_errors() -> None:
    error = _error(TemplateSet(subject="x", text="a\n{{ 1 / 0 }}"))
    assert str(error) == "text template, line 2: ZeroDivisionError: division by zero"


@pytest.mark.parametrize("value", ["Hello\r\nBcc: victim@example.org", "a\nb", "a\u2028b"])
def test_rendered_subject_with_a_line_break_is_an_error(value: str) -> None:
    context = template_context(email="a@example.net", name=value)
    with pytest.raises(TemplateError, match=r"^subject template: .*line break"):
        render(TemplateSet(subject="Hi {{ name }}", text="x"), context)


def test_text_body_is_generated_from_html_when_missing() -> None:
    content = render(TemplateSet(subject="x", html="<p>Hi {{ name }}</p><p>bye</p>"), CONTEXT)
    assert content.text == "Hi Ann <b>&</b>\n\nbye\n"


def test_a_body_is_required() -> None:
    with pytest.raises(UserInputError, match="needs an HTML or a text body"):
        compile_templates(TemplateSet(subject="x"))


def test_html_to_text() -> None:
    html = (
        "<html><head><title>Title</title><style>p { color: red }</style></head><body>"
        "<h1>News &amp; notes</h1>"
        "<p>First   paragraph\nwrapped, with <a href='https://example.com/a'>a link</a>.<br>"
        "Next line</p>"
        "<script>alert('no')</script>"
        "<ul><li>one</li><li>two</li></ul>"
        "<p><a href='https://example.com/same'>https://example.com/same</a> "
        "<a href='#top'>top</a> <img src='x.png' alt='logo'></p>"
        "<pre>  keep\n    indent</pre>"
        "</body></html>"
    )
    assert html_to_text(html) == (
        "News & notes\n\n"
        "First paragraph wrapped, with a link (https://example.com/a).\n"
        "Next line\n\n"
        "- one\n"
        "- two\n\n"
        "https://example.com/same top logo\n\n"
        "  keep\n"
        "    indent\n"
    )


def test_html_to_text_of_nothing_is_empty() -> None:
    assert html_to_text("<script>x</script><style>y</style>") == ""


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ 10**9 * 'x' }}",
        "{{ [1] * 10**8 }}",
        "{{ 2 ** 100000000 }}",  # Jinja's ** is left-associative: no 10**9 here
    ],
)
def test_a_template_cannot_exhaust_memory_or_cpu(source: str) -> None:
    with pytest.raises(TemplateError, match="too l"):
        render(TemplateSet(subject="s", text=source), CONTEXT)


def test_ordinary_repetition_still_works() -> None:
    rendered = render(TemplateSet(subject="s", text="{{ '-' * 20 }}"), CONTEXT)
    assert rendered.text.strip() == "-" * 20


# -- NUL (issue 14, item 5): RFC 5322 allows it nowhere in a message ------------------------


@pytest.mark.parametrize(
    ("template_set", "message"),
    [
        (
            TemplateSet(subject="x", text="Hi\nthere\x00"),
            "text template, line 2: contains a NUL character (column 6)",
        ),
        (
            TemplateSet(subject="x", html="<p>\x00</p>"),
            "HTML template, line 1: contains a NUL character (column 4)",
        ),
        (
            TemplateSet(subject="a\x00", text="x"),
            "subject template, line 1: contains a NUL character (column 2)",
        ),
    ],
)
def test_a_template_with_a_nul_does_not_compile(template_set: TemplateSet, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_templates(template_set)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("template_set", "part"),
    [
        (TemplateSet(subject="x", text="Your plan: {{ plan }}"), "text"),
        (TemplateSet(subject="x", html="<p>Your plan: {{ plan }}</p>"), "HTML"),
        (TemplateSet(subject="Your plan: {{ plan }}", text="x"), "subject"),
        (TemplateSet(subject="x", text="{{ '\\x00' }}"), "text"),  # an escape in an expression
    ],
)
def test_a_nul_rendered_from_the_data_is_an_error_naming_the_part(
    template_set: TemplateSet, part: str
) -> None:
    context = template_context(email="ann@example.net", fields={"plan": "pro\x00"})
    with pytest.raises(TemplateError) as caught:
        render(template_set, context)
    assert str(caught.value).startswith(
        f"{part} template: the rendered {part} contains a NUL character (output line 1, column"
    )
    assert "\n" not in str(caught.value)
