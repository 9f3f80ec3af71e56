"""The bridge's dispatch table: every core event has a route, and every route a signal."""

from __future__ import annotations

import logging
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Signal
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.core import events
from desktop_app.core.models import BreakerState, MessageState, ProviderState
from desktop_app.core.runtime import LoopThread
from desktop_app.ui.bridge import EVENT_ROUTES, CoreBridge, route_for

WAIT_MS = 5_000


def event_types() -> list[type[Any]]:
    return list(typing.get_args(events.Event))


def test_every_event_in_the_union_has_a_route() -> None:
    missing = [cls.__name__ for cls in event_types() if cls not in EVENT_ROUTES]
    assert missing == [], f"add these to bridge.EVENT_ROUTES: {missing}"


def test_the_table_routes_only_core_events() -> None:
    assert set(EVENT_ROUTES) == set(event_types())


#: Public signals that no core event feeds.
NOT_FROM_EVENTS = {"changes_seen"}  # the change feed's (follow_changes)


def test_every_route_names_a_signal_and_every_event_signal_is_fed() -> None:
    named = {route.signal for route in EVENT_ROUTES.values() if route.signal is not None}
    for name in named:
        assert isinstance(getattr(CoreBridge, name, None), Signal), name
    public_signals = {
        name
        for name, value in vars(CoreBridge).items()
        if isinstance(value, Signal) and not name.startswith("_")
    }
    assert public_signals - NOT_FROM_EVENTS == named


@dataclass(frozen=True)
class UnknownEvent:
    detail: str


@dataclass(frozen=True)
class SpecialProviderStateChanged(events.ProviderStateChanged):
    """A subclass is routed as its base was (the bridge used isinstance)."""


@pytest.fixture
def bridge() -> Iterator[CoreBridge]:
    runtime = LoopThread()  # not started: publish and the event hand-over need no loop
    made = CoreBridge(runtime)
    yield made
    QApplication.processEvents()
    made.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def test_subclasses_follow_their_base_route() -> None:
    assert route_for(SpecialProviderStateChanged) is EVENT_ROUTES[events.ProviderStateChanged]
    assert route_for(UnknownEvent) is None


def test_unknown_event_is_logged_once_and_the_rest_still_arrive(
    bridge: CoreBridge, qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    states: list[list[events.MessageStateChanged]] = []
    providers: list[events.ProviderStateChanged] = []
    alerts: list[events.AlertRaised] = []
    bridge.message_states_changed.connect(states.append)
    bridge.provider_state_changed.connect(providers.append)
    bridge.alert_raised.connect(alerts.append)
    sent = events.MessageStateChanged(1, "<1@example.test>", MessageState.SENT)
    down = SpecialProviderStateChanged("primary", ProviderState.DOWN, BreakerState.OPEN)
    caplog.set_level(logging.WARNING, logger="desktop_app.ui.bridge")

    bridge.publish(UnknownEvent("first"))  # type: ignore[arg-type]
    bridge.publish(events.QuotaExhausted("primary", 0.0))  # routed, shown as an alert
    bridge.publish(sent)
    bridge.publish(UnknownEvent("second"))  # type: ignore[arg-type]
    bridge.publish(down)
    qtbot.waitUntil(lambda: bool(states) and bool(providers), timeout=WAIT_MS)
    bridge.publish(UnknownEvent("third"))  # type: ignore[arg-type]
    bridge.publish(sent)
    qtbot.waitUntil(lambda: len(states) == 2, timeout=WAIT_MS)

    assert states == [[sent], [sent]]
    assert providers == [down]
    assert alerts == []
    unrouted = [r for r in caplog.records if "UnknownEvent" in r.getMessage()]
    assert len(unrouted) == 1
    assert unrouted[0].levelno == logging.WARNING
    assert not [r for r in caplog.records if "QuotaExhausted" in r.getMessage()]
