"""The provider-state home: one word per provider, decided in one place, announced on change."""

from __future__ import annotations

import dataclasses

import pytest

from desktop_app.core.events import Event, ProviderStateChanged
from desktop_app.core.models import (
    BreakerState,
    OutcomeClass,
    ProviderConfig,
    ProviderLiveState,
    ProviderState,
    Security,
)
from desktop_app.core.provider_state import ProviderStateBoard, state_word

BASE = ProviderLiveState("uid-1", "primary")


class Events:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def publish(self, event: Event) -> None:
        self.seen.append(event)

    def states(self) -> list[tuple[str, ProviderState, BreakerState]]:
        return [
            (e.provider_name, e.state, e.breaker)
            for e in self.seen
            if isinstance(e, ProviderStateChanged)
        ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({}, ProviderState.UNKNOWN),  # never probed, never used
        ({"health": "up"}, ProviderState.UP),
        ({"health": "down"}, ProviderState.DOWN),
        ({"last_probe_at": 1.0, "last_probe_ok": True}, ProviderState.UP),
        ({"last_probe_at": 1.0, "last_probe_ok": False}, ProviderState.DOWN),
        ({"last_send_at": 1.0, "last_send_outcome": "delivered"}, ProviderState.UP),
        ({"last_send_at": 1.0, "last_send_outcome": "provider_failure"}, ProviderState.DOWN),
        ({"health": "up", "breaker": BreakerState.OPEN}, ProviderState.DOWN),
        ({"health": "down", "breaker": BreakerState.HALF_OPEN}, ProviderState.RECOVERING),
        ({"health": "up", "password_missing": True}, ProviderState.NO_PASSWORD),
        (
            {"password_missing": True, "in_maintenance": True, "breaker": BreakerState.OPEN},
            ProviderState.MAINTENANCE,
        ),
        ({"in_maintenance": True, "enabled": False}, ProviderState.DISABLED),
        ({"health": "up", "enabled": False}, ProviderState.DISABLED),
    ],
)
def test_one_word_by_the_documented_precedence(
    changes: dict[str, object], word: ProviderState
) -> None:
    assert state_word(dataclasses.replace(BASE, **changes)) is word  # type: ignore[arg-type]


def _board(events: Events, clock: Clock) -> ProviderStateBoard:
    board = ProviderStateBoard(events, clock=clock)
    board.sync_providers(
        [ProviderConfig("primary", "127.0.0.1", 25, Security.NONE, uid="uid-1", id=1)]
    )
    return board


def test_reports_from_engine_and_monitor_make_one_record_and_one_event_per_move() -> None:
    events, clock = Events(), Clock()
    board = _board(events, clock)
    assert board.get("uid-1").state is ProviderState.UNKNOWN  # type: ignore[union-attr]

    clock.now = 1001.0
    board.report_probe("uid-1", ok=True, at=1001.0)  # the monitor
    board.report_health("uid-1", "up")
    board.report_send("uid-1", OutcomeClass.DELIVERED)  # the engine
    assert events.states() == [("primary", ProviderState.UP, BreakerState.CLOSED)]

    clock.now = 1002.0
    board.report_breaker("uid-1", BreakerState.OPEN, retry_at=1032.0, detail="refused")
    live = board.get("uid-1")
    assert live is not None
    assert (live.state, live.breaker, live.breaker_retry_at) == (
        ProviderState.DOWN,
        BreakerState.OPEN,
        1032.0,
    )
    assert (live.since, live.detail) == (1002.0, "refused")
    assert (live.last_probe_at, live.last_send_outcome) == (1001.0, "delivered")
    assert events.states()[-1] == ("primary", ProviderState.DOWN, BreakerState.OPEN)
    (last,) = [e for e in events.seen[-1:] if isinstance(e, ProviderStateChanged)]
    assert last.live == live


def test_a_disabled_provider_is_disabled_and_a_removed_one_is_gone() -> None:
    events, clock = Events(), Clock()
    board = _board(events, clock)
    board.report_health("uid-1", "up")
    board.sync_providers(
        [
            ProviderConfig(
                "primary", "127.0.0.1", 25, Security.NONE, uid="uid-1", id=1, enabled=False
            )
        ]
    )
    assert board.get("uid-1").state is ProviderState.DISABLED  # type: ignore[union-attr]
    assert events.states()[-1][1] is ProviderState.DISABLED
    board.sync_providers([])
    assert board.get("uid-1") is None
    assert board.snapshot() == []


def test_sends_with_the_same_outcome_update_the_record_at_most_once_a_second() -> None:
    events, clock = Events(), Clock()
    board = _board(events, clock)
    changes: list[tuple[ProviderLiveState, ProviderLiveState]] = []
    board.add_listener(lambda before, after: changes.append((before, after)))
    for step in range(100):
        clock.now = 1000.0 + step * 0.001
        board.report_send("uid-1", OutcomeClass.DELIVERED)
    assert len(changes) == 1
    clock.now = 1001.5
    board.report_send("uid-1", OutcomeClass.DELIVERED)
    board.report_send("uid-1", OutcomeClass.PROVIDER_FAILURE)  # news: recorded at once
    assert len(changes) == 3
    assert board.get("uid-1").last_send_outcome == "provider_failure"  # type: ignore[union-attr]


def test_the_stored_record_is_where_a_new_board_starts() -> None:
    stored = dataclasses.replace(BASE, state=ProviderState.UP, health="up", last_probe_at=5.0)
    events, clock = Events(), Clock()
    board = ProviderStateBoard(events, stored={"uid-1": stored}, clock=clock)
    board.sync_providers(
        [ProviderConfig("primary", "127.0.0.1", 25, Security.NONE, uid="uid-1", id=1)]
    )
    # Not "unknown" after a restart: the last word stands until something new is seen.
    assert board.get("uid-1").state is ProviderState.UP  # type: ignore[union-attr]
    assert events.states() == []
