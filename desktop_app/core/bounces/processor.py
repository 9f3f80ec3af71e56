"""Reading one mailbox once: new messages since the last UID, each read, applied, and moved.

Idempotent by construction:
- the mailbox's UIDVALIDITY and last UID read are stored after each chunk, so a restart
  reads only what is new (a new UIDVALIDITY means the server renumbered: read it all again);
- every bounce is stored under its own Message-ID (or mailbox, UIDVALIDITY and UID) with a
  unique key, so reading a message again, or the same bounce delivered twice, counts once;
- recognised messages are moved to the processed folder (MOVE, else COPY and leave the
  original marked read); unrecognised ones stay where they are and are listed for a person.
  Nothing is ever deleted.
"""

from __future__ import annotations

import email
import email.policy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from desktop_app.core.bounces.delivery_probes import probe_token
from desktop_app.core.bounces.imap_session import (
    MailboxError,
    hierarchy_delimiter,
    server_words,
)
from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole, server_folder
from desktop_app.core.bounces.reading import read_bounce, read_unsubscribe_request
from desktop_app.core.storage.bounces import Applied, BounceRepository
from desktop_app.core.storage.delivery_probes import DeliveryProbeRepository
from desktop_app.core.storage.mailboxes import MailboxRepository

log = logging.getLogger(__name__)

#: Messages fetched per round trip.
CHUNK = 50
#: Bigger than this is not a bounce: left in place, listed as unrecognised.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass
class MailboxReport:
    """What one pass over one mailbox found."""

    mailbox: str
    read: int = 0
    applied: Applied = field(default_factory=Applied)
    unrecognised: list[tuple[int, str, str]] = field(default_factory=list)  # uid, from, subject
    moved: int = 0
    probes_seen: int = 0


def process_mailbox(
    client: IMAPClient,
    mailbox: MailboxConfig,
    bounces: BounceRepository,
    mailboxes: MailboxRepository,
    *,
    soft_limit: int,
    probes: DeliveryProbeRepository | None = None,
    on_applied: Callable[[Applied], None] | None = None,
) -> MailboxReport:
    """One pass; raises ``MailboxError`` (one line) when the server fails mid-way. What was
    applied before the failure stays applied, and its position is stored."""
    assert mailbox.id is not None
    report = MailboxReport(mailbox.name)
    try:
        # Folders are stored as typed ("Relaydesk/Processed"); the server may want "." instead.
        delimiter = hierarchy_delimiter(client)
        folder = server_folder(mailbox.folder, delimiter)
        processed_folder = server_folder(mailbox.processed_folder, delimiter)
        selected = client.select_folder(folder)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        last_uid = mailbox.last_uid if mailbox.uidvalidity == uidvalidity else 0
        # "n:*" always matches the last message, even when its UID is below n.
        uids = sorted(uid for uid in client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)
        if uids and not client.folder_exists(processed_folder):
            client.create_folder(processed_folder)
        for start in range(0, len(uids), CHUNK):
            chunk = uids[start : start + CHUNK]
            sizes = client.fetch(chunk, ["RFC822.SIZE"])
            small = [
                uid
                for uid in chunk
                if sizes.get(uid, {}).get(b"RFC822.SIZE", 0) <= MAX_MESSAGE_BYTES
            ]
            fetched = client.fetch(small, ["BODY.PEEK[]", "INTERNALDATE"]) if small else {}
            recognised: list[int] = []
            for uid in chunk:
                item = fetched.get(uid, {})
                raw = item.get(b"BODY[]")
                report.read += 1
                if not isinstance(raw, bytes):
                    applied = None
                elif mailbox.role is MailboxRole.SEED:
                    applied = _seen_probe(raw, item.get(b"INTERNALDATE"), probes, report)
                else:
                    applied = _apply(raw, mailbox, uidvalidity, uid, bounces, soft_limit)
                if applied is None:
                    sender, subject = _summary(raw if isinstance(raw, bytes) else b"")
                    bounces.add_unrecognised(mailbox.id, uidvalidity, uid, sender, subject)
                    report.unrecognised.append((uid, sender, subject))
                    continue
                recognised.append(uid)
                report.applied.merge(applied)
                if on_applied is not None:
                    on_applied(applied)
            if recognised:
                report.moved += _move(client, recognised, processed_folder)
            mailboxes.record_position(mailbox.id, uidvalidity, chunk[-1])
    except IMAPClientError as error:
        raise MailboxError(f"mailbox {mailbox.name!r}: {server_words(error)}") from None
    except OSError as error:
        raise MailboxError(f"mailbox {mailbox.name!r}: {error.strerror or error}") from None
    return report


def _apply(
    raw: bytes,
    mailbox: MailboxConfig,
    uidvalidity: int,
    uid: int,
    bounces: BounceRepository,
    soft_limit: int,
) -> Applied | None:
    position_key = f"{mailbox.uid}:{uidvalidity}:{uid}"
    if mailbox.role is MailboxRole.UNSUBSCRIBE:
        request = read_unsubscribe_request(raw)
        if request is None:
            return None
        return bounces.apply_unsubscribe(
            request, bounce_key=request.message_id or position_key, mailbox_id=mailbox.id
        )
    reading = read_bounce(raw)
    if reading is None:
        return None
    return bounces.apply_bounce(
        reading,
        bounce_key=reading.bounce_message_id or position_key,
        mailbox_id=mailbox.id,
        soft_limit=soft_limit,
    )


def _seen_probe(
    raw: bytes,
    arrived: object,
    probes: DeliveryProbeRepository | None,
    report: MailboxReport,
) -> Applied | None:
    """A delivery probe in the seed mailbox: its arrival time is the server's INTERNALDATE."""
    token = probe_token(raw)
    if token is None or probes is None:
        return None
    seen_at = arrived.timestamp() if isinstance(arrived, datetime) else time.time()
    if probes.mark_seen(token, seen_at):
        report.probes_seen += 1
    return Applied()


def _move(client: IMAPClient, uids: list[int], folder: str) -> int:
    if client.has_capability("MOVE"):
        client.move(uids, folder)
    else:
        client.copy(uids, folder)
        client.add_flags(uids, [b"\\Seen"])
    return len(uids)


def _summary(raw: bytes) -> tuple[str, str]:
    if not raw:
        return "", "(too large to read)"
    try:
        headers = email.message_from_bytes(raw[:65536], policy=email.policy.default)
        sender, subject = str(headers.get("From", "")), str(headers.get("Subject", ""))
    except Exception:  # headers so broken the parser gives up: still listed for a person
        return "", "(unreadable headers)"
    return " ".join(sender.split())[:320], " ".join(subject.split())[:300]
