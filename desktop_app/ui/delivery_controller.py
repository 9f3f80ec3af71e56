"""Start, pause, resume and stop the delivery engine from the GUI thread."""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop_app.core.delivery.engine import DeliveryEngine
from desktop_app.core.errors import AlreadyRunningError
from desktop_app.core.health.monitor import HealthMonitor
from desktop_app.core.instance_lock import InstanceLock
from desktop_app.core.service import DeliveryService
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge

log = logging.getLogger(__name__)


class DeliveryController(QObject):
    """Owns the engine's life; every call into it goes through the loop thread.

    Signals:
        state_changed(str): "sending", "paused", "stopped" or "watching" (another
            Relaydesk is delivering from this data folder, so this one only watches).
        failed(str): the engine stopped on an error; the text says why.
    """

    state_changed = Signal(str)
    failed = Signal(str)

    def __init__(self, workspace: Workspace, bridge: CoreBridge, parent: QObject | None = None):
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._lock = InstanceLock(workspace.data_dir)
        self._service: DeliveryService | None = None
        self._run: concurrent.futures.Future[Any] | None = None
        self.state = "stopped"

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
            self.failed.emit(str(exc))
            return
        # The engine with its health monitor and alerter, under the same instance lock.
        self._service = DeliveryService(self._workspace, self._bridge)
        self._run = self._bridge.run(
            self._service.run(), on_success=self._on_engine_stopped, on_error=self._on_engine_failed
        )
        self._set_state("sending")

    def pause(self) -> None:
        if self.engine is not None:
            self._bridge.call_soon(self.engine.pause)
            self._set_state("paused")

    def resume(self) -> None:
        if self.engine is not None:
            self._bridge.call_soon(self.engine.resume)
            self._set_state("sending")

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

    def _on_engine_stopped(self, _result: Any) -> None:
        self._set_state("stopped")

    def _on_engine_failed(self, error: BaseException) -> None:
        log.error("delivery engine stopped: %s", error)
        self._service = None
        self._lock.release()
        self._set_state("stopped")
        self.failed.emit(f"Sending stopped: {error}")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
