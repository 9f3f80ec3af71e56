"""Campaign messages: built per recipient, parsed back, every header checked."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from desktop_app.core.campaigns.message import (
    Attachment,
    CampaignSettings,
    Recipient,
    build_campaign_message,
    build_campaign_messages,
    sender_alignment_warnings,
    unsubscribe_token,
    validate_custom_headers,
    verify_unsubscribe_token,
)
from desktop_app.core.campaigns.rendering import preflight, render_batch
from desktop_app.core.campaigns.templates import TemplateError, TemplateSet
from desktop_app.core.errors import UserInputError
from desktop_app.core.models import ProviderConfig, Security
from desktop_app.core.storage.campaigns import PendingRecipient
from desktop_app.core.storage.outbox import NewMessage

SECRET = b"campaign-secret-key"
ANN = Recipient("ann@example.net", "Ann Östberg", {"city": "Oslo"})
SETTINGS = CampaignSettings(
    campaign_key="7f3c-spring",
    from_address="news@example.com",
    from_name="Example News, Inc.",
    reply_to="help@example.com",
    templates=TemplateSet(
        subject="Hi {{ name }}, news for {{ city }}",
        html="<p>Hello {{ name }}</p><p><a href='{{ unsubscribe_url }}'>unsubscribe</a></p>",
    ),
    unsubscribe_mailto="unsubscribe@example.com",
    unsubscribe_url="https://example.com/unsubscribe?list=4",
    unsubscribe_secret=SECRET,
    headers={"X-Campaign": "spring", "Precedence": "bulk"},
)
LINE_BREAKS = "\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def _parse(message: NewMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects
    return parsed


def _header_section(raw: bytes) -> bytes:
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, "no blank line after the headers"
    return head


def _unsubscribe_entries(parsed: EmailMessage) -> list[str]:
    value = str(parsed["List-Unsubscribe"])
    entries = [entry.strip() for entry in value.split(",")]
    assert all(entry.startswith("<") and entry.endswith(">") for entry in entries), value
    return [entry[1:-1] for entry in entries]


def test_every_header_reads_back() -> None:
    message = build_campaign_message(SETTINGS, ANN, now=1_700_000_000)
    parsed = _parse(message)

    assert parsed["From"].addresses[0].display_name == "Example News, Inc."
    assert parsed["From"].addresses[0].addr_spec == "news@example.com"
    assert parsed["To"].addresses[0].display_name == "Ann Östberg"
    assert parsed["To"].addresses[0].addr_spec == "ann@example.net"
    assert str(parsed["Reply-To"]) == "help@example.com"
    assert str(parsed["Subject"]) == "Hi Ann Östberg, news for Oslo"
    assert parsed["Date"].datetime == datetime.fromtimestamp(1_700_000_000, UTC)
    assert re.fullmatch(r"<campaign\.[0-9a-f]{40}@example\.com>", str(parsed["Message-ID"]))
    assert str(parsed["Message-ID"]) == message.message_id
    assert str(parsed["X-Campaign"]) == "spring"
    assert str(parsed["Precedence"]) == "bulk"
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert len(parsed.get_all(name) or []) == 1, name

    assert message.envelope_from == "news@example.com"
    assert message.recipients == ("ann@example.net",)
    assert message.subject == "Hi Ann Östberg, news for Oslo"
    assert all(len(line) <= 998 for line in message.raw.split(b"\r\n"))
    assert b"\n" not in message.raw.replace(b"\r\n", b"")


def test_bodies_are_personalised_and_text_is_generated() -> None:
    parsed = _parse(build_campaign_message(SETTINGS, ANN))
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    url = _unsubscribe_entries(parsed)[0]
    assert text.get_content().replace("\r\n", "\n") == f"Hello Ann Östberg\n\nunsubscribe ({url})\n"
    assert "Hello Ann Östberg" in html.get_content()
    assert url.replace("&", "&amp;") in html.get_content()


def test_list_unsubscribe_https_and_mailto() -> None:
    message = build_campaign_message(SETTINGS, ANN)
    parsed = _parse(message)
    https, mailto = _unsubscribe_entries(parsed)
    # On the wire as plain <URI>s: an RFC 2047 encoded word is not a URI to a mail client.
    head = _header_section(message.raw).decode("ascii")
    assert f"\r\nList-Unsubscribe: <{https}>,\r\n <{mailto}>\r\n" in head
    assert mailto == "mailto:unsubscribe@example.com?subject=unsubscribe%207f3c-spring"
    parts = urlsplit(https)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "example.com", "/unsubscribe")
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["list"] == "4"
    assert query["campaign"] == "7f3c-spring"
    assert query["email"] == "ann@example.net"
    assert query["token"] == unsubscribe_token(SECRET, "7f3c-spring", "ann@example.net")
    assert verify_unsubscribe_token(SECRET, "7f3c-spring", "ann@example.net", query["token"])
    # The token is bound to the secret, the campaign and the address.
    assert not verify_unsubscribe_token(b"other", "7f3c-spring", "ann@example.net", query["token"])
    assert not verify_unsubscribe_token(SECRET, "other", "ann@example.net", query["token"])
    assert not verify_unsubscribe_token(SECRET, "7f3c-spring", "bob@example.net", query["token"])


def test_mailto_only_has_no_one_click_header() -> None:
    only_mailto = replace(SETTINGS, unsubscribe_url=None, unsubscribe_secret=None)
    parsed = _parse(build_campaign_message(only_mailto, ANN))
    assert _unsubscribe_entries(parsed) == [
        "mailto:unsubscribe@example.com?subject=unsubscribe%207f3c-spring"
    ]
    assert parsed["List-Unsubscribe-Post"] is None


def test_https_only_has_one_click_header() -> None:
    only_https = replace(SETTINGS, unsubscribe_mailto=None)
    parsed = _parse(build_campaign_message(only_https, ANN))
    (https,) = _unsubscribe_entries(parsed)
    assert https.startswith("https://example.com/unsubscribe?")
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_no_unsubscribe_means_no_list_headers() -> None:
    bare = replace(SETTINGS, unsubscribe_url=None, unsubscribe_secret=None, unsubscribe_mailto=None)
    parsed = _parse(build_campaign_message(bare, ANN))
    assert parsed["List-Unsubscribe"] is None and parsed["List-Unsubscribe-Post"] is None


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"unsubscribe_url": "http://example.com/u"}, "must be an https:// URL"),
        ({"unsubscribe_url": "https://example.com/u>, <https://evil"}, "must not contain"),
        ({"unsubscribe_url": "https://example.com/u\r\nBcc: x@y.z"}, "line breaks"),
        ({"unsubscribe_secret": None}, "needs a secret key"),
        ({"unsubscribe_mailto": "not an address"}, "not an email address"),
        ({"from_address": "news@example.com\r\nBcc: x@y.z"}, "line breaks"),
        ({"from_name": "News\r\nBcc: x@y.z"}, "line breaks"),
        ({"reply_to": "nope"}, "not an email address"),
    ],
)
def test_bad_campaign_settings_are_one_line_errors(changes: dict[str, object], error: str) -> None:
    with pytest.raises(UserInputError, match=error) as caught:
        build_campaign_message(replace(SETTINGS, **changes), ANN)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_message_id_is_stable_per_campaign_and_recipient_and_unique_across_them() -> None:
    recipients = [
        Recipient(f"user{index}@example.net", f"User {index}", {"city": "Rome"})
        for index in range(300)
    ]
    first = build_campaign_messages(SETTINGS, recipients, now=1)
    again = build_campaign_messages(SETTINGS, recipients, now=2)
    assert [m.message_id for m in first] == [m.message_id for m in again]
    assert len({m.message_id for m in first}) == 300
    other_campaign = build_campaign_messages(replace(SETTINGS, campaign_key="other"), recipients)
    assert not {m.message_id for m in first} & {m.message_id for m in other_campaign}
    # Address case does not make a second identity.
    upper = build_campaign_message(SETTINGS, Recipient("USER0@example.net", None, {"city": "x"}))
    assert upper.message_id == first[0].message_id


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"From": "x@example.org"}, "would override"),
        ({"to": "x@example.org"}, "would override"),
        ({"Message-ID": "<x@y>"}, "would override"),
        ({"List-Unsubscribe": "<https://evil>"}, "would override"),
        ({"Content-Type": "text/plain"}, "would override"),
        ({"Bcc": "x@example.org"}, "would override"),
        ({"X-A": "1", "x-a": "2"}, "given twice"),
        ({"X Bad": "1"}, "not a valid header name"),
        ({"X-Bad:": "1"}, "not a valid header name"),
        ({"": "1"}, "not a valid header name"),
        ({"X-Ünicode": "1"}, "not a valid header name"),
        ({"X-Inject": "a\r\nBcc: victim@example.org"}, "line breaks"),
        ({"X-Inject": "a\nb"}, "line breaks"),
        ({"X-Inject": "a\x00b"}, "line breaks"),
        ({"X-Long": "a" * 901}, "longer than"),
    ],
)
def test_custom_header_rejection(headers: Mapping[str, str], error: str) -> None:
    with pytest.raises(UserInputError, match=error) as caught:
        build_campaign_message(replace(SETTINGS, headers=headers), ANN)
    assert "\n" not in str(caught.value)


def test_encoded_word_line_break_in_custom_header_is_refused() -> None:
    headers = {"X-Inject": "=?utf-8?q?a=0D=0ABcc=3A_victim=40example=2Eorg?="}
    try:
        message = build_campaign_message(replace(SETTINGS, headers=headers), ANN)
    except UserInputError as error:
        assert "\n" not in str(error)
    else:
        assert b"\nBcc" not in _header_section(message.raw)


def test_hostile_recipient_name_never_reaches_the_headers() -> None:
    hostile = Recipient("ann@example.net", "Ann\r\nBcc: victim@example.org", {"city": "x"})
    with pytest.raises(TemplateError, match="line break"):
        build_campaign_message(SETTINGS, hostile)
    plain_subject = replace(SETTINGS, templates=TemplateSet(subject="Hi", text="x"))
    with pytest.raises(UserInputError, match="line breaks"):
        build_campaign_message(plain_subject, hostile)


def test_attachments_within_the_limit() -> None:
    with_files = replace(
        SETTINGS,
        attachments=(
            Attachment("price list.pdf", b"%PDF-1.4 fake", "application/pdf"),
            Attachment("notes.txt", "Grüße\n".encode(), "text/plain"),
        ),
        max_attachment_bytes=1024,
    )
    parsed = _parse(build_campaign_message(with_files, ANN))
    assert parsed.get_content_type() == "multipart/mixed"
    attachments = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["price list.pdf", "notes.txt"]
    assert attachments[0].get_content() == b"%PDF-1.4 fake"
    assert attachments[1].get_content_type() == "text/plain"
    assert parsed.get_body(("html",)) is not None


def test_attachment_size_limit_is_a_one_line_error() -> None:
    too_big = replace(
        SETTINGS,
        attachments=(Attachment("a.bin", b"x" * 600), Attachment("b.bin", b"x" * 600)),
        max_attachment_bytes=1000,
    )
    with pytest.raises(UserInputError, match=r"^attachments total 1200 bytes, over the 1000 bytes"):
        build_campaign_message(too_big, ANN)
    exact = replace(too_big, max_attachment_bytes=1200)
    build_campaign_message(exact, ANN)


@pytest.mark.parametrize("content_type", ["pdf", "application/", "text/plain; x=1", "a b/c"])
def test_bad_attachment_type_is_refused(content_type: str) -> None:
    bad = replace(SETTINGS, attachments=(Attachment("a", b"x", content_type),))
    with pytest.raises(UserInputError, match="is not a MIME type"):
        build_campaign_message(bad, ANN)


def test_template_error_blocks_building() -> None:
    typo = replace(SETTINGS, templates=TemplateSet(subject="Hi {{ frist_name }}", text="x"))
    with pytest.raises(
        TemplateError, match=r"^subject template, line 1: 'frist_name' is undefined"
    ):
        build_campaign_messages(typo, [ANN])


def _provider(name: str, domains: tuple[str, ...], *, enabled: bool = True) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        host="smtp.example.org",
        port=587,
        security=Security.STARTTLS,
        sender_domains=domains,
        enabled=enabled,
    )


def test_sender_alignment_warnings() -> None:
    providers = [
        _provider("main", ("example.com",)),
        _provider("any", ()),
        _provider("other", ("example.org",)),
        _provider("off", ("example.org",), enabled=False),
    ]
    warnings = sender_alignment_warnings("news.example.com", providers)
    assert len(warnings) == 1
    assert warnings[0].startswith("provider 'other' is not authorized for news.example.com")
    assert "DMARC" in warnings[0]
    assert sender_alignment_warnings("example.com", providers[:2]) == []
    none_ok = sender_alignment_warnings("example.net", [providers[0], providers[2]])
    assert none_ok[-1] == "no provider in the route is authorized for example.net"


# -- hostile input, property-based --------------------------------------------------------

hostile_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
with_breaks = st.builds(
    lambda before, char, after: before + char + after,
    hostile_text,
    st.sampled_from(LINE_BREAKS),
    hostile_text,
)
header_names = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=0x7F), min_size=0, max_size=20),
    st.sampled_from(["From", "To", "Subject", "Message-ID", "List-Unsubscribe", "X-Tag"]),
    st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True),
)
header_values = st.one_of(
    hostile_text,
    with_breaks,
    st.builds(lambda s: f"=?utf-8?q?{s}?=", hostile_text),
    st.just("=?utf-8?q?x=0D=0ABcc=3A_v=40example=2Eorg?="),
)
plain_template = TemplateSet(subject="Hi {{ name }}", text="Hello {{ name }}, {{ extra }}")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.dictionaries(header_names, header_values, max_size=3),
    name=st.one_of(st.none(), hostile_text, with_breaks),
    extra=hostile_text,
    from_name=st.one_of(st.none(), hostile_text),
)
def test_hostile_input_gives_a_message_or_a_one_line_error(
    headers: dict[str, str], name: str | None, extra: str, from_name: str | None
) -> None:
    campaign = replace(SETTINGS, templates=plain_template, headers=headers, from_name=from_name)
    recipient = Recipient("ann@example.net", name, {"extra": extra})
    try:
        message = build_campaign_message(campaign, recipient)
    except UserInputError as error:
        assert "\n" not in str(error) and "\r" not in str(error)
        event("refused")
        return
    event("built")
    assert b"\x00" not in message.raw  # nor in a body (issue 14, item 5)
    head = _header_section(message.raw)
    # Every header line ends in CRLF and nothing else: no bare CR or LF, no NUL.
    assert b"\r" not in head.replace(b"\r\n", b"")
    assert b"\n" not in head.replace(b"\r\n", b"")
    assert b"\x00" not in head
    assert head.isascii()
    parsed = _parse(message)
    assert [str(a.addr_spec) for a in parsed["To"].addresses] == ["ann@example.net"]
    assert parsed.get_all("Bcc") is None
    for structural in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe"):
        assert len(parsed.get_all(structural) or []) == 1
    for header_name, value in validate_custom_headers(headers):
        if "=?" in value:
            continue  # RFC 2047 encoded words are decoded on assignment, by design
        assert " ".join(str(parsed[header_name]).split()) == " ".join(value.split())


@settings(max_examples=200)
@given(value=with_breaks)
def test_custom_header_values_with_line_breaks_are_always_refused(value: str) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_custom_headers({"X-Tag": value})
    assert "\n" not in str(caught.value)


# -- NUL from a subscriber's data (issue 14, item 5) ----------------------------------------


def test_a_nul_in_a_subscriber_field_fails_that_recipient_not_the_wire() -> None:
    text = replace(SETTINGS, templates=TemplateSet(subject="Hi", text="News for {{ city }}\n"))
    with pytest.raises(TemplateError, match=r"^text template: the rendered text contains a NUL"):
        build_campaign_message(text, Recipient("bob@example.net", None, {"city": "Os\x00lo"}))
    with pytest.raises(TemplateError, match=r"contains a NUL .*\(for subscriber bob@example.net\)"):
        preflight(text, [ANN, Recipient("bob@example.net", None, {"city": "Os\x00lo"})])

    pending = [
        PendingRecipient(1, "ann@example.net", "ann@example.net", "Ann", {"city": "Oslo"}),
        PendingRecipient(2, "bob@example.net", "bob@example.net", "", {"city": "Os\x00lo"}),
    ]
    batch = render_batch(text, 9, pending)
    assert [recipient_id for recipient_id, _message in batch.queued] == [1]
    assert [(recipient_id, reason.split(":")[0]) for recipient_id, reason in batch.failed] == [
        (2, "text template")
    ]
    assert "NUL character" in batch.failed[0][1]
    assert all(b"\x00" not in message.raw for _id, message in batch.queued)


def test_text_attachments_with_a_nul_are_encoded_not_sent_raw() -> None:
    # Attachments are bytes, always base64 (a text/plain one too): legal whatever they hold.
    with_file = replace(SETTINGS, attachments=(Attachment("a.txt", b"x\x00y\r\n", "text/plain"),))
    message = build_campaign_message(with_file, ANN)
    assert b"\x00" not in message.raw
    (attachment,) = _parse(message).iter_attachments()
    assert attachment["Content-Transfer-Encoding"] == "base64"
    assert attachment.get_content() == "x\x00y\r\n"
