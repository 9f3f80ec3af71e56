"""Cells escaped against spreadsheet formulas (CSV injection), and unescaped by the import."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from desktop_app.core.csv_cells import FORMULA_STARTS, escape_cell, safe_row, unescape_cell

TEXT = st.one_of(st.text(st.sampled_from([*"=+-@\t\r' \"xé,"]), max_size=8), st.text(max_size=20))


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("-2+3", "'-2+3"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("=", "'="),
        ("'=x", "''=x"),  # so the import's one apostrophe off gives "'=x" back
        ("''@x", "'''@x"),
        ("Ann", "Ann"),
        ("", ""),
        ("'", "'"),
        ("'quoted'", "'quoted'"),
        (" =x", " =x"),
        ("x=1", "x=1"),
        ("ann@example.com", "ann@example.com"),
    ],
)
def test_escape_and_unescape(text: str, escaped: str) -> None:
    assert escape_cell(text) == escaped
    assert unescape_cell(escaped) == text


@pytest.mark.parametrize("text", ["'x", "'", "''", "'Ann'", "x'=1"])
def test_unescape_leaves_apostrophes_it_did_not_add(text: str) -> None:
    assert unescape_cell(text) == text


def test_safe_row_escapes_text_only_and_raw_writes_verbatim() -> None:
    row = ["=1+1", -5, -0.3, None, "ok"]
    assert safe_row(row) == ["'=1+1", -5, -0.3, None, "ok"]
    assert safe_row(row, raw=True) == row


@settings(max_examples=500)
@given(TEXT)
@example("'")
@example("''=")
def test_escape_round_trips_and_never_starts_a_formula(text: str) -> None:
    escaped = escape_cell(text)
    assert unescape_cell(escaped) == text
    assert not escaped.startswith(FORMULA_STARTS)
