"""The durable outbox: enqueue, claim with a lease, journal attempts, recover after a crash.

The state machine (desktop_app/ARCHITECTURE.md, "The outbox")::

    queued -> sending -> sent | deferred | failed | unknown
    deferred/unknown --(due)--> sending          queued/deferred/unknown -> cancelled
    queued/deferred --(campaign paused)--> held --(resumed)--> queued    held -> cancelled

Every write here is one transaction, and the engine batches many messages into each one
(group commit), so durability costs one fsync per batch rather than per message.

Writes people and campaigns make (enqueue, cancel, retry now, leases given back) bump
``Topic.OUTBOX`` in their transaction (storage/changes.py); the engine's journal (claims,
attempts, transitions) does not: it runs hundreds of times a second, and the engine
announces its own progress through its events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection

from desktop_app.core.models import (
    AmbiguousPolicy,
    MessageState,
    OutboxCounts,
    OutboxMessage,
    OutcomeClass,
)
from desktop_app.core.storage.changes import Topic, bump
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.dialect import execute_many_fast, fetch_all_fast, lock_for_claim
from desktop_app.core.storage.schema import AttemptRow, OutboxRow

#: States a message can be claimed from once its ``next_attempt_at`` is due.
CLAIMABLE = (MessageState.QUEUED, MessageState.DEFERRED, MessageState.UNKNOWN)
#: States a person may cancel from (never ``sending``: the engine owns it right now).
CANCELLABLE = (
    MessageState.QUEUED,
    MessageState.DEFERRED,
    MessageState.UNKNOWN,
    MessageState.HELD,
)
#: States "retry now" applies to.
RETRYABLE = (
    MessageState.DEFERRED,
    MessageState.UNKNOWN,
    MessageState.FAILED,
    MessageState.CANCELLED,
)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to queue: exact bytes plus the envelope."""

    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]
    subject: str
    raw: bytes
    route: str | None = None  # "healthiest": through the healthiest provider (alert mail)
    urgent: bool = False  # claimed before everything already waiting (alert mail)
    campaign_id: int | None = None  # the campaign it belongs to (reports, pause, cancel)


@dataclass(frozen=True, slots=True)
class AttemptWithdrawn:
    """Journal entry: an attempt row written before MAIL FROM whose provider was never
    contacted after all (its breaker opened while the message waited for a connection)."""

    outbox_id: int
    number: int


@dataclass(frozen=True, slots=True)
class AttemptStarted:
    """Journal entry written before MAIL FROM."""

    outbox_id: int
    number: int
    provider_id: int | None
    provider_name: str
    started_at: float


@dataclass(frozen=True, slots=True)
class AttemptFinished:
    """Journal entry written after the provider answered (or did not)."""

    outbox_id: int
    number: int
    finished_at: float
    latency_ms: float
    outcome: OutcomeClass
    phase: str | None
    reply_code: int | None
    enhanced_status: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class MessageTransition:
    """The new state of a claimed message after an attempt. Every field is written
    (``possible_duplicate`` is OR-ed into the row's flag)."""

    outbox_id: int
    state: MessageState
    remaining_recipients: tuple[str, ...]
    attempt_count: int
    deferral_count: int
    provider_id: int | None
    next_attempt_at: float | None = None
    last_error: str | None = None
    defer_reason: str | None = None
    sent_at: float | None = None
    possible_duplicate: bool = False  # only ever sets the row's flag, never clears it


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What ``recover_stale_leases`` did."""

    requeued: int  # never reached MAIL FROM: safe to send again
    unknown: int  # may have reached the provider: possible duplicates


# The engine's hot path runs these for every message. Built once here: constructing a
# statement per call costs more than executing it.
_CLAIM_IDS = lock_for_claim(
    select(OutboxRow.id)
    .where(
        # Written into the SQL (fixed enum values): an expanding IN parameter would need
        # SQLAlchemy's per-execution rendering, and the claim runs on the driver's cursor.
        OutboxRow.state.in_([literal_column(f"'{state.value}'") for state in CLAIMABLE]),
        OutboxRow.next_attempt_at <= bindparam("now"),
    )
    .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
    .limit(bindparam("limit"))
)
# One statement leases and returns the batch (UPDATE ... RETURNING: SQLite >= 3.35, and
# PostgreSQL, where the subquery's FOR UPDATE SKIP LOCKED lets instances claim side by side).
_CLAIM = (
    update(OutboxRow)
    .where(OutboxRow.id.in_(_CLAIM_IDS.scalar_subquery()))
    .values(
        state=MessageState.SENDING.value,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("lease_expires_at"),
        updated_at=bindparam("now"),
    )
    .returning(
        OutboxRow.id,
        OutboxRow.message_id,
        OutboxRow.envelope_from,
        OutboxRow.remaining_recipients,
        OutboxRow.raw,
        OutboxRow.attempt_count,
        OutboxRow.deferral_count,
        OutboxRow.created_at,
        OutboxRow.next_attempt_at,
        OutboxRow.route,
    )
)
# Positions in _CLAIM's RETURNING row.
_CLAIMED_ID, _CLAIMED_DUE = 0, 8
_INSERT_ATTEMPT = insert(AttemptRow).values(
    outbox_id=bindparam("b_outbox"),
    number=bindparam("b_number"),
    provider_id=bindparam("b_provider"),
    provider_name=bindparam("b_provider_name"),
    started_at=bindparam("b_started"),
)
_WITHDRAW_ATTEMPT = delete(AttemptRow).where(
    AttemptRow.outbox_id == bindparam("b_outbox"),
    AttemptRow.number == bindparam("b_number"),
    AttemptRow.finished_at.is_(None),
)
_FINISH_ATTEMPT = (
    update(AttemptRow)
    .where(
        AttemptRow.outbox_id == bindparam("b_outbox"),
        AttemptRow.number == bindparam("b_number"),
    )
    .values(
        finished_at=bindparam("b_finished"),
        latency_ms=bindparam("b_latency"),
        outcome=bindparam("b_outcome"),
        phase=bindparam("b_phase"),
        reply_code=bindparam("b_code"),
        enhanced_status=bindparam("b_enhanced"),
        detail=bindparam("b_detail"),
    )
)
_TRANSITION = (
    update(OutboxRow)
    .where(OutboxRow.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        remaining_recipients=bindparam("b_remaining"),
        attempt_count=bindparam("b_attempts"),
        deferral_count=bindparam("b_deferrals"),
        provider_id=bindparam("b_provider"),
        next_attempt_at=bindparam("b_next"),
        last_error=bindparam("b_error"),
        defer_reason=bindparam("b_reason"),
        sent_at=bindparam("b_sent"),
        # Sticky: once a provider may have taken the message, a later successful
        # retry does not make it any less a possible duplicate.
        possible_duplicate=or_(OutboxRow.possible_duplicate, bindparam("b_dup", type_=Boolean)),
        lease_owner=bindparam("b_lease_owner"),
        lease_expires_at=None,
        updated_at=bindparam("b_updated"),
    )
)
# The message row learns its attempt count with each outcome; after a crash the attempts
# table is the truth (the next attempt must not reuse a number).
_ATTEMPTS_MADE = func.coalesce(
    select(func.max(AttemptRow.number))
    .where(AttemptRow.outbox_id == OutboxRow.id)
    .scalar_subquery(),
    OutboxRow.attempt_count,
)
_TRANSITION_OWNED = _TRANSITION.where(OutboxRow.lease_owner == bindparam("b_owner"))


class OutboxRepository:
    """All reads and writes of the outbox and attempts tables."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- enqueue -----------------------------------------------------------------------

    def enqueue(self, messages: Sequence[NewMessage]) -> list[int]:
        """Queue ``messages`` in ONE transaction: all of them are stored, or none."""
        if not messages:
            return []
        with self._database.write() as connection:
            return self.enqueue_in(connection, messages)

    def enqueue_in(self, connection: Connection, messages: Sequence[NewMessage]) -> list[int]:
        """Queue ``messages`` inside the caller's transaction (a campaign marks its
        recipients queued in the same commit)."""
        now = time.time()
        rows = [
            {
                "message_id": m.message_id,
                "state": MessageState.QUEUED.value,
                "envelope_from": m.envelope_from,
                "recipients": list(m.recipients),
                "remaining_recipients": list(m.recipients),
                "subject": m.subject,
                "raw": m.raw,
                "created_at": now,
                "updated_at": now,
                # Claims go by next_attempt_at: "due since the epoch" puts urgent mail at the
                # front of any backlog without another index or sort key on the hot path.
                "next_attempt_at": 0.0 if m.urgent else now,
                "attempt_count": 0,
                "deferral_count": 0,
                "possible_duplicate": False,
                "route": m.route,
                "campaign_id": m.campaign_id,
            }
            for m in messages
        ]
        if not rows:
            return []
        result = connection.execute(insert(OutboxRow).returning(OutboxRow.id), rows)
        ids = [row_id for (row_id,) in result]
        bump(connection, Topic.OUTBOX)
        return ids

    # -- the engine's side ---------------------------------------------------------------

    def claim_due(
        self, owner: str, limit: int, *, now: float | None = None, lease_seconds: float = 300.0
    ) -> list[OutboxMessage]:
        """Lease up to ``limit`` due messages to ``owner`` and return them, oldest first."""
        with self._database.write() as connection:
            return self.claim_in(connection, owner, limit, now=now, lease_seconds=lease_seconds)

    @staticmethod
    def claim_in(
        connection: Connection,
        owner: str,
        limit: int,
        *,
        now: float | None = None,
        lease_seconds: float = 300.0,
    ) -> list[OutboxMessage]:
        """``claim_due`` inside a transaction the caller owns (the journal's group commit)."""
        now = time.time() if now is None else now
        # On the driver's cursor, like the journal's other statements: SQLAlchemy's result
        # processing of the claimed rows was a quarter of the journal thread's CPU.
        rows = fetch_all_fast(
            connection,
            _CLAIM,
            {
                "now": now,
                "limit": limit,
                "owner": owner,
                "lease_expires_at": now + lease_seconds,
            },
        )
        # RETURNING gives rows in no particular order: oldest due first, as selected.
        rows.sort(key=lambda row: (row[_CLAIMED_DUE], row[_CLAIMED_ID]))
        return [
            OutboxMessage(
                outbox_id=outbox_id,
                message_id=message_id,
                envelope_from=envelope_from,
                recipients=tuple(
                    json.loads(recipients) if isinstance(recipients, str) else recipients
                ),
                raw=bytes(raw),
                attempt_count=attempt_count,
                deferral_count=deferral_count,
                created_at=created_at,
                route=route,
            )
            for (
                outbox_id,
                message_id,
                envelope_from,
                recipients,
                raw,
                attempt_count,
                deferral_count,
                created_at,
                _due,
                route,
            ) in rows
        ]

    def record(
        self,
        *,
        withdrawn: Sequence[AttemptWithdrawn] = (),
        started: Sequence[AttemptStarted] = (),
        finished: Sequence[AttemptFinished] = (),
        transitions: Sequence[MessageTransition] = (),
        owner: str | None = None,
        claim: int = 0,
        lease_seconds: float = 300.0,
        connection: Connection | None = None,
    ) -> list[OutboxMessage]:
        """Write a batch of journal entries in one transaction (the group commit).

        With ``claim`` > 0 (and an ``owner``), the same transaction also leases up to that
        many due messages and returns them: one commit per engine cycle instead of two.
        ``connection`` is one from ``Database.open_writer`` to run it on (the journal's).
        """
        database = self._database
        transaction = database.write() if connection is None else database.write_on(connection)
        with transaction as active:
            if withdrawn:
                # First: a withdrawn attempt's number is used again by the next attempt.
                execute_many_fast(
                    active,
                    _WITHDRAW_ATTEMPT,
                    [{"b_outbox": w.outbox_id, "b_number": w.number} for w in withdrawn],
                )
            self._record(active, started, finished, transitions, owner)
            if claim > 0 and owner is not None:
                return self.claim_in(active, owner, claim, lease_seconds=lease_seconds)
        return []

    def open_writer(self) -> Connection:
        """A connection for many ``record`` calls (``Database.open_writer``)."""
        return self._database.open_writer()

    @staticmethod
    def _record(
        connection: Connection,
        started: Sequence[AttemptStarted],
        finished: Sequence[AttemptFinished],
        transitions: Sequence[MessageTransition],
        owner: str | None,
    ) -> None:
        now = time.time()
        if started:
            # The attempt row alone is the "may have reached the provider" marker that
            # crash recovery reads; the message row gets its counters with the outcome.
            execute_many_fast(
                connection,
                _INSERT_ATTEMPT,
                [
                    {
                        "b_outbox": s.outbox_id,
                        "b_number": s.number,
                        "b_provider": s.provider_id,
                        "b_provider_name": s.provider_name,
                        "b_started": s.started_at,
                    }
                    for s in started
                ],
            )
        if finished:
            execute_many_fast(
                connection,
                _FINISH_ATTEMPT,
                [
                    {
                        "b_outbox": f.outbox_id,
                        "b_number": f.number,
                        "b_finished": f.finished_at,
                        "b_latency": f.latency_ms,
                        "b_outcome": f.outcome.value,
                        "b_phase": f.phase,
                        "b_code": f.reply_code,
                        "b_enhanced": f.enhanced_status,
                        "b_detail": f.detail[:300],
                    }
                    for f in finished
                ],
            )
        if transitions:
            execute_many_fast(
                connection,
                # A worker whose lease was taken over must not overwrite the new owner's work.
                _TRANSITION if owner is None else _TRANSITION_OWNED,
                [
                    {
                        "b_id": t.outbox_id,
                        "b_owner": owner,
                        "b_state": t.state.value,
                        "b_remaining": json.dumps(list(t.remaining_recipients)),
                        "b_attempts": t.attempt_count,
                        "b_deferrals": t.deferral_count,
                        "b_provider": t.provider_id,
                        "b_next": t.next_attempt_at,
                        "b_error": t.last_error,
                        "b_reason": t.defer_reason,
                        "b_sent": t.sent_at,
                        "b_dup": t.possible_duplicate,
                        # Only a message still in flight keeps its lease.
                        "b_lease_owner": owner if t.state is MessageState.SENDING else None,
                        "b_updated": now,
                    }
                    for t in transitions
                ],
            )

    def recover_stale_leases(
        self,
        owner: str,
        policy: AmbiguousPolicy,
        *,
        exclusive: bool,
        now: float | None = None,
    ) -> RecoveryReport:
        """Give back messages left in ``sending`` by a crashed or stopped worker.

        A message whose last attempt row is still open may have reached the provider
        (the row is committed before MAIL FROM), so it becomes ``unknown``; with the
        ``retry`` policy it is due again at once and flagged as a possible duplicate.
        A message that never got an attempt row is simply queued again.
        ``exclusive`` means this process holds the data directory's instance lock, so
        every lease but its own is dead whatever its expiry says.
        """
        now = time.time() if now is None else now
        stale = OutboxRow.lease_expires_at < now
        if exclusive:
            stale = or_(stale, OutboxRow.lease_owner.is_(None), OutboxRow.lease_owner != owner)
        with self._database.write() as connection:
            ids = list(
                connection.scalars(
                    lock_for_claim(
                        select(OutboxRow.id).where(
                            OutboxRow.state == MessageState.SENDING.value, stale
                        )
                    )
                )
            )
            if not ids:
                return RecoveryReport(0, 0)
            return self._give_back_leases(
                connection,
                ids,
                policy,
                now=now,
                due_at=now,
                detail="interrupted (crash or shutdown) while in flight",
            )

    def release(
        self,
        outbox_ids: Sequence[int],
        owner: str,
        policy: AmbiguousPolicy,
        *,
        due_at: float,
        detail: str,
    ) -> RecoveryReport:
        """Give back this owner's own leases on ``outbox_ids`` now (a delivery went wrong).

        The same rules as crash recovery: possibly sent -> ``unknown``, else queued, both due
        at ``due_at`` (a message that broke the engine once should not come straight back).
        """
        now = time.time()
        with self._database.write() as connection:
            ids = list(
                connection.scalars(
                    select(OutboxRow.id).where(
                        OutboxRow.id.in_(list(outbox_ids)),
                        OutboxRow.state == MessageState.SENDING.value,
                        OutboxRow.lease_owner == owner,
                    )
                )
            )
            if not ids:
                return RecoveryReport(0, 0)
            return self._give_back_leases(
                connection, ids, policy, now=now, due_at=due_at, detail=detail
            )

    @staticmethod
    def _give_back_leases(
        connection: Connection,
        ids: list[int],
        policy: AmbiguousPolicy,
        *,
        now: float,
        due_at: float,
        detail: str,
    ) -> RecoveryReport:
        open_attempt = (
            select(AttemptRow.outbox_id)
            .where(AttemptRow.outbox_id.in_(ids), AttemptRow.finished_at.is_(None))
            .distinct()
        )
        ambiguous_ids = set(connection.scalars(open_attempt))
        connection.execute(
            update(AttemptRow)
            .where(AttemptRow.outbox_id.in_(ids), AttemptRow.finished_at.is_(None))
            .values(
                finished_at=now,
                outcome=OutcomeClass.AMBIGUOUS.value,
                detail=detail,
            )
        )
        safe_ids = [i for i in ids if i not in ambiguous_ids]
        if safe_ids:
            connection.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(safe_ids))
                .values(
                    state=MessageState.QUEUED.value,
                    attempt_count=_ATTEMPTS_MADE,
                    next_attempt_at=due_at,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
        if ambiguous_ids:
            connection.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ambiguous_ids))
                .values(
                    state=MessageState.UNKNOWN.value,
                    attempt_count=_ATTEMPTS_MADE,
                    next_attempt_at=due_at if policy is AmbiguousPolicy.RETRY else None,
                    possible_duplicate=True,
                    last_error="interrupted while the provider may have had it",
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
        # Rare (a start after a crash, a delivery that went wrong), unlike the journal.
        bump(connection, Topic.OUTBOX)
        return RecoveryReport(requeued=len(safe_ids), unknown=len(ambiguous_ids))

    def wake_waiting_for_provider(self, now: float | None = None) -> int:
        """Make mail that waits only for a usable provider due now (a provider came back)."""
        now = time.time() if now is None else now
        with self._database.write() as connection:
            result = connection.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.state == MessageState.DEFERRED.value,
                    OutboxRow.defer_reason == "no_provider",
                    or_(OutboxRow.next_attempt_at > now, OutboxRow.route.is_not(None)),
                )
                # Alert mail (routed "healthiest") goes back to the front of the queue, as
                # when it was first queued; the rest keeps its order behind it.
                .values(
                    next_attempt_at=case((OutboxRow.route.is_(None), now), else_=0.0),
                    updated_at=now,
                )
            )
            return result.rowcount or 0

    def next_due_at(self) -> float | None:
        """When the next claimable message becomes due (None: nothing to do)."""
        with self._database.read() as connection:
            return connection.scalar(
                select(func.min(OutboxRow.next_attempt_at)).where(
                    OutboxRow.state.in_([s.value for s in CLAIMABLE])
                )
            )

    def recent_attempt_times(self, provider_id: int, since: float) -> list[float]:
        """Start times of attempts through a provider since ``since`` (to seed rate limits)."""
        with self._database.read() as connection:
            return list(
                connection.scalars(
                    select(AttemptRow.started_at)
                    .where(AttemptRow.provider_id == provider_id, AttemptRow.started_at >= since)
                    .order_by(AttemptRow.started_at)
                )
            )

    # -- what people see and do -----------------------------------------------------------

    def oldest_waiting_created_at(self) -> float | None:
        """When the oldest message still to go out was queued (the backlog-age alert).

        Ids grow with enqueue order, so the oldest is the smallest id: found on the claim
        index alone. MIN(created_at) would read every waiting row, 1 KB+ of message each.
        """
        oldest_id = (
            select(func.min(OutboxRow.id))
            .where(OutboxRow.state.in_([s.value for s in (*CLAIMABLE, MessageState.SENDING)]))
            .scalar_subquery()
        )
        with self._database.read() as connection:
            return connection.execute(
                select(OutboxRow.created_at).where(OutboxRow.id == oldest_id)
            ).scalar_one_or_none()

    def counts(self) -> OutboxCounts:
        with self._database.read() as connection:
            by_state = dict(
                connection.execute(
                    select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
                ).all()
            )
        return OutboxCounts(**{state.value: by_state.get(state.value, 0) for state in MessageState})

    def pending_count(self) -> int:
        """Messages the engine still has work for (``run --until-idle`` waits for zero)."""
        with self._database.read() as connection:
            return (
                connection.scalar(
                    select(func.count()).where(
                        or_(
                            OutboxRow.state.in_(
                                [
                                    MessageState.QUEUED.value,
                                    MessageState.SENDING.value,
                                    MessageState.DEFERRED.value,
                                ]
                            ),
                            and_(
                                OutboxRow.state == MessageState.UNKNOWN.value,
                                OutboxRow.next_attempt_at.is_not(None),
                            ),
                        )
                    )
                )
                or 0
            )

    def retry_now(self, outbox_ids: Sequence[int]) -> int:
        """Put the given messages back in the queue, due now. Returns how many moved."""
        now = time.time()
        with self._database.write() as connection:
            result = connection.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(list(outbox_ids)),
                    OutboxRow.state.in_([s.value for s in RETRYABLE]),
                )
                .values(
                    state=MessageState.QUEUED.value,
                    next_attempt_at=now,
                    # A failed message retried by hand gets its whole envelope back (none
                    # of it was delivered); others keep only the recipients still to do.
                    remaining_recipients=case(
                        (OutboxRow.state == MessageState.FAILED.value, OutboxRow.recipients),
                        else_=OutboxRow.remaining_recipients,
                    ),
                    updated_at=now,
                )
            )
            if result.rowcount:
                bump(connection, Topic.OUTBOX)
            return result.rowcount or 0

    def cancel(self, outbox_ids: Sequence[int]) -> int:
        """Cancel waiting messages; ones in flight or already done are left alone."""
        now = time.time()
        with self._database.write() as connection:
            result = connection.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(list(outbox_ids)),
                    OutboxRow.state.in_([s.value for s in CANCELLABLE]),
                )
                .values(state=MessageState.CANCELLED.value, next_attempt_at=None, updated_at=now)
            )
            if result.rowcount:
                bump(connection, Topic.OUTBOX)
            return result.rowcount or 0
