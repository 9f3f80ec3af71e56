"""A personalised campaign of 1,000 messages through the real engine to a real SMTP server.

Built by ``campaigns/message.py``, queued with ``Workspace.queue`` in one transaction,
delivered by the ``DeliveryEngine`` to a ``ScriptedSMTPServer`` on loopback; every message
the server took in is parsed back and checked against the recipient it was made for.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from desktop_app.core.campaigns.message import (
    CampaignSettings,
    Recipient,
    build_campaign_messages,
    verify_unsubscribe_token,
)
from desktop_app.core.campaigns.templates import TemplateSet
from tests.support.scripted_smtp import ScriptedSMTPServer

COUNT = 1000
SECRET = b"integration-secret"
CITIES = ["Oslo", "Zürich", "São Paulo", "Kraków", "東京"]


def _recipient(index: int) -> Recipient:
    return Recipient(
        f"reader{index}@example.net",
        f"Reader {index} Ünlü",
        {"city": CITIES[index % len(CITIES)], "code": f"C-{index:04d}"},
    )


@pytest.mark.slow
@pytest.mark.asyncio
async def test_thousand_personalised_messages_arrive_intact(
    scripted_smtp: Callable[..., ScriptedSMTPServer], delivery: Any
) -> None:
    server = scripted_smtp()
    delivery.add_provider("primary", server.port, max_connections=4)
    campaign = CampaignSettings(
        campaign_key="campaign-42",
        from_address="news@example.com",
        from_name="Example News",
        reply_to="help@example.com",
        templates=TemplateSet(
            subject="{{ name }}: your code {{ code }}",
            html=(
                "<h1>Hello {{ name }}</h1><p>Weather in {{ city }} &amp; more.</p>\n"
                ".a line starting with a dot\n"
                "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>"
            ),
        ),
        unsubscribe_mailto="unsubscribe@example.com",
        unsubscribe_url="https://example.com/u",
        unsubscribe_secret=SECRET,
        headers={"X-Campaign": "42"},
    )
    recipients = [_recipient(index) for index in range(COUNT)]
    messages = build_campaign_messages(campaign, recipients)
    delivery.ws.queue(messages)

    await delivery.run_until_idle(timeout=120)

    assert delivery.ws.outbox.counts().sent == COUNT
    received = server.messages
    assert len(received) == COUNT
    by_recipient = {message.rcpt_tos: message for message in received}
    assert len(by_recipient) == COUNT
    expected_ids = {m.recipients[0]: m.message_id for m in messages}
    for index, recipient in enumerate(recipients):
        got = by_recipient[(recipient.email,)]
        assert got.mail_from == "news@example.com"
        parsed = email.message_from_bytes(got.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        assert not parsed.defects, (index, parsed.defects)
        _check_headers(parsed, recipient, expected_ids[recipient.email])
        _check_bodies(parsed, recipient)


def _check_headers(parsed: EmailMessage, recipient: Recipient, message_id: str) -> None:
    assert parsed["From"].addresses[0].display_name == "Example News"
    assert parsed["From"].addresses[0].addr_spec == "news@example.com"
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == (recipient.name, recipient.email)
    assert str(parsed["Reply-To"]) == "help@example.com"
    assert str(parsed["Subject"]) == f"{recipient.name}: your code {recipient.fields['code']}"
    assert parsed["Date"].datetime is not None and parsed["Date"].datetime.tzinfo is not None
    assert str(parsed["Message-ID"]) == message_id
    assert message_id.endswith("@example.com>")
    assert str(parsed["X-Campaign"]) == "42"
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    https, mailto = (entry.strip()[1:-1] for entry in str(parsed["List-Unsubscribe"]).split(","))
    assert mailto == "mailto:unsubscribe@example.com?subject=unsubscribe%20campaign-42"
    query = parse_qs(urlsplit(https).query)
    assert query["email"] == [recipient.email]
    assert verify_unsubscribe_token(SECRET, "campaign-42", recipient.email, query["token"][0])
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert len(parsed.get_all(name) or []) == 1, name


def _check_bodies(parsed: EmailMessage, recipient: Recipient) -> None:
    city = recipient.fields["city"]
    html = parsed.get_body(("html",))
    text = parsed.get_body(("plain",))
    assert html is not None and text is not None
    html_content = html.get_content()
    assert f"<h1>Hello {recipient.name}</h1>" in html_content
    assert f"<p>Weather in {city} &amp; more.</p>" in html_content
    assert "\n.a line starting with a dot" in html_content.replace("\r\n", "\n")
    text_content = text.get_content().replace("\r\n", "\n")
    assert text_content.startswith(f"Hello {recipient.name}\n\nWeather in {city} & more.")
    assert "Unsubscribe (https://example.com/u?campaign=campaign-42&email=" in text_content
