"""The import wizard's first look at a file: encoding, delimiter, header, rows, mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.core.campaigns.csv_import import ColumnMapping
from desktop_app.core.campaigns.csv_preview import (
    delimiter_name,
    preview_csv,
    read_csv_file,
)
from desktop_app.core.errors import UserInputError


def test_header_rows_and_line_numbers_skip_blank_lines() -> None:
    data = b"email;name\n\nann@example.com;Ann\n\n\nbob@example.com;Bob\n"
    preview = preview_csv(data)
    assert preview.delimiter == ";"
    assert preview.encoding == "utf-8"
    assert preview.header == ("email", "name")
    assert preview.rows == (("ann@example.com", "Ann"), ("bob@example.com", "Bob"))
    assert preview.lines == (3, 6)
    assert preview.suggested == ColumnMapping(email="email", name="name", status=None)


def test_only_the_first_rows_are_kept() -> None:
    data = ("email\n" + "".join(f"r{n}@example.com\n" for n in range(100))).encode()
    preview = preview_csv(data, max_rows=20)
    assert len(preview.rows) == 20
    assert preview.rows[-1] == ("r19@example.com",)
    assert preview.lines[0] == 2


def test_quoted_line_breaks_count_as_one_row_with_the_right_next_line() -> None:
    data = b'email,note\nann@example.com,"two\nlines"\nbob@example.com,x\n'
    preview = preview_csv(data)
    assert preview.rows[0] == ("ann@example.com", "two\nlines")
    assert preview.lines == (2, 4)


def test_a_non_standard_header_has_no_suggestion_but_a_reason() -> None:
    preview = preview_csv("Kontakt,Wer\nann@example.com,Ann\n".encode("cp1252"))
    assert preview.suggested is None
    assert "no email column" in preview.problem
    assert preview.header == ("Kontakt", "Wer")


def test_the_encoding_is_decided_by_the_whole_file() -> None:
    # A cp1252 byte far below the preview rows still decides how names read.
    rows = "".join(f"r{n}@example.com,R{n}\n" for n in range(50))
    data = ("email,name\n" + rows + "zoe@example.com,Zoë\n").encode("cp1252")
    assert preview_csv(data).encoding == "cp1252"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text"),
        (b"email\n\x01\x02\x03garbage\n", "control character"),
        (b"   \n\n", "empty"),
        (b"email\n", "no rows below"),
        (b'email,name\nann@example.com,"unclosed\n', "line 2: broken CSV"),
        (b"email,email\nann@example.com,b@example.com\n", "appears twice"),
    ],
    ids=["binary", "control", "empty", "header-only", "broken-quote", "duplicate-column"],
)
def test_unusable_files_are_refused_with_one_message(data: bytes, message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        preview_csv(data)


def test_read_csv_file_refuses_a_large_or_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(b"email\nann@example.com\n")
    assert read_csv_file(path, max_bytes=1024) == b"email\nann@example.com\n"
    with pytest.raises(UserInputError, match="larger than"):
        read_csv_file(path, max_bytes=4)
    with pytest.raises(UserInputError, match="cannot read"):
        read_csv_file(tmp_path / "missing.csv", max_bytes=1024)


def test_delimiter_names() -> None:
    assert [delimiter_name(d) for d in ",;\t"] == ["comma", "semicolon", "tab"]
