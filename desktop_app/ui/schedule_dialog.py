"""When a campaign starts: a date and time in the computer's local time, its zone named."""

from __future__ import annotations

import time
from datetime import datetime

from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui.feedback import ERROR_STYLE
from desktop_app.ui.provider_dialog import labelled


class ScheduleDialog(QDialog):
    """When to start sending, in the computer's local time (its zone named)."""

    def __init__(self, campaign_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Schedule — {campaign_name}")
        now = QDateTime.currentDateTime()
        self.when_edit = labelled(QDateTimeEdit(now.addSecs(3600)), "Send at")
        self.when_edit.setCalendarPopup(True)
        self.when_edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        self.when_edit.setMinimumDateTime(now)
        zone = datetime.now().astimezone()
        zone_name = bytes(now.timeZone().id().data()).decode() or (zone.tzname() or "")
        self.zone_label = labelled(
            QLabel(f"Local time: {zone_name} (UTC{zone.strftime('%z')})"), "Time zone"
        )
        self.error_label = QLabel()
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.error_label.setWordWrap(True)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok_button.setText("Schedule")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow(f"Start sending {campaign_name!r} at", self.when_edit)
        form.addRow("", self.zone_label)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def epoch(self) -> float:
        return float(self.when_edit.dateTime().toSecsSinceEpoch())

    def accept(self) -> None:
        # The core sends at once when asked for a time already past: say so instead.
        if self.epoch() <= time.time():
            self.error_label.setText("Pick a time in the future (or use Send now).")
            return
        super().accept()
