"""CSV import parsing: encodings, delimiters, header mapping, duplicates, rejects, bad files."""

from __future__ import annotations

import codecs

import pytest

from desktop_app.core.campaigns.csv_import import (
    MAX_LINE_CHARS,
    ColumnMapping,
    decode_text,
    parse_subscribers,
    sniff_delimiter,
)
from desktop_app.core.errors import UserInputError

ROWS = "email,name,city\nzoe@example.com,Zoë Müller,Zürich\nbob@example.org,Bob,Paris\n"


def emails(data: bytes, **kwargs: object) -> list[str]:
    return [s.email for s in parse_subscribers(data, **kwargs).subscribers]  # type: ignore[arg-type]


# -- encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (ROWS.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + ROWS.encode("utf-8"), "utf-8-sig"),
        (ROWS.encode("utf-16"), "utf-16"),  # BOM + native order
        (codecs.BOM_UTF16_BE + ROWS.encode("utf-16-be"), "utf-16"),
        (ROWS.encode("cp1252"), "cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16", "utf16-be", "cp1252"],
)
def test_encodings_are_detected_and_names_survive(data: bytes, encoding: str) -> None:
    parsed = parse_subscribers(data)

    assert parsed.encoding == encoding
    assert [(s.email, s.name, s.fields) for s in parsed.subscribers] == [
        ("zoe@example.com", "Zoë Müller", {"city": "Zürich"}),
        ("bob@example.org", "Bob", {"city": "Paris"}),
    ]


def test_the_bom_is_not_part_of_the_first_header() -> None:
    parsed = parse_subscribers(codecs.BOM_UTF8 + b"Email;Name\na@example.com;A\n")
    assert parsed.mapping.email == "Email"


def test_bytes_that_are_neither_utf8_nor_cp1252_fall_back_to_latin1() -> None:
    # 0x81 is undefined in cp1252.
    text, encoding = decode_text(b"email,name\na@example.com,\x81\xe9\n")
    assert encoding == "latin-1"
    assert text.endswith("\x81\xe9\n")


def test_a_bom_followed_by_garbage_is_an_error() -> None:
    with pytest.raises(UserInputError, match="utf-8"):
        parse_subscribers(codecs.BOM_UTF8 + b"email\n\xff\xfe\xfa@example.com\n")


# -- delimiters --------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters_are_sniffed(delimiter: str) -> None:
    text = ROWS.replace(",", delimiter)
    parsed = parse_subscribers(text.encode())
    assert parsed.delimiter == delimiter
    assert [s.fields for s in parsed.subscribers] == [{"city": "Zürich"}, {"city": "Paris"}]


def test_the_header_line_decides_when_the_sniffer_is_fooled() -> None:
    # Quoted cells with commas and a stray semicolon: semicolon must not win.
    text = 'email,name\n"a@example.com","Smith; John"\nb@example.com,"Doe, Jane"\n'
    assert sniff_delimiter(text) == ","
    parsed = parse_subscribers(text.encode())
    assert [s.name for s in parsed.subscribers] == ["Smith; John", "Doe, Jane"]


def test_crlf_and_quoted_newlines() -> None:
    data = b'email,note\r\na@example.com,"two\r\nlines"\r\nb@example.com,x\r\n'
    parsed = parse_subscribers(data)
    assert [(s.line, s.fields["note"]) for s in parsed.subscribers] == [
        (2, "two\r\nlines"),
        (4, "x"),
    ]


# -- header mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header", ["email", "E-Mail", "EMAIL ADDRESS", "email_address", "Mail", "Address"]
)
def test_email_column_by_common_names(header: str) -> None:
    parsed = parse_subscribers(f"First Name,{header}\nAnn,ann@example.com\n".encode())
    assert parsed.mapping.email == header
    assert parsed.subscribers[0].fields == {"First Name": "Ann"}


def test_name_and_status_columns_and_custom_fields() -> None:
    data = (
        b"Full Name,Email,Status,plan\nAnn,ann@example.com,Unsubscribed,pro\nBo,bo@example.com,,\n"
    )
    parsed = parse_subscribers(data)
    assert parsed.mapping == ColumnMapping(email="Email", name="Full Name", status="Status")
    assert [(s.name, s.status, s.fields) for s in parsed.subscribers] == [
        ("Ann", "unsubscribed", {"plan": "pro"}),
        ("Bo", "active", {"plan": ""}),
    ]
    assert parsed.field_names == ("plan",)


def test_explicit_mapping_picks_columns_and_renames_fields() -> None:
    data = b"who,contact,town,ignored\nAnn,ann@example.com,Oslo,x\n"
    mapping = ColumnMapping(email="contact", name="who", fields={"town": "city"})
    parsed = parse_subscribers(data, mapping=mapping)
    assert [(s.email, s.name, s.fields) for s in parsed.subscribers] == [
        ("ann@example.com", "Ann", {"city": "Oslo"})
    ]


def test_explicit_mapping_to_a_missing_column_is_an_error() -> None:
    with pytest.raises(UserInputError, match="no column named 'mail'"):
        parse_subscribers(b"email,name\na@example.com,A\n", mapping=ColumnMapping(email="mail"))


def test_a_single_email_column_is_a_fine_list() -> None:
    assert emails(b"Email\na@example.com\nb@example.com\n") == ["a@example.com", "b@example.com"]


# -- addresses, duplicates, rejects ------------------------------------------------------


def test_addresses_are_normalized_and_keys_lower_cased() -> None:
    parsed = parse_subscribers(b"email\n  Ann.Lee@EXAMPLE.Com \n")
    (subscriber,) = parsed.subscribers
    assert subscriber.email == "Ann.Lee@example.com"
    assert subscriber.email_key == "ann.lee@example.com"


def test_duplicates_within_the_file_keep_the_first_row() -> None:
    data = b"email,name\nann@example.com,First\nANN@example.com,Second\nann@EXAMPLE.com,Third\n"
    parsed = parse_subscribers(data)
    assert [(s.line, s.name) for s in parsed.subscribers] == [(2, "First")]
    assert [(d.line, d.reason) for d in parsed.duplicates] == [
        (3, "same address as line 2"),
        (4, "same address as line 2"),
    ]
    assert parsed.rejects == ()


def test_duplicates_against_the_list() -> None:
    parsed = parse_subscribers(
        b"email\nold@example.com\nnew@example.com\n", existing_keys={"old@example.com"}
    )
    assert emails(b"email\nnew@example.com\n") == [s.email for s in parsed.subscribers]
    assert [(d.line, d.value, d.reason) for d in parsed.duplicates] == [
        (2, "old@example.com", "already on the list")
    ]


def test_rejects_carry_line_value_and_reason() -> None:
    data = (
        b"email,name,status\n"
        b"good@example.com,A,\n"  # line 2
        b"not-an-address,B,\n"  # line 3
        b"\n"  # line 4: blank, skipped
        b",C,\n"  # line 5
        b"x@localhost,D,\n"  # line 6
        b"e@example.com,E,gone\n"  # line 7
        b"f@example.com,F,,extra\n"  # line 8
        b'"Ann <ann@example.com>",G,\n'  # line 9
    )
    parsed = parse_subscribers(data)
    assert [s.line for s in parsed.subscribers] == [2]
    rejects = [(r.line, r.value) for r in parsed.rejects]
    assert rejects == [
        (3, "not-an-address"),
        (5, ",C,"),
        (6, "x@localhost"),
        (7, "e@example.com"),
        (8, "f@example.com,F,,extra"),
        (9, "Ann <ann@example.com>"),
    ]
    reasons = [r.reason for r in parsed.rejects]
    assert "@-sign" in reasons[0]
    assert reasons[1] == "no email address"
    assert "status 'gone'" in reasons[3]
    assert reasons[4] == "4 cells, the header has 3"


def test_short_rows_are_padded_and_trailing_empty_cells_ignored() -> None:
    parsed = parse_subscribers(b"email,name,city\na@example.com\nb@example.com,B,C,,\n")
    assert [(s.name, s.fields) for s in parsed.subscribers] == [
        ("", {"city": ""}),
        ("B", {"city": "C"}),
    ]


def test_a_name_too_long_for_the_column_is_rejected() -> None:
    parsed = parse_subscribers(f"email,name\na@example.com,{'x' * 201}\n".encode())
    assert [r.reason for r in parsed.rejects] == ["name longer than 200 characters"]


# -- files that are not subscriber lists -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b" \r\n\n  \n", "empty"),
        (b"email,name\n", "no rows below"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
        (b"email,name\na@example.com,\x01\x02\x03\n", "line 2: control character"),
        (b"first,last\nAnn,Lee\n", "no email column"),
        (b"email|name\na@example.com|A\n", "line 1: one column only"),
        (b"email,email\na@example.com,b@example.com\n", "appears twice"),
        (b'email,name\n"a@example.com"x,A\n', "line 2: broken CSV"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "binary",
        "control-chars",
        "no-email-column",
        "wrong-delimiter",
        "duplicate-header",
        "broken-quoting",
    ],
)
def test_unusable_files_are_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(UserInputError, match=message) as caught:
        parse_subscribers(data)
    assert "\n" not in str(caught.value)


def test_a_huge_line_is_refused_with_its_number() -> None:
    data = b"email,note\na@example.com,x\nb@example.com," + b"y" * MAX_LINE_CHARS + b"\n"
    with pytest.raises(UserInputError, match="line 3 is longer than 64 KB"):
        parse_subscribers(data)


def test_a_huge_last_line_without_newline_is_refused() -> None:
    with pytest.raises(UserInputError, match="line 2 is longer"):
        parse_subscribers(b"email\n" + b"a" * (MAX_LINE_CHARS + 1))


def test_an_unclosed_quote_is_an_error_where_it_opens() -> None:
    data = b'email,name\na@example.com,"open\n' + b"b@example.com,B\n" * 10
    with pytest.raises(UserInputError, match="line 2: broken CSV"):
        parse_subscribers(data)
