"""What bounces, refusals and unsubscribe requests did: events stored once, suppressions,
subscriber statuses, and outbox messages marked ``bounced``.

Every reading is applied in one transaction, and each (bounce, address, kind) is stored at
most once (a unique key), so reading the same mailbox twice, or the same bounce delivered
twice, changes nothing the second time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import String, cast, exists, func, literal, select, update
from sqlalchemy.engine import Connection

from desktop_app.core.bounces.reading import BounceReading, UnsubscribeRequest
from desktop_app.core.models import MessageState, OutcomeClass
from desktop_app.core.storage.changes import Topic, bump
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.dialect import insert_unless_present
from desktop_app.core.storage.schema import (
    AttemptRow,
    BounceEventRow,
    CampaignRow,
    OutboxRow,
    SubscriberRow,
    SuppressionRow,
    UnrecognisedMessageRow,
)


class EventKind:
    HARD = "hard"
    SOFT = "soft"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class BounceEvent:
    id: int
    kind: str
    address: str
    received_at: float
    status: str | None
    detail: str
    message_id: str | None
    campaign: str | None


@dataclass(frozen=True, slots=True)
class UnrecognisedMessage:
    mailbox_id: int
    uid: int
    sender: str
    subject: str
    received_at: float


@dataclass
class Applied:
    """What one reading changed (counts only what was new)."""

    hard: list[str] = field(default_factory=list)
    soft: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    repeated: int = 0  # already recorded before

    def merge(self, other: Applied) -> None:
        self.hard += other.hard
        self.soft += other.soft
        self.unsubscribed += other.unsubscribed
        self.suppressed += other.suppressed
        self.repeated += other.repeated


class BounceRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    def apply_bounce(
        self,
        reading: BounceReading,
        *,
        bounce_key: str,
        mailbox_id: int | None,
        soft_limit: int,
        now: float | None = None,
    ) -> Applied:
        now = time.time() if now is None else now
        applied = Applied()
        with self._database.write() as connection:
            outbox_id, campaign_id = _original(connection, reading.original_message_id)
            for recipient in reading.recipients:
                kind = EventKind.HARD if recipient.permanent else EventKind.SOFT
                new = _record(
                    connection,
                    mailbox_id=mailbox_id,
                    kind=kind,
                    address=recipient.address,
                    bounce_key=bounce_key,
                    outbox_id=outbox_id,
                    campaign_id=campaign_id,
                    message_id=reading.original_message_id,
                    status=recipient.status,
                    detail=recipient.detail,
                    now=now,
                )
                if not new:
                    applied.repeated += 1
                    continue
                if recipient.permanent:
                    applied.hard.append(recipient.address)
                    detail = f"hard bounce {recipient.status or ''} {recipient.detail}".strip()
                    if _suppress(connection, recipient.address, "bounced", detail, now):
                        applied.suppressed.append(recipient.address)
                    _mark_bounced(connection, outbox_id, recipient.address, now)
                else:
                    applied.soft.append(recipient.address)
                    count = _soft_count(connection, recipient.address)
                    if count >= soft_limit:
                        detail = f"{count} soft bounces, the last: {recipient.detail}".strip()
                        if _suppress(connection, recipient.address, "bounced", detail, now):
                            applied.suppressed.append(recipient.address)
                        _set_subscriber_status(connection, recipient.address, "bounced", now)
        return applied

    def apply_unsubscribe(
        self,
        request: UnsubscribeRequest,
        *,
        bounce_key: str,
        mailbox_id: int | None,
        now: float | None = None,
    ) -> Applied:
        now = time.time() if now is None else now
        applied = Applied()
        with self._database.write() as connection:
            campaign_id = None
            if request.campaign_key:
                campaign_id = connection.execute(
                    select(CampaignRow.id).where(CampaignRow.uid == request.campaign_key)
                ).scalar()
            new = _record(
                connection,
                mailbox_id=mailbox_id,
                kind=EventKind.UNSUBSCRIBE,
                address=request.address,
                bounce_key=bounce_key,
                outbox_id=None,
                campaign_id=campaign_id,
                message_id=None,
                status=None,
                detail="unsubscribe request by mail",
                now=now,
            )
            if not new:
                applied.repeated += 1
                return applied
            applied.unsubscribed.append(request.address)
            if _suppress(connection, request.address, "unsubscribed", "asked by mail", now):
                applied.suppressed.append(request.address)
            _set_subscriber_status(connection, request.address, "unsubscribed", now)
        return applied

    def record_refusals(self, campaign_ids: Sequence[int], *, now: float | None = None) -> Applied:
        """An immediate 5xx to RCPT TO is a hard bounce too: record each refused campaign
        message once, suppress its address and mark its subscriber bounced."""
        now = time.time() if now is None else now
        applied = Applied()
        if not campaign_ids:
            return applied
        with self._database.write() as connection:
            refused = connection.execute(
                select(
                    OutboxRow.id,
                    OutboxRow.campaign_id,
                    OutboxRow.message_id,
                    OutboxRow.recipients,
                    AttemptRow.enhanced_status,
                    AttemptRow.detail,
                )
                .join(AttemptRow, AttemptRow.outbox_id == OutboxRow.id)
                .where(
                    OutboxRow.campaign_id.in_(list(campaign_ids)),
                    OutboxRow.state == MessageState.FAILED.value,
                    AttemptRow.outcome == OutcomeClass.RECIPIENT_PERMANENT.value,
                    ~exists().where(
                        BounceEventRow.bounce_key
                        == literal("refused:") + cast(OutboxRow.id, String)
                    ),
                )
            ).all()
            for outbox_id, campaign_id, message_id, recipients, status, detail in refused:
                for address in recipients:
                    key = address.lower()
                    if not _record(
                        connection,
                        mailbox_id=None,
                        kind=EventKind.HARD,
                        address=key,
                        bounce_key=f"refused:{outbox_id}",
                        outbox_id=outbox_id,
                        campaign_id=campaign_id,
                        message_id=message_id,
                        status=status,
                        detail=f"refused at RCPT TO: {detail or ''}".strip(),
                        now=now,
                    ):
                        continue
                    applied.hard.append(key)
                    if _suppress(connection, key, "bounced", f"refused: {detail or ''}", now):
                        applied.suppressed.append(key)
                    _set_subscriber_status(connection, key, "bounced", now)
        return applied

    def add_unrecognised(
        self, mailbox_id: int, uidvalidity: int, uid: int, sender: str, subject: str
    ) -> None:
        with self._database.write() as connection:
            insert_unless_present(
                connection,
                UnrecognisedMessageRow,
                ["mailbox_id", "uidvalidity", "uid"],
                {
                    "mailbox_id": mailbox_id,
                    "uidvalidity": uidvalidity,
                    "uid": uid,
                    "sender": sender[:320],
                    "subject": subject[:300],
                    "received_at": time.time(),
                },
            )

    def events(self, *, limit: int = 1000) -> list[BounceEvent]:
        with self._database.read() as connection:
            rows = connection.execute(
                select(BounceEventRow.__table__, CampaignRow.name.label("campaign_name"))
                .outerjoin(CampaignRow, CampaignRow.id == BounceEventRow.campaign_id)
                .order_by(BounceEventRow.received_at.desc(), BounceEventRow.id.desc())
                .limit(limit)
            ).all()
        return [
            BounceEvent(
                id=row.id,
                kind=row.kind,
                address=row.address,
                received_at=row.received_at,
                status=row.status,
                detail=row.detail,
                message_id=row.message_id,
                campaign=row.campaign_name,
            )
            for row in rows
        ]

    def unrecognised(self) -> list[UnrecognisedMessage]:
        with self._database.read() as connection:
            rows = connection.execute(
                select(UnrecognisedMessageRow).order_by(UnrecognisedMessageRow.received_at.desc())
            ).all()
            return [
                UnrecognisedMessage(r.mailbox_id, r.uid, r.sender, r.subject, r.received_at)
                for r in rows
            ]

    def campaign_counts(self, campaign_id: int) -> dict[str, int]:
        """Hard and soft bounces and unsubscribe requests attributed to a campaign."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(BounceEventRow.kind, func.count())
                .where(BounceEventRow.campaign_id == campaign_id)
                .group_by(BounceEventRow.kind)
            ).all()
        return {kind: count for kind, count in rows}


def _original(connection: Connection, message_id: str | None) -> tuple[int | None, int | None]:
    if message_id is None:
        return None, None
    row = connection.execute(
        select(OutboxRow.id, OutboxRow.campaign_id)
        .where(OutboxRow.message_id == message_id)
        .order_by(OutboxRow.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


def _record(connection: Connection, **values: object) -> bool:
    """Insert the event unless it is already there; True when it was new."""
    values["received_at"] = values.pop("now")
    return insert_unless_present(
        connection, BounceEventRow, ["bounce_key", "address", "kind"], dict(values)
    )


def _suppress(connection: Connection, address: str, reason: str, detail: str, now: float) -> bool:
    return insert_unless_present(
        connection,
        SuppressionRow,
        ["email_key"],
        {"email_key": address, "reason": reason, "detail": detail[:300], "created_at": now},
    )


def _set_subscriber_status(connection: Connection, address: str, status: str, now: float) -> None:
    # On every list: an address that bounces, bounces for all of them.
    connection.execute(
        update(SubscriberRow)
        .where(SubscriberRow.email_key == address, SubscriberRow.status == "active")
        .values(status=status, updated_at=now)
    )


def _mark_bounced(connection: Connection, outbox_id: int | None, address: str, now: float) -> None:
    _set_subscriber_status(connection, address, "bounced", now)
    if outbox_id is None:
        return
    # Only a message to this one address is "bounced" as a whole (campaign mail always is).
    row = connection.execute(
        select(OutboxRow.recipients, OutboxRow.state).where(OutboxRow.id == outbox_id)
    ).first()
    if row is not None and [r.lower() for r in row[0]] == [address] and row[1] == "sent":
        connection.execute(
            update(OutboxRow)
            .where(OutboxRow.id == outbox_id)
            .values(state=MessageState.BOUNCED.value, updated_at=now)
        )
        bump(connection, Topic.OUTBOX)


def _soft_count(connection: Connection, address: str) -> int:
    return int(
        connection.scalar(
            select(func.count()).where(
                BounceEventRow.address == address, BounceEventRow.kind == EventKind.SOFT
            )
        )
        or 0
    )
