"""A provider's maintenance windows: list them, add one-off or weekly ones, remove them.

The stored windows are read and changed through the workspace on the loop thread (SQLite
blocks); answers come back on the GUI thread. One change at a time: the buttons wait.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import available_timezones

from PySide6.QtCore import QDateTime, Qt, QTime, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.errors import UserInputError
from desktop_app.core.health.maintenance import (
    WEEKDAYS,
    describe,
    is_active,
    local_timezone,
    once_window,
    parse_duration,
    validate_timezone,
    weekly_window,
)
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.provider_dialog import labelled

_DATETIME_FORMAT = "yyyy-MM-dd HH:mm"


class MaintenanceDialog(QDialog):
    """Maintenance windows of one provider.

    Signals:
        windows_changed(): a window was added or removed (the engine should reload).
    """

    windows_changed = Signal()

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        provider_name: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self.provider_name = provider_name
        self._busy = False
        self._finished = False  # closed: late answers must not touch the widgets
        self._candidate: MaintenanceWindow | None = None
        self.windows: tuple[MaintenanceWindow, ...] = ()
        self.setWindowTitle(f"Maintenance windows of {provider_name}")
        self.setAccessibleName(self.windowTitle())
        self.setMinimumWidth(600)

        intro = QLabel(
            "During a window this provider takes no new mail: what it is sending finishes, "
            "the rest goes to the other providers (or waits in the outbox), and its uptime "
            "does not count the window."
        )
        intro.setWordWrap(True)
        self.window_list = labelled(QListWidget(), "Windows")
        self.window_list.setMinimumHeight(110)
        self.window_list.setWordWrap(True)
        self.window_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty_text = "No maintenance windows."
        self.remove_button = labelled(QPushButton("&Remove"), "Remove")
        self.remove_button.setEnabled(False)
        remove_row = QHBoxLayout()
        remove_row.addStretch(1)
        remove_row.addWidget(self.remove_button)

        self.kind = labelled(QComboBox(), "Kind")
        self.kind.addItem("One-off", MaintenanceKind.ONCE)
        self.kind.addItem("Every week", MaintenanceKind.WEEKLY)
        start = _next_full_hour()
        self.start = labelled(QDateTimeEdit(start), "Start")
        self.end = labelled(QDateTimeEdit(start.addSecs(3600)), "End")
        for edit in (self.start, self.end):
            edit.setDisplayFormat(_DATETIME_FORMAT)
            edit.setCalendarPopup(True)
        self.weekday = labelled(QComboBox(), "Day")
        for number, name in enumerate(WEEKDAYS):
            self.weekday.addItem(name.capitalize(), number)
        self.weekday.setCurrentIndex(6)  # Sunday night: the classic
        self.time_of_day = labelled(QTimeEdit(QTime(2, 0)), "Time")
        self.time_of_day.setDisplayFormat("HH:mm")
        self.duration = labelled(QLineEdit("2h"), "Duration")
        self.duration.setPlaceholderText("90m, 2h, 1h30m or 01:30")
        self.timezone = labelled(QLineEdit(_default_timezone()), "Time zone")
        self.timezone.setPlaceholderText("e.g. Europe/Berlin")
        zones = QCompleter(list(_zone_names()), self.timezone)
        zones.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        zones.setFilterMode(Qt.MatchFlag.MatchContains)
        self.timezone.setCompleter(zones)
        self.note = labelled(QLineEdit(), "Note")
        self.note.setMaxLength(200)
        self.note.setPlaceholderText("optional: why")

        self.form = QFormLayout()
        for caption_text, widget in (
            ("&Kind", self.kind),
            ("&Start", self.start),
            ("&End", self.end),
            ("&Day", self.weekday),
            ("&Time", self.time_of_day),
            ("D&uration", self.duration),
            ("Time &zone", self.timezone),
            ("&Note", self.note),
        ):
            caption = QLabel(caption_text)
            caption.setBuddy(widget)
            self.form.addRow(caption, widget)
        self.error = QLabel()
        self.error.setObjectName("validation_error")
        self.error.setAccessibleName("Validation message")
        self.error.setStyleSheet("color: palette(highlight);")
        self.add_button = labelled(QPushButton("&Add window"), "Add window")
        add_row = QHBoxLayout()
        add_row.addWidget(self.error, 1)
        add_row.addWidget(self.add_button)
        adding = QGroupBox("Add a window")
        adding_layout = QVBoxLayout(adding)
        adding_layout.addLayout(self.form)
        adding_layout.addLayout(add_row)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close")
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.window_list, 1)
        layout.addLayout(remove_row)
        layout.addWidget(adding)
        layout.addWidget(self.buttons)

        self.kind.currentIndexChanged.connect(self._on_kind_changed)
        for edit in (self.start, self.end):
            edit.dateTimeChanged.connect(self._revalidate)
        self.time_of_day.timeChanged.connect(self._revalidate)
        self.weekday.currentIndexChanged.connect(self._revalidate)
        for line in (self.duration, self.timezone, self.note):
            line.textChanged.connect(self._revalidate)
        self.window_list.itemSelectionChanged.connect(self._update_buttons)
        self.add_button.clicked.connect(self.add_window)
        self.remove_button.clicked.connect(self.remove_selected)
        self._on_kind_changed()
        self.refresh()

    # -- reading the form ------------------------------------------------------------------

    def _on_kind_changed(self) -> None:
        once = self._kind() is MaintenanceKind.ONCE
        one_off: tuple[QWidget, ...] = (self.start, self.end)
        weekly: tuple[QWidget, ...] = (self.weekday, self.time_of_day, self.duration, self.timezone)
        for widget in one_off:
            self.form.setRowVisible(widget, once)
        for widget in weekly:
            self.form.setRowVisible(widget, not once)
        self._revalidate()

    def _revalidate(self) -> None:
        """Check the form on every change; Add is enabled only for a valid window."""
        self._candidate = None
        message = ""
        try:
            self._candidate = self._read_form()
        except UserInputError as exc:
            message = str(exc)
        self.error.setText(message)
        self.error.setToolTip(message)
        self._update_buttons()

    def _read_form(self) -> MaintenanceWindow:
        note = self.note.text()
        if self._kind() is MaintenanceKind.ONCE:
            return once_window(
                float(self.start.dateTime().toSecsSinceEpoch()),
                float(self.end.dateTime().toSecsSinceEpoch()),
                note,
            )
        clock = self.time_of_day.time()
        return weekly_window(
            int(self.weekday.currentData()),
            clock.hour() * 60 + clock.minute(),
            parse_duration(self.duration.text()),
            validate_timezone(self.timezone.text()),
            note,
        )

    def _kind(self) -> MaintenanceKind:
        # Qt hands the item data back as a plain str.
        return MaintenanceKind(self.kind.currentData())

    def _update_buttons(self) -> None:
        self.add_button.setEnabled(not self._busy and self._candidate is not None)
        self.remove_button.setEnabled(not self._busy and self.selected_id() is not None)

    def selected_id(self) -> int | None:
        items = self.window_list.selectedItems()
        if not items:
            return None
        value = items[0].data(Qt.ItemDataRole.UserRole)
        return int(value) if value is not None else None

    # -- talking to the core ---------------------------------------------------------------

    def refresh(self) -> None:
        """Read the provider's windows again (on the loop thread)."""
        self._call(self._workspace.list_maintenance, self.provider_name, then=self._show)

    def add_window(self) -> None:
        if self._candidate is None or self._busy:
            return
        window = self._candidate
        self._call(
            self._workspace.add_maintenance, self.provider_name, window, then=self._on_changed
        )

    def remove_selected(self) -> None:
        window_id = self.selected_id()
        if window_id is None or self._busy:
            return
        self._call(
            self._workspace.remove_maintenance,
            self.provider_name,
            window_id,
            then=self._on_changed,
        )

    def _call(self, function: Callable[..., Any], *args: Any, then: Callable[[Any], None]) -> None:
        self._busy = True
        self._update_buttons()

        def on_success(result: Any) -> None:
            if self._finished:
                return
            self._busy = False
            then(result)
            self._update_buttons()

        def on_error(error: BaseException) -> None:
            if self._finished or is_shutdown_error(error):
                return
            self._busy = False
            self.error.setText(f"Error: {error}")
            self._update_buttons()

        self._bridge.call(function, *args, on_success=on_success, on_error=on_error)

    def _on_changed(self, _result: Any) -> None:
        self.windows_changed.emit()
        self.refresh()

    def _show(self, listing: dict[str, tuple[MaintenanceWindow, ...]]) -> None:
        self.windows = listing.get(self.provider_name, ())
        self.window_list.clear()
        now = time.time()
        for window in self.windows:
            active = "Active now: " if is_active(window, now) else ""
            item = QListWidgetItem(f"{active}{describe(window)}")
            item.setData(Qt.ItemDataRole.UserRole, window.id)
            self.window_list.addItem(item)
        if not self.windows:
            placeholder = QListWidgetItem(self.empty_text)
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
            self.window_list.addItem(placeholder)
        self._revalidate()

    def done(self, result: int) -> None:
        self._finished = True
        super().done(result)


def _next_full_hour() -> QDateTime:
    now = QDateTime.currentDateTime()
    now.setTime(QTime(now.time().hour(), 0))
    return now.addSecs(3600)


@functools.cache
def _zone_names() -> tuple[str, ...]:
    # Read from the zoneinfo database on disk once (about 600 names, some milliseconds).
    return tuple(sorted(available_timezones()))


def _default_timezone() -> str:
    try:
        return local_timezone()
    except UserInputError:
        return "UTC"
