"""The only place that touches both the core's loop thread and Qt.

Core events arrive on the loop thread and leave as Qt signals; Qt delivers them to the GUI
thread (queued, because the bridge lives there). Work the GUI asks for (a probe, a keyring
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
    AttemptRecorded,
    EngineStatusChanged,
    Event,
    FailoverHappened,
    MessageStateChanged,
    ProviderStateChanged,
)
from desktop_app.core.runtime import LoopThread

log = logging.getLogger(__name__)

SuccessCallback = Callable[[Any], None]
ErrorCallback = Callable[[BaseException], None]


class CoreBridge(QObject):
    """Core events -> Qt signals; GUI requests -> loop thread -> GUI callbacks.

    Signals:
        attempt_recorded(AttemptRecorded)
        message_state_changed(MessageStateChanged)
        provider_state_changed(ProviderStateChanged)
        failover_happened(FailoverHappened)
        engine_status_changed(EngineStatusChanged)
    """

    attempt_recorded = Signal(object)
    message_state_changed = Signal(object)
    provider_state_changed = Signal(object)
    failover_happened = Signal(object)
    engine_status_changed = Signal(object)
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

        Events are batched: one queued signal per batch, not one per event. The GUI thread
        needs the GIL for every queued slot call, and while the engine keeps the loop thread
        busy each acquisition can wait a whole switch interval (5 ms); a few thousand events
        a second queued one by one kept the window from painting for 50-100 ms at a time.
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
        for event in events:
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, AttemptRecorded):
            self.attempt_recorded.emit(event)
        elif isinstance(event, MessageStateChanged):
            self.message_state_changed.emit(event)
        elif isinstance(event, ProviderStateChanged):
            self.provider_state_changed.emit(event)
        elif isinstance(event, FailoverHappened):
            self.failover_happened.emit(event)
        elif isinstance(event, EngineStatusChanged):
            self.engine_status_changed.emit(event)

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
            future.set_exception(exc)
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
