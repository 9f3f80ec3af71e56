"""Reading bounces and unsubscribe requests in the formats MTAs write (pure parsing)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.core.bounces.reading import read_bounce, read_unsubscribe_request
from tests.support import bounce_samples as samples

ORIGINAL = "<campaign.4f2a@example.com>"


@pytest.mark.parametrize("name", sorted(samples.HARD_FORMATS))
def test_hard_bounces_of_every_format_name_the_address_and_the_original(name: str) -> None:
    build: Callable[[str, str], bytes] = samples.HARD_FORMATS[name]
    reading = read_bounce(build("Gone.User@Example.NET", ORIGINAL))

    assert reading is not None
    (recipient,) = reading.recipients
    assert recipient.address == "gone.user@example.net"
    assert recipient.permanent
    assert reading.original_message_id == ORIGINAL
    assert reading.bounce_message_id is not None and reading.bounce_message_id != ORIGINAL


@pytest.mark.parametrize(
    ("name", "status", "detail"),
    [
        ("postfix", "5.1.1", "User unknown in local recipient table"),
        ("exchange", "5.1.10", "RESOLVER.ADR.RecipientNotFound"),
        ("gmail", "5.1.1", "does not exist"),
    ],
)
def test_a_dsn_gives_its_status_and_diagnostic(name: str, status: str, detail: str) -> None:
    reading = read_bounce(samples.HARD_FORMATS[name]("gone@example.net", ORIGINAL))
    assert reading is not None
    assert reading.recipients[0].status == status
    assert detail in reading.recipients[0].detail


def test_a_delayed_dsn_is_a_soft_bounce() -> None:
    reading = read_bounce(samples.delayed("slow@example.net", ORIGINAL))
    assert reading is not None
    (recipient,) = reading.recipients
    assert not recipient.permanent
    assert recipient.status == "4.4.1"


@pytest.mark.parametrize(
    "raw",
    [
        samples.out_of_office("ann@example.org"),
        samples.ordinary("bob@example.org"),
        b"",
        b"\x00\x01\x02 not a message at all",
        b"Subject: unsubscribe\r\n\r\n",  # a request in the bounce box is not a bounce
    ],
)
def test_what_is_not_a_bounce_is_left_for_a_person(raw: bytes) -> None:
    assert read_bounce(raw) is None


def test_an_unsubscribe_request_names_its_sender_and_campaign() -> None:
    request = read_unsubscribe_request(
        samples.unsubscribe_request("Ann Example <Ann@Example.org>", "9f8e7d")
    )
    assert request is not None
    assert request.address == "ann@example.org"
    assert request.campaign_key == "9f8e7d"
    reply = read_unsubscribe_request(
        samples.unsubscribe_request("ann@example.org", None).replace(
            b"Subject: unsubscribe", b"Subject: Re: UNSUBSCRIBE"
        )
    )
    assert reply is not None and reply.campaign_key is None


@pytest.mark.parametrize(
    "raw",
    [
        samples.ordinary("ann@example.org", subject="Please do not unsubscribe me"),
        samples.unsubscribe_request("not an address", "9f8e7d"),
        samples.unsubscribe_request("ann@example.org", "../../etc").replace(b"etc", b"et c"),
    ],
)
def test_what_is_not_an_unsubscribe_request(raw: bytes) -> None:
    request = read_unsubscribe_request(raw)
    assert request is None or request.campaign_key is None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4000))
def test_hostile_bytes_never_raise(raw: bytes) -> None:
    reading = read_bounce(raw)
    assert reading is None or all("@" in r.address for r in reading.recipients)
    read_unsubscribe_request(raw)


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200),
)
def test_hostile_dsn_fields_never_raise(recipient: str, diagnostic: str) -> None:
    raw = (
        samples.postfix("gone@example.net", ORIGINAL)
        .replace(
            b"Final-Recipient: rfc822; gone@example.net",
            f"Final-Recipient: rfc822; {recipient}".encode("utf-8", "surrogateescape"),
        )
        .replace(b"Diagnostic-Code: smtp;", f"Diagnostic-Code: smtp;{diagnostic}".encode())
    )
    reading = read_bounce(raw)
    if reading is not None:
        for bounced in reading.recipients:
            assert "\n" not in bounced.detail and "\r" not in bounced.detail
            assert len(bounced.detail) <= 300
