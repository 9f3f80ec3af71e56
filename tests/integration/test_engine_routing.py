"""The routing rules, one test per row (desktop_app/ARCHITECTURE.md, "Routing rules").

A provider at a later priority takes a message only when every provider before it is
unusable for that message; busy is not unusable. Each test runs the real engine against
real loopback servers: a primary at priority 1 and a backup at priority 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from desktop_app.core.health.maintenance import once_window
from desktop_app.core.models import RateLimits
from tests.support.scripted_smtp import ScriptedSMTPServer

ScriptedFactory = Callable[..., ScriptedSMTPServer]


@pytest.mark.asyncio
async def test_a_busy_primary_keeps_its_mail_and_the_backup_gets_none(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    # The user's report: primary with 2 connections and ~30 ms per message, backup idle:
    # of 200 messages the backup got 164. Busy is not unusable.
    primary = scripted_smtp(delays={".": 0.03})
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=1, max_connections=2)
    delivery.add_provider("backup", backup.port, priority=2)
    queued = delivery.queue(200)

    await delivery.run_until_idle(timeout=120)

    assert backup.message_ids() == []
    assert sorted(primary.message_ids()) == sorted(queued)
    assert delivery.attempts_through("backup") == []


@pytest.mark.asyncio
async def test_a_busy_provider_shares_with_a_free_one_of_the_same_priority(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    slow = scripted_smtp(delays={".": 0.05})
    fast = scripted_smtp()
    backup = scripted_smtp()
    delivery.add_provider("slow", slow.port, priority=1, max_connections=1)
    delivery.add_provider("fast", fast.port, priority=1, max_connections=1)
    delivery.add_provider("backup", backup.port, priority=2)
    queued = delivery.queue(60)

    await delivery.run_until_idle(timeout=60)

    assert backup.message_ids() == []
    assert sorted(slow.message_ids() + fast.message_ids()) == sorted(queued)
    assert fast.message_ids() and slow.message_ids()


@pytest.mark.asyncio
async def test_a_disabled_primary_sends_the_mail_to_the_backup(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    primary = scripted_smtp()
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=1, enabled=False)
    delivery.add_provider("backup", backup.port, priority=2)
    queued = delivery.queue(5)

    await delivery.run_until_idle()

    assert primary.message_ids() == []
    assert sorted(backup.message_ids()) == sorted(queued)


@pytest.mark.asyncio
async def test_a_primary_in_maintenance_sends_the_mail_to_the_backup(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    primary = scripted_smtp()
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=1)
    delivery.add_provider("backup", backup.port, priority=2)
    now = time.time()
    delivery.ws.add_maintenance("primary", once_window(now - 60, now + 3600))
    queued = delivery.queue(5)

    await delivery.run_until_idle()

    assert primary.message_ids() == []
    assert sorted(backup.message_ids()) == sorted(queued)


@pytest.mark.asyncio
async def test_a_primary_whose_breaker_is_open_sends_the_mail_to_the_backup(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    primary = scripted_smtp(mail_reply="421 4.3.2 closing")
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=1, max_connections=1)
    delivery.add_provider("backup", backup.port, priority=2)
    delivery.settings(breaker__failure_threshold="2", breaker__open_seconds="3600")
    queued = delivery.queue(20)

    await delivery.run_until_idle()

    # Two failures open the breaker; after that the primary is not even tried.
    assert len(delivery.attempts_through("primary")) == 2
    assert sorted(backup.message_ids()) == sorted(queued)


@pytest.mark.asyncio
async def test_a_quota_used_up_for_longer_than_a_moment_sends_the_mail_to_the_backup(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    primary = scripted_smtp()
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=1, rate_limits=RateLimits(per_hour=3))
    delivery.add_provider("backup", backup.port, priority=2)
    queued = delivery.queue(10)

    await delivery.run_until_idle()

    assert len(primary.message_ids()) == 3
    assert len(backup.message_ids()) == 7
    assert sorted(primary.message_ids() + backup.message_ids()) == sorted(queued)


@pytest.mark.asyncio
async def test_a_per_second_limit_is_pacing_and_keeps_the_mail_on_the_primary(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    primary = scripted_smtp()
    backup = scripted_smtp()
    delivery.add_provider(
        "primary", primary.port, priority=1, rate_limits=RateLimits(per_second=10)
    )
    delivery.add_provider("backup", backup.port, priority=2)
    queued = delivery.queue(25)

    await delivery.run_until_idle(timeout=30)

    assert backup.message_ids() == []
    assert sorted(primary.message_ids()) == sorted(queued)


@pytest.mark.asyncio
async def test_a_primary_not_authorized_for_the_from_domain_leaves_it_to_the_backup(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    primary = scripted_smtp()
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=1, sender_domains=("other.example",))
    delivery.add_provider("backup", backup.port, priority=2)
    foreign = delivery.queue(4, sender="news@example.com")
    own = delivery.queue(4, sender="news@other.example")

    await delivery.run_until_idle()

    assert sorted(backup.message_ids()) == sorted(foreign)
    assert sorted(primary.message_ids()) == sorted(own)


@pytest.mark.asyncio
async def test_a_primary_that_failed_this_message_hands_it_to_the_backup(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    primary = scripted_smtp(mail_reply="451 4.3.0 try later")
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=1)
    delivery.add_provider("backup", backup.port, priority=2)
    (message_id,) = delivery.queue(1)

    await delivery.run_until_idle()

    assert backup.message_ids() == [message_id]
    assert [a["provider_name"] for a in delivery.attempts(message_id)] == ["primary", "backup"]
