"""Turning what a user wrote into exact RFC 5322 bytes, ready for the outbox.

The Message-ID is made here, once: retries and failover resend these same bytes, so a
recipient's mail client (and our duplicate counting) sees one message, not several.
"""

from __future__ import annotations

import email.policy
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.outbox import NewMessage
from desktop_app.core.validation import check_no_line_breaks, check_no_nul, validate_address


class _MemoizedHeaderRegistry(HeaderRegistry):
    """The email package's header registry, keeping the classes it makes.

    ``HeaderRegistry[name]`` builds a brand-new class with ``type()`` on every lookup, and
    every header set or parsed looks one up: about a third of the time it took to build a
    campaign message went there. The class depends only on the name, so one per name does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


# SMTP policy: CRLF line endings and 78-column folding, the bytes that go on the wire.
# cte_type 7bit: non-ASCII bodies get quoted-printable/base64 instead of raw 8-bit, which
# a server may only be sent after advertising 8BITMIME, and with BODY=8BITMIME on MAIL FROM
# (RFC 6152). The bytes are fixed at enqueue, before we know which provider will take them.
_WIRE_POLICY = email.policy.SMTP.clone(cte_type="7bit", header_factory=_MemoizedHeaderRegistry())
WIRE_POLICY = _WIRE_POLICY  # public name for other builders (campaigns/message.py)


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
    if text is not None:
        check_no_nul("text body", text)
    if html is not None:
        check_no_nul("HTML body", html)

    message = EmailMessage(policy=_WIRE_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    # The email package decodes RFC 2047 encoded words on assignment ("=?utf-8?q?=0D=0A?="
    # is CR LF), and Pythons without the CVE-2024-6923 / CVE-2026-1299 fixes write such a
    # decoded line break out verbatim: a header injection. Check what was actually stored.
    check_no_line_breaks("subject", str(message["Subject"]))
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
