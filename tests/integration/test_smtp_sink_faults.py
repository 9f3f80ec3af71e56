"""The delivery engine against Postfix's ``smtp-sink`` with its fault flags.

smtp-sink is a different SMTP implementation from aiosmtpd (other reply texts, no
PIPELINING under -f/-r, its own way of dropping a connection), so the outcome table
(desktop_app/ARCHITECTURE.md, "Classifying SMTP outcomes") is checked once more against a
server nobody here wrote. Each sink dumps every transaction that reached the final "."
(``dump=True``), which is what "arrived" means below.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest

from desktop_app.core.events import FailoverHappened
from tests.support.smtp_sink import SmtpSink

SinkFactory = Callable[..., SmtpSink]

LONG_BACKOFF = {"retry__min_backoff_seconds": "60", "retry__max_backoff_seconds": "120"}


def exactly_once(received: list[str], queued: list[str]) -> None:
    counts = collections.Counter(received)
    assert all(n == 1 for n in counts.values()), f"duplicates: {counts}"
    assert set(counts) == set(queued)


@pytest.mark.asyncio
async def test_hard_reject_of_rcpt_fails_the_message_and_never_fails_over(
    smtp_sink: SinkFactory, delivery: Any
) -> None:
    primary = smtp_sink(hard_reject=["rcpt"], dump=True)
    backup = smtp_sink(dump=True)
    delivery.add_provider("primary", primary.port, priority=0)
    delivery.add_provider("backup", backup.port, priority=1)
    queued = delivery.queue(4)

    await delivery.run_until_idle()

    assert delivery.ws.outbox.counts().failed == 4
    for message_id in queued:
        row = delivery.message(message_id)
        assert row["state"] == "failed"
        assert "500 5.3.0" in row["last_error"]
        (attempt,) = delivery.attempts(message_id)
        assert (attempt["provider_name"], attempt["outcome"], attempt["reply_code"]) == (
            "primary",
            "recipient_permanent",
            500,
        )
        assert attempt["enhanced_status"] == "5.3.0"
    assert primary.message_ids() == []
    assert backup.dumps() == []
    assert not delivery.events.of(FailoverHappened)


@pytest.mark.asyncio
async def test_421_to_mail_sends_everything_through_the_backup(
    smtp_sink: SinkFactory, delivery: Any
) -> None:
    primary = smtp_sink(shutdown_421=["mail"], dump=True)
    backup = smtp_sink(dump=True)
    delivery.add_provider("primary", primary.port, priority=0)
    delivery.add_provider("backup", backup.port, priority=1)
    queued = delivery.queue(12)

    await delivery.run_until_idle()

    assert delivery.ws.outbox.counts().sent == 12
    exactly_once(backup.message_ids(), queued)
    assert primary.message_ids() == []
    tried = delivery.attempts_through("primary")
    assert tried and len(tried) < 12  # the breaker opened before all 12 were tried there
    for attempt in tried:
        assert (attempt["outcome"], attempt["phase"], attempt["reply_code"]) == (
            "provider_failure",
            "mail",
            421,
        )
    assert len(delivery.events.of(FailoverHappened)) == len(tried)


@pytest.mark.asyncio
async def test_disconnect_after_the_final_dot_is_unknown(
    smtp_sink: SinkFactory, delivery: Any
) -> None:
    primary = smtp_sink(disconnect=["."], dump=True)
    backup = smtp_sink(dump=True)
    delivery.add_provider("primary", primary.port, priority=0)
    delivery.add_provider("backup", backup.port, priority=1)
    delivery.settings(ambiguous__policy="hold")
    queued = delivery.queue(2)

    await delivery.run_until_idle()

    # The sink has the whole content: exactly the case "unknown" exists for.
    exactly_once(primary.message_ids(), queued)
    assert backup.dumps() == []
    for message_id in queued:
        row = delivery.message(message_id)
        assert row["state"] == "unknown"
        assert row["possible_duplicate"]
        assert row["next_attempt_at"] is None
        (attempt,) = delivery.attempts(message_id)
        assert (attempt["outcome"], attempt["phase"]) == ("ambiguous", "data_end")
    assert not delivery.events.of(FailoverHappened)


@pytest.mark.asyncio
async def test_disconnect_after_the_final_dot_under_retry_policy_is_scheduled_again(
    smtp_sink: SinkFactory, delivery: Any
) -> None:
    primary = smtp_sink(disconnect=["."], dump=True)
    delivery.add_provider("primary", primary.port, priority=0)
    delivery.settings(ambiguous__policy="retry", **LONG_BACKOFF)
    (message_id,) = delivery.queue(1)

    async with delivery.running():
        await delivery.wait(lambda: delivery.settled(1, unknown=1))

    row = delivery.message(message_id)
    assert row["possible_duplicate"]
    assert row["next_attempt_at"] is not None
    assert row["next_attempt_at"] > row["updated_at"] + 25
    assert primary.message_ids() == [message_id]


@pytest.mark.asyncio
async def test_450_to_mail_is_a_provider_failure_and_fails_over(
    smtp_sink: SinkFactory, delivery: Any
) -> None:
    primary = smtp_sink(soft_reject=["mail"], dump=True)
    backup = smtp_sink(dump=True)
    delivery.add_provider("primary", primary.port, priority=0)
    delivery.add_provider("backup", backup.port, priority=1)
    queued = delivery.queue(6)

    await delivery.run_until_idle()

    assert delivery.ws.outbox.counts().sent == 6
    exactly_once(backup.message_ids(), queued)
    assert primary.message_ids() == []
    tried = delivery.attempts_through("primary")
    assert tried
    for attempt in tried:
        assert (attempt["outcome"], attempt["phase"], attempt["reply_code"]) == (
            "provider_failure",
            "mail",
            450,
        )
        assert attempt["enhanced_status"] == "4.3.0"
    failovers = delivery.events.of(FailoverHappened)
    assert failovers and all(f.from_provider == "primary" for f in failovers)
