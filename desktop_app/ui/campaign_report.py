"""What a campaign did: recipients by state and by provider, failures with their reasons,
and the per-recipient CSV export."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.campaigns.report import REPORT_STATES, CampaignReport
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import ERROR_STYLE, one_line
from desktop_app.ui.provider_dialog import labelled


def _when(epoch: float | None) -> str:
    return "—" if epoch is None else datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def _table(name: str, columns: tuple[str, ...], *, stretch: int) -> QTableWidget:
    table = labelled(QTableWidget(0, len(columns)), name)
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return table


def _fill(table: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    table.setRowCount(len(rows))
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            item = QTableWidgetItem(value)
            if value.isdigit():
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            table.setItem(row, column, item)


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box


class CampaignReportDialog(QDialog):
    """The report of one campaign, read off the GUI thread when opened (and on Refresh)."""

    def __init__(
        self, workspace: Workspace, bridge: CoreBridge, name: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self.name = name
        self.report: CampaignReport | None = None
        self.setWindowTitle(f"Report — {name}")

        self.summary_labels = {
            key: labelled(QLabel("…"), key)
            for key in ("State", "List", "From", "Started", "Finished", "Progress")
        }
        self.pause_label = labelled(QLabel(), "Pause reason")
        self.pause_label.setWordWrap(True)
        self.pause_label.setStyleSheet("color: #8a4b00; background: #fff3e0; padding: 4px;")
        self.pause_label.setVisible(False)
        # Names stretch, numbers hug the right edge; a failure's reason gets the room.
        self.states_table = _table("Recipients by state", ("State", "Recipients"), stretch=0)
        self.providers_table = _table("Sent by provider", ("Provider", "Messages"), stretch=0)
        self.failures_table = _table("Failures", ("Email", "Reason"), stretch=1)
        self.status_label = labelled(QLabel(), "Report status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.export_button = labelled(QPushButton("Export CSV…"), "Export CSV")
        self.export_button.setEnabled(False)
        # Checked: cells a spreadsheet would run as formulas get a leading ' (csv_cells).
        self.protect_check = labelled(
            QCheckBox("Protect against spreadsheet formulas"),
            "Protect against spreadsheet formulas",
        )
        self.protect_check.setChecked(True)
        self.protect_check.setToolTip(
            "Cells starting with = + - @ (an address, a server's reply) get a leading ' in the "
            "exported file, so a spreadsheet shows them as text instead of running them"
        )
        self.refresh_button = labelled(QPushButton("Refresh"), "Refresh report")
        self.export_button.clicked.connect(self.export_csv)
        self.refresh_button.clicked.connect(self.reload)

        heading = QLabel(name)
        font = heading.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.3)
        heading.setFont(font)
        summary = QFormLayout()
        for key, label in self.summary_labels.items():
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            summary.addRow(f"{key}:", label)
        figures = QHBoxLayout()
        figures.addWidget(_boxed("By state", self.states_table), 1)
        figures.addWidget(_boxed("By provider", self.providers_table), 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.export_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addLayout(summary)
        layout.addWidget(self.pause_label)
        layout.addLayout(figures, 2)
        layout.addWidget(_boxed("Failures", self.failures_table), 3)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status_label, 1)
        bottom.addWidget(self.protect_check)
        bottom.addWidget(buttons)
        layout.addLayout(bottom)
        self.resize(720, 640)
        self.reload()

    @Slot()
    def reload(self) -> None:
        self._bridge.call(
            self._workspace.campaigns.report,
            self.name,
            on_success=self._on_report_loaded,
            on_error=self._on_request_failed,
        )

    def _on_report_loaded(self, report: CampaignReport) -> None:
        self.report = report
        campaign = report.campaign
        values = {
            "State": campaign.state.value,
            "List": campaign.list_name,
            "From": campaign.from_address,
            "Started": _when(campaign.started_at),
            "Finished": _when(campaign.finished_at),
            "Progress": f"{report.done} of {report.total} recipients done",
        }
        for key, value in values.items():
            self.summary_labels[key].setText(value)
        self.pause_label.setText(campaign.pause_reason or "")
        self.pause_label.setVisible(
            campaign.state.value == "paused" and bool(campaign.pause_reason)
        )
        # Every state with someone in it; all of them (zeros) before anything was sent.
        shown = [s for s in REPORT_STATES if report.counts.get(s, 0)] or list(REPORT_STATES)
        _fill(self.states_table, [(state, str(report.counts.get(state, 0))) for state in shown])
        _fill(
            self.providers_table,
            [(provider, str(count)) for provider, count in sorted(report.by_provider.items())],
        )
        _fill(self.failures_table, [(f.email, f.reason) for f in report.failures])
        self.export_button.setEnabled(True)

    def counts_shown(self) -> dict[str, int]:
        """State -> count as the table shows it."""
        shown: dict[str, int] = {}
        for row in range(self.states_table.rowCount()):
            state, count = self.states_table.item(row, 0), self.states_table.item(row, 1)
            if state is not None and count is not None:
                shown[state.text()] = int(count.text())
        return shown

    @Slot()
    def export_csv(self) -> None:
        path, _filter = QFileDialog.getSaveFileName(
            self, "Export report", f"{self.name}-report.csv", "CSV files (*.csv)"
        )
        if path:
            self.export_to(Path(path))

    def export_to(self, path: Path) -> None:
        def exported(count: int) -> None:
            self.status_label.setStyleSheet("")
            self.status_label.setText(f"Exported {count_of(count, 'recipient')} to {path}.")

        export = functools.partial(
            self._workspace.campaigns.export_report, raw=not self.protect_check.isChecked()
        )
        self._bridge.call(
            export,
            self.name,
            path,
            on_success=exported,
            on_error=self._on_request_failed,
        )

    def _on_request_failed(self, error: BaseException) -> None:
        if not is_shutdown_error(error):
            self.status_label.setStyleSheet(ERROR_STYLE)
            self.status_label.setText(one_line(error))
