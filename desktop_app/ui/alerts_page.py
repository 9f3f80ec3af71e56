"""The Alerts page: the persisted alert log, newest first, updated live."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.events import AlertRaised, AlertResolved
from desktop_app.core.storage.alerts import LoggedAlert
from desktop_app.core.wording import local_time
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.table_model import FlatTableModel

#: The log keeps a year; the page shows the newest of it.
SHOWN = 500
_SEVERITY_COLOURS = {"critical": QColor("#c62828"), "warning": QColor("#ef6c00")}


class AlertLogModel(FlatTableModel):
    columns = (
        "Raised",
        "Severity",
        "Rule",
        "Provider",
        "Message",
        "Cleared",
        "Acknowledged",
        "Emailed",
    )
    ACKNOWLEDGED = 6

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[LoggedAlert] = []

    def row_total(self) -> int:
        return len(self.alerts)

    def replace(self, alerts: list[LoggedAlert]) -> None:
        self.beginResetModel()
        self.alerts = list(alerts)
        self.endResetModel()

    def add(self, alert: LoggedAlert) -> None:
        if any(a.id == alert.id for a in self.alerts):
            return  # the initial load already had it
        self.beginInsertRows(QModelIndex(), 0, 0)
        self.alerts.insert(0, alert)
        self.endInsertRows()
        if len(self.alerts) > SHOWN:
            self.beginRemoveRows(QModelIndex(), SHOWN, len(self.alerts) - 1)
            del self.alerts[SHOWN:]
            self.endRemoveRows()

    def resolve(self, alert_id: int, at: float) -> None:
        for row, alert in enumerate(self.alerts):
            if alert.id == alert_id:
                self.alerts[row] = dataclasses.replace(alert, resolved_at=at)
                index = self.index(row, 5)
                self.dataChanged.emit(index, index)
                return

    def replace_alert(self, alert: LoggedAlert) -> None:
        """Show ``alert`` as it now is (acknowledged...), if the page has it."""
        for row, shown in enumerate(self.alerts):
            if shown.id == alert.id:
                self.alerts[row] = alert
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(self.columns) - 1))
                return

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        alert = self.alerts[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                local_time(alert.raised_at),
                alert.severity,
                alert.rule.replace("_", " "),
                alert.subject,
                alert.message,
                local_time(alert.resolved_at) if alert.resolved_at else "",
                local_time(alert.acknowledged_at) if alert.acknowledged_at else "",
                "yes" if alert.email_outbox_id is not None else "",
            )[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and index.column() == 1:
            colour = _SEVERITY_COLOURS.get(alert.severity)
            return QBrush(colour) if colour is not None else None
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 4:
            return alert.message
        return None


#: The state filter's choices: label -> whether an alert passes.
STATE_FILTERS: dict[str, Callable[[LoggedAlert], bool]] = {
    "Any state": lambda alert: True,
    "Open": lambda alert: alert.resolved_at is None,
    "Open, not acknowledged": lambda alert: (
        alert.resolved_at is None and alert.acknowledged_at is None
    ),
    "Acknowledged": lambda alert: alert.acknowledged_at is not None,
    "Cleared": lambda alert: alert.resolved_at is not None,
}
ANY_PROVIDER = "All providers"
ANY_KIND = "All kinds"


class AlertFilter(QSortFilterProxyModel):
    """Shows the alerts of one provider, one kind and one state (each may be "any")."""

    def __init__(self, model: AlertLogModel) -> None:
        super().__init__()
        self._model = model
        self.provider: str | None = None
        self.kind: str | None = None
        self.state = STATE_FILTERS["Any state"]
        self.setSourceModel(model)  # last: it asks filterAcceptsRow at once

    def set_filters(
        self, provider: str | None, kind: str | None, state: Callable[[LoggedAlert], bool]
    ) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+; invalidateFilter is deprecated
            self.beginFilterChange()
            self.provider, self.kind, self.state = provider, kind, state
            self.endFilterChange()
        else:
            self.provider, self.kind, self.state = provider, kind, state
            self.invalidateFilter()

    def filterAcceptsRow(
        self, source_row: int, source_parent: QModelIndex | QPersistentModelIndex
    ) -> bool:
        alert = self._model.alerts[source_row]
        return (
            (self.provider is None or alert.subject == self.provider)
            and (self.kind is None or alert.rule == self.kind)
            and self.state(alert)
        )

    def alert_at(self, row: int) -> LoggedAlert:
        return self._model.alerts[self.mapToSource(self.index(row, 0)).row()]


class AlertsPage(QWidget):
    """Every alert raised, with when it cleared, who acknowledged it and whether it was
    emailed. "Acknowledge" says someone is on it (``relaydesk alerts ack ID`` too)."""

    def __init__(self, workspace: Workspace, bridge: CoreBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._bridge = bridge
        self._workspace = workspace
        self.model = AlertLogModel()
        self.shown = AlertFilter(self.model)
        self.table = QTableView()
        self.table.setAccessibleName("Alert log")
        self.table.setModel(self.shown)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.empty_note = QLabel(
            "No alerts yet. Thresholds and the team address are in the settings "
            "(alerts.*); alerts also show in the tray."
        )
        self.empty_note.setWordWrap(True)
        self.acknowledge_button = QPushButton("Acknowledge")
        self.acknowledge_button.setToolTip(
            "Say someone is on it. The alert stays open until its condition clears and is "
            "not raised again meanwhile."
        )
        self.acknowledge_button.setEnabled(False)
        self.acknowledge_button.clicked.connect(self.acknowledge_selected)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.provider_filter = QComboBox()
        self.provider_filter.setAccessibleName("Provider filter")
        self.kind_filter = QComboBox()
        self.kind_filter.setAccessibleName("Kind filter")
        self.state_filter = QComboBox()
        self.state_filter.setAccessibleName("State filter")
        self.state_filter.addItems(list(STATE_FILTERS))
        for combo in (self.provider_filter, self.kind_filter, self.state_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self._apply_filters)
        self._fill_choices()
        buttons = QHBoxLayout()
        buttons.addWidget(self.provider_filter)
        buttons.addWidget(self.kind_filter)
        buttons.addWidget(self.state_filter)
        buttons.addWidget(self.acknowledge_button)
        buttons.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_note)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        self.model.dataChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._fill_choices)
        self.model.rowsInserted.connect(self._fill_choices)
        bridge.alert_raised.connect(self._on_bridge_alert_raised)
        bridge.alert_resolved.connect(self._on_bridge_alert_resolved)
        self.reload()

    def selected_alert(self) -> LoggedAlert | None:
        rows = self.table.selectionModel().selectedRows()
        return self.shown.alert_at(rows[0].row()) if rows else None

    @Slot()
    def _fill_choices(self, *_args: Any) -> None:
        """The provider and kind filters offer what the log holds (the choice is kept)."""
        for combo, anything, values in (
            (self.provider_filter, ANY_PROVIDER, {a.subject for a in self.model.alerts}),
            (self.kind_filter, ANY_KIND, {a.rule for a in self.model.alerts}),
        ):
            chosen = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(anything, None)
            for value in sorted(v for v in values if v):
                label = value.replace("_", " ") if combo is self.kind_filter else value
                combo.addItem(label, value)
            found = combo.findData(chosen) if chosen is not None else 0
            combo.setCurrentIndex(max(found, 0))
            combo.blockSignals(False)

    @Slot()
    def _apply_filters(self, *_args: Any) -> None:
        self.shown.set_filters(
            self.provider_filter.currentData(),
            self.kind_filter.currentData(),
            STATE_FILTERS[self.state_filter.currentText()],
        )
        self._update_buttons()

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        alert = self.selected_alert()
        self.acknowledge_button.setEnabled(alert is not None and alert.acknowledged_at is None)

    @Slot()
    def acknowledge_selected(self) -> None:
        alert = self.selected_alert()
        if alert is None:
            return
        self.acknowledge_button.setEnabled(False)
        self._bridge.call(
            self._workspace.acknowledge_alert,
            alert.id,
            on_success=self._acknowledged,
            on_error=self._acknowledge_failed,
        )

    def _acknowledged(self, alert: LoggedAlert) -> None:
        self.model.replace_alert(alert)
        self.status.setText(f"Acknowledged: {alert.message}")

    def _acknowledge_failed(self, error: BaseException) -> None:
        if not is_shutdown_error(error):
            self.status.setText(f"Could not acknowledge the alert: {error}")
        self._update_buttons()

    def reload(self) -> None:
        """Read the log off the GUI thread."""
        self._bridge.call(
            self._workspace.recent_alerts,
            SHOWN,
            on_success=self._loaded,
            on_error=self._load_failed,
        )

    def _loaded(self, alerts: list[LoggedAlert]) -> None:
        self.model.replace(alerts)
        self.empty_note.setVisible(not alerts)

    def _load_failed(self, error: BaseException) -> None:
        if not is_shutdown_error(error):
            self.empty_note.setText(f"Could not read the alert log: {error}")
            self.empty_note.setVisible(True)

    @Slot(object)
    def _on_bridge_alert_raised(self, event: AlertRaised) -> None:
        self.model.add(
            LoggedAlert(
                id=event.alert_id,
                raised_at=event.raised_at,
                rule=event.rule,
                subject=event.subject,
                severity=event.severity,
                message=event.message,
                resolved_at=None,
                email_outbox_id=0 if event.emailed else None,
            )
        )
        self.empty_note.setVisible(False)

    @Slot(object)
    def _on_bridge_alert_resolved(self, event: AlertResolved) -> None:
        self.model.resolve(event.alert_id, event.resolved_at)
