"""build_message: the exact RFC 5322 bytes that go into the outbox, read back by a parser."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.core.compose import build_message, build_one_per_recipient
from desktop_app.core.errors import HeaderInjectionError, UserInputError
from desktop_app.core.storage.outbox import NewMessage

LINE_BREAKS = "\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
SENDER = "news@example.com"
RECIPIENT = "reader@example.net"

any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)
with_line_break = st.builds(
    lambda before, char, after: before + char + after,
    any_text,
    st.sampled_from(LINE_BREAKS),
    any_text,
)
# Words of visible characters (any script) joined by single spaces: a subject as people
# write one, without leading/trailing blanks the header grammar does not preserve.
_visible = st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
subjects = st.lists(st.text(_visible, min_size=1, max_size=25), min_size=1, max_size=10).map(
    " ".join
)
ascii_subjects = st.lists(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30),
    min_size=1,
    max_size=20,
).map(" ".join)


def _build(**overrides: object) -> NewMessage:
    fields: dict[str, object] = {
        "sender": SENDER,
        "recipients": [RECIPIENT],
        "subject": "Hello",
        "text": "Body text\n",
    }
    fields.update(overrides)
    return build_message(**fields)  # type: ignore[arg-type]


def _parse(message: NewMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects
    return parsed


def _body(part: MIMEPart) -> str:
    # Parsed from wire bytes, a text part keeps its CRLF line ends.
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def _assert_crlf_only(raw: bytes) -> None:
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))  # RFC 5322 hard limit


# -- refusing line breaks ---------------------------------------------------------------------


@given(with_line_break)
def test_a_subject_with_a_line_break_is_refused(subject: str) -> None:
    with pytest.raises(HeaderInjectionError) as caught:
        _build(subject=subject)
    assert "\n" not in str(caught.value)


@given(with_line_break)
def test_a_from_with_a_line_break_is_refused(noise: str) -> None:
    with pytest.raises(HeaderInjectionError):
        _build(sender=SENDER + noise)
    with pytest.raises(HeaderInjectionError):
        _build(sender=noise + SENDER)


@given(with_line_break)
def test_a_recipient_with_a_line_break_is_refused(noise: str) -> None:
    with pytest.raises(HeaderInjectionError):
        _build(recipients=[RECIPIENT, RECIPIENT + noise])


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?hi=0D=0ABcc:_victim@example.org?=",
        "=?utf-8?b?aGkNCkJjYzogdmljdGltQGV4YW1wbGUub3Jn?=",
        "hello =?utf-8?q?=0A?=X-Injected: yes",
        "=?utf-8?q?a=00b?=",
    ],
)
def test_a_line_break_hidden_in_an_encoded_word_is_refused(subject: str) -> None:
    # The email package decodes RFC 2047 words on assignment; older Pythons then wrote
    # the decoded CR LF out verbatim (CVE-2024-6923): a Bcc header nobody typed.
    with pytest.raises(HeaderInjectionError):
        _build(subject=subject)


# -- what the bytes say -----------------------------------------------------------------------


def test_headers_read_back_as_written() -> None:
    when = 1_700_000_000.0
    message = _build(subject="Quarterly news", now=when)

    parsed = _parse(message)

    assert parsed["From"] == SENDER
    assert [a.addr_spec for a in parsed["To"].addresses] == [RECIPIENT]
    assert parsed["Subject"] == "Quarterly news"
    assert parsed["Date"].datetime == datetime.fromtimestamp(when, UTC)
    assert parsed["Message-ID"] == message.message_id
    assert re.fullmatch(r"<[^<>@\s]+@example\.com>", message.message_id)
    assert parsed.get_content_type() == "text/plain"
    assert _body(parsed) == "Body text\n"
    _assert_crlf_only(message.raw)


def test_the_new_message_carries_the_envelope() -> None:
    message = _build(recipients=["a@example.net", " b@example.org "], subject="S")
    assert message.envelope_from == SENDER
    assert message.recipients == ("a@example.net", "b@example.org")
    assert message.subject == "S"


def test_a_non_ascii_subject_and_body_round_trip() -> None:
    subject = "Grüße aus Köln — 你好, мир ✉"
    message = _build(subject=subject, text="Zoë says héllo 👋\n")

    parsed = _parse(message)

    assert parsed["Subject"] == subject
    assert _body(parsed) == "Zoë says héllo 👋\n"
    assert message.raw.isascii()  # encoded words and a transfer encoding, not 8-bit headers
    _assert_crlf_only(message.raw)


@given(ascii_subjects)
def test_any_ascii_subject_round_trips(subject: str) -> None:
    message = _build(subject=subject)
    # A fold right after "Subject:" leaves a leading blank, which readers ignore.
    assert str(_parse(message)["Subject"]).strip() == subject
    _assert_crlf_only(message.raw)


@given(subjects)
def test_any_subject_keeps_its_text(subject: str) -> None:
    message = _build(subject=subject)
    decoded = str(_parse(message)["Subject"])
    # Compared without blanks: see the xfail below for the one space CPython can lose.
    assert "".join(decoded.split()) == "".join(subject.split())
    _assert_crlf_only(message.raw)


@pytest.mark.xfail(
    reason="CPython gh-144156: folding can drop the space between two encoded words; "
    "fixed upstream in 2026, not in the Python this project runs on",
    strict=False,
)
def test_a_long_non_ascii_subject_keeps_every_space() -> None:
    subject = " ".join(["Ünïcödé wörds with spaces"] * 4)
    assert _parse(_build(subject=subject))["Subject"] == subject


def test_several_recipients_share_one_message() -> None:
    message = _build(recipients=["a@example.net", "b@example.org", "c@example.com"])

    parsed = _parse(message)

    assert [a.addr_spec for a in parsed["To"].addresses] == [
        "a@example.net",
        "b@example.org",
        "c@example.com",
    ]
    assert len(parsed.get_all("Message-ID") or []) == 1


def test_text_and_html_make_an_alternative() -> None:
    parsed = _parse(_build(text="plain\n", html="<p>rich</p>\n"))

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert _body(parts[0]) == "plain\n"
    assert _body(parts[1]) == "<p>rich</p>\n"


def test_html_alone_is_an_html_message() -> None:
    parsed = _parse(_build(text=None, html="<p>only</p>\n"))
    assert parsed.get_content_type() == "text/html"
    assert _body(parsed) == "<p>only</p>\n"


def test_long_body_lines_never_exceed_the_smtp_limit() -> None:
    message = _build(text="word " * 2000 + "\n" + "x" * 5000 + "\n")
    _assert_crlf_only(message.raw)
    assert _body(_parse(message)) == "word " * 2000 + "\n" + "x" * 5000 + "\n"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"recipients": []}, "recipient"),
        ({"text": None, "html": None}, "body"),
        ({"sender": "not an address"}, "from"),
        ({"recipients": ["ok@example.net", "nope"]}, "to"),
    ],
)
def test_incomplete_messages_are_refused(overrides: dict[str, object], fragment: str) -> None:
    with pytest.raises(UserInputError) as caught:
        _build(**overrides)
    message = str(caught.value)
    assert "\n" not in message
    assert fragment in message


# -- one message per recipient ----------------------------------------------------------------


def test_one_message_per_recipient_each_with_its_own_message_id() -> None:
    recipients = [f"user{i}@example.net" for i in range(5)]

    messages = build_one_per_recipient(
        sender=SENDER, recipients=recipients, subject="Hi", text="Body\n"
    )

    assert [m.recipients for m in messages] == [(r,) for r in recipients]
    ids = [m.message_id for m in messages]
    assert len(set(ids)) == 5
    for message, recipient in zip(messages, recipients, strict=True):
        parsed = _parse(message)
        assert parsed["Message-ID"] == message.message_id
        assert [a.addr_spec for a in parsed["To"].addresses] == [recipient]


def test_one_bad_address_refuses_the_whole_list() -> None:
    with pytest.raises(UserInputError):
        build_one_per_recipient(
            sender=SENDER, recipients=["a@example.net", "b@@example.net"], subject="x", text="y"
        )


# -- NUL and other control characters in a body (issue 14, item 5) -------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"text": "Hello\x00"}, "the text body contains a NUL character (line 1, column 6)"),
        ({"text": "one\ntw\x00o\n"}, "the text body contains a NUL character (line 2, column 3)"),
        ({"text": "Grüße\x00\n"}, "the text body contains a NUL character (line 1, column 6)"),
        (
            {"text": None, "html": "<p>\x00</p>"},
            "the HTML body contains a NUL character (line 1, column 4)",
        ),
        (
            {"text": "fine\n", "html": "<p>\n\n\x00"},
            "the HTML body contains a NUL character (line 3, column 1)",
        ),
    ],
)
def test_a_nul_in_a_body_is_refused_with_one_line_naming_the_part(
    overrides: dict[str, object], message: str
) -> None:
    # Before: an ASCII body went out raw under "Content-Transfer-Encoding: 7bit", NUL and
    # all, which RFC 5322 (section 2.3) and RFC 2045 (section 2.7) forbid.
    with pytest.raises(UserInputError) as caught:
        _build(**overrides)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@given(any_text, any_text)
def test_no_body_puts_a_nul_or_a_bare_cr_or_lf_on_the_wire(text: str, html: str) -> None:
    try:
        message = _build(text=text, html=html)
    except UserInputError:
        assert "\x00" in text + html
        return
    assert b"\x00" not in message.raw
    _assert_crlf_only(message.raw)


def test_other_control_characters_are_legal_and_kept() -> None:
    # RFC 5322 text is %d1-9 / %d11 / %d12 / %d14-127: only NUL and bare CR/LF are out.
    message = _build(text="tab\there\x0cform feed \x1b[1m\x7f\rbare cr\n")
    _assert_crlf_only(message.raw)
    assert _body(_parse(message)) == "tab\there\x0cform feed \x1b[1m\x7f\nbare cr\n"
