"""A lazy table model over the outbox: smooth with 100,000 rows, live while mail flows.

Rows are fetched a page at a time as the view scrolls (``canFetchMore``/``fetchMore``, keyset
pages). Engine events do not reload anything: the ids they name are collected and, a few
times a second, only the loaded rows among them are re-read and repainted. New messages
appear when the end of the table is in view (``more_available``) or on ``refresh``.

Every read runs through ``run_in_background`` (the bridge's ``call``: the loop thread's
executor) and its answer is applied on the GUI thread: with the engine committing hundreds
of messages a second, a SQLite read on the GUI thread froze the window for 50 ms and more.
Without a runner (tests, tools) the reads run at once, on the calling thread.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)

from desktop_app.core.events import MessageStateChanged
from desktop_app.core.storage.outbox_views import OutboxEntry, OutboxFilter, OutboxViews
from desktop_app.core.wording import local_time
from desktop_app.ui.bridge import is_shutdown_error
from desktop_app.ui.table_model import FlatTableModel

log = logging.getLogger(__name__)

_Index = QModelIndex | QPersistentModelIndex

#: ``runner(function, *args, on_success=callback, on_error=callback)``, like ``CoreBridge.call``.
Runner = Callable[..., Any]

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
    return local_time(epoch)


def run_here(
    function: Callable[..., Any],
    *args: Any,
    on_success: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    """The runner without a loop thread: call at once, answer at once."""
    try:
        result = function(*args)
    except Exception as exc:
        if on_error is None:
            raise
        on_error(exc)
        return
    if on_success is not None:
        on_success(result)


class OutboxModel(FlatTableModel):
    """Outbox entries matching a filter, in queue order.

    Signals:
        total_changed(int): how many messages match the filter, loaded or not (newly counted).
        more_available(): messages may now exist past the last loaded row.
    """

    columns = COLUMNS

    total_changed = Signal(int)
    more_available = Signal()

    def __init__(
        self,
        views: OutboxViews,
        parent: Any = None,
        *,
        run_in_background: Runner | None = None,
    ) -> None:
        super().__init__(parent)
        self._views = views
        self._run: Runner = run_in_background or run_here
        self._filter = OutboxFilter()
        self._rows: list[OutboxEntry] = []
        self._row_of: dict[int, int] = {}
        self._exhausted = False
        self._dirty: set[int] = set()
        # Bumped by refresh(): answers to reads made for the rows before it are dropped.
        self._generation = 0
        self._fetching = False
        self._flushing = False
        self._counting = False
        self._total: int | None = None
        self._resetting = False
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
        self._generation += 1
        self.beginResetModel()
        self._rows = []
        self._row_of = {}
        self._exhausted = False
        self._dirty.clear()
        self._fetching = self._flushing = self._counting = False
        self._total = None
        # Views (and Qt's model tester) ask for rows while the reset is announced; the first
        # page is fetched right after, once the reset is complete.
        self._resetting = True
        try:
            self.endResetModel()
        finally:
            self._resetting = False
        self.fetchMore(QModelIndex())
        self.refresh_total()

    def total(self) -> int | None:
        """All matching messages, loaded or not, as last counted (None: not counted yet)."""
        return self._total

    def refresh_total(self) -> None:
        """Count again in the background; ``total_changed`` tells the result."""
        if self._counting:
            return
        self._counting = True
        generation = self._generation
        self._run(
            self._views.count,
            self._filter,
            on_success=lambda count: self._on_counted(generation, count),
            on_error=lambda error: self._on_read_failed(generation, "count", error),
        )

    def _on_counted(self, generation: int, count: int) -> None:
        if generation != self._generation:
            return
        self._counting = False
        self._total = count
        self.total_changed.emit(count)

    def expect_more(self) -> None:
        """Messages were just queued: there may be rows past the end again."""
        if self._exhausted:
            self._exhausted = False
            self.more_available.emit()

    # -- lazy loading ----------------------------------------------------------------------

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._exhausted and not self._fetching

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or self._exhausted or self._fetching or self._resetting:
            return
        self._fetching = True
        generation = self._generation
        after = self._rows[-1].outbox_id if self._rows else 0
        self._run(
            functools.partial(self._views.page, self._filter, after_id=after, limit=PAGE_SIZE),
            on_success=lambda page: self._on_page(generation, page),
            on_error=lambda error: self._on_read_failed(generation, "page", error),
        )

    def _on_page(self, generation: int, page: list[OutboxEntry]) -> None:
        if generation != self._generation:
            return
        self._fetching = False
        if len(page) < PAGE_SIZE:
            # Until more mail is queued; the flush notices new ids and re-arms.
            self._exhausted = True
        if not page:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
        for offset, entry in enumerate(page):
            self._row_of[entry.outbox_id] = first + offset
        self._rows.extend(page)
        self.endInsertRows()

    def _on_read_failed(self, generation: int, what: str, error: BaseException) -> None:
        # A locked or busy database: the next flush, scroll or refresh reads again. (A read
        # still queued while the app shuts down is not worth a warning.)
        if not is_shutdown_error(error):
            log.warning("outbox view: reading the %s failed: %s", what, error)
        if generation == self._generation:
            if what == "page":
                self._fetching = False
            elif what == "count":
                self._counting = False
            else:
                self._flushing = False

    # -- live updates ----------------------------------------------------------------------

    def note_changed(self, event: MessageStateChanged) -> None:
        """Called for every engine event; cheap: the work happens in the flush."""
        self._dirty.add(event.outbox_id)

    def _flush_updates(self) -> None:
        if not self._dirty or self._flushing:
            return
        dirty, self._dirty = self._dirty, set()
        loaded = sorted(outbox_id for outbox_id in dirty if outbox_id in self._row_of)
        last_loaded = self._rows[-1].outbox_id if self._rows else 0
        if self._exhausted and any(outbox_id > last_loaded for outbox_id in dirty):
            self._exhausted = False  # something new past the end: let fetchMore look
            self.more_available.emit()
        if not loaded:
            return
        self._flushing = True
        generation = self._generation
        self._run(
            self._views.entries,
            loaded,
            on_success=lambda entries: self._on_entries(generation, entries),
            on_error=lambda error: self._on_entries_failed(generation, loaded, error),
        )

    def _on_entries_failed(self, generation: int, ids: list[int], error: BaseException) -> None:
        if generation == self._generation:
            self._dirty.update(ids)  # read them again next time
        self._on_read_failed(generation, "entries", error)

    def _on_entries(self, generation: int, entries: list[OutboxEntry]) -> None:
        if generation != self._generation:
            return
        self._flushing = False
        rows: list[int] = []
        for entry in entries:
            row = self._row_of.get(entry.outbox_id)
            if row is not None:
                self._rows[row] = entry
                rows.append(row)
        if rows:
            # One signal for the span: a view repaints once, not once per message.
            self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), len(COLUMNS) - 1))

    def entry_at(self, row: int) -> OutboxEntry:
        return self._rows[row]

    # -- the Qt model interface ------------------------------------------------------------

    def row_total(self) -> int:
        return len(self._rows)

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
