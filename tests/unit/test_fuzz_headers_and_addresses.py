"""Fuzzing header and address fields, where strangers' text becomes message headers.

Three roads in: ``relaydesk send`` (From, To, Subject on the command line), the campaign
builder (From name, a subscriber's name and fields, custom headers as the composer's box
and ``--header`` write them), and the ``Name: value`` lines themselves. The contract:

- accepted input round-trips: the message parses back with exactly the headers it was
  given, each once, and the values as written;
- no input adds a header (``Bcc:``, a second ``To:``), a line break or a NUL, and every line
  of the message is at most 998 octets and ends in CRLF;
- rejected input gets one line (``UserInputError``, exit 2 and one stderr line on the
  command line); no other exception escapes;
- nothing already stored changes: a refused ``send`` leaves the outbox as it was.

Bounded examples (``SETTINGS``): these run in the normal suite.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from desktop_app.cli.main import main
from desktop_app.core.campaigns.message import (
    CampaignSettings,
    Recipient,
    build_campaign_message,
    parse_header_lines,
)
from desktop_app.core.campaigns.templates import TemplateSet
from desktop_app.core.compose import build_message
from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.database import DATABASE_FILENAME

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- strategies -----------------------------------------------------------------------------

#: What an attacker puts in a field to start a header or an SMTP command of their own.
_INJECTIONS = [
    "\r\nBcc: victim@example.org",
    "\nBcc: victim@example.org",
    "\rRCPT TO:<victim@example.org>",
    "\x00",
    "\x0b",
    "\x0c",
    "\x85",
    "\u2028",
    "\u2029",
    "=?utf-8?q?=0D=0ABcc:_victim@example.org?=",
    "=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=",
    "=?iso-8859-1?q?caf=E9?=",
    '"quoted, with comma" <other@example.org>',
    "<other@example.org>",
    "other@example.org, third@example.org",
    ";",
    ":",
    "(comment)",
    "\t",
    " ",
]
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.lists(
        st.one_of(st.sampled_from(_INJECTIONS), st.text(max_size=6)), min_size=1, max_size=5
    ).map("".join),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=990, max_size=1200),
)
ADDRESS = st.one_of(
    st.emails().map(str),
    st.tuples(st.emails().map(str), st.sampled_from(_INJECTIONS)).map("".join),
    st.tuples(st.sampled_from(_INJECTIONS), st.emails().map(str)).map("".join),
    st.sampled_from(["", "nobody", "a@b", "a@@example.com", "Ann <ann@example.com>"]),
    TEXT,
)
#: Lines typed into the composer's header box or given to ``--header``.
HEADER_LINE = st.one_of(
    st.tuples(
        st.sampled_from(["X-Tag", "X-Campaign", "Bcc", "To", "Subject", "Content-Type", "x-tag"]),
        st.sampled_from([": ", ":", " : "]),
        TEXT,
    ).map("".join),
    TEXT,
)

#: Headers a plain message may carry: nothing a field could add.
_PLAIN_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}
#: What a campaign message carries besides its custom headers.
_CAMPAIGN_HEADERS = _PLAIN_HEADERS | {"list-unsubscribe"}


def _assert_one_line(error: BaseException) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def _assert_wire_form(raw: bytes) -> EmailMessage:
    """CRLF only, no NUL, lines of at most 998 octets; returns the parsed message."""
    assert b"\x00" not in raw
    lines = raw.split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line, line[:80]
        assert len(line) <= 998, len(line)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    return parsed


def _header_names(message: EmailMessage) -> list[str]:
    return [name.lower() for name in message]


def _written(value: str) -> bool:
    """True for a value the email package keeps as written (it decodes encoded words)."""
    return "=?" not in value


# -- plain mail: compose.build_message ------------------------------------------------------


@SETTINGS
@given(sender=ADDRESS, to=st.lists(ADDRESS, min_size=1, max_size=3), subject=TEXT)
@example(
    sender="a@example.com",
    to=["b@example.com"],
    subject="=?utf-8?q?=0D=0ABcc:_victim@example.org?=",
)
@example(sender="a@example.com\r\nBcc: v@example.org", to=["b@example.com"], subject="s")
@example(sender="a@example.com", to=["b@example.com"], subject="x" * 1200)
def test_a_plain_message_carries_its_fields_and_nothing_else(
    sender: str, to: list[str], subject: str
) -> None:
    try:
        message = build_message(sender=sender, recipients=to, subject=subject, text="hi\n")
    except UserInputError as error:
        _assert_one_line(error)
        return
    parsed = _assert_wire_form(message.raw)
    names = _header_names(parsed)
    assert set(names) <= _PLAIN_HEADERS, names
    assert len(names) == len(set(names)), names  # each header once
    assert parsed["From"].addresses[0].addr_spec == sender.strip()
    assert [a.addr_spec for a in parsed["To"].addresses] == [t.strip() for t in to]
    assert message.recipients == tuple(t.strip() for t in to)
    if _written(subject):
        assert str(parsed["Subject"]) == subject.strip()


# -- campaign mail: names, fields and custom headers ---------------------------------------


@SETTINGS
@given(
    from_name=st.one_of(st.none(), TEXT),
    recipient=ADDRESS,
    name=st.one_of(st.none(), TEXT),
    city=TEXT,
    header_lines=st.lists(HEADER_LINE, max_size=4),
)
@example(
    from_name="News",
    recipient="ann@example.com",
    name="Ann\r\nBcc: victim@example.org",
    city="Oslo",
    header_lines=["X-Tag: spring"],
)
@example(  # found by this test: a 1,001-octet To: line (RFC 5322 allows 998)
    from_name=None, recipient="ann@example.com", name="0" * 1000, city="", header_lines=[]
)
@example(
    from_name=None,
    recipient="ann@example.com",
    name="Ann",
    city="=?utf-8?q?=0D=0ABcc:_victim@example.org?=",
    header_lines=["X-Tag: a", "x-tag: b"],
)
def test_a_campaign_message_carries_its_fields_and_nothing_else(
    from_name: str | None,
    recipient: str,
    name: str | None,
    city: str,
    header_lines: list[str],
) -> None:
    try:
        headers = parse_header_lines(header_lines, label=lambda number, _line: f"line {number}")
        built = build_campaign_message(
            CampaignSettings(
                campaign_key="k1",
                from_address="news@example.com",
                from_name=from_name,
                templates=TemplateSet(subject="Hi {{ name }} from {{ city }}", text="{{ city }}"),
                unsubscribe_mailto="unsubscribe@example.com",
                headers=headers,
            ),
            Recipient(email=recipient, name=name, fields={"city": city}),
            now=1_700_000_000,
        )
    except UserInputError as error:
        _assert_one_line(error)
        return
    parsed = _assert_wire_form(built.raw)
    names = _header_names(parsed)
    assert len(names) == len(set(names)), names
    assert set(names) == _CAMPAIGN_HEADERS | {h.lower() for h in headers}, names
    for header, value in headers.items():
        if _written(value):
            assert str(parsed[header]) == value
    assert parsed["To"].addresses[0].addr_spec == recipient.strip()
    assert built.recipients == (recipient.strip(),)
    if name is not None and _written(name):
        assert parsed["To"].addresses[0].display_name == name.strip()
    subject = f"Hi {name or ''} from {city}".strip()
    if _written(subject):
        assert str(parsed["Subject"]) == subject


@SETTINGS
@given(lines=st.lists(HEADER_LINE, max_size=6))
def test_header_lines_parse_to_each_name_once_or_one_line(lines: list[str]) -> None:
    try:
        headers = parse_header_lines(lines, label=lambda number, _line: f"line {number}")
    except UserInputError as error:
        _assert_one_line(error)
        return
    written = [line for line in lines if line.strip()]
    assert len(headers) == len(written)  # no line dropped, none merged into another
    lowered = [name.lower() for name in headers]
    assert len(lowered) == len(set(lowered))
    for name, value in headers.items():
        assert name == name.strip() and value == value.strip()


def test_a_header_given_twice_is_refused_not_dropped() -> None:
    # Before: {"X-Tag": "b"} silently, the first line lost.
    with pytest.raises(UserInputError, match="custom header 'X-Tag' is given twice"):
        parse_header_lines(["X-Tag: a", "X-Tag: b"], label=lambda n, _line: f"line {n}")


# -- the command line: relaydesk send --------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder holding one queued message already (which must never change)."""
    folder = tmp_path / "data"
    body = tmp_path / "body.txt"
    body.write_text("hello\n", encoding="utf-8")
    assert _send(folder, "kept@example.com", "kept@example.org", "kept", body)[0] == 0
    yield folder
    for handler in list(logging.getLogger().handlers):  # main() logs to the data folder
        if getattr(handler, "_relaydesk", False):
            logging.getLogger().removeHandler(handler)
            handler.close()


def _send(folder: Path, sender: str, to: str, subject: str, body: Path) -> tuple[int, str]:
    args = ["--data-dir", str(folder), "send", "--from", sender, "--to", to]
    args += ["--subject", subject, "--text-file", str(body)]
    try:
        return main(args), ""
    except SystemExit as stop:  # argparse: an argument it cannot take (a value like "-x")
        return int(stop.code or 0), "argparse"


def _outbox(folder: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(folder / DATABASE_FILENAME)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM outbox ORDER BY id")]


@settings(SETTINGS, max_examples=40)
@given(sender=ADDRESS, to=ADDRESS, subject=TEXT)
@example(sender="a@example.com", to="b@example.com\r\nRCPT TO:<v@example.org>", subject="s")
@example(sender="a@example.com", to="b@example.com", subject="s\r\nBcc: v@example.org")
def test_send_on_the_command_line_queues_as_written_or_says_one_line(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    sender: str,
    to: str,
    subject: str,
) -> None:
    body = tmp_path / "body.txt"
    before = _outbox(data_dir)
    capsys.readouterr()
    code, how = _send(data_dir, sender, to, subject, body)
    captured = capsys.readouterr()
    after = _outbox(data_dir)
    assert after[: len(before)] == before, "a send changed what was already queued"
    if code != 0:
        assert code == 2, captured.err
        assert "Traceback" not in captured.err
        lines = captured.err.splitlines()
        if how != "argparse":
            assert len(lines) == 1 and lines[0].startswith("relaydesk: error: "), captured.err
        assert len(after) == len(before)
        return
    [queued] = after[len(before) :]
    parsed = _assert_wire_form(queued["raw"])
    assert set(_header_names(parsed)) <= _PLAIN_HEADERS
    assert parsed["To"].addresses[0].addr_spec == to.strip()
    if _written(subject):
        assert str(parsed["Subject"]) == subject.strip()
    assert not re.search(r"[\r\n]", queued["envelope_from"])
