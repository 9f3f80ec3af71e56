"""Campaign templates: subject, HTML and text bodies as sandboxed Jinja2 templates.

A typo such as ``{{ frist_name }}`` must stop a campaign in the preview, before anything is
queued, never leave an empty hole in 50,000 sent mails: undefined variables are errors
(``StrictUndefined``), and every failure becomes one ``TemplateError`` line naming the part,
the line and the problem. Templates are written by users and rendered with subscriber data,
so they run in Jinja2's immutable sandbox (no ``''.__class__`` walks, no mutating the context).
Only the HTML body is autoescaped: a subject or text body with ``&amp;`` in it would be wrong.
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import jinja2
from jinja2 import StrictUndefined

from desktop_app.core.campaigns.template_limits import (
    MAX_RENDERED_LENGTH,
    BoundedSandbox,
    TemplateLimitError,
    render_budget,
)
from desktop_app.core.errors import HeaderInjectionError, UserInputError
from desktop_app.core.validation import check_no_line_breaks, nul_position

# Names every template can use; a custom field with one of these names is reachable only
# as ``fields["name"]`` (the subscriber's own data must not shadow the unsubscribe link).
RESERVED_NAMES = ("email", "name", "fields", "unsubscribe_url")

_TEMPLATE_FILENAME = "<template>"  # what Jinja2 puts in traceback frames of from_string()


class TemplateError(UserInputError):
    """A template does not compile or does not render; the message is one line."""

    def __init__(self, part: str, line: int | None, problem: str) -> None:
        where = f"{part} template" if line is None else f"{part} template, line {line}"
        super().__init__(f"{where}: {_one_line(problem)}")
        self.part = part
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TemplateSet:
    """What the user wrote: a subject and at least one body, as Jinja2 sources."""

    subject: str
    html: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedContent:
    """One recipient's subject and bodies; ``text`` is generated from ``html`` when absent."""

    subject: str
    text: str
    html: str | None


def template_context(
    *,
    email: str,
    name: str | None = None,
    fields: Mapping[str, Any] | None = None,
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    """The variables a template sees: custom fields, then ``email``, ``name``, ``fields``
    and ``unsubscribe_url`` (which win over custom fields of the same name)."""
    custom = dict(fields or {})
    context: dict[str, Any] = {key: value for key, value in custom.items() if isinstance(key, str)}
    context.update(
        email=email,
        name=name or "",
        fields=custom,
        unsubscribe_url=unsubscribe_url or "",
    )
    return context


class CompiledTemplates:
    """A TemplateSet compiled once, rendered for many recipients."""

    def __init__(self, template_set: TemplateSet) -> None:
        if template_set.html is None and template_set.text is None:
            raise UserInputError("a campaign needs an HTML or a text body template")
        self.template_set = template_set
        self._subject = _compile(_PLAIN, "subject", template_set.subject)
        self._html = (
            None if template_set.html is None else _compile(_HTML, "HTML", template_set.html)
        )
        self._text = (
            None if template_set.text is None else _compile(_PLAIN, "text", template_set.text)
        )

    def render(self, context: Mapping[str, Any]) -> RenderedContent:
        """Render every part for one recipient, or raise ``TemplateError``.

        All parts share one budget (template_limits.py): the limits are per message.
        """
        with render_budget():
            return self._render_parts(context)

    def _render_parts(self, context: Mapping[str, Any]) -> RenderedContent:
        subject = _render("subject", self._subject, context).strip()
        try:
            check_no_line_breaks("subject", subject)
        except HeaderInjectionError:
            raise TemplateError(
                "subject", None, "the rendered subject contains a line break"
            ) from None
        html = None if self._html is None else _render("HTML", self._html, context)
        if self._text is not None:
            text = _render("text", self._text, context)
        else:
            assert html is not None
            text = html_to_text(html)
        return RenderedContent(subject=subject, text=text, html=html)


def compile_templates(template_set: TemplateSet) -> CompiledTemplates:
    """Compile (cached per distinct TemplateSet) or raise ``TemplateError``."""
    return _compile_cached(template_set)


def render(template_set: TemplateSet, context: Mapping[str, Any]) -> RenderedContent:
    """One recipient's content (see :func:`template_context` for ``context``)."""
    return compile_templates(template_set).render(context)


def check(template_set: TemplateSet, sample_context: Mapping[str, Any]) -> RenderedContent:
    """The preview check run before anything is queued: compile and render every part with
    a sample subscriber's context; a ``TemplateError`` here must block sending."""
    return render(template_set, sample_context)


# -- Jinja2 plumbing ----------------------------------------------------------------------

# Every render runs under the limits of template_limits.py (steps, time, widths, sizes).
_PLAIN = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_HTML = BoundedSandbox(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)


@functools.lru_cache(maxsize=32)
def _compile_cached(template_set: TemplateSet) -> CompiledTemplates:
    return CompiledTemplates(template_set)


def _compile(env: BoundedSandbox, part: str, source: str) -> jinja2.Template:
    nul = nul_position(source)
    if nul is not None:
        raise TemplateError(part, nul[0], f"contains a NUL character (column {nul[1]})")
    try:
        return env.compile_bounded(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(part, error.lineno, error.message or "syntax error") from None


def _render(part: str, template: jinja2.Template, context: Mapping[str, Any]) -> str:
    try:
        rendered = _generate(template, context)
    except (TemplateLimitError, jinja2.TemplateError) as error:
        raise TemplateError(part, _template_line(error), str(error)) from None
    except Exception as error:  # user code: 1/0, "a" + 1, int("x") ...
        problem = f"{type(error).__name__}: {error}"
        raise TemplateError(part, _template_line(error), problem) from None
    # NUL is illegal anywhere in a message (RFC 5322 section 2.3). A source holding one does
    # not compile, so it came from the data (a subscriber's field) or an escape such as
    # '\x00' in an expression: this recipient's message fails, with this as the reason.
    nul = nul_position(rendered)
    if nul is not None:
        raise TemplateError(
            part,
            None,
            f"the rendered {part} contains a NUL character (output line {nul[0]}, "
            f"column {nul[1]}), which mail cannot carry",
        )
    return rendered


def _generate(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """The rendered text, stopped as soon as it grows past ``MAX_RENDERED_LENGTH``
    (``render`` would first build it all)."""
    pieces: list[str] = []
    length = 0
    for piece in template.generate(context):
        length += len(piece)
        if length > MAX_RENDERED_LENGTH:
            raise TemplateLimitError(
                f"renders to more than {MAX_RENDERED_LENGTH:,} characters, the limit for one part"
            )
        pieces.append(piece)
    return "".join(pieces)


def _template_line(error: BaseException) -> int | None:
    """The template line Jinja2 wrote into the rewritten traceback, innermost first."""
    frames = traceback.extract_tb(error.__traceback__)
    for frame in reversed(frames):
        if frame.filename == _TEMPLATE_FILENAME:
            return frame.lineno
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


# -- HTML to text -------------------------------------------------------------------------

_BLOCKS = frozenset(
    {
        *("p", "div", "pre", "blockquote", "hr", "address", "form", "fieldset"),
        *("h1", "h2", "h3", "h4", "h5", "h6"),
        *("ul", "ol", "li", "dl", "dt", "dd", "table", "tr"),
        *("section", "article", "header", "footer", "main", "nav", "aside"),
        *("figure", "figcaption"),
    }
)
_LINES = frozenset({"li", "tr", "dt", "dd"})
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
_BLANK_LINES = re.compile(r"\n{3,}")


class _TextExtractor(HTMLParser):
    """Paragraphs and line breaks kept, links as ``text (url)``, scripts and styles dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._pending_newlines = 0  # asked for by block boundaries, written before more text
        self._skip_depth = 0
        self._pre_depth = 0
        self._links: list[tuple[str | None, int]] = []  # href, len(out) at <a>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip_depth += 1
            return
        if self._skip_depth:
            return
        if tag == "br":
            self._write("\n", force=True)
        elif tag in _BLOCKS:
            self._block_break(tag)
            if tag == "li":
                self._write("- ")
            elif tag == "pre":
                self._pre_depth += 1
        elif tag in ("td", "th"):
            self._write(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.out)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._write(alt)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        if tag in _BLOCKS:
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)
            self._block_break(tag)
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = " ".join("".join(self.out[start:]).split())
            target = (href or "").strip()
            if target and not target.startswith("#") and target != label:
                self._write(f" ({target})" if label else target)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._pre_depth:
            self._write(data, force=True)
        else:
            self._write(re.sub(r"\s+", " ", data))

    def _block_break(self, tag: str) -> None:
        # List items and table rows are lines; everything else block-level is a paragraph.
        wanted = 1 if tag in _LINES else 2
        self._pending_newlines = max(self._pending_newlines, wanted)

    def _write(self, text: str, *, force: bool = False) -> None:
        at_line_start = not self.out or self.out[-1].endswith("\n")
        if not force and (at_line_start or self._pending_newlines):
            text = text.lstrip(" ")
        if not text:
            return
        if self._pending_newlines and self.out:
            self._end_line()
            self.out.append("\n" * self._pending_newlines)
        self._pending_newlines = 0
        if text.startswith("\n"):
            self._end_line()
        self.out.append(text)

    def _end_line(self) -> None:
        if self.out:
            self.out[-1] = self.out[-1].rstrip(" ")

    def text(self) -> str:
        joined = _BLANK_LINES.sub("\n\n", "".join(self.out)).strip("\n")
        return "\n".join(line.rstrip() for line in joined.split("\n")) + "\n" if joined else ""


def html_to_text(html: str) -> str:
    """A readable plain-text alternative of an HTML body (stdlib parser, no network)."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()
