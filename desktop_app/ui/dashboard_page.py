"""The Dashboard page: outbox counts, send rate, provider health figures and live charts.

Charts (latency, up/down timeline, error rate by class, uptime against the target) cover
1 h, 24 h, 7 d or 30 d of the per-minute rollups, for all providers overlaid or for one.
Every database read runs on the loop thread (``CoreBridge.call``); a once-a-second timer
asks for what changed and the curves are updated in place with ``setData``. While the page
is not shown nothing is read or drawn.
"""

from __future__ import annotations

import collections
import logging
import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.events import AttemptRecorded
from desktop_app.core.health import series as health_series
from desktop_app.core.health.figures import ProviderFigures
from desktop_app.core.health.series import HealthSeries
from desktop_app.core.models import MessageState, OutboxCounts, OutcomeClass
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.charts.feed import HealthSeriesFeed
from desktop_app.ui.charts.health_charts import HealthCharts
from desktop_app.ui.health_table import ProviderHealthTable
from desktop_app.ui.provider_states import ProviderStates, state_tip

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60.0
#: How often the charts ask for new rollup rows (the monitor re-writes the current minute
#: every few seconds).
CHART_UPDATE_MS = 1000
#: How often the figures table is recomputed (it sums up to 30 days per provider).
FIGURES_UPDATE_MS = 10_000
RANGE_LABELS = {"1h": "1 h", "24h": "24 h", "7d": "7 d", "30d": "30 d"}
DEFAULT_RANGE = "24h"
ALL_PROVIDERS = "All providers"


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: palette(mid); font-weight: bold")
    return label


class DashboardPage(QWidget):
    """Numbers at a glance and the health charts.

    Counts and the providers (names, in order) are pushed by the main window; the states
    are those of ``states`` (the window's one copy); the charts and figures refresh
    themselves while the page is visible.
    """

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        parent: QWidget | None = None,
        *,
        states: ProviderStates | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._sent_times: collections.deque[float] = collections.deque()
        self._figures_pending = False
        self.states = states if states is not None else ProviderStates(workspace, bridge, self)
        if states is None:
            self.states.reload()
        bridge.attempts_recorded.connect(self._on_bridge_attempts_recorded)
        self.states.changed.connect(self._show_states)

        # -- numbers: two short lines, so that the charts get the height -------------------
        self.count_labels: dict[MessageState, QLabel] = {}
        numbers = QGridLayout()
        numbers.setHorizontalSpacing(6)
        numbers.setVerticalSpacing(2)
        numbers.addWidget(_caption("Outbox"), 0, 0)
        per_row = 4
        for index, state in enumerate(MessageState):
            label = QLabel("0")
            label.setAccessibleName(state.value.capitalize())
            label.setObjectName(f"count_{state.value}")
            label.setStyleSheet("font-weight: bold")
            self.count_labels[state] = label
            row, column = divmod(index, per_row)
            numbers.addWidget(QLabel(state.value.capitalize()), row, 1 + 2 * column)
            numbers.addWidget(label, row, 2 + 2 * column)
            numbers.setColumnMinimumWidth(2 + 2 * column, 36)  # room for "1,234"
        numbers.setColumnStretch(2 * per_row + 1, 1)
        numbers.addWidget(_caption("Sending"), 0, 2 * per_row + 2)
        self.rate_label = QLabel("0 messages/min")
        self.rate_label.setAccessibleName("Send rate")
        self.rate_label.setObjectName("send_rate")
        self.rate_label.setStyleSheet("font-weight: bold")
        numbers.addWidget(self.rate_label, 1, 2 * per_row + 2)

        self.providers_table = ProviderHealthTable()

        # -- chart controls ----------------------------------------------------------------
        self.range_buttons: dict[str, QPushButton] = {}
        self._range_group = QButtonGroup(self)
        self._range_group.setExclusive(True)
        controls = QHBoxLayout()
        for key, text in RANGE_LABELS.items():
            button = QPushButton(text)
            button.setCheckable(True)
            button.setMinimumWidth(button.fontMetrics().horizontalAdvance(text) + 20)
            button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
            button.setAccessibleName(f"Range {text}")
            button.setToolTip(f"Range {text}: show the last {text}")
            button.clicked.connect(lambda _checked=False, k=key: self.set_range(k))
            self._range_group.addButton(button)
            self.range_buttons[key] = button
            controls.addWidget(button)
        self.provider_combo = QComboBox()
        self.provider_combo.setAccessibleName("Provider")
        # Long provider names must not widen the window past a small screen.
        self.provider_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.provider_combo.setMinimumContentsLength(12)
        self.provider_combo.addItem(ALL_PROVIDERS)
        self.provider_combo.currentIndexChanged.connect(self._on_provider_combo_changed)
        self.latency_combo = QComboBox()
        self.latency_combo.setAccessibleName("Response time of")
        self.latency_combo.addItem("Probe latency", "probe")
        self.latency_combo.addItem("Send latency", "send")
        self.latency_combo.currentIndexChanged.connect(self._on_latency_combo_changed)
        self.png_button = QPushButton("Export PNG…")
        self.png_button.setAccessibleName("Export PNG")
        self.png_button.setToolTip("Export PNG: save the charts as an image")
        self.png_button.clicked.connect(self._on_png_button_clicked)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.setAccessibleName("Export CSV")
        self.csv_button.setToolTip("Export CSV: save the series shown as a table")
        self.csv_button.clicked.connect(self._on_csv_button_clicked)
        self.chart_status = QLabel("")
        self.chart_status.setObjectName("chart_status")
        self.chart_status.setAccessibleName("Chart status")
        controls.addSpacing(12)
        controls.addWidget(self.provider_combo)
        controls.addWidget(self.latency_combo)
        controls.addStretch(1)

        self.charts = HealthCharts()
        self.charts.setMinimumHeight(320)
        self.charts.hovered.connect(self._on_charts_hovered)
        self.readout = QLabel(" ")
        self.readout.setObjectName("chart_readout")
        self.readout.setAccessibleName("Chart values")
        self.readout.setWordWrap(True)
        # Two lines, whatever the text: a readout that grew and shrank with the hover text
        # made the charts jump under the pointer.
        self.readout.setFixedHeight(2 * self.readout.fontMetrics().lineSpacing() + 4)
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

        layout = QVBoxLayout(self)
        layout.addLayout(numbers)
        layout.addWidget(self.providers_table)
        layout.addLayout(controls)
        layout.addWidget(self.charts, 1)
        below = QHBoxLayout()
        below.addWidget(self.readout, 1)
        below.addWidget(self.chart_status)
        below.addWidget(self.png_button)
        below.addWidget(self.csv_button)
        layout.addLayout(below)

        # -- live data ---------------------------------------------------------------------
        self.range_key = DEFAULT_RANGE
        self.range_buttons[DEFAULT_RANGE].setChecked(True)
        self.feed = HealthSeriesFeed(
            workspace.database,
            health_series.RANGES[DEFAULT_RANGE],
            run_in_background=bridge.call,
            parent=self,
        )
        self.feed.series_changed.connect(self._on_feed_series_changed)
        self.feed.loading.connect(self._on_feed_loading)
        self.feed.failed.connect(self._on_feed_failed)
        self._chart_timer = QTimer(self)
        self._chart_timer.setInterval(CHART_UPDATE_MS)
        self._chart_timer.timeout.connect(self._on_chart_timer_timeout)
        self._chart_timer.start()
        self._figures_timer = QTimer(self)
        self._figures_timer.setInterval(FIGURES_UPDATE_MS)
        self._figures_timer.timeout.connect(self.refresh_figures)
        self._figures_timer.start()

    # -- numbers (pushed by the main window) -----------------------------------------------

    def show_counts(self, counts: OutboxCounts) -> None:
        values = counts.as_dict()
        for state, label in self.count_labels.items():
            label.setText(f"{values[state.value]:,}")
        now = time.monotonic()
        while self._sent_times and now - self._sent_times[0] > RATE_WINDOW_SECONDS:
            self._sent_times.popleft()
        self.rate_label.setText(f"{len(self._sent_times)} messages/min")

    def show_providers(self, names: list[str]) -> None:
        self.providers_table.show_names(names)
        self._show_states()

    @Slot()
    def _show_states(self) -> None:
        table = self.providers_table
        for name in list(table.names()):
            live = self.states.by_name(name)
            if live is not None:
                table.show_state(name, live.state, state_tip(live))

    @Slot(list)
    def _on_bridge_attempts_recorded(self, events: list[AttemptRecorded]) -> None:
        now = time.monotonic()
        for event in events:
            if event.attempt.outcome is OutcomeClass.DELIVERED:
                self._sent_times.append(now)

    # -- figures ---------------------------------------------------------------------------

    def refresh_figures(self) -> None:
        """Recompute the figures table on the loop thread (skipped while hidden)."""
        if self._figures_pending or not self.isVisible():
            return
        self._figures_pending = True
        self._bridge.call(
            self._workspace.health_figures,
            on_success=self._on_figures,
            on_error=self._on_figures_failed,
        )

    def _on_figures(self, figures: list[ProviderFigures]) -> None:
        self._figures_pending = False
        series = self.feed.series
        target = series.target_percent if series is not None else 99.9
        self.providers_table.show_figures(figures, target)

    def _on_figures_failed(self, error: BaseException) -> None:
        self._figures_pending = False
        if not is_shutdown_error(error):
            log.warning("dashboard: computing the health figures failed: %s", error)

    # -- charts ----------------------------------------------------------------------------

    def set_range(self, key: str) -> None:
        """Show the last 1 h, 24 h, 7 d or 30 d (``RANGE_LABELS`` keys)."""
        if key not in health_series.RANGES:
            raise ValueError(f"unknown range {key!r}")
        self.range_key = key
        self.range_buttons[key].setChecked(True)
        self.feed.set_span(health_series.RANGES[key])

    def set_provider(self, name: str | None) -> None:
        """Show one provider (by name), or all (None)."""
        index = 0 if name is None else self.provider_combo.findText(name)
        if index < 0:
            raise ValueError(f"no provider {name!r} on the charts")
        self.provider_combo.setCurrentIndex(index)

    def selected_provider(self) -> str | None:
        text = self.provider_combo.currentText()
        return None if text == ALL_PROVIDERS or not text else text

    def showEvent(self, event: object) -> None:
        super().showEvent(event)  # type: ignore[arg-type]
        # Back on the page: catch up at once rather than at the next tick.
        self.feed.poll()
        self.refresh_figures()

    @Slot()
    def _on_chart_timer_timeout(self) -> None:
        if self.isVisible():
            self.feed.poll()

    @Slot(object)
    def _on_feed_series_changed(self, series: HealthSeries) -> None:
        self._update_provider_combo(series.names())
        self.charts.show_series(series, self.selected_provider())
        buckets = "minutes" if series.grid.bucket < 3600 else "hours"
        updated = datetime.fromtimestamp(series.now).strftime("%H:%M:%S")
        self.chart_status.setText(f"{RANGE_LABELS[self.range_key]} of {buckets}, updated {updated}")

    def _update_provider_combo(self, names: list[str]) -> None:
        current = [self.provider_combo.itemText(i) for i in range(1, self.provider_combo.count())]
        if current == names:
            return
        selected = self.selected_provider()
        self.provider_combo.blockSignals(True)
        try:
            self.provider_combo.clear()
            self.provider_combo.addItem(ALL_PROVIDERS)
            self.provider_combo.addItems(names)
            self.provider_combo.setCurrentIndex(
                self.provider_combo.findText(selected) if selected in names else 0
            )
        finally:
            self.provider_combo.blockSignals(False)

    @Slot(bool)
    def _on_feed_loading(self, loading: bool) -> None:
        if loading:
            self.chart_status.setText(f"Reading {RANGE_LABELS[self.range_key]} of health data…")

    @Slot(str)
    def _on_feed_failed(self, message: str) -> None:
        self.chart_status.setText(f"Could not read the health data: {message}")

    @Slot(int)
    def _on_provider_combo_changed(self, _index: int) -> None:
        if self.feed.series is not None:
            self.charts.show_series(self.feed.series, self.selected_provider())

    @Slot(int)
    def _on_latency_combo_changed(self, _index: int) -> None:
        self.charts.latency.set_kind(str(self.latency_combo.currentData()))
        if self.feed.series is not None:
            self.charts.show_series(self.feed.series, self.selected_provider())

    @Slot(str)
    def _on_charts_hovered(self, text: str) -> None:
        self.readout.setText(text or " ")

    # -- export ----------------------------------------------------------------------------

    def _default_name(self, suffix: str) -> str:
        provider = self.selected_provider() or "all"
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        return f"relaydesk-health-{provider}-{self.range_key}-{stamp}.{suffix}".replace(" ", "_")

    @Slot()
    def _on_png_button_clicked(self) -> None:
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export charts as PNG", self._default_name("png"), "PNG images (*.png)"
        )
        if path:
            self.export_png(path)

    @Slot()
    def _on_csv_button_clicked(self) -> None:
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export chart data as CSV", self._default_name("csv"), "CSV files (*.csv)"
        )
        if path:
            self.export_csv(path)

    def export_png(self, path: str | Path, width: int | None = None) -> None:
        """The charts as they are shown, legends included (``width`` in pixels)."""
        try:
            image = self.charts.export_png(path, width)
        except OSError as exc:
            self.chart_status.setText(str(exc))
            return
        self.chart_status.setText(f"Saved {image.width()}×{image.height()} image to {path}")

    def export_csv(self, path: str | Path) -> None:
        """The series shown (range and provider) as CSV, written on the loop thread."""
        series = self.feed.series
        if series is None:
            self.chart_status.setText("Nothing to export yet")
            return
        names = None if self.selected_provider() is None else [self.selected_provider() or ""]

        def write() -> int:
            with open(path, "w", encoding="utf-8", newline="") as out:
                return health_series.write_csv(series, out, names)

        self._bridge.call(
            write,
            on_success=lambda rows: self.chart_status.setText(
                f"Saved {count_of(rows, 'row')} to {path}"
            ),
            on_error=lambda error: self.chart_status.setText(f"Could not save {path}: {error}"),
        )
