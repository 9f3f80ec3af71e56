"""Start, pause, resume and stop the delivery engine from the GUI thread."""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from desktop_app.core.delivery.engine import DeliveryEngine
from desktop_app.core.errors import AlreadyRunningError, DiskFullError
from desktop_app.core.health.monitor import HealthMonitor
from desktop_app.core.instance_lock import InstanceLock
from desktop_app.core.service import DeliveryService
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge

log = logging.getLogger(__name__)

#: How often a watching window looks whether the other Relaydesk has let go of the lock.
TAKEOVER_POLL_MS = 1000
TOOK_OVER_MESSAGE = "Took over sending: the other Relaydesk stopped"


class DeliveryController(QObject):
    """Owns the engine's life; every call into it goes through the loop thread.

    Signals:
        state_changed(str): "sending", "paused", "stopped" or "watching" (another
            Relaydesk is delivering from this data folder, so this one only watches, and
            takes over within TAKEOVER_POLL_MS of the other one letting go). Paused while
            watching means: do not take over until started again.
        failed(str): the engine stopped on an error; the text says why.
        disk_full(str): the engine stopped cleanly because the disk holding the data folder
            is full; the text names the file system and the file (issue 14).
        took_over(str): a watching window got the lock and is now sending; the text says so.
    """

    state_changed = Signal(str)
    failed = Signal(str)
    disk_full = Signal(str)
    took_over = Signal(str)

    def __init__(self, workspace: Workspace, bridge: CoreBridge, parent: QObject | None = None):
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._lock = InstanceLock(workspace.data_dir)
        self._service: DeliveryService | None = None
        self._run: concurrent.futures.Future[Any] | None = None
        self.state = "stopped"
        # Retries the (non-blocking) lock on the GUI thread while watching; no busy loop.
        self._takeover_timer = QTimer(self)
        self._takeover_timer.setInterval(TAKEOVER_POLL_MS)
        self._takeover_timer.timeout.connect(self._try_take_over)
        self._takeover_error = ""

    @property
    def engine(self) -> DeliveryEngine | None:
        return None if self._service is None else self._service.engine

    @property
    def monitor(self) -> HealthMonitor | None:
        return None if self._service is None else self._service.monitor

    def start(self) -> None:
        if self._service is not None:
            self.resume()
            return
        try:
            self._lock.acquire()
        except AlreadyRunningError as exc:
            self._set_state("watching")
            self._takeover_timer.start()
            self.failed.emit(str(exc))
            return
        self._start_service()

    def _start_service(self) -> None:
        """The lock is ours: run the engine with its health monitor and alerter under it."""
        self._takeover_timer.stop()
        self._service = DeliveryService(self._workspace, self._bridge)
        self._run = self._bridge.run(
            self._service.run(), on_success=self._on_engine_stopped, on_error=self._on_engine_failed
        )
        self._set_state("sending")

    def pause(self) -> None:
        if self.engine is not None:
            self._bridge.call_soon(self.engine.pause)
            self._set_state("paused")
        elif self.state == "watching":
            # The user does not want this window to send: it stops waiting for the lock, and
            # does not take over when the other Relaydesk stops (until started again).
            self._takeover_timer.stop()
            self._set_state("paused")

    def resume(self) -> None:
        if self.engine is not None:
            self._bridge.call_soon(self.engine.resume)
            self._set_state("sending")
        elif self.state == "paused":
            self.start()  # paused while watching: sends now if the lock is free, else watches

    def wake(self) -> None:
        """New mail or a retried message: do not wait for the next poll."""
        if self.engine is not None:
            self._bridge.call_soon(self.engine.wake)

    def wake_campaigns(self) -> None:
        """A campaign was sent, resumed or cancelled: the runner looks now, not at its next poll."""
        if self._service is not None:
            self._bridge.call_soon(self._service.wake_campaigns)

    def reload_providers(self) -> None:
        if self.engine is not None and self.engine.running:
            self._bridge.run(self.engine.reload())

    def stop(self, timeout: float = 15.0) -> None:
        """Stop claiming, let transactions in flight finish (bounded), release the lock.

        Anything not finished stays in the outbox and resumes on the next start.
        """
        self._takeover_timer.stop()
        if self._service is not None and self._run is not None:
            self._bridge.call_soon(self._service.request_stop)
            try:
                self._run.result(timeout)
            except (concurrent.futures.TimeoutError, Exception) as exc:
                log.warning("engine did not stop cleanly: %s", exc)
        self._service = None
        self._run = None
        self._lock.release()
        self._set_state("stopped")

    def _try_take_over(self) -> None:
        """While watching, once a tick: take the lock if the other Relaydesk let it go."""
        if self.state != "watching" or self._service is not None:
            self._takeover_timer.stop()
            return
        try:
            acquired = self._lock.try_acquire()
        except OSError as exc:  # the data folder went away for a moment: keep watching
            if str(exc) != self._takeover_error:
                log.warning("cannot check the instance lock: %s", exc)
            self._takeover_error = str(exc)
            return
        self._takeover_error = ""
        if not acquired:
            return
        log.info("took over sending from %s: the other Relaydesk stopped", self._workspace.data_dir)
        self._start_service()
        self.took_over.emit(TOOK_OVER_MESSAGE)

    def _on_engine_stopped(self, _result: Any) -> None:
        self._set_state("stopped")

    def _on_engine_failed(self, error: BaseException) -> None:
        log.error("delivery engine stopped: %s", error)
        self._service = None
        self._lock.release()
        self._set_state("stopped")
        if isinstance(error, DiskFullError):
            # Not a failure to show and forget: it holds until there is room again.
            self.disk_full.emit(f"Sending stopped: {error}")
            return
        self.failed.emit(f"Sending stopped: {error}")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
