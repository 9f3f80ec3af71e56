"""The Outbox page: every message, filtered by state and text; retry or cancel a selection."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QModelIndex, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.events import MessageStateChanged
from desktop_app.core.models import MessageState
from desktop_app.core.storage.outbox_views import OutboxFilter, OutboxViews
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.outbox_model import OutboxModel
from desktop_app.ui.provider_dialog import labelled


class OutboxPage(QWidget):
    """A live, lazily loaded view of the outbox.

    Signals:
        outbox_changed(): the user retried or cancelled messages (the engine looks again).
    """

    outbox_changed = Signal()

    def __init__(self, workspace: Workspace, bridge: CoreBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self.model = OutboxModel(
            OutboxViews(workspace.database), self, run_in_background=bridge.call
        )
        self.model.total_changed.connect(self._on_model_total_changed)
        self.model.more_available.connect(self._on_model_more_available)
        bridge.message_states_changed.connect(self._on_bridge_message_states_changed)

        self.state_filter = labelled(QComboBox(), "State")
        self.state_filter.addItem("All states", None)
        for state in MessageState:
            self.state_filter.addItem(state.value.capitalize(), state)
        self.search = labelled(QLineEdit(), "Search")
        self.search.setPlaceholderText("Search recipient, subject or Message-ID")
        self.search.setClearButtonEnabled(True)
        # Typing fires once the user pauses, not on every keystroke.
        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self._apply_filter)
        self.search.textChanged.connect(self._search_timer.start)
        self.state_filter.currentIndexChanged.connect(self._apply_filter)

        self.retry_button = labelled(QPushButton("Retry now"), "Retry now")
        self.retry_button.setShortcut(QKeySequence("Ctrl+R"))
        self.cancel_button = labelled(QPushButton("Cancel messages"), "Cancel messages")
        self.cancel_button.setShortcut(QKeySequence("Ctrl+Shift+X"))
        self.refresh_button = labelled(QPushButton("Refresh"), "Refresh")
        self.refresh_button.setShortcut(QKeySequence(QKeySequence.StandardKey.Refresh))
        self.retry_button.clicked.connect(self.retry_selected)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.refresh_button.clicked.connect(self.model.refresh)

        self.table = QTableView()
        self.table.setAccessibleName("Outbox")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        # Fixed row heights: the view never measures 100,000 rows.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setWordWrap(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        for column, width in enumerate((110, 220, 240, 110, 70, 260)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)

        self.summary = QLabel()
        self.summary.setObjectName("outbox_summary")
        self.summary.setAccessibleName("Outbox summary")

        state_label = QLabel("&State")
        state_label.setBuddy(self.state_filter)
        top = QHBoxLayout()
        top.addWidget(state_label)
        top.addWidget(self.state_filter)
        top.addWidget(self.search, 1)
        top.addWidget(self.retry_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        self._update_buttons()
        self.update_summary()

    def _apply_filter(self) -> None:
        # PySide hands the enum back as a plain str: make it a MessageState again.
        state = self.state_filter.currentData()
        self.model.set_filter(
            OutboxFilter(states=(MessageState(state),) if state else (), text=self.search.text())
        )
        self.update_summary()

    def update_summary(self) -> None:
        """Count the matching messages again (in the background)."""
        self.model.refresh_total()

    @Slot(int)
    def _on_model_total_changed(self, total: int) -> None:
        self.summary.setText("1 message matches" if total == 1 else f"{total:,} messages match")

    @Slot()
    def _on_model_more_available(self) -> None:
        # What the view does when scrolled to the bottom; here the end is already in view.
        bar = self.table.verticalScrollBar()
        if bar.value() >= bar.maximum():
            self.model.fetchMore(QModelIndex())

    def expect_new_messages(self) -> None:
        """Messages were queued from this window: show them if the end is in view."""
        self.model.expect_more()
        self.update_summary()

    def selected_ids(self) -> list[int]:
        rows = self.table.selectionModel().selectedRows()
        return [self.model.entry_at(index.row()).outbox_id for index in rows]

    def _update_buttons(self, *_args: object) -> None:
        has_selection = bool(self.table.selectionModel().selectedRows())
        self.retry_button.setEnabled(has_selection)
        self.cancel_button.setEnabled(has_selection)

    @Slot()
    def retry_selected(self) -> None:
        self._change_selected(self._workspace.outbox.retry_now)

    @Slot()
    def cancel_selected(self) -> None:
        self._change_selected(self._workspace.outbox.cancel)

    def _change_selected(self, change: Callable[[list[int]], int]) -> None:
        ids = self.selected_ids()
        if ids:
            # The ids as clicked: the selection may have moved by the time the answer comes.
            self._bridge.call(
                change,
                ids,
                on_success=lambda _count: self._after_change(ids),
                on_error=lambda error: self.summary.setText(f"Not changed: {error}"),
            )

    def _after_change(self, ids: list[int]) -> None:
        for outbox_id in ids:
            self.model.note_changed(
                MessageStateChanged(outbox_id=outbox_id, message_id="", state=MessageState.QUEUED)
            )
        self.update_summary()
        self.outbox_changed.emit()

    @Slot(list)
    def _on_bridge_message_states_changed(self, events: list[MessageStateChanged]) -> None:
        for event in events:
            self.model.note_changed(event)
