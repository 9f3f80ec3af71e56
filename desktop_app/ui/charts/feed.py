"""Keeps the health series of the chosen range up to date, reading off the GUI thread.

``poll()`` (the Dashboard calls it about once a second) asks the loop thread for what
changed since the last answer (``series.load_since``: the newest few minutes); changing the
range reads the whole range again. One request at a time; answers to requests made for an
earlier range are dropped. ``series_changed`` fires only when something did change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop_app.core.health import series as health_series
from desktop_app.core.health.series import HealthSeries
from desktop_app.core.storage.database import Database
from desktop_app.ui.bridge import is_shutdown_error
from desktop_app.ui.outbox_model import Runner, run_here

log = logging.getLogger(__name__)


class HealthSeriesFeed(QObject):
    """The current ``HealthSeries`` of one range, refreshed on request.

    Signals:
        series_changed(HealthSeries): a new series (other range, new data, time moved on).
        loading(bool): a whole range is being read (True) or has arrived (False).
        failed(str): a read failed; the next poll tries again.
    """

    series_changed = Signal(object)
    loading = Signal(bool)
    failed = Signal(str)

    def __init__(
        self,
        database: Database,
        span: float = health_series.RANGES["24h"],
        *,
        run_in_background: Runner | None = None,
        clock: Callable[[], float] = time.time,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._database = database
        self._run: Runner = run_in_background or run_here
        self._clock = clock
        self._span = span
        self._generation = 0
        self._busy = False
        self.series: HealthSeries | None = None

    @property
    def span(self) -> float:
        return self._span

    def set_span(self, span: float) -> None:
        """Show another range: read it whole (the answer for the old one is dropped)."""
        if span == self._span and (self.series is not None or self._busy):
            return
        self._span = span
        self._generation += 1
        self.series = None
        self._busy = False
        self.poll()

    def poll(self) -> None:
        """Bring the series up to date, unless a read is still running."""
        if self._busy:
            return
        self._busy = True
        generation = self._generation
        now = self._clock()
        if self.series is None:
            self.loading.emit(True)
            self._request(generation, health_series.load, self._database, self._span, now)
        else:
            self._request(generation, health_series.load_since, self._database, self.series, now)

    def _request(self, generation: int, function: Callable[..., Any], *args: Any) -> None:
        self._run(
            function,
            *args,
            on_success=lambda result: self._on_loaded(generation, result),
            on_error=lambda error: self._on_failed(generation, error),
        )

    def _on_loaded(self, generation: int, result: HealthSeries) -> None:
        if generation != self._generation:
            return
        self._busy = False
        first = self.series is None
        if result is self.series:
            return
        self.series = result
        if first:
            self.loading.emit(False)
        self.series_changed.emit(result)

    def _on_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        self._busy = False
        if is_shutdown_error(error):
            return
        log.warning("health charts: reading the series failed: %s", error)
        self.failed.emit(str(error))
