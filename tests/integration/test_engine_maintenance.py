"""Maintenance windows against real SMTP servers (aiosmtpd on loopback).

During a window a provider takes no new transactions: no MAIL FROM reaches it, its traffic
goes to the others at once, a transaction it already had finishes, and with no other
provider the mail waits in the outbox (deferred) and goes out when the window ends.
The windows' boundaries are passed on the engine's clock, not on its periodic reload.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from desktop_app.core.events import Event, ProviderStateChanged
from desktop_app.core.health.maintenance import once_window
from desktop_app.core.models import ProviderState
from tests.support.scripted_smtp import ScriptedSMTPServer

ScriptedFactory = Callable[..., ScriptedSMTPServer]

LONG_BACKOFF = {"retry__min_backoff_seconds": "60", "retry__max_backoff_seconds": "120"}


class TimedEvents:
    """The engine's events with the time each was published."""

    def __init__(self) -> None:
        self.timed: list[tuple[float, Event]] = []

    def publish(self, event: Event) -> None:
        self.timed.append((time.time(), event))

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for _at, event in self.timed if isinstance(event, kind)]

    def states_of(self, provider: str) -> list[tuple[float, ProviderState]]:
        return [
            (at, event.state)
            for at, event in self.timed
            if isinstance(event, ProviderStateChanged) and event.provider_name == provider
        ]


async def until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


@pytest.mark.asyncio
async def test_a_provider_in_maintenance_takes_no_new_mail_but_finishes_what_it_has(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    # The primary answers the final "." slowly: its first message is still on the wire
    # when the window begins.
    primary = scripted_smtp(delays={".": 1.5})
    backup = scripted_smtp()
    delivery.add_provider("primary", primary.port, priority=0, max_connections=1)
    delivery.add_provider("backup", backup.port, priority=1)
    events = delivery.events = TimedEvents()
    (in_flight,) = delivery.queue(1, subject="in flight")

    async with delivery.running() as engine:
        await delivery.wait(lambda: primary.command_count("MAIL") == 1, what="MAIL at primary")
        start = time.time() + 0.5
        end = start + 3.0
        delivery.ws.add_maintenance("primary", once_window(start, end, note="upgrade"))
        await engine.reload()  # what the window does after "Save"; the boundary is later
        await until(start)
        during = delivery.queue(10, subject="during")
        await delivery.wait(lambda: delivery.settled(11, sent=11), what="all sent")
        assert time.time() < end, "the test ran too slowly to say anything"
        assert primary.command_count("MAIL") == 1  # not one new transaction
        await until(end + 0.3)
        after = delivery.queue(3, subject="after")
        await delivery.wait(lambda: delivery.settled(14, sent=14), what="mail after the window")

    # The transaction in flight when the window began finished there, acknowledged.
    first = [m for m in primary.messages if m.message_id == in_flight]
    assert len(first) == 1 and first[0].acknowledged
    assert first[0].mail_from_at is not None and first[0].mail_from_at < start
    assert delivery.message(in_flight)["state"] == "sent"
    (attempt,) = delivery.attempts(in_flight)
    assert (attempt["provider_name"], attempt["outcome"]) == ("primary", "delivered")
    # Mail queued during the window went to the backup at once, each exactly once.
    assert sorted(backup.message_ids()) == sorted(during)
    for message_id in during:
        assert [a["provider_name"] for a in delivery.attempts(message_id)] == ["backup"]
    # After the window the primary is preferred again, on the connection it already had
    # (a new window must not retire its connections).
    assert sorted(primary.message_ids()) == sorted([in_flight, *after])
    assert primary.connections_opened == 1
    assert all(m.mail_from_at is not None and m.mail_from_at >= end for m in primary.messages[1:])

    # Maintenance was announced at the boundary (not at a reload), then left.
    states = events.states_of("primary")
    entered = [at for at, state in states if state is ProviderState.MAINTENANCE]
    assert len(entered) == 1
    assert start <= entered[0] < start + 1.0
    (event,) = [
        e
        for e in events.of(ProviderStateChanged)
        if e.provider_name == "primary" and e.state is ProviderState.MAINTENANCE
    ]
    assert "upgrade" in event.detail
    left = [(at, state) for at, state in states if at > entered[0]]
    assert left and left[0][1] is not ProviderState.MAINTENANCE
    assert end <= left[0][0] < end + 1.0
    assert left[-1][1] is ProviderState.UP


@pytest.mark.asyncio
async def test_the_only_provider_in_maintenance_leaves_mail_deferred_until_the_window_ends(
    scripted_smtp: ScriptedFactory, delivery: Any
) -> None:
    only = scripted_smtp()
    delivery.add_provider("only", only.port)
    delivery.settings(**LONG_BACKOFF)  # without the window's end, nothing would retry for a minute
    events = delivery.events = TimedEvents()
    start = time.time()
    end = start + 2.5
    delivery.ws.add_maintenance("only", once_window(start - 60, end))
    queued = delivery.queue(3)

    async with delivery.running():
        await delivery.wait(lambda: delivery.settled(3, deferred=3), what="all deferred")
        for row in delivery.outbox():
            assert row["defer_reason"] == "no_provider"
            assert row["last_error"].startswith("no usable provider (only is in maintenance until")
            assert row["next_attempt_at"] == pytest.approx(end, abs=0.01)
        assert only.connections_opened == 0
        more = delivery.queue(2)  # queued during the window: deferred too, not sent
        await delivery.wait(lambda: delivery.settled(5, deferred=5), what="new mail deferred")
        assert time.time() < end, "the test ran too slowly to say anything"
        assert only.command_count("MAIL") == 0
        await delivery.wait(lambda: delivery.settled(5, sent=5), what="sent after the window")

    assert sorted(only.message_ids()) == sorted(queued + more)
    assert all(m.mail_from_at is not None and m.mail_from_at >= end for m in only.messages)
    states = events.states_of("only")
    assert states[0][1] is ProviderState.MAINTENANCE
    back = [(at, state) for at, state in states if state is not ProviderState.MAINTENANCE]
    assert back and end <= back[0][0] < end + 1.0
    assert back[-1][1] is ProviderState.UP
