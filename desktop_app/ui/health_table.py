"""The Dashboard's table of providers: live state and current health figures, one row each.

States are the core's words, as the window's ``ProviderStates`` has them (the same the
Providers page, the tray and ``relaydesk health`` show); the figures (uptime per range against
the target, latency p50/p95, error rate and sends of the last 24 h, end-to-end delivery
probes) from ``Workspace.health_figures``, read on the loop thread every few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from desktop_app.core.health.figures import ProviderFigures
from desktop_app.core.models import ProviderState
from desktop_app.ui.charts.theme import DOWN_COLOUR
from desktop_app.ui.provider_states import STATE_WORD_ROLE, state_label

COLUMNS = (
    "Provider",
    "State",
    "Uptime 1 h",
    "24 h",
    "7 d",
    "30 d",
    "Latency p50",
    "p95",
    "Errors 24 h",
    "Sent 24 h",
    "Delivery p50",
    "Lost 24 h",
)
LATENCY_P50_COLUMN = COLUMNS.index("Latency p50")
LATENCY_P95_COLUMN = COLUMNS.index("p95")
DELIVERY_P50_COLUMN = COLUMNS.index("Delivery p50")
LOST_COLUMN = COLUMNS.index("Lost 24 h")
HEADER_TOOLTIPS = {
    LATENCY_P50_COLUMN: "Probes and real sends together, last 24 h: median response time",
    LATENCY_P95_COLUMN: "Probes and real sends together, last 24 h: 95th percentile",
    DELIVERY_P50_COLUMN: "Delivery probes, last 24 h: median time from send → visible in the "
    "seed mailbox",
    LOST_COLUMN: "Delivery probes of the last 24 h accepted by SMTP but never arrived "
    "in the seed mailbox",
}
STATE_COLUMN = COLUMNS.index("State")
#: Words shown in red: the provider cannot take mail now.
_ALARMING = frozenset({ProviderState.DOWN, ProviderState.NO_PASSWORD})


def _percent(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f} %"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def _delivery_time(value: float | None) -> str:
    """A delivery takes seconds to minutes: ms below a second, seconds above."""
    if value is None:
        return "—"
    return f"{value:,.0f} ms" if value < 1000 else f"{value / 1000:,.1f} s"


def _latency_tip(figure: ProviderFigures) -> str:
    """The whole latency figure (p50 ≤ p95 ≤ max) and what it was measured on."""
    if figure.latency_max_ms is None:
        return "No probe or send timed in the last 24 h"
    return (
        f"p50 {_ms(figure.latency_p50_ms)} · p95 {_ms(figure.latency_p95_ms)} · "
        f"max {_ms(figure.latency_max_ms)} over the last 24 h, from "
        f"{figure.latency_probes_24h:,} probes and {figure.latency_sends_24h:,} sends"
    )


class ProviderHealthTable(QTableWidget):
    """One row per provider, most preferred first."""

    def __init__(self) -> None:
        super().__init__(0, len(COLUMNS))
        self.setHorizontalHeaderLabels(COLUMNS)
        for column, tip in HEADER_TOOLTIPS.items():
            header_item = self.horizontalHeaderItem(column)
            if header_item is not None:
                header_item.setToolTip(tip)
        self.setAccessibleName("Provider health")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(self.focusPolicy().NoFocus)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self._rows: dict[str, int] = {}
        self._fit_height()

    def row_of(self, name: str) -> int:
        """The row of provider ``name`` (added at the end if new)."""
        row = self._rows.get(name)
        if row is None:
            row = self.rowCount()
            self.insertRow(row)
            self._rows[name] = row
            self._set(row, 0, name)
            self.show_state(name, ProviderState.UNKNOWN)
            for column in range(2, len(COLUMNS)):
                self._set(row, column, "—")
            self._fit_height()
        return row

    def names(self) -> list[str]:
        """The providers shown, top to bottom."""
        return list(self._rows)

    def show_names(self, names: Sequence[str]) -> None:
        """Exactly these providers, in this order (states and figures kept)."""
        if list(self._rows) == list(names):
            return
        kept = {
            name: [self.text(row, c) for c in range(len(COLUMNS))]
            for name, row in self._rows.items()
        }
        self.setRowCount(0)
        self._rows = {}
        for name in names:
            row = self.row_of(name)
            for column, text in enumerate(kept.get(name, ())):
                self._set(row, column, text)
        self._fit_height()

    def show_state(self, name: str, word: ProviderState, tip: str = "") -> None:
        """The core's state word of ``name`` (raw word in ``STATE_WORD_ROLE``)."""
        row = self.row_of(name)
        self._set(row, STATE_COLUMN, state_label(word), alarm=word in _ALARMING, tip=tip)
        item = self.item(row, STATE_COLUMN)
        if item is not None:
            item.setData(STATE_WORD_ROLE, ProviderState(word).value)

    def state_word(self, name: str) -> str | None:
        """The raw word shown for ``name`` (None: no such row)."""
        row = self._rows.get(name)
        item = None if row is None else self.item(row, STATE_COLUMN)
        return None if item is None else item.data(STATE_WORD_ROLE)

    def show_figures(self, figures: Sequence[ProviderFigures], target_percent: float) -> None:
        for figure in figures:
            row = self.row_of(figure.provider)
            uptimes = (figure.uptime_1h, figure.uptime_24h, figure.uptime_7d, figure.uptime_30d)
            for column, uptime in enumerate(uptimes, start=2):
                self._set(
                    row,
                    column,
                    _percent(uptime),
                    below=uptime is not None and uptime < target_percent,
                )
            latency_tip = _latency_tip(figure)
            self._set(row, LATENCY_P50_COLUMN, _ms(figure.latency_p50_ms), tip=latency_tip)
            self._set(row, LATENCY_P95_COLUMN, _ms(figure.latency_p95_ms), tip=latency_tip)
            self._set(row, 8, _percent(figure.error_rate_24h, 2))
            self._set(row, 9, f"{figure.sent_24h:,}")
            self._set(
                row,
                DELIVERY_P50_COLUMN,
                _delivery_time(figure.delivery_latency_p50_ms),
                tip=HEADER_TOOLTIPS[DELIVERY_P50_COLUMN],
            )
            lost = figure.delivery_failures_24h
            self._set(
                row,
                LOST_COLUMN,
                f"{lost:,}",
                alarm=lost > 0,
                tip=f"{lost:,} delivery probes accepted by SMTP but never arrived (24 h)",
            )

    def text(self, row: int, column: int) -> str:
        item = self.item(row, column)
        return "" if item is None else item.text()

    def _set(
        self,
        row: int,
        column: int,
        text: str,
        *,
        below: bool = False,
        alarm: bool = False,
        tip: str = "",
    ) -> None:
        """Below the uptime target (``below``) or otherwise wrong (``alarm``): red, and said
        in words in the tooltip for screen readers too."""
        item = self.item(row, column)
        if item is None:
            item = QTableWidgetItem()
            self.setItem(row, column, item)
        item.setText(text)
        item.setForeground(QBrush(QColor(DOWN_COLOUR)) if below or alarm else QBrush())
        item.setToolTip("below the uptime target" if below else tip)

    def _fit_height(self) -> None:
        rows = max(1, self.rowCount())
        height = (
            self.horizontalHeader().sizeHint().height()
            + rows * self.verticalHeader().defaultSectionSize()
        )
        self.setFixedHeight(height + 2 * self.frameWidth())
