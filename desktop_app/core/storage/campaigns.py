"""Campaigns, their recipient snapshots, and their share of the outbox.

A campaign's recipients are copied from its list in one ``INSERT ... SELECT`` when sending
starts (100,000 rows in well under a second, no Python per row). The runner then renders
them a batch at a time, just ahead of delivery; each batch's outbox rows and the recipients'
``queued`` marks are one transaction, and that transaction first checks that the campaign
is still sending, so a pause or cancel can never be overtaken by a batch rendered meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from desktop_app.core.campaigns.lifecycle import CampaignState
from desktop_app.core.campaigns.message import Attachment
from desktop_app.core.campaigns.templates import TemplateSet
from desktop_app.core.errors import CampaignNotFoundError, ListNotFoundError, UserInputError
from desktop_app.core.models import MessageState
from desktop_app.core.storage.changes import Topic, bump
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.outbox import NewMessage, OutboxRepository
from desktop_app.core.storage.schema import (
    CampaignAttachmentRow,
    CampaignRecipientRow,
    CampaignRow,
    ListRow,
    OutboxRow,
    ProviderRow,
    SubscriberRow,
    SuppressionRow,
)


class RecipientState:
    """States of a campaign recipient before (or instead of) its outbox row."""

    PENDING = "pending"
    QUEUED = "queued"  # the outbox row (outbox_id) says the rest
    SKIPPED = "skipped"  # suppressed (or unsubscribed) since the list was copied
    FAILED = "failed"  # its message could not be built (a template error for this row)
    CANCELLED = "cancelled"


#: Outbox rows still to be delivered: waiting, in flight, held, or unknown with a retry
#: planned (an unknown message held for a person does not keep a campaign open).
_STILL_TO_DELIVER = or_(
    OutboxRow.state.in_(
        [
            MessageState.QUEUED.value,
            MessageState.SENDING.value,
            MessageState.DEFERRED.value,
            MessageState.HELD.value,
        ]
    ),
    and_(
        OutboxRow.state == MessageState.UNKNOWN.value,
        OutboxRow.next_attempt_at.is_not(None),
    ),
)
_MARK_RECIPIENT = (
    update(CampaignRecipientRow)
    .where(CampaignRecipientRow.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        outbox_id=bindparam("b_outbox"),
        detail=bindparam("b_detail"),
    )
)


@dataclass(frozen=True, slots=True)
class CampaignDraft:
    """What a person writes: everything needed to create or edit a campaign."""

    name: str
    list_name: str
    from_address: str
    subject: str
    html: str | None = None
    text: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    headers: dict[str, str] | None = None
    #: None keeps a campaign's attachments as they are when editing.
    attachments: tuple[Attachment, ...] | None = None

    @property
    def templates(self) -> TemplateSet:
        return TemplateSet(subject=self.subject, html=self.html, text=self.text)


@dataclass(frozen=True, slots=True)
class Campaign:
    """A stored campaign."""

    id: int
    uid: str
    name: str
    list_id: int | None
    list_name: str
    from_address: str
    from_name: str | None
    reply_to: str | None
    subject: str
    html: str | None
    text: str | None
    unsubscribe_url: str | None
    unsubscribe_mailto: str | None
    headers: dict[str, str]
    state: CampaignState
    scheduled_at: float | None
    pause_reason: str | None
    recipients_total: int | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def templates(self) -> TemplateSet:
        return TemplateSet(subject=self.subject, html=self.html, text=self.text)

    @property
    def started(self) -> bool:
        """Its recipients have been copied from the list (sending began at least once)."""
        return self.recipients_total is not None

    def as_draft(self) -> CampaignDraft:
        return CampaignDraft(
            name=self.name,
            list_name=self.list_name,
            from_address=self.from_address,
            subject=self.subject,
            html=self.html,
            text=self.text,
            from_name=self.from_name,
            reply_to=self.reply_to,
            unsubscribe_url=self.unsubscribe_url,
            unsubscribe_mailto=self.unsubscribe_mailto,
            headers=dict(self.headers),
        )


@dataclass(frozen=True, slots=True)
class PendingRecipient:
    """A recipient waiting to be rendered."""

    id: int
    email: str
    email_key: str
    name: str
    fields: dict[str, Any]
    #: Put on the suppression list after the list was copied: it gets nothing.
    suppressed: bool = False


@dataclass(frozen=True, slots=True)
class RenderedBatch:
    """What the runner made of a batch: messages to queue, and rows that will not get one."""

    queued: Sequence[tuple[int, NewMessage]]  # (recipient id, message)
    failed: Sequence[tuple[int, str]] = ()  # (recipient id, why)
    skipped: Sequence[tuple[int, str]] = ()


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    """One recipient's line in a report or its CSV export."""

    email: str
    state: str
    provider: str | None
    detail: str | None
    sent_at: float | None


class CampaignRepository:
    """All reads and writes of campaigns and their recipients."""

    def __init__(self, database: Database, outbox: OutboxRepository) -> None:
        self._database = database
        self._outbox = outbox

    # -- campaigns -------------------------------------------------------------------------

    def create(self, draft: CampaignDraft, uid: str, *, now: float | None = None) -> Campaign:
        now = time.time() if now is None else now
        try:
            with self._database.write() as connection:
                list_id = _list_id(connection, draft.list_name)
                result = connection.execute(
                    insert(CampaignRow).values(
                        uid=uid,
                        state=CampaignState.DRAFT.value,
                        created_at=now,
                        updated_at=now,
                        **_content(draft, list_id),
                    )
                )
                (campaign_id,) = result.inserted_primary_key or (None,)
                assert campaign_id is not None
                _replace_attachments(connection, campaign_id, draft.attachments or ())
        except IntegrityError:
            raise UserInputError(f"a campaign named {draft.name!r} already exists") from None
        return self.get(draft.name)

    def update(self, name: str, draft: CampaignDraft) -> Campaign:
        """Replace a campaign's content (the caller checked that its state allows it)."""
        try:
            with self._database.write() as connection:
                campaign_id = _campaign_id(connection, name)
                list_id = _list_id(connection, draft.list_name)
                connection.execute(
                    update(CampaignRow)
                    .where(CampaignRow.id == campaign_id)
                    .values(updated_at=time.time(), **_content(draft, list_id))
                )
                if draft.attachments is not None:
                    _replace_attachments(connection, campaign_id, draft.attachments)
        except IntegrityError:
            raise UserInputError(f"a campaign named {draft.name!r} already exists") from None
        return self.get(draft.name)

    def delete(self, name: str) -> None:
        with self._database.write() as connection:
            campaign_id = _campaign_id(connection, name)
            for table in (CampaignRecipientRow, CampaignAttachmentRow):
                connection.execute(delete(table).where(table.campaign_id == campaign_id))
            connection.execute(delete(CampaignRow).where(CampaignRow.id == campaign_id))

    def get(self, name: str) -> Campaign:
        with self._database.read() as connection:
            row = connection.execute(
                select(CampaignRow).where(CampaignRow.name == name.strip())
            ).first()
        if row is None:
            raise CampaignNotFoundError(name)
        return _campaign(row)

    def get_by_id(self, campaign_id: int) -> Campaign | None:
        with self._database.read() as connection:
            row = connection.execute(
                select(CampaignRow).where(CampaignRow.id == campaign_id)
            ).first()
        return None if row is None else _campaign(row)

    def all(self) -> list[Campaign]:
        """Every campaign, newest first."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(CampaignRow).order_by(CampaignRow.created_at.desc(), CampaignRow.id.desc())
            ).all()
        return [_campaign(row) for row in rows]

    def in_state(self, *states: CampaignState) -> list[Campaign]:
        with self._database.read() as connection:
            rows = connection.execute(
                select(CampaignRow)
                .where(CampaignRow.state.in_([state.value for state in states]))
                .order_by(CampaignRow.id)
            ).all()
        return [_campaign(row) for row in rows]

    def attachments(self, campaign_id: int) -> tuple[Attachment, ...]:
        with self._database.read() as connection:
            rows = connection.execute(
                select(CampaignAttachmentRow)
                .where(CampaignAttachmentRow.campaign_id == campaign_id)
                .order_by(CampaignAttachmentRow.id)
            ).all()
        return tuple(
            Attachment(filename=row.filename, content=row.content, content_type=row.content_type)
            for row in rows
        )

    # -- state changes ---------------------------------------------------------------------

    def schedule(self, campaign_id: int, at: float) -> None:
        self._set(campaign_id, state=CampaignState.SCHEDULED.value, scheduled_at=at)

    def start(self, campaign_id: int, *, now: float | None = None) -> int:
        """Copy the list's sendable subscribers into the campaign and mark it sending.

        Returns how many recipients it has. Addresses on the suppression list are copied
        as ``skipped`` so the report can say why they received nothing.
        """
        now = time.time() if now is None else now
        with self._database.write() as connection:
            list_id = connection.execute(
                select(CampaignRow.list_id).where(CampaignRow.id == campaign_id)
            ).scalar()
            if list_id is None:
                raise UserInputError("the campaign's list no longer exists")
            suppressed = exists().where(SuppressionRow.email_key == SubscriberRow.email_key)
            snapshot = select(
                literal(campaign_id),
                SubscriberRow.id,
                SubscriberRow.email,
                SubscriberRow.email_key,
                SubscriberRow.name,
                SubscriberRow.fields,
                case(
                    (suppressed, literal(RecipientState.SKIPPED)),
                    else_=literal(RecipientState.PENDING),
                ),
                case((suppressed, literal("on the suppression list")), else_=None),
            ).where(SubscriberRow.list_id == list_id, SubscriberRow.status == "active")
            connection.execute(
                insert(CampaignRecipientRow).from_select(
                    [
                        "campaign_id",
                        "subscriber_id",
                        "email",
                        "email_key",
                        "name",
                        "fields",
                        "state",
                        "detail",
                    ],
                    snapshot,
                )
            )
            total = connection.scalar(
                select(func.count()).where(CampaignRecipientRow.campaign_id == campaign_id)
            )
            connection.execute(
                update(CampaignRow)
                .where(CampaignRow.id == campaign_id)
                .values(
                    state=CampaignState.SENDING.value,
                    recipients_total=total,
                    started_at=now,
                    pause_reason=None,
                    updated_at=now,
                )
            )
        return int(total or 0)

    def pause(self, campaign_id: int, reason: str) -> int:
        """Mark it paused and hold its waiting mail; returns how many messages were held."""
        with self._database.write() as connection:
            connection.execute(
                update(CampaignRow)
                .where(CampaignRow.id == campaign_id)
                .values(
                    state=CampaignState.PAUSED.value, pause_reason=reason, updated_at=time.time()
                )
            )
            return _hold(connection, [campaign_id])

    def resume(self, campaign_id: int, state: CampaignState) -> int:
        """Back to ``state``; its held mail is due now. Returns how many messages moved."""
        now = time.time()
        with self._database.write() as connection:
            connection.execute(
                update(CampaignRow)
                .where(CampaignRow.id == campaign_id)
                .values(state=state.value, pause_reason=None, updated_at=now)
            )
            result = connection.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.campaign_id == campaign_id,
                    OutboxRow.state == MessageState.HELD.value,
                )
                .values(state=MessageState.QUEUED.value, next_attempt_at=now, updated_at=now)
            )
            if result.rowcount:
                bump(connection, Topic.OUTBOX)
            return result.rowcount or 0

    def cancel(self, campaign_id: int) -> int:
        """Stop what is waiting (outbox rows and recipients not yet rendered); what was sent
        or is in flight right now stays. Returns how many were cancelled."""
        now = time.time()
        with self._database.write() as connection:
            connection.execute(
                update(CampaignRow)
                .where(CampaignRow.id == campaign_id)
                .values(state=CampaignState.CANCELLED.value, updated_at=now, finished_at=now)
            )
            recipients = connection.execute(
                update(CampaignRecipientRow)
                .where(
                    CampaignRecipientRow.campaign_id == campaign_id,
                    CampaignRecipientRow.state == RecipientState.PENDING,
                )
                .values(state=RecipientState.CANCELLED)
            )
            outbox = connection.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.campaign_id == campaign_id,
                    OutboxRow.state.in_(
                        [
                            MessageState.QUEUED.value,
                            MessageState.DEFERRED.value,
                            MessageState.HELD.value,
                            MessageState.UNKNOWN.value,
                        ]
                    ),
                )
                .values(state=MessageState.CANCELLED.value, next_attempt_at=None, updated_at=now)
            )
            if outbox.rowcount:
                bump(connection, Topic.OUTBOX)
            return (recipients.rowcount or 0) + (outbox.rowcount or 0)

    def complete(self, campaign_id: int, *, now: float | None = None) -> bool:
        """Mark a sending campaign completed if nothing is left to do; True if it was."""
        now = time.time() if now is None else now
        with self._database.write() as connection:
            if _open_work(connection, campaign_id):
                return False
            result = connection.execute(
                update(CampaignRow)
                .where(
                    CampaignRow.id == campaign_id,
                    CampaignRow.state == CampaignState.SENDING.value,
                )
                .values(state=CampaignState.COMPLETED.value, finished_at=now, updated_at=now)
            )
            return bool(result.rowcount)

    def hold_paused(self) -> int:
        """Hold mail of paused campaigns that became waiting again since the pause (an
        attempt in flight at the time that was deferred). Returns how many were held."""
        with self._database.write() as connection:
            paused = list(
                connection.execute(
                    select(CampaignRow.id).where(CampaignRow.state == CampaignState.PAUSED.value)
                ).scalars()
            )
            return _hold(connection, paused) if paused else 0

    # -- feeding the outbox ------------------------------------------------------------------

    def pending_batch(self, campaign_id: int, limit: int) -> list[PendingRecipient]:
        with self._database.read() as connection:
            rows = connection.execute(
                select(
                    CampaignRecipientRow.id,
                    CampaignRecipientRow.email,
                    CampaignRecipientRow.email_key,
                    CampaignRecipientRow.name,
                    CampaignRecipientRow.fields,
                )
                .where(
                    CampaignRecipientRow.campaign_id == campaign_id,
                    CampaignRecipientRow.state == RecipientState.PENDING,
                )
                .order_by(CampaignRecipientRow.id)
                .limit(limit)
            ).all()
            keys = [row.email_key for row in rows]
            suppressed = (
                set(
                    connection.execute(
                        select(SuppressionRow.email_key).where(SuppressionRow.email_key.in_(keys))
                    ).scalars()
                )
                if keys
                else set()
            )
        return [
            PendingRecipient(
                id=row.id,
                email=row.email,
                email_key=row.email_key,
                name=row.name,
                fields=row.fields,
                suppressed=row.email_key in suppressed,
            )
            for row in rows
        ]

    def store_batch(self, campaign_id: int, batch: RenderedBatch) -> bool:
        """Queue a rendered batch and mark its recipients, in ONE transaction, but only if
        the campaign is still sending (False: it was paused or cancelled meanwhile)."""
        with self._database.write() as connection:
            state = connection.execute(
                select(CampaignRow.state).where(CampaignRow.id == campaign_id)
            ).scalar()
            if state != CampaignState.SENDING.value:
                return False
            outbox_ids = self._outbox.enqueue_in(connection, [m for _, m in batch.queued])
            marks = [
                {
                    "b_id": recipient_id,
                    "b_state": RecipientState.QUEUED,
                    "b_outbox": outbox_id,
                    "b_detail": None,
                }
                for (recipient_id, _), outbox_id in zip(batch.queued, outbox_ids, strict=True)
            ]
            for state_name, rows in (
                (RecipientState.FAILED, batch.failed),
                (RecipientState.SKIPPED, batch.skipped),
            ):
                marks.extend(
                    {
                        "b_id": recipient_id,
                        "b_state": state_name,
                        "b_outbox": None,
                        "b_detail": detail[:300],
                    }
                    for recipient_id, detail in rows
                )
            if marks:
                connection.execute(_MARK_RECIPIENT, marks)
            return True

    def backlog(self, campaign_id: int) -> int:
        """Messages of the campaign queued in the outbox and not yet taken by the engine."""
        with self._database.read() as connection:
            return int(
                connection.scalar(
                    select(func.count()).where(
                        OutboxRow.campaign_id == campaign_id,
                        OutboxRow.state.in_(
                            [MessageState.QUEUED.value, MessageState.DEFERRED.value]
                        ),
                    )
                )
                or 0
            )

    def pending_work(self, *, now: float | None = None) -> int:
        """Campaigns the runner still has to move along: sending ones (recipients to render,
        or completion to record) and scheduled ones that are due. ``run --until-idle``
        waits for these as for queued mail."""
        now = time.time() if now is None else now
        with self._database.read() as connection:
            return int(
                connection.scalar(
                    select(func.count()).where(
                        or_(
                            CampaignRow.state == CampaignState.SENDING.value,
                            and_(
                                CampaignRow.state == CampaignState.SCHEDULED.value,
                                CampaignRow.scheduled_at <= now,
                            ),
                        )
                    )
                )
                or 0
            )

    # -- figures ---------------------------------------------------------------------------

    def counts(self, campaign_id: int) -> dict[str, int]:
        """Recipients by state: not yet queued ones by their own state, the rest by their
        outbox row's (sent, deferred, failed...)."""
        with self._database.read() as connection:
            return _counts(connection, campaign_id)

    def counts_by_provider(self, campaign_id: int) -> dict[str, int]:
        """Sent messages by the provider that took them."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(func.coalesce(ProviderRow.name, "(removed provider)"), func.count())
                .select_from(OutboxRow)
                .outerjoin(ProviderRow, ProviderRow.id == OutboxRow.provider_id)
                .where(
                    OutboxRow.campaign_id == campaign_id,
                    OutboxRow.state == MessageState.SENT.value,
                )
                .group_by(ProviderRow.name)
            ).all()
        return {name: count for name, count in rows}

    def outcomes(
        self, campaign_id: int, *, failures_only: bool = False
    ) -> Iterator[RecipientOutcome]:
        """Every recipient's state, provider and detail, in list order (keyset pages)."""
        last_id = 0
        while True:
            with self._database.read() as connection:
                query = (
                    select(
                        CampaignRecipientRow.id,
                        CampaignRecipientRow.email,
                        func.coalesce(OutboxRow.state, CampaignRecipientRow.state),
                        ProviderRow.name,
                        func.coalesce(OutboxRow.last_error, CampaignRecipientRow.detail),
                        OutboxRow.sent_at,
                    )
                    .select_from(CampaignRecipientRow)
                    .outerjoin(OutboxRow, OutboxRow.id == CampaignRecipientRow.outbox_id)
                    .outerjoin(ProviderRow, ProviderRow.id == OutboxRow.provider_id)
                    .where(
                        CampaignRecipientRow.campaign_id == campaign_id,
                        CampaignRecipientRow.id > last_id,
                    )
                    .order_by(CampaignRecipientRow.id)
                    .limit(5000)
                )
                if failures_only:
                    query = query.where(
                        func.coalesce(OutboxRow.state, CampaignRecipientRow.state)
                        == MessageState.FAILED.value
                    )
                rows = connection.execute(query).all()
            if not rows:
                return
            for row in rows:
                yield RecipientOutcome(
                    email=row[1], state=row[2], provider=row[3], detail=row[4], sent_at=row[5]
                )
            last_id = rows[-1][0]

    # -- helpers ---------------------------------------------------------------------------

    def _set(self, campaign_id: int, **values: Any) -> None:
        with self._database.write() as connection:
            connection.execute(
                update(CampaignRow)
                .where(CampaignRow.id == campaign_id)
                .values(updated_at=time.time(), **values)
            )


def _content(draft: CampaignDraft, list_id: int) -> dict[str, Any]:
    return {
        "name": draft.name,
        "list_id": list_id,
        "list_name": draft.list_name,
        "from_address": draft.from_address,
        "from_name": draft.from_name,
        "reply_to": draft.reply_to,
        "subject": draft.subject,
        "html_body": draft.html,
        "text_body": draft.text,
        "unsubscribe_url": draft.unsubscribe_url,
        "unsubscribe_mailto": draft.unsubscribe_mailto,
        "headers": dict(draft.headers or {}),
    }


def _replace_attachments(
    connection: Connection, campaign_id: int, attachments: Sequence[Attachment]
) -> None:
    connection.execute(
        delete(CampaignAttachmentRow).where(CampaignAttachmentRow.campaign_id == campaign_id)
    )
    if attachments:
        connection.execute(
            insert(CampaignAttachmentRow),
            [
                {
                    "campaign_id": campaign_id,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "content": a.content,
                }
                for a in attachments
            ],
        )


def _campaign_id(connection: Connection, name: str) -> int:
    campaign_id = connection.execute(
        select(CampaignRow.id).where(CampaignRow.name == name.strip())
    ).scalar()
    if campaign_id is None:
        raise CampaignNotFoundError(name)
    return int(campaign_id)


def _list_id(connection: Connection, name: str) -> int:
    list_id = connection.execute(select(ListRow.id).where(ListRow.name == name.strip())).scalar()
    if list_id is None:
        raise ListNotFoundError(name)
    return int(list_id)


def _hold(connection: Connection, campaign_ids: Sequence[int]) -> int:
    result = connection.execute(
        update(OutboxRow)
        .where(
            OutboxRow.campaign_id.in_(list(campaign_ids)),
            OutboxRow.state.in_([MessageState.QUEUED.value, MessageState.DEFERRED.value]),
        )
        .values(state=MessageState.HELD.value, next_attempt_at=None, updated_at=time.time())
    )
    if result.rowcount:
        bump(connection, Topic.OUTBOX)
    return result.rowcount or 0


def _open_work(connection: Connection, campaign_id: int) -> bool:
    pending = connection.scalar(
        select(func.count()).where(
            CampaignRecipientRow.campaign_id == campaign_id,
            CampaignRecipientRow.state == RecipientState.PENDING,
        )
    )
    waiting = connection.scalar(
        select(func.count()).where(
            OutboxRow.campaign_id == campaign_id,
            _STILL_TO_DELIVER,
        )
    )
    return bool(pending) or bool(waiting)


def _counts(connection: Connection, campaign_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state, count in connection.execute(
        select(CampaignRecipientRow.state, func.count())
        .where(
            CampaignRecipientRow.campaign_id == campaign_id,
            CampaignRecipientRow.state != RecipientState.QUEUED,
        )
        .group_by(CampaignRecipientRow.state)
    ):
        counts[state] = counts.get(state, 0) + count
    for state, count in connection.execute(
        select(OutboxRow.state, func.count())
        .where(OutboxRow.campaign_id == campaign_id)
        .group_by(OutboxRow.state)
    ):
        counts[state] = counts.get(state, 0) + count
    return counts


def _campaign(row: Any) -> Campaign:
    return Campaign(
        id=row.id,
        uid=row.uid,
        name=row.name,
        list_id=row.list_id,
        list_name=row.list_name,
        from_address=row.from_address,
        from_name=row.from_name,
        reply_to=row.reply_to,
        subject=row.subject,
        html=row.html_body,
        text=row.text_body,
        unsubscribe_url=row.unsubscribe_url,
        unsubscribe_mailto=row.unsubscribe_mailto,
        headers=dict(row.headers or {}),
        state=CampaignState(row.state),
        scheduled_at=row.scheduled_at,
        pause_reason=row.pause_reason,
        recipients_total=row.recipients_total,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )
