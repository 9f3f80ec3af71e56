"""Cells written to CSV files a spreadsheet may open: no planted formulas (CSV injection).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some a tab or
a carriage return) as a formula, so a subscriber named ``=HYPERLINK("http://x")`` in an
export is a link, and ``+cmd|' /C calc'!A0`` may run a program. The OWASP rule: such a
cell gets a leading apostrophe, which spreadsheets show as "text, not a formula".

The apostrophe is also added to a cell that already starts with apostrophes followed by
one of those characters (``'=x`` becomes ``''=x``), so ``unescape_cell`` (used by the CSV
import) can take exactly one off and every text comes back as it was: an export imports
back unchanged. Only text is escaped; numbers the app writes (``int``, ``float``) are left
as they are, so ``-5`` in a numeric column stays a number.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The first characters a spreadsheet may read as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_QUOTE = "'"


def _needs_escape(text: str) -> bool:
    return text.lstrip(_QUOTE).startswith(FORMULA_STARTS)


def escape_cell(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return _QUOTE + text if _needs_escape(text) else text


def unescape_cell(text: str) -> str:
    """The inverse of ``escape_cell``: one leading ``'`` off a cell ``escape_cell`` made."""
    if text.startswith(_QUOTE) and _needs_escape(text[1:]):
        return text[1:]
    return text


def safe_row(cells: Iterable[object], *, raw: bool = False) -> list[object]:
    """A CSV row with every text cell escaped (numbers and None as they are); ``raw``
    writes the text verbatim."""
    if raw:
        return list(cells)
    return [escape_cell(cell) if isinstance(cell, str) else cell for cell in cells]
