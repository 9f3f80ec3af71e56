"""The outbox journal on a real SQLite file: attempts, transitions, crash recovery."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import IntegrityError

from desktop_app.core.models import (
    AmbiguousPolicy,
    MessageState,
    OutcomeClass,
    ProviderConfig,
    Security,
)
from desktop_app.core.storage.outbox import (
    AttemptFinished,
    AttemptStarted,
    MessageTransition,
    NewMessage,
    OutboxRepository,
    RecoveryReport,
)
from desktop_app.core.storage.providers import ProviderRepository
from tests.unit.storage.storage_rows import RawRows

MakeMessage = Callable[..., NewMessage]


@pytest.fixture
def provider_id(providers: ProviderRepository) -> int:
    added = providers.add(ProviderConfig("primary", "smtp.example.com", 587, Security.STARTTLS))
    assert added.id is not None
    return added.id


def _claim_one(outbox: OutboxRepository, rows: RawRows, message: NewMessage, owner: str) -> int:
    (outbox_id,) = outbox.enqueue([message])
    now = rows.outbox(outbox_id)["next_attempt_at"]
    (claimed,) = outbox.claim_due(owner, 1, now=now)
    return claimed.outbox_id


def _started(outbox_id: int, provider_id: int | None, number: int = 1) -> AttemptStarted:
    return AttemptStarted(
        outbox_id=outbox_id,
        number=number,
        provider_id=provider_id,
        provider_name="primary",
        started_at=1_000.0 + number,
    )


# -- attempts -------------------------------------------------------------------------------


def test_started_attempt_is_a_row_before_any_outcome(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "w1")

    outbox.record(started=[_started(outbox_id, provider_id)], owner="w1")

    (attempt,) = rows.attempts(outbox_id)
    assert attempt["number"] == 1
    assert attempt["provider_id"] == provider_id
    assert attempt["provider_name"] == "primary"
    assert attempt["started_at"] == 1_001.0
    # Still open: exactly what crash recovery looks for.
    assert attempt["finished_at"] is None
    assert attempt["outcome"] is None
    message = rows.outbox(outbox_id)
    # The message row gets its counters with the outcome; the open attempt row is the
    # marker (recovery derives the count from the attempts table).
    assert message["attempt_count"] == 0
    assert message["state"] == "sending"  # starting an attempt does not end the lease


def test_finished_attempt_stores_every_field(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "w1")
    outbox.record(started=[_started(outbox_id, provider_id)], owner="w1")

    outbox.record(
        finished=[
            AttemptFinished(
                outbox_id=outbox_id,
                number=1,
                finished_at=1_002.5,
                latency_ms=1_500.25,
                outcome=OutcomeClass.RECIPIENT_TRANSIENT,
                phase="rcpt",
                reply_code=451,
                enhanced_status="4.2.1",
                detail="x" * 1000,
            )
        ],
        owner="w1",
    )

    (attempt,) = rows.attempts(outbox_id)
    assert attempt["finished_at"] == 1_002.5
    assert attempt["latency_ms"] == 1_500.25
    assert attempt["outcome"] == "recipient_transient"
    assert attempt["phase"] == "rcpt"
    assert attempt["reply_code"] == 451
    assert attempt["enhanced_status"] == "4.2.1"
    assert attempt["detail"] == "x" * 300  # short text only


def test_a_batch_that_fails_part_way_writes_nothing(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "w1")
    before = rows.outbox(outbox_id)

    with pytest.raises(IntegrityError):
        outbox.record(
            started=[
                _started(outbox_id, provider_id, number=1),
                _started(999_999, provider_id, number=1),  # no such message: foreign key
            ],
            owner="w1",
        )

    assert rows.attempts(outbox_id) == []
    assert rows.outbox(outbox_id) == before


def test_the_same_attempt_number_cannot_be_started_twice(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "w1")
    outbox.record(started=[_started(outbox_id, provider_id)], owner="w1")

    with pytest.raises(IntegrityError):
        outbox.record(started=[_started(outbox_id, provider_id)], owner="w1")
    assert len(rows.attempts(outbox_id)) == 1


# -- transitions ----------------------------------------------------------------------------


def test_sent_transition_ends_the_lease(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "w1")

    outbox.record(
        transitions=[
            MessageTransition(
                outbox_id=outbox_id,
                state=MessageState.SENT,
                remaining_recipients=(),
                attempt_count=1,
                deferral_count=0,
                provider_id=provider_id,
                sent_at=2_000.0,
            )
        ],
        owner="w1",
    )

    row = rows.outbox(outbox_id)
    assert row["state"] == "sent"
    assert row["sent_at"] == 2_000.0
    assert row["remaining_recipients"] == []
    assert row["recipients"] == ["rcpt@example.net"]  # the envelope as queued is history
    assert row["provider_id"] == provider_id
    assert row["next_attempt_at"] is None
    assert row["lease_owner"] is None
    assert row["lease_expires_at"] is None


def test_deferred_transition_writes_every_field(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    outbox_id = _claim_one(
        outbox, rows, make_message(recipients=("a@example.net", "b@example.net")), "w1"
    )

    outbox.record(
        transitions=[
            MessageTransition(
                outbox_id=outbox_id,
                state=MessageState.DEFERRED,
                remaining_recipients=("b@example.net",),
                attempt_count=3,
                deferral_count=2,
                provider_id=None,
                next_attempt_at=5_000.0,
                last_error="451 4.2.1 mailbox busy",
                defer_reason="recipient",
            )
        ],
        owner="w1",
    )

    row = rows.outbox(outbox_id)
    assert row["state"] == "deferred"
    assert row["remaining_recipients"] == ["b@example.net"]
    assert row["attempt_count"] == 3
    assert row["deferral_count"] == 2
    assert row["provider_id"] is None
    assert row["next_attempt_at"] == 5_000.0
    assert row["last_error"] == "451 4.2.1 mailbox busy"
    assert row["defer_reason"] == "recipient"
    assert row["lease_owner"] is None


def test_a_transition_by_another_owner_changes_nothing(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    # w1's lease expired and w2 took the message over; w1's late outcome must not win.
    outbox_id = _claim_one(outbox, rows, make_message(), "w2")
    before = rows.outbox(outbox_id)

    outbox.record(
        transitions=[
            MessageTransition(
                outbox_id=outbox_id,
                state=MessageState.FAILED,
                remaining_recipients=(),
                attempt_count=7,
                deferral_count=7,
                provider_id=provider_id,
                last_error="late news from w1",
                possible_duplicate=True,
            )
        ],
        owner="w1",
    )

    assert rows.outbox(outbox_id) == before


def test_possible_duplicate_is_sticky(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "w1")

    def transition(state: MessageState, duplicate: bool) -> MessageTransition:
        return MessageTransition(
            outbox_id=outbox_id,
            state=state,
            remaining_recipients=("rcpt@example.net",),
            attempt_count=1,
            deferral_count=0,
            provider_id=None,
            next_attempt_at=0.0 if state is MessageState.UNKNOWN else None,
            possible_duplicate=duplicate,
        )

    outbox.record(transitions=[transition(MessageState.UNKNOWN, True)], owner="w1")
    assert rows.outbox(outbox_id)["possible_duplicate"] == 1
    (again,) = outbox.claim_due("w1", 1, now=1.0)
    assert again.outbox_id == outbox_id

    outbox.record(transitions=[transition(MessageState.SENT, False)], owner="w1")

    row = rows.outbox(outbox_id)
    assert row["state"] == "sent"
    assert row["possible_duplicate"] == 1


def test_many_transitions_in_one_group_commit(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    ids = outbox.enqueue([make_message() for _ in range(3)])
    outbox.claim_due("w1", 3, now=rows.outbox(ids[-1])["next_attempt_at"])
    states = [MessageState.SENT, MessageState.FAILED, MessageState.DEFERRED]

    outbox.record(
        transitions=[
            MessageTransition(
                outbox_id=i,
                state=s,
                remaining_recipients=(),
                attempt_count=1,
                deferral_count=0,
                provider_id=None,
            )
            for i, s in zip(ids, states, strict=True)
        ],
        owner="w1",
    )

    assert [r["state"] for r in rows.all_outbox()] == ["sent", "failed", "deferred"]


# -- crash recovery -------------------------------------------------------------------------


def _lease(rows: RawRows, outbox_id: int, owner: str | None, expires_at: float) -> None:
    rows.update_outbox(outbox_id, state="sending", lease_owner=owner, lease_expires_at=expires_at)


def test_in_flight_message_becomes_unknown_and_due_under_retry(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "dead-worker")
    outbox.record(started=[_started(outbox_id, provider_id)], owner="dead-worker")

    report = outbox.recover_stale_leases(
        "new-worker", AmbiguousPolicy.RETRY, exclusive=True, now=9_000.0
    )

    assert report == RecoveryReport(requeued=0, unknown=1)
    row = rows.outbox(outbox_id)
    assert row["state"] == "unknown"
    assert row["possible_duplicate"] == 1
    assert row["next_attempt_at"] == 9_000.0
    assert row["lease_owner"] is None
    assert row["lease_expires_at"] is None
    assert row["last_error"]
    assert row["attempt_count"] == 1  # the next attempt must not reuse number 1
    (attempt,) = rows.attempts(outbox_id)
    assert attempt["finished_at"] == 9_000.0
    assert attempt["outcome"] == "ambiguous"
    assert attempt["detail"]
    assert outbox.pending_count() == 1


def test_after_recovery_the_next_attempt_gets_a_new_number(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "dead-worker")
    outbox.record(started=[_started(outbox_id, provider_id)], owner="dead-worker")
    outbox.recover_stale_leases("new-worker", AmbiguousPolicy.RETRY, exclusive=True, now=9_000.0)

    (again,) = outbox.claim_due("new-worker", 1, now=9_000.0)
    outbox.record(
        started=[_started(outbox_id, provider_id, number=again.attempt_count + 1)],
        owner="new-worker",
    )

    assert [a["number"] for a in rows.attempts(outbox_id)] == [1, 2]


def test_in_flight_message_is_held_under_hold(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "dead-worker")
    outbox.record(started=[_started(outbox_id, provider_id)], owner="dead-worker")

    report = outbox.recover_stale_leases(
        "new-worker", AmbiguousPolicy.HOLD, exclusive=True, now=9_000.0
    )

    assert report == RecoveryReport(requeued=0, unknown=1)
    row = rows.outbox(outbox_id)
    assert row["state"] == "unknown"
    assert row["possible_duplicate"] == 1
    assert row["next_attempt_at"] is None
    assert outbox.claim_due("new-worker", 10, now=10**12) == []
    assert outbox.pending_count() == 0  # waits for a person, not for the engine


def test_claimed_message_without_attempt_row_is_simply_queued_again(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    outbox_id = _claim_one(outbox, rows, make_message(), "dead-worker")

    report = outbox.recover_stale_leases(
        "new-worker", AmbiguousPolicy.RETRY, exclusive=True, now=9_000.0
    )

    assert report == RecoveryReport(requeued=1, unknown=0)
    row = rows.outbox(outbox_id)
    assert row["state"] == "queued"
    assert row["next_attempt_at"] == 9_000.0
    assert row["possible_duplicate"] == 0
    assert row["lease_owner"] is None
    assert row["lease_expires_at"] is None


def test_only_an_open_attempt_makes_a_message_ambiguous(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, provider_id: int
) -> None:
    # Attempt 1 finished (deferred) long ago; the crash came after the new claim but
    # before attempt 2 was journaled, so MAIL FROM was never sent this time.
    outbox_id = _claim_one(outbox, rows, make_message(), "dead-worker")
    outbox.record(started=[_started(outbox_id, provider_id)], owner="dead-worker")
    outbox.record(
        finished=[
            AttemptFinished(
                outbox_id, 1, 1_002.0, 5.0, OutcomeClass.RECIPIENT_TRANSIENT, "rcpt", 451, None, ""
            )
        ],
        owner="dead-worker",
    )

    report = outbox.recover_stale_leases(
        "new-worker", AmbiguousPolicy.RETRY, exclusive=True, now=9_000.0
    )

    assert report == RecoveryReport(requeued=1, unknown=0)
    assert rows.outbox(outbox_id)["state"] == "queued"
    assert rows.attempts(outbox_id)[0]["outcome"] == "recipient_transient"


def test_without_the_instance_lock_only_expired_leases_are_stale(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    expired, alive, mine = outbox.enqueue([make_message() for _ in range(3)])
    _lease(rows, expired, "other", expires_at=100.0)
    _lease(rows, alive, "other", expires_at=10_000.0)
    _lease(rows, mine, "me", expires_at=10_000.0)

    report = outbox.recover_stale_leases("me", AmbiguousPolicy.RETRY, exclusive=False, now=500.0)

    assert report == RecoveryReport(requeued=1, unknown=0)
    assert rows.outbox(expired)["state"] == "queued"
    assert rows.outbox(alive)["state"] == "sending"
    assert rows.outbox(alive)["lease_owner"] == "other"
    assert rows.outbox(mine)["state"] == "sending"


def test_with_the_instance_lock_every_other_lease_is_dead(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    other, ownerless, mine, mine_expired = outbox.enqueue([make_message() for _ in range(4)])
    _lease(rows, other, "other", expires_at=10_000.0)
    _lease(rows, ownerless, None, expires_at=10_000.0)
    _lease(rows, mine, "me", expires_at=10_000.0)
    _lease(rows, mine_expired, "me", expires_at=100.0)

    report = outbox.recover_stale_leases("me", AmbiguousPolicy.RETRY, exclusive=True, now=500.0)

    assert report == RecoveryReport(requeued=3, unknown=0)
    assert rows.outbox(other)["state"] == "queued"
    assert rows.outbox(ownerless)["state"] == "queued"
    assert rows.outbox(mine)["state"] == "sending"  # this process's own, still in flight
    assert rows.outbox(mine_expired)["state"] == "queued"


def test_recovery_leaves_every_other_state_alone(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    states = ["queued", "deferred", "sent", "failed", "unknown", "cancelled", "bounced"]
    ids = outbox.enqueue([make_message() for _ in states])
    for outbox_id, state in zip(ids, states, strict=True):
        rows.update_outbox(outbox_id, state=state, lease_owner="other", lease_expires_at=1.0)
    before = rows.all_outbox()

    report = outbox.recover_stale_leases("me", AmbiguousPolicy.RETRY, exclusive=True, now=500.0)

    assert report == RecoveryReport(requeued=0, unknown=0)
    assert rows.all_outbox() == before


# -- waking, pending, retry, cancel, counts -------------------------------------------------


def test_wake_makes_only_mail_waiting_for_a_provider_due(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    waiting, recipient, already_due, queued = outbox.enqueue([make_message() for _ in range(4)])
    rows.update_outbox(waiting, state="deferred", defer_reason="no_provider", next_attempt_at=900.0)
    rows.update_outbox(recipient, state="deferred", defer_reason="recipient", next_attempt_at=900.0)
    rows.update_outbox(
        already_due, state="deferred", defer_reason="no_provider", next_attempt_at=100.0
    )
    rows.update_outbox(queued, next_attempt_at=900.0)

    assert outbox.wake_waiting_for_provider(now=500.0) == 1

    assert rows.outbox(waiting)["next_attempt_at"] == 500.0
    assert rows.outbox(waiting)["state"] == "deferred"
    assert rows.outbox(recipient)["next_attempt_at"] == 900.0
    assert rows.outbox(already_due)["next_attempt_at"] == 100.0
    assert rows.outbox(queued)["next_attempt_at"] == 900.0


def test_pending_counts_unknown_only_when_a_retry_is_scheduled(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    arranged = {
        "queued": 1.0,
        "sending": 1.0,
        "deferred": 1.0,
        "sent": None,
        "failed": None,
        "cancelled": None,
        "bounced": None,
    }
    ids = outbox.enqueue([make_message() for _ in range(len(arranged) + 2)])
    for outbox_id, (state, due) in zip(ids, arranged.items(), strict=False):
        rows.update_outbox(outbox_id, state=state, next_attempt_at=due)
    retry_unknown, held_unknown = ids[-2:]
    rows.update_outbox(retry_unknown, state="unknown", next_attempt_at=1.0)
    rows.update_outbox(held_unknown, state="unknown", next_attempt_at=None)

    assert outbox.pending_count() == 4

    rows.update_outbox(retry_unknown, next_attempt_at=None)
    assert outbox.pending_count() == 3


def test_retry_now_of_a_failed_message_restores_the_whole_envelope(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    everyone = ["a@example.net", "b@example.net", "c@example.net"]
    failed, deferred = outbox.enqueue(
        [make_message(recipients=tuple(everyone)), make_message(recipients=tuple(everyone))]
    )
    rows.update_outbox(failed, state="failed", remaining_recipients=[], next_attempt_at=None)
    rows.update_outbox(
        deferred, state="deferred", remaining_recipients=["c@example.net"], next_attempt_at=9e9
    )

    assert outbox.retry_now([failed, deferred]) == 2

    for outbox_id in (failed, deferred):
        row = rows.outbox(outbox_id)
        assert row["state"] == "queued"
        assert row["next_attempt_at"] is not None
        assert row["next_attempt_at"] < 9e9
    assert rows.outbox(failed)["remaining_recipients"] == everyone
    # A deferred message keeps only the recipients still to do: a and b already have it.
    assert rows.outbox(deferred)["remaining_recipients"] == ["c@example.net"]


@pytest.mark.parametrize("state", ["deferred", "unknown", "failed", "cancelled"])
def test_retry_now_applies_to(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, state: str
) -> None:
    (outbox_id,) = outbox.enqueue([make_message()])
    rows.update_outbox(outbox_id, state=state, next_attempt_at=None)

    assert outbox.retry_now([outbox_id]) == 1
    row = rows.outbox(outbox_id)
    assert row["state"] == "queued"
    assert outbox.claim_due("w", 1, now=row["next_attempt_at"])[0].outbox_id == outbox_id


@pytest.mark.parametrize("state", ["queued", "sending", "sent", "bounced"])
def test_retry_now_leaves_alone(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, state: str
) -> None:
    (outbox_id,) = outbox.enqueue([make_message()])
    rows.update_outbox(outbox_id, state=state, lease_owner="w")
    before = rows.outbox(outbox_id)

    assert outbox.retry_now([outbox_id]) == 0
    assert rows.outbox(outbox_id) == before


@pytest.mark.parametrize("state", ["queued", "deferred", "unknown"])
def test_cancel_applies_to_waiting_messages(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, state: str
) -> None:
    (outbox_id,) = outbox.enqueue([make_message()])
    rows.update_outbox(outbox_id, state=state)

    assert outbox.cancel([outbox_id]) == 1

    row = rows.outbox(outbox_id)
    assert row["state"] == "cancelled"
    assert row["next_attempt_at"] is None
    assert outbox.claim_due("w", 1, now=10**12) == []
    assert outbox.pending_count() == 0


@pytest.mark.parametrize("state", ["sending", "sent", "failed", "cancelled", "bounced"])
def test_cancel_never_touches_a_message_in_flight_or_done(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, state: str
) -> None:
    (outbox_id,) = outbox.enqueue([make_message()])
    rows.update_outbox(outbox_id, state=state, lease_owner="w")
    before = rows.outbox(outbox_id)

    assert outbox.cancel([outbox_id]) == 0
    assert rows.outbox(outbox_id) == before


def test_cancel_and_retry_of_unknown_ids_do_nothing(
    outbox: OutboxRepository, rows: RawRows
) -> None:
    assert outbox.cancel([404]) == 0
    assert outbox.retry_now([404]) == 0
    assert outbox.cancel([]) == 0


def test_counts_by_state(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    assert outbox.counts().as_dict() == dict.fromkeys(
        [
            *("queued", "sending", "sent", "deferred", "failed", "unknown", "cancelled"),
            *("bounced", "held"),
        ],
        0,
    )
    wanted = {"queued": 3, "sending": 1, "sent": 2, "failed": 1, "unknown": 2, "bounced": 1}
    ids = iter(outbox.enqueue([make_message() for _ in range(sum(wanted.values()))]))
    for state, how_many in wanted.items():
        for _ in range(how_many):
            rows.update_outbox(next(ids), state=state)

    counts = outbox.counts()

    assert counts.as_dict() == {**dict.fromkeys(counts.as_dict(), 0), **wanted}
    assert counts.waiting == 4
