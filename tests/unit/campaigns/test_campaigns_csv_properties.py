"""Hostile CSV input: the parser answers with a result or one UserInputError line, never a crash.

Also: the fast address path agrees with email-validator, and well-formed files round-trip.
"""

from __future__ import annotations

import csv
import io

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from desktop_app.core.campaigns.addresses import InvalidAddressError, normalize_address
from desktop_app.core.campaigns.csv_import import ParsedCsv, parse_subscribers
from desktop_app.core.csv_cells import unescape_cell
from desktop_app.core.errors import UserInputError

HOSTILE_CHARS = st.sampled_from(
    [*",;\t\"'\r\n @.<>=+-|\\\x00\x01\x1b\x7f\x85\u2028\ufeff", "é", "ß", "中", "😀"]
)
CELL = st.one_of(
    st.text(HOSTILE_CHARS, max_size=12),
    st.text(max_size=12),
    st.emails().map(str),
    st.sampled_from(["email", "E-Mail", "name", "status", "active", "bounced", ""]),
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"])
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_error(data: bytes) -> ParsedCsv | None:
    """The contract: a result, or a one-line UserInputError. Anything else fails the test."""
    try:
        return parse_subscribers(data)
    except UserInputError as exc:
        message = str(exc)
        assert message
        assert "\n" not in message
        assert "\r" not in message
        return None


def check_invariants(parsed: ParsedCsv) -> None:
    keys = [s.email_key for s in parsed.subscribers]
    assert len(keys) == len(set(keys))
    lines = [s.line for s in parsed.subscribers]
    lines += [r.line for r in parsed.duplicates] + [r.line for r in parsed.rejects]
    assert len(lines) == len(set(lines)), "a row counted twice"
    assert all(line >= 2 for line in lines)
    for subscriber in parsed.subscribers:
        assert subscriber.email_key == subscriber.email.lower()
        assert subscriber.status in ("active", "unsubscribed", "bounced", "complained")
        assert "\n" not in subscriber.email
        assert "\x00" not in subscriber.email + subscriber.name


@SETTINGS
@given(st.binary(max_size=400))
@example(b"\xff\xfe")
@example(b"\xfe\xff\x00")
@example(b"\xef\xbb\xbf")
@example(b"email\n\x00")
@example(b"email\r\r\r\ra@example.com")
def test_arbitrary_bytes(data: bytes) -> None:
    parsed = parse_or_error(data)
    if parsed is not None:
        check_invariants(parsed)


@SETTINGS
@given(
    rows=st.lists(st.lists(CELL, min_size=1, max_size=5), min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONE]),
    encoding=ENCODINGS,
    header=st.sampled_from([["email", "name"], ["Email", "Name", "status"], []]),
)
def test_hostile_cells(
    rows: list[list[str]], delimiter: str, quoting: int, encoding: str, header: list[str]
) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, escapechar="\\")
    try:
        if header:
            writer.writerow(header)
        writer.writerows(rows)
        data = buffer.getvalue().encode(encoding, errors="replace")
    except csv.Error:
        return  # QUOTE_NONE cannot write some cells; nothing to parse then
    parsed = parse_or_error(data)
    if parsed is not None:
        check_invariants(parsed)


@SETTINGS
@given(
    subscribers=st.lists(
        st.tuples(
            st.emails().map(str),
            st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=30),
        ),
        min_size=1,
        max_size=20,
    ),
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_well_formed_files_round_trip(
    subscribers: list[tuple[str, str]], delimiter: str, encoding: str
) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(["email", "name"])
    writer.writerows(subscribers)
    parsed = parse_subscribers(buffer.getvalue().encode(encoding))

    expected: dict[str, tuple[str, str]] = {}
    rejected = 0
    for address, name in subscribers:
        try:
            # The import takes off the apostrophe an export puts before a formula (csv_cells).
            normalized = normalize_address(unescape_cell(address.strip()))
        except InvalidAddressError:
            rejected += 1
            continue
        expected.setdefault(normalized.lower(), (normalized, unescape_cell(name.strip())))
    assert [(s.email, s.name) for s in parsed.subscribers] == list(expected.values())
    assert len(parsed.rejects) == rejected
    assert len(parsed.subscribers) + len(parsed.duplicates) + rejected == len(subscribers)


ATEXT = st.sampled_from(list("abcXYZ019!#$%&'*+/=?^_`{|}~-."))
LABEL = st.text(st.sampled_from(list("abcz09-")), min_size=0, max_size=8)


@settings(max_examples=1000, deadline=None)
@given(
    local=st.text(ATEXT, min_size=0, max_size=70),
    labels=st.lists(LABEL, min_size=1, max_size=4),
    tld=st.sampled_from(["com", "ORG", "de", "x", "123", "test", "local", "xn--p1ai", "c0m"]),
)
@example(local="a" * 64, labels=["b" * 63, "c" * 63, "d" * 58], tld="com")
@example(local="a" * 65, labels=["example"], tld="com")  # local part one too long
@example(local="a", labels=["xn--bcher-kva"], tld="de")
def test_fast_path_agrees_with_email_validator(local: str, labels: list[str], tld: str) -> None:
    address = f"{local}@{'.'.join([*labels, tld])}"
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        actual: str | None = normalize_address(address)
    except InvalidAddressError:
        actual = None
    assert actual == expected


@pytest.mark.parametrize(
    "address", ["a@b@example.com", "@example.com", "a@", "a@.com", "a.@example.com"]
)
def test_fast_path_refuses_what_email_validator_refuses(address: str) -> None:
    with pytest.raises(InvalidAddressError):
        normalize_address(address)
