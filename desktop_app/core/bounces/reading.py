"""What a message in a bounce or unsubscribe mailbox says (pure: bytes in, a reading out).

Bounces: flufl.bounce recognises which addresses bounced, and whether permanently, in the
standard delivery status notifications (RFC 3464) and in the many formats MTAs used before
and beside it (Exim, Exchange, qmail, ...); a bounce detector is a long tail of heuristics
that library has kept up for fifteen years, so it is not rewritten here. On top of it this
module reads the DSN's own per-recipient Status and Diagnostic-Code, when there is one, and
the returned original's Message-ID, which is how a bounce finds its outbox message.

Unsubscribe requests: mail to the ``List-Unsubscribe`` mailto address, whose subject is
``unsubscribe <campaign key>`` (campaigns/message.py writes it so).
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import logging
import re
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

log = logging.getLogger(__name__)

#: Longest detail kept from a DSN's Diagnostic-Code.
MAX_DETAIL = 300

_MESSAGE_ID_LINE = re.compile(rb"^message-id:\s*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_CAMPAIGN_KEY = re.compile(r"[A-Za-z0-9._-]{1,64}")
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*(?:re:\s*)?unsubscribe\b\s*(\S*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    address: str  # lower-cased
    permanent: bool
    status: str | None = None  # enhanced status code, e.g. "5.1.1"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BounceReading:
    """The addresses a bounce reports, and the Message-ID of the mail that bounced."""

    recipients: tuple[BouncedRecipient, ...]
    original_message_id: str | None
    bounce_message_id: str | None  # the bounce's own, to count a bounce read twice once


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    address: str  # the sender: one can only unsubscribe oneself
    campaign_key: str | None
    message_id: str | None


def read_bounce(raw: bytes) -> BounceReading | None:
    """The bounce in ``raw``, or None when it is not one a machine can read."""
    message = email.message_from_bytes(raw)  # compat32: what flufl.bounce expects
    try:
        temporary, permanent = all_failures(message)
    except Exception as error:  # a detector choking on odd input: a person looks at it
        log.warning("bounce detectors failed on a message: %s", error)
        return None
    details = _dsn_details(message)
    recipients: list[BouncedRecipient] = []
    for raw_address, is_permanent in [
        *((a, True) for a in sorted(permanent)),
        *((a, False) for a in sorted(temporary - permanent)),
    ]:
        address = _address(raw_address)
        if address is None:
            continue
        status, detail = details.get(address, (None, ""))
        if status is not None:  # the DSN's own code is the better judge
            is_permanent = status.startswith("5")
        recipients.append(BouncedRecipient(address, is_permanent, status, detail))
    if not recipients:
        return None
    return BounceReading(
        recipients=tuple(recipients),
        original_message_id=_original_message_id(message, raw),
        bounce_message_id=_clean_id(message.get("Message-ID")),
    )


def read_unsubscribe_request(raw: bytes) -> UnsubscribeRequest | None:
    """An unsubscribe request (subject starts with "unsubscribe"), or None."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    subject = str(message.get("Subject", ""))
    match = _UNSUBSCRIBE_SUBJECT.match(subject)
    if match is None:
        return None
    _, sender = email.utils.parseaddr(str(message.get("From", "")))
    if "@" not in sender or any(c.isspace() for c in sender):
        return None
    key = match.group(1) or None
    return UnsubscribeRequest(
        address=sender.lower(),
        campaign_key=key if key and _CAMPAIGN_KEY.fullmatch(key) else None,
        message_id=_clean_id(message.get("Message-ID")),
    )


# -- reading parts ---------------------------------------------------------------------------


def _dsn_details(message: Message) -> dict[str, tuple[str | None, str]]:
    """Per recipient (Final- or Original-Recipient): its Status code and diagnostic."""
    details: dict[str, tuple[str | None, str]] = {}
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        for block in blocks[1:]:  # the first block is about the reporting MTA
            if not isinstance(block, Message):
                continue
            recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
            address = _address(str(recipient).partition(";")[2]) if recipient else None
            if address is None:
                continue
            status_match = _STATUS.search(str(block.get("Status", "")))
            status = ".".join(status_match.groups()) if status_match else None
            diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
            detail = diagnostic.partition(";")[2].strip() or diagnostic
            details[address] = (status, detail[:MAX_DETAIL])
    return details


def _original_message_id(message: Message, raw: bytes) -> str | None:
    """From the returned message or its headers; else the first Message-ID line after the
    bounce's own headers (non-MIME bounces quote the original as text)."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found = _clean_id(payload[0].get("Message-ID"))
                if found:
                    return found
        elif content_type == "text/rfc822-headers":
            body = part.get_payload(decode=True)
            if isinstance(body, bytes):
                found = _id_in(body)
                if found:
                    return found
    _, _, body = raw.partition(b"\n\n")
    if not body:
        _, _, body = raw.partition(b"\r\n\r\n")
    return _id_in(body)


def _id_in(text: bytes) -> str | None:
    match = _MESSAGE_ID_LINE.search(text)
    return match.group(1).decode("ascii", "replace") if match else None


def _clean_id(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text if text.startswith("<") and text.endswith(">") and len(text) <= 255 else None


def _address(value: bytes | str) -> str | None:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    _, address = email.utils.parseaddr(text.strip())
    address = address.strip().lower()
    if "@" not in address or any(c.isspace() or c in "<>" for c in address):
        return None
    return address
