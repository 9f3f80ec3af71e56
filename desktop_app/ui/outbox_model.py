"""A lazy table model over the outbox: smooth with 100,000 rows, live while mail flows.

Rows are fetched a page at a time as the view scrolls (``canFetchMore``/``fetchMore``, keyset
pages). Engine events do not reload anything: the ids they name are collected and, a few
times a second, only the loaded rows among them are re-read and repainted. New messages
appear when the user scrolls to the end (or on ``refresh``).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer

from desktop_app.core.events import MessageStateChanged
from desktop_app.core.storage.outbox_views import OutboxEntry, OutboxFilter, OutboxViews

_Index = QModelIndex | QPersistentModelIndex

COLUMNS = (
    "State",
    "Recipient",
    "Subject",
    "Provider",
    "Attempts",
    "Last error",
    "Next attempt",
)
PAGE_SIZE = 500
UPDATE_INTERVAL_MS = 250


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    if epoch <= time.time():
        return "now"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


class OutboxModel(QAbstractTableModel):
    """Outbox entries matching a filter, in queue order."""

    def __init__(self, views: OutboxViews, parent: Any = None) -> None:
        super().__init__(parent)
        self._views = views
        self._filter = OutboxFilter()
        self._rows: list[OutboxEntry] = []
        self._row_of: dict[int, int] = {}
        self._exhausted = False
        self._dirty: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(UPDATE_INTERVAL_MS)
        self._timer.timeout.connect(self._flush_updates)
        self._timer.start()
        self.fetchMore(QModelIndex())

    # -- filtering -------------------------------------------------------------------------

    @property
    def filter(self) -> OutboxFilter:
        return self._filter

    def set_filter(self, view: OutboxFilter) -> None:
        if view != self._filter:
            self._filter = view
            self.refresh()

    def refresh(self) -> None:
        """Start over from the first page (filter changed, or the user asked)."""
        self.beginResetModel()
        self._rows = []
        self._row_of = {}
        self._exhausted = False
        self._dirty.clear()
        self.endResetModel()
        self.fetchMore(QModelIndex())

    def total(self) -> int:
        """All matching messages, loaded or not."""
        return self._views.count(self._filter)

    # -- lazy loading ----------------------------------------------------------------------

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._exhausted

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or self._exhausted:
            return
        after = self._rows[-1].outbox_id if self._rows else 0
        page = self._views.page(self._filter, after_id=after, limit=PAGE_SIZE)
        if len(page) < PAGE_SIZE:
            # Until more mail is queued; the flush timer notices new ids and re-arms.
            self._exhausted = True
        if not page:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
        for offset, entry in enumerate(page):
            self._row_of[entry.outbox_id] = first + offset
        self._rows.extend(page)
        self.endInsertRows()

    # -- live updates ----------------------------------------------------------------------

    def note_changed(self, event: MessageStateChanged) -> None:
        """Called for every engine event; cheap: the work happens in the flush."""
        self._dirty.add(event.outbox_id)

    def _flush_updates(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        loaded = [outbox_id for outbox_id in dirty if outbox_id in self._row_of]
        if any(outbox_id not in self._row_of for outbox_id in dirty):
            self._exhausted = False  # something new may be past the end: let fetchMore look
        for entry in self._views.entries(loaded):
            row = self._row_of[entry.outbox_id]
            self._rows[row] = entry
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def entry_at(self, row: int) -> OutboxEntry:
        return self._rows[row]

    # -- the Qt model interface ------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        entry = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            column = index.column()
            if column == 0:
                return entry.state.value + (
                    " (possible duplicate)" if entry.possible_duplicate else ""
                )
            if column == 1:
                return entry.recipients
            if column == 2:
                return entry.subject
            if column == 3:
                return entry.provider_name or ""
            if column == 4:
                return entry.attempts
            if column == 5:
                return entry.last_error or ""
            return (
                _when(entry.next_attempt_at)
                if entry.state.value in ("deferred", "unknown", "queued")
                else ""
            )
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 5:
            return entry.last_error
        return None
