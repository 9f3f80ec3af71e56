"""The only place that touches both the core's loop thread and Qt.

Core events arrive on the loop thread, are collected, and leave in batches as Qt signals on
the GUI thread (one queued call per batch). Work the GUI asks for (a probe, a keyring
write, a database change) runs on the loop thread and its result comes back as a callback
on the GUI thread. Only frozen values cross, never widgets, sessions or SMTP clients.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop_app.core.change_feed import ChangeFeed
from desktop_app.core.events import (
    AlertRaised,
    AlertResolved,
    AttemptRecorded,
    BouncesRecorded,
    CampaignChanged,
    DeliveryProbeLost,
    EngineStatusChanged,
    Event,
    FailoverHappened,
    IncidentChanged,
    MailboxStatusChanged,
    MessageStateChanged,
    ProbeRecorded,
    ProviderHealthChanged,
    ProviderStateChanged,
    QuotaExhausted,
)
from desktop_app.core.runtime import LoopThread

log = logging.getLogger(__name__)

SuccessCallback = Callable[[Any], None]
ErrorCallback = Callable[[BaseException], None]


class LoopStoppedError(RuntimeError):
    """The loop thread has stopped (the app is shutting down): the request never ran."""


def is_shutdown_error(error: BaseException) -> bool:
    """Whether a request failed only because the app is shutting down."""
    return isinstance(error, LoopStoppedError | concurrent.futures.CancelledError)


@dataclass(frozen=True, slots=True)
class Route:
    """Where one type of core event goes on the GUI thread.

    ``signal``: the name of the ``CoreBridge`` signal that carries it, or ``None`` when the
    GUI shows it some other way. ``batched``: the signal carries a list, every event of that
    type in the batch, in order (one emission per batch); otherwise one emission per event.
    """

    signal: str | None
    batched: bool = False


#: The GUI does not show the event itself (it sees what the core makes of it).
IGNORED = Route(None)

#: Every core event -> its signal. A new event is one line here (and its signal below);
#: ``tests/gui/test_gui_bridge_routes.py`` fails while an ``Event`` type has no line.
#: Batched signals are emitted after the per-event ones, in the order of this table.
EVENT_ROUTES: dict[type[Any], Route] = {
    AttemptRecorded: Route("attempts_recorded", batched=True),
    MessageStateChanged: Route("message_states_changed", batched=True),
    FailoverHappened: Route("failovers_happened", batched=True),
    ProviderStateChanged: Route("provider_state_changed"),
    EngineStatusChanged: Route("engine_status_changed"),
    ProbeRecorded: Route("probes_recorded", batched=True),
    ProviderHealthChanged: Route("provider_health_changed"),
    IncidentChanged: Route("incident_changed"),
    QuotaExhausted: IGNORED,  # the alerter raises an alert: AlertRaised
    AlertRaised: Route("alert_raised"),
    AlertResolved: Route("alert_resolved"),
    CampaignChanged: Route("campaign_changed"),
    BouncesRecorded: Route("bounces_recorded"),
    MailboxStatusChanged: Route("mailbox_status_changed"),
    DeliveryProbeLost: IGNORED,  # the alerter raises an alert: AlertRaised
}

_BATCHED_SIGNALS: tuple[str, ...] = tuple(
    route.signal for route in EVENT_ROUTES.values() if route.batched and route.signal
)


def route_for(event_type: type[Any]) -> Route | None:
    """The route of ``event_type`` (or of the nearest base class that has one)."""
    for cls in event_type.__mro__:
        route = EVENT_ROUTES.get(cls)
        if route is not None:
            return route
    return None


class CoreBridge(QObject):
    """Core events -> Qt signals; GUI requests -> loop thread -> GUI callbacks.

    Signals (on the GUI thread; the per-message ones carry every event of a batch, in order;
    which event feeds which signal is ``EVENT_ROUTES``):
        attempts_recorded(list[AttemptRecorded])
        message_states_changed(list[MessageStateChanged])
        failovers_happened(list[FailoverHappened])
        provider_state_changed(ProviderStateChanged)
        engine_status_changed(EngineStatusChanged)
        probes_recorded(list[ProbeRecorded])
        provider_health_changed(ProviderHealthChanged)
        incident_changed(IncidentChanged)
        alert_raised(AlertRaised)
        alert_resolved(AlertResolved)
        campaign_changed(CampaignChanged)
        bounces_recorded(BouncesRecorded)
        mailbox_status_changed(MailboxStatusChanged)
        changes_seen(frozenset[str]): the change feed saw these topics move, in this or any
            other process (``follow_changes``; topics are ``change_feed.Topic`` values)
    """

    attempts_recorded = Signal(list)
    message_states_changed = Signal(list)
    failovers_happened = Signal(list)
    provider_state_changed = Signal(object)
    engine_status_changed = Signal(object)
    probes_recorded = Signal(list)
    provider_health_changed = Signal(object)
    incident_changed = Signal(object)
    alert_raised = Signal(object)
    alert_resolved = Signal(object)
    campaign_changed = Signal(object)
    bounces_recorded = Signal(object)
    mailbox_status_changed = Signal(object)
    changes_seen = Signal(object)
    _request_finished = Signal(int, object, object)
    _changes_arrived = Signal(object)
    _events_ready = Signal()

    def __init__(self, runtime: LoopThread, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runtime = runtime
        self._callbacks: dict[int, tuple[SuccessCallback | None, ErrorCallback | None]] = {}
        self._tokens = itertools.count(1)
        self._pending: list[Event] = []
        self._pending_lock = threading.Lock()
        self._delivery_scheduled = False
        self._unrouted: set[type[Any]] = set()  # event types without a route, logged once
        # Queued even when emitted on the GUI thread: answers and events always arrive
        # from the event loop, never in the middle of the call that asked.
        self._request_finished.connect(
            self._on_request_finished, Qt.ConnectionType.QueuedConnection
        )
        self._events_ready.connect(self._on_events_ready, Qt.ConnectionType.QueuedConnection)
        self._changes_arrived.connect(self._on_changes_arrived, Qt.ConnectionType.QueuedConnection)

    @property
    def runtime(self) -> LoopThread:
        return self._runtime

    # -- core -> GUI (called on the loop thread) -------------------------------------------

    def publish(self, event: Event) -> None:
        """EventSink (loop thread): hand the event to the GUI thread. Never touches widgets.

        Events are batched: one queued call per batch, and one signal per kind of event per
        batch, not one per event. Emitting a signal releases the GIL, and while the engine
        keeps the loop thread busy, getting it back can take most of a switch interval
        (5 ms): a few thousand events a second, queued and emitted one by one, kept the
        window from painting for 50-100 ms at a time.
        """
        with self._pending_lock:
            self._pending.append(event)
            if self._delivery_scheduled:
                return
            self._delivery_scheduled = True
        self._events_ready.emit()

    @Slot()
    def _on_events_ready(self) -> None:
        with self._pending_lock:
            events, self._pending = self._pending, []
            self._delivery_scheduled = False
        batches: dict[str, list[Event]] = {}
        for event in events:
            route = route_for(type(event))
            if route is None:
                self._log_unrouted(type(event))
            elif route.signal is None:
                continue
            elif route.batched:
                batches.setdefault(route.signal, []).append(event)
            else:
                getattr(self, route.signal).emit(event)
        for name in _BATCHED_SIGNALS:
            batch = batches.get(name)
            if batch:
                getattr(self, name).emit(batch)

    # -- change feed -> GUI (called on the feed's thread) -----------------------------------

    def follow_changes(self, feed: ChangeFeed) -> Callable[[], None]:
        """Re-emit what ``feed`` hears as ``changes_seen`` on the GUI thread.

        Returns the function that stops it (call it before this bridge goes away); once it
        has returned, no further ``changes_seen`` comes from this feed. Starting the feed is
        the caller's business (``feed.start()``, idempotent).
        """
        lock = threading.Lock()
        following = [True]

        def on_changes(topics: frozenset[str]) -> None:  # on the feed's thread
            with lock:
                if following[0]:
                    self._changes_arrived.emit(frozenset(topics))

        unsubscribe = feed.subscribe(on_changes)

        def stop() -> None:
            with lock:
                following[0] = False
            unsubscribe()

        return stop

    @Slot(object)
    def _on_changes_arrived(self, topics: frozenset[str]) -> None:
        self.changes_seen.emit(topics)

    def _log_unrouted(self, event_type: type[Any]) -> None:
        if event_type in self._unrouted:
            return
        self._unrouted.add(event_type)
        log.warning(
            "no route for core event %s (add it to EVENT_ROUTES); not shown",
            event_type.__name__,
        )

    # -- GUI -> core -----------------------------------------------------------------------

    def run(
        self,
        coroutine: Coroutine[Any, Any, Any],
        on_success: SuccessCallback | None = None,
        on_error: ErrorCallback | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Run ``coroutine`` on the loop thread; callbacks come back on the GUI thread."""
        token = next(self._tokens)
        self._callbacks[token] = (on_success, on_error)
        try:
            future = self._runtime.submit(coroutine)
        except RuntimeError as exc:
            # The loop thread has stopped (the app is shutting down): an answer, not a crash.
            coroutine.close()
            future = concurrent.futures.Future()
            future.set_exception(LoopStoppedError(str(exc)))
        future.add_done_callback(lambda done: self._deliver(token, done))
        return future

    def call(
        self,
        function: Callable[..., Any],
        *args: Any,
        on_success: SuccessCallback | None = None,
        on_error: ErrorCallback | None = None,
    ) -> concurrent.futures.Future[Any]:
        """Run a blocking ``function`` (SQLite, keyring) off the GUI thread."""

        async def in_thread() -> Any:
            return await asyncio.to_thread(function, *args)

        return self.run(in_thread(), on_success, on_error)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Schedule a quick, non-blocking call on the loop thread (engine.pause...)."""
        if not self._runtime.running:
            log.debug("loop thread stopped; dropped %r", callback)
            return
        self._runtime.call_soon(callback, *args)

    def _deliver(self, token: int, future: concurrent.futures.Future[Any]) -> None:
        # Runs on the loop thread: hand over to the GUI thread by a queued signal.
        if future.cancelled():
            self._request_finished.emit(token, None, concurrent.futures.CancelledError())
            return
        error = future.exception()
        self._request_finished.emit(token, None if error else future.result(), error)

    @Slot(int, object, object)
    def _on_request_finished(self, token: int, result: Any, error: Any) -> None:
        on_success, on_error = self._callbacks.pop(token, (None, None))
        if error is not None:
            if on_error is not None:
                on_error(error)
            else:
                log.error("background request failed: %s", error)
        elif on_success is not None:
            on_success(result)
