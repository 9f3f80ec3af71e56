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
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop_app.core.events import (
    AlertRaised,
    AlertResolved,
    AttemptRecorded,
    BouncesRecorded,
    CampaignChanged,
    EngineStatusChanged,
    Event,
    FailoverHappened,
    IncidentChanged,
    MailboxStatusChanged,
    MessageStateChanged,
    ProbeRecorded,
    ProviderHealthChanged,
    ProviderStateChanged,
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


class CoreBridge(QObject):
    """Core events -> Qt signals; GUI requests -> loop thread -> GUI callbacks.

    Signals (on the GUI thread; the per-message ones carry every event of a batch, in order):
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
    _request_finished = Signal(int, object, object)
    _events_ready = Signal()

    def __init__(self, runtime: LoopThread, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runtime = runtime
        self._callbacks: dict[int, tuple[SuccessCallback | None, ErrorCallback | None]] = {}
        self._tokens = itertools.count(1)
        self._pending: list[Event] = []
        self._pending_lock = threading.Lock()
        self._delivery_scheduled = False
        # Queued even when emitted on the GUI thread: answers and events always arrive
        # from the event loop, never in the middle of the call that asked.
        self._request_finished.connect(
            self._on_request_finished, Qt.ConnectionType.QueuedConnection
        )
        self._events_ready.connect(self._on_events_ready, Qt.ConnectionType.QueuedConnection)

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
        attempts: list[AttemptRecorded] = []
        states: list[MessageStateChanged] = []
        failovers: list[FailoverHappened] = []
        probes: list[ProbeRecorded] = []
        for event in events:
            if isinstance(event, AttemptRecorded):
                attempts.append(event)
            elif isinstance(event, MessageStateChanged):
                states.append(event)
            elif isinstance(event, FailoverHappened):
                failovers.append(event)
            elif isinstance(event, ProviderStateChanged):
                self.provider_state_changed.emit(event)
            elif isinstance(event, EngineStatusChanged):
                self.engine_status_changed.emit(event)
            elif isinstance(event, ProbeRecorded):
                probes.append(event)
            elif isinstance(event, ProviderHealthChanged):
                self.provider_health_changed.emit(event)
            elif isinstance(event, IncidentChanged):
                self.incident_changed.emit(event)
            elif isinstance(event, AlertRaised):
                self.alert_raised.emit(event)
            elif isinstance(event, AlertResolved):
                self.alert_resolved.emit(event)
            elif isinstance(event, CampaignChanged):
                self.campaign_changed.emit(event)
            elif isinstance(event, BouncesRecorded):
                self.bounces_recorded.emit(event)
            elif isinstance(event, MailboxStatusChanged):
                self.mailbox_status_changed.emit(event)
        if attempts:
            self.attempts_recorded.emit(attempts)
        if states:
            self.message_states_changed.emit(states)
        if failovers:
            self.failovers_happened.emit(failovers)
        if probes:
            self.probes_recorded.emit(probes)

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
