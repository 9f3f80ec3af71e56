"""Turning what a user wrote into exact RFC 5322 bytes, ready for the outbox.

The Message-ID is made here, once: retries and failover resend these same bytes, so a
recipient's mail client (and our duplicate counting) sees one message, not several.
"""

from __future__ import annotations

import email.policy
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.outbox import NewMessage
from desktop_app.core.validation import check_no_line_breaks, validate_address

# SMTP policy: CRLF line endings and 78-column folding, the bytes that go on the wire.
_WIRE_POLICY = email.policy.SMTP


def build_message(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str | None = None,
    html: str | None = None,
    now: float | None = None,
) -> NewMessage:
    """One message to all ``recipients`` (they all appear in To:, as a mail client does)."""
    sender = validate_address("from", sender)
    if not recipients:
        raise UserInputError("at least one recipient is required")
    to = [validate_address("to", r) for r in recipients]
    check_no_line_breaks("subject", subject)
    if text is None and html is None:
        raise UserInputError("a message needs a text or an HTML body")

    message = EmailMessage(policy=_WIRE_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.fromtimestamp(now or time.time(), UTC))
    domain = sender.rpartition("@")[2].strip("[]")
    message_id = make_msgid(domain=domain)
    message["Message-ID"] = message_id
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    else:
        assert html is not None
        message.set_content(html, subtype="html")
    return NewMessage(
        message_id=message_id,
        envelope_from=sender,
        recipients=tuple(to),
        subject=subject,
        raw=message.as_bytes(policy=_WIRE_POLICY),
    )


def build_one_per_recipient(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str | None = None,
    html: str | None = None,
) -> list[NewMessage]:
    """A separate message (own Message-ID) for every address: the ``--to-file`` form."""
    return [
        build_message(sender=sender, recipients=[r], subject=subject, text=text, html=html)
        for r in recipients
    ]
