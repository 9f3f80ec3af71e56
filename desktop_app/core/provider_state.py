"""The one home of each provider's live state, and the rule that turns it into one word.

The delivery engine reports what it alone knows (breaker and cool-down, the outcome of each
send, rate-limit waits, maintenance as it routes, a missing password); the health monitor
reports what probes saw and the health its tracker decided from sends and probes together.
``ProviderStateBoard`` keeps one ``ProviderLiveState`` per provider from those reports,
decides its word with ``state_word`` (the only place that does), and announces a
``ProviderStateChanged`` when the word or the breaker moves. The monitor persists the board
to ``provider_status``; other processes read those rows. So the Providers page, the
Dashboard, the tray, ``relaydesk health`` and ``provider list --json`` all say the same.

Everything here runs on the loop thread (the engine and monitor both live there); listeners
are called synchronously and must return quickly.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from desktop_app.core.events import EventSink, ProviderStateChanged
from desktop_app.core.models import (
    BreakerState,
    OutcomeClass,
    ProviderConfig,
    ProviderLiveState,
    ProviderState,
)

#: Sends with the same outcome as the last one update ``last_send_at`` at most this often:
#: the engine reports every send, thousands a second, and the record says "when, roughly".
SEND_REPORT_SECONDS = 1.0
#: Called with (before, after) for every change of a provider's record.
Listener = Callable[[ProviderLiveState, ProviderLiveState], None]


def state_word(live: ProviderLiveState) -> ProviderState:
    """The one word for ``live`` (the precedence is documented on ``ProviderState``)."""
    if not live.enabled:
        return ProviderState.DISABLED
    if live.in_maintenance:
        return ProviderState.MAINTENANCE
    if live.password_missing:
        return ProviderState.NO_PASSWORD
    if live.breaker is BreakerState.OPEN:
        return ProviderState.DOWN
    if live.breaker is BreakerState.HALF_OPEN:
        return ProviderState.RECOVERING
    if live.health == "down":
        return ProviderState.DOWN
    if live.health == "up":
        return ProviderState.UP
    if not live.observed:
        return ProviderState.UNKNOWN
    # Observed but not judged yet (a send whose outcome says nothing about up or down).
    worked = live.last_probe_ok or live.last_send_outcome in _WORKING_OUTCOMES
    return ProviderState.UP if worked else ProviderState.DOWN


#: Outcomes that show a provider working: it answered sensibly, whatever it said of the mail.
_WORKING_OUTCOMES = frozenset(
    {
        OutcomeClass.DELIVERED.value,
        OutcomeClass.RECIPIENT_PERMANENT.value,
        OutcomeClass.RECIPIENT_TRANSIENT.value,
        OutcomeClass.CONTENT_REJECTED.value,
    }
)


class ProviderStateBoard:
    """Keeps each provider's ``ProviderLiveState``; the engine and the monitor write to it."""

    def __init__(
        self,
        events: EventSink,
        *,
        stored: Mapping[str, ProviderLiveState] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._events = events
        self._clock = clock
        self._states: dict[str, ProviderLiveState] = dict(stored or {})
        self._listeners: list[Listener] = []
        self._dirty = bool(stored)

    # -- reading ------------------------------------------------------------------------------

    def get(self, uid: str) -> ProviderLiveState | None:
        return self._states.get(uid)

    def by_name(self, name: str) -> ProviderLiveState | None:
        return next((s for s in self._states.values() if s.provider_name == name), None)

    def snapshot(self) -> list[ProviderLiveState]:
        return list(self._states.values())

    def take_dirty(self) -> bool:
        """Whether anything changed since the last call (for the monitor's writer)."""
        dirty, self._dirty = self._dirty, False
        return dirty

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- the providers themselves ---------------------------------------------------------------

    def sync_providers(self, configs: Iterable[ProviderConfig]) -> None:
        """Follow the configured providers: names, enabled flags, added and removed ones."""
        seen = set()
        for config in configs:
            seen.add(config.uid)
            current = self._states.get(config.uid)
            if current is None:
                current = ProviderLiveState(config.uid, config.name, since=self._clock())
                self._states[config.uid] = current
            self._update(
                config.uid, provider_name=config.name, enabled=config.enabled, quiet_name=True
            )
        for gone in set(self._states) - seen:
            del self._states[gone]
            self._dirty = True

    # -- reports from the engine ----------------------------------------------------------------

    def report_breaker(
        self, uid: str, breaker: BreakerState, retry_at: float | None, detail: str = ""
    ) -> None:
        self._update(uid, breaker=breaker, breaker_retry_at=retry_at, detail=detail or None)

    def report_send(self, uid: str, outcome: OutcomeClass, detail: str = "") -> None:
        now = self._clock()
        current = self._states.get(uid)
        if (
            current is not None
            and current.last_send_outcome == outcome.value
            and current.last_send_at is not None
            and now - current.last_send_at < SEND_REPORT_SECONDS
        ):
            return  # the same news again within a second: not worth a new record per message
        self._update(uid, last_send_at=now, last_send_outcome=outcome.value, detail=detail or None)

    def report_quota(self, uid: str, free_at: float | None) -> None:
        self._update(uid, quota_free_at=free_at)

    def report_maintenance(self, uid: str, in_window: bool, detail: str = "") -> None:
        self._update(uid, in_maintenance=in_window, detail=detail or None)

    def report_password(self, uid: str, missing: bool) -> None:
        self._update(uid, password_missing=missing)

    # -- reports from the monitor ---------------------------------------------------------------

    def report_probe(self, uid: str, ok: bool, at: float, detail: str = "") -> None:
        self._update(uid, last_probe_at=at, last_probe_ok=ok, detail=detail or None)

    def report_health(self, uid: str, health: str, detail: str = "") -> None:
        self._update(uid, health=health, detail=detail or None)

    # -- the one writer -------------------------------------------------------------------------

    def _update(self, uid: str, *, quiet_name: bool = False, **changes: Any) -> None:
        before = self._states.get(uid)
        if before is None:
            return  # a provider removed meanwhile
        if changes.get("detail") is None:
            changes.pop("detail", None)
        candidate = dataclasses.replace(before, **changes)
        word = state_word(candidate)
        now = self._clock()
        if word is not before.state:
            candidate = dataclasses.replace(candidate, state=word, since=now)
        if candidate == before:
            return
        after = dataclasses.replace(candidate, updated_at=now)
        self._states[uid] = after
        self._dirty = True
        moved = (after.state, after.breaker) != (before.state, before.breaker)
        if moved or (not quiet_name and after.provider_name != before.provider_name):
            self._events.publish(
                ProviderStateChanged(
                    after.provider_name, after.state, after.breaker, after.detail, live=after
                )
            )
        for listener in list(self._listeners):
            listener(before, after)
