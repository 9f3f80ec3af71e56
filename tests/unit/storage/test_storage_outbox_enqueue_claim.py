"""The outbox on a real SQLite file: enqueue (all or nothing) and leased claims."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import IntegrityError

from desktop_app.core.models import MessageState, OutboxMessage
from desktop_app.core.storage.outbox import NewMessage, OutboxRepository
from tests.unit.storage.storage_rows import RawRows

MakeMessage = Callable[..., NewMessage]


def test_enqueue_stores_each_message_queued_and_due_now(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    first = make_message(recipients=("a@example.net", "b@example.net"), subject="Grüße")
    second = make_message()

    ids = outbox.enqueue([first, second])

    assert len(ids) == 2
    assert ids[0] < ids[1]
    stored = rows.outbox(ids[0])
    assert stored["message_id"] == first.message_id
    assert stored["state"] == "queued"
    assert stored["envelope_from"] == "sender@example.com"
    assert stored["recipients"] == ["a@example.net", "b@example.net"]
    assert stored["remaining_recipients"] == ["a@example.net", "b@example.net"]
    assert stored["subject"] == "Grüße"
    assert stored["raw"] == first.raw  # the exact bytes, not a re-serialization
    assert stored["next_attempt_at"] == stored["created_at"]
    assert stored["attempt_count"] == 0
    assert stored["deferral_count"] == 0
    assert stored["possible_duplicate"] == 0
    assert stored["lease_owner"] is None
    assert stored["lease_expires_at"] is None
    assert rows.outbox(ids[1])["message_id"] == second.message_id


def test_enqueue_nothing_writes_nothing(outbox: OutboxRepository, rows: RawRows) -> None:
    assert outbox.enqueue([]) == []
    assert rows.all_outbox() == []


@pytest.mark.parametrize("bad_position", [0, 700, 1499])
def test_a_batch_with_one_bad_message_stores_none_of_them(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, bad_position: int
) -> None:
    # 1500 rows: more than SQLAlchemy puts in one multi-row INSERT, so the batch spans
    # several statements and only the transaction can make it all-or-nothing.
    batch = [make_message() for _ in range(1500)]
    batch[bad_position] = make_message(raw=None)  # violates NOT NULL

    with pytest.raises(IntegrityError):
        outbox.enqueue(batch)

    assert rows.all_outbox() == []
    assert outbox.counts().queued == 0


def test_claim_leases_due_messages_to_the_owner(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    message = make_message(recipients=("a@example.net", "b@example.net"))
    (outbox_id,) = outbox.enqueue([message])
    rows.update_outbox(outbox_id, remaining_recipients=["b@example.net"], attempt_count=2)
    due = rows.outbox(outbox_id)["next_attempt_at"]

    claimed = outbox.claim_due("worker-1", 10, now=due, lease_seconds=120.0)

    stored = rows.outbox(outbox_id)
    assert claimed == [
        OutboxMessage(
            outbox_id=outbox_id,
            message_id=message.message_id,
            envelope_from=message.envelope_from,
            recipients=("b@example.net",),  # what is still to deliver, not the whole envelope
            raw=message.raw,
            attempt_count=2,
            deferral_count=0,
            created_at=stored["created_at"],
        )
    ]
    assert stored["state"] == "sending"
    assert stored["lease_owner"] == "worker-1"
    assert stored["lease_expires_at"] == due + 120.0
    assert stored["updated_at"] == due


def test_claim_takes_the_oldest_due_first_and_respects_the_limit(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    ids = outbox.enqueue([make_message() for _ in range(5)])
    base = rows.outbox(ids[0])["next_attempt_at"]
    # Due order differs from insertion order; ids[3] and ids[1] tie, broken by id.
    due_offsets = {ids[0]: 40.0, ids[1]: 10.0, ids[2]: 30.0, ids[3]: 10.0, ids[4]: 0.0}
    for outbox_id, offset in due_offsets.items():
        rows.update_outbox(outbox_id, next_attempt_at=base - 100 + offset)

    claimed = outbox.claim_due("worker-1", 3, now=base)

    assert [m.outbox_id for m in claimed] == [ids[4], ids[1], ids[3]]
    states = {r["id"]: r["state"] for r in rows.all_outbox()}
    assert states == {
        ids[0]: "queued",
        ids[1]: "sending",
        ids[2]: "queued",
        ids[3]: "sending",
        ids[4]: "sending",
    }


def test_messages_not_yet_due_are_not_claimed(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    due_id, later_id, held_id = outbox.enqueue([make_message() for _ in range(3)])
    now = rows.outbox(due_id)["next_attempt_at"]
    rows.update_outbox(later_id, state="deferred", next_attempt_at=now + 60)
    # ``unknown`` under the hold policy has no next attempt: only a person can release it.
    rows.update_outbox(held_id, state="unknown", next_attempt_at=None)

    assert [m.outbox_id for m in outbox.claim_due("w", 10, now=now)] == [due_id]
    assert outbox.claim_due("w", 10, now=now + 59.999) == []
    assert [m.outbox_id for m in outbox.claim_due("w", 10, now=now + 60)] == [later_id]
    assert outbox.claim_due("w", 10, now=now + 10**9) == []
    assert rows.outbox(held_id)["state"] == "unknown"


@pytest.mark.parametrize("state", ["queued", "deferred", "unknown"])
def test_every_claimable_state_is_claimed_when_due(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, state: str
) -> None:
    (outbox_id,) = outbox.enqueue([make_message()])
    rows.update_outbox(outbox_id, state=state)
    now = rows.outbox(outbox_id)["next_attempt_at"]

    assert [m.outbox_id for m in outbox.claim_due("w", 1, now=now)] == [outbox_id]
    assert rows.outbox(outbox_id)["state"] == "sending"


@pytest.mark.parametrize("state", ["sending", "sent", "failed", "cancelled", "bounced"])
def test_other_states_are_never_claimed(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, state: str
) -> None:
    (outbox_id,) = outbox.enqueue([make_message()])
    rows.update_outbox(outbox_id, state=state, lease_owner="someone-else")
    before = rows.outbox(outbox_id)

    assert outbox.claim_due("w", 10, now=before["next_attempt_at"] + 3600) == []
    assert rows.outbox(outbox_id) == before


def test_a_second_claim_never_returns_rows_already_leased(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    ids = outbox.enqueue([make_message() for _ in range(5)])
    now = rows.outbox(ids[-1])["next_attempt_at"]

    first = outbox.claim_due("worker-a", 2, now=now)
    second = outbox.claim_due("worker-b", 10, now=now)
    third = outbox.claim_due("worker-c", 10, now=now)

    first_ids = {m.outbox_id for m in first}
    second_ids = {m.outbox_id for m in second}
    assert len(first_ids) == 2
    assert first_ids.isdisjoint(second_ids)
    assert first_ids | second_ids == set(ids)
    assert third == []
    owners = {r["id"]: r["lease_owner"] for r in rows.all_outbox()}
    assert {owners[i] for i in first_ids} == {"worker-a"}
    assert {owners[i] for i in second_ids} == {"worker-b"}


def test_claim_with_nothing_due_changes_nothing(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    (outbox_id,) = outbox.enqueue([make_message()])
    before = rows.outbox(outbox_id)

    assert outbox.claim_due("w", 10, now=before["next_attempt_at"] - 1) == []
    assert rows.outbox(outbox_id) == before


def test_next_due_at_is_the_earliest_claimable_time(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage
) -> None:
    assert outbox.next_due_at() is None
    a, b, c = outbox.enqueue([make_message() for _ in range(3)])
    rows.update_outbox(a, state="deferred", next_attempt_at=500.0)
    rows.update_outbox(b, state="sent", next_attempt_at=100.0)  # done: not "due"
    rows.update_outbox(c, state="unknown", next_attempt_at=None)  # held

    assert outbox.next_due_at() == 500.0

    rows.update_outbox(a, state=MessageState.CANCELLED.value)
    assert outbox.next_due_at() is None
