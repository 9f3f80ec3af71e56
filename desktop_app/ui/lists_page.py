"""The Lists page: subscriber lists, the subscribers of one, and the suppression list.

Every read and write goes through the bridge (SQLite blocks); the subscribers of a list are
read a page at a time as the view scrolls, so a list of 100,000 never freezes the window.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.campaigns.csv_import import STATUSES
from desktop_app.core.storage.lists import ImportReport, Subscriber, SubscriberList, Suppression
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import one_line
from desktop_app.ui.import_wizard import ImportWizard, describe_report
from desktop_app.ui.outbox_model import Runner, run_here
from desktop_app.ui.provider_dialog import labelled
from desktop_app.ui.table_model import FlatTableModel

log = logging.getLogger(__name__)

_Index = QModelIndex | QPersistentModelIndex
_DISPLAY_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole)

#: Subscribers read per page (one short read transaction each).
PAGE_SIZE = 500


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


class ListsModel(FlatTableModel):
    """Every list with its counts by status."""

    columns = ("Name", *(s.capitalize() for s in STATUSES), "Suppressed", "Total")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._lists: list[SubscriberList] = []

    def row_total(self) -> int:
        return len(self._lists)

    def replace(self, lists: list[SubscriberList]) -> None:
        self.beginResetModel()
        self._lists = list(lists)
        self.endResetModel()

    def list_at(self, row: int) -> SubscriberList:
        return self._lists[row]

    def row_of(self, name: str) -> int:
        return next((row for row, item in enumerate(self._lists) if item.name == name), -1)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._lists):
            return None
        item = self._lists[index.row()]
        column = index.column()
        if role in _DISPLAY_ROLES:
            if column == 0:
                return item.name
            if column <= len(STATUSES):
                return f"{item.counts[STATUSES[column - 1]]:,}"
            return f"{item.suppressed:,}" if column == len(STATUSES) + 1 else f"{item.total:,}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and column == len(STATUSES) + 1:
            return "Active subscribers whose address is on the suppression list (never sent to)"
        return None


class SubscribersModel(FlatTableModel):
    """The subscribers of one list in id order, read a page at a time as the view scrolls.

    Custom fields become columns as the pages that carry them arrive.

    Signals:
        read_failed(str): a page could not be read (one line); refresh() tries again.
    """

    BASE_COLUMNS = ("Email", "Name", "Status")

    read_failed = Signal(str)

    def __init__(
        self,
        workspace: Workspace,
        parent: Any = None,
        *,
        run_in_background: Runner | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._run: Runner = run_in_background or run_here
        self._list_name: str | None = None
        self._rows: list[Subscriber] = []
        self._fields: list[str] = []
        self.columns = self.BASE_COLUMNS
        # The repository's keyset iterator, advanced one page per fetch on a worker thread.
        # Never two fetches at once (``_fetching``), so it is never advanced concurrently.
        self._pages: Iterator[Subscriber] | None = None
        self._exhausted = True
        self._fetching = False
        self._generation = 0
        self._resetting = False

    @property
    def list_name(self) -> str | None:
        return self._list_name

    def show_list(self, name: str | None) -> None:
        """Start over with list ``name`` (None: show nothing)."""
        self._generation += 1
        self.beginResetModel()
        self._list_name = name
        self._rows = []
        self._fields = []
        self.columns = self.BASE_COLUMNS
        self._pages = None if name is None else self._open_pages(name)
        self._exhausted = name is None
        self._fetching = False
        # Views ask for rows while the reset is announced; the first page comes after.
        self._resetting = True
        try:
            self.endResetModel()
        finally:
            self._resetting = False
        self.fetchMore(QModelIndex())

    def refresh(self) -> None:
        self.show_list(self._list_name)

    def _open_pages(self, name: str) -> Iterator[Subscriber]:
        # A generator: nothing is read until the first page is fetched, off the GUI thread.
        return self._workspace.lists.iter_subscribers(name, batch_size=PAGE_SIZE)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and not self._exhausted and not self._fetching

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008
        pages = self._pages
        if parent.isValid() or pages is None or self._exhausted or self._fetching:
            return
        if self._resetting:
            return
        self._fetching = True
        generation = self._generation
        self._run(
            lambda: list(itertools.islice(pages, PAGE_SIZE)),
            on_success=lambda page: self._on_page(generation, page),
            on_error=lambda error: self._on_page_failed(generation, error),
        )

    def _on_page(self, generation: int, page: list[Subscriber]) -> None:
        if generation != self._generation:
            return
        if len(page) < PAGE_SIZE:
            self._exhausted = True
        try:
            self._insert(page)
        finally:
            # Only now: a view (or the model tester) asking for more while the rows are
            # being inserted would otherwise read the next page into the middle of them.
            self._fetching = False

    def _insert(self, page: list[Subscriber]) -> None:
        if not page:
            return
        seen = dict.fromkeys(name for subscriber in page for name in subscriber.fields)
        new_fields = [name for name in seen if name not in self._fields]
        if new_fields:
            first = len(self.columns)
            self.beginInsertColumns(QModelIndex(), first, first + len(new_fields) - 1)
            self._fields.extend(new_fields)
            self.columns = (*self.BASE_COLUMNS, *self._fields)
            self.endInsertColumns()
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(page) - 1)
        self._rows.extend(page)
        self.endInsertRows()

    def _on_page_failed(self, generation: int, error: BaseException) -> None:
        if generation != self._generation:
            return
        # The iterator is spent after an error: stop here; refresh() starts a new one.
        self._fetching = False
        self._exhausted = True
        if not is_shutdown_error(error):
            log.warning("subscribers of %s: reading a page failed: %s", self._list_name, error)
            self.read_failed.emit(one_line(error))

    def subscriber_at(self, row: int) -> Subscriber:
        return self._rows[row]

    def row_total(self) -> int:
        return len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        if role not in _DISPLAY_ROLES:
            return None
        subscriber = self._rows[index.row()]
        column = index.column()
        if column == 0:
            return subscriber.email
        if column == 1:
            return subscriber.name
        if column == 2:
            return subscriber.status
        return subscriber.fields.get(self._fields[column - 3], "")


class SuppressionsModel(FlatTableModel):
    """The global suppression list, by address."""

    columns = ("Address", "Reason", "Detail", "Added")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._items: list[Suppression] = []

    def row_total(self) -> int:
        return len(self._items)

    def replace(self, items: list[Suppression]) -> None:
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def suppression_at(self, row: int) -> Suppression:
        return self._items[row]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        if role not in _DISPLAY_ROLES:
            return None
        item = self._items[index.row()]
        return (item.email_key, item.reason, item.detail, _when(item.created_at))[index.column()]


def _table(accessible_name: str, model: FlatTableModel) -> QTableView:
    table = QTableView()
    table.setAccessibleName(accessible_name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    # Fixed row heights: the view never measures 100,000 rows.
    table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.setWordWrap(False)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _section_title(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-weight: bold;")
    return label


class ListsPage(QWidget):
    """Create, rename, delete, import and export subscriber lists; keep the suppression list.

    Signals:
        lists_changed(): lists or their subscribers changed (the campaign page reads them).
    """

    lists_changed = Signal()

    def __init__(self, workspace: Workspace, bridge: CoreBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._select_after_reload: str | None = None
        #: The open import wizard (window-modal, not exec'd: the page keeps painting).
        self.import_wizard: ImportWizard | None = None

        self.lists_model = ListsModel(self)
        self.lists_table = _table("Subscriber lists", self.lists_model)
        self.lists_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.lists_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.lists_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.lists_table.horizontalHeader().setStretchLastSection(False)

        self.new_button = labelled(QPushButton("New list…"), "New list")
        self.rename_button = labelled(QPushButton("Rename…"), "Rename list")
        self.delete_button = labelled(QPushButton("Delete"), "Delete list")
        self.import_button = labelled(QPushButton("Import CSV…"), "Import CSV")
        self.export_button = labelled(QPushButton("Export CSV…"), "Export CSV")
        # Checked: cells a spreadsheet would run as formulas get a leading ' (csv_cells).
        self.protect_check = labelled(
            QCheckBox("Escape formulas"), "Protect against spreadsheet formulas"
        )
        self.protect_check.setChecked(True)
        self.protect_check.setToolTip(
            "Protect against spreadsheet formulas: cells starting with = + - @ get a leading ' "
            "in the exported file (importing it takes the ' off again)"
        )
        self.new_button.clicked.connect(self.ask_new_list)
        self.rename_button.clicked.connect(self.ask_rename_selected)
        self.delete_button.clicked.connect(self.ask_delete_selected)
        self.import_button.clicked.connect(self.open_import_wizard)
        self.export_button.clicked.connect(self.ask_export_selected)

        self.subscribers_model = SubscribersModel(workspace, self, run_in_background=bridge.call)
        self.subscribers_table = _table("Subscribers", self.subscribers_model)
        self.subscribers_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        for column, width in enumerate((260, 180, 100)):
            self.subscribers_table.setColumnWidth(column, width)
        self.subscribers_title = _section_title("Subscribers")
        self.subscribers_model.rowsInserted.connect(self._update_subscribers_title)
        self.subscribers_model.modelReset.connect(self._update_subscribers_title)
        self.subscribers_model.read_failed.connect(self._on_subscribers_read_failed)

        self.suppressions_model = SuppressionsModel(self)
        self.suppressions_table = _table("Suppression list", self.suppressions_model)
        self.suppressions_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        for column, width in enumerate((260, 100, 200)):
            self.suppressions_table.setColumnWidth(column, width)
        self.suppress_input = labelled(QLineEdit(), "Address to suppress")
        self.suppress_input.setPlaceholderText("Address never to send to, from any list")
        self.suppress_input.returnPressed.connect(self.suppress_entered)
        self.suppress_button = labelled(QPushButton("Suppress"), "Suppress")
        self.suppress_button.clicked.connect(self.suppress_entered)
        self.unsuppress_button = labelled(QPushButton("Remove selected"), "Remove suppression")
        self.unsuppress_button.clicked.connect(self.unsuppress_selected)

        self.status = QLabel(" ")
        self.status.setObjectName("lists_status")
        self.status.setAccessibleName("Lists status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.setLayout(self._build_layout())
        self.lists_table.selectionModel().selectionChanged.connect(self._on_lists_selection_changed)
        self.suppressions_table.selectionModel().selectionChanged.connect(self._update_buttons)
        self._update_buttons()
        self.reload()

    def _build_layout(self) -> QVBoxLayout:
        # Buttons in a column beside the lists table: five in a row made the page wider than
        # a small laptop screen, like the Providers page.
        buttons = QVBoxLayout()
        for widget in (
            self.new_button,
            self.rename_button,
            self.delete_button,
            self.import_button,
            self.export_button,
            self.protect_check,
        ):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        lists_row = QHBoxLayout()
        lists_row.addWidget(self.lists_table, 1)
        lists_row.addLayout(buttons)
        lists_box = QWidget()
        lists_column = QVBoxLayout(lists_box)
        lists_column.setContentsMargins(0, 0, 0, 0)
        lists_column.addWidget(_section_title("Lists"))
        lists_column.addLayout(lists_row, 1)

        subscribers_box = QWidget()
        subscribers_column = QVBoxLayout(subscribers_box)
        subscribers_column.setContentsMargins(0, 0, 0, 0)
        subscribers_column.addWidget(self.subscribers_title)
        subscribers_column.addWidget(self.subscribers_table, 1)

        suppress_row = QHBoxLayout()
        suppress_row.addWidget(self.suppress_input, 1)
        suppress_row.addWidget(self.suppress_button)
        suppress_row.addWidget(self.unsuppress_button)
        suppressions_box = QWidget()
        suppressions_column = QVBoxLayout(suppressions_box)
        suppressions_column.setContentsMargins(0, 0, 0, 0)
        suppressions_column.addWidget(_section_title("Suppression list (all lists)"))
        suppressions_column.addLayout(suppress_row)
        suppressions_column.addWidget(self.suppressions_table, 1)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        for box, stretch in ((lists_box, 2), (subscribers_box, 3), (suppressions_box, 2)):
            splitter.addWidget(box)
            splitter.setStretchFactor(splitter.count() - 1, stretch)
        layout = QVBoxLayout()
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        return layout

    # -- state -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the lists and the suppression list again (off the GUI thread)."""
        self._bridge.call(
            self._workspace.subscriber_lists,
            on_success=self._on_lists_loaded,
            on_error=self._on_error,
        )
        self._bridge.call(
            self._workspace.suppressions,
            on_success=self.suppressions_model.replace,
            on_error=self._on_error,
        )

    def _on_lists_loaded(self, lists: list[SubscriberList]) -> None:
        wanted = self._select_after_reload or self.selected_name()
        self._select_after_reload = None
        shown = self.subscribers_model.list_name
        self.lists_model.replace(lists)  # clears the selection
        row = self.lists_model.row_of(wanted) if wanted else -1
        if row < 0 and lists:
            row = 0
        if row >= 0:
            self.lists_table.selectRow(row)
        name = self.lists_model.list_at(row).name if row >= 0 else None
        if self.subscribers_model.list_name != name:
            self.subscribers_model.show_list(name)  # e.g. the list shown was deleted
        elif name == shown:
            # The same list as before, but an import may have changed its subscribers.
            self.subscribers_model.refresh()
        self._update_buttons()
        self._update_subscribers_title()

    def selected_name(self) -> str | None:
        rows = self.lists_table.selectionModel().selectedRows()
        return self.lists_model.list_at(rows[0].row()).name if rows else None

    def selected_list(self) -> SubscriberList | None:
        rows = self.lists_table.selectionModel().selectedRows()
        return self.lists_model.list_at(rows[0].row()) if rows else None

    @Slot()
    def _on_lists_selection_changed(self, *_args: Any) -> None:
        name = self.selected_name()
        if name != self.subscribers_model.list_name:
            self.subscribers_model.show_list(name)
        self._update_buttons()

    def _update_buttons(self, *_args: Any) -> None:
        chosen = self.selected_name() is not None
        for widget in (
            self.rename_button,
            self.delete_button,
            self.import_button,
            self.export_button,
        ):
            widget.setEnabled(chosen)
        self.unsuppress_button.setEnabled(
            bool(self.suppressions_table.selectionModel().selectedRows())
        )

    def _update_subscribers_title(self, *_args: Any) -> None:
        chosen = self.selected_list()
        if chosen is None or chosen.name != self.subscribers_model.list_name:
            self.subscribers_title.setText("Subscribers")
            return
        loaded = self.subscribers_model.rowCount()
        text = f"Subscribers of {chosen.name} — {chosen.total:,}"
        if loaded < chosen.total:
            text += f" (showing the first {loaded:,}; scroll for more)"
        self.subscribers_title.setText(text)

    @Slot(str)
    def _on_subscribers_read_failed(self, text: str) -> None:
        self.report(f"Error: could not read the subscribers: {text}")

    def report(self, text: str) -> None:
        """One line under the page: what was done, or what went wrong."""
        self.status.setText(text)

    def _on_error(self, error: BaseException) -> None:
        if is_shutdown_error(error):
            return
        self.report(f"Error: {one_line(error)}")

    def _change(
        self,
        function: Callable[..., Any],
        *args: Any,
        done: Callable[[Any], str],
        select: str | None = None,
    ) -> None:
        """Run a change off the GUI thread, say what it did, then read the lists again."""

        def on_success(result: Any) -> None:
            self.report(done(result))
            if select is not None:
                self._select_after_reload = select
            self.reload()
            self.lists_changed.emit()

        def on_error(error: BaseException) -> None:
            self._on_error(error)
            self.reload()

        self._bridge.call(function, *args, on_success=on_success, on_error=on_error)

    # -- lists -----------------------------------------------------------------------------

    @Slot()
    def ask_new_list(self) -> None:
        name, ok = QInputDialog.getText(self, "New list", "Name of the new list:")
        if ok and name.strip():
            self.create_list(name)

    def create_list(self, name: str) -> None:
        self._change(
            self._workspace.create_list,
            name,
            done=lambda created: f"Created list {created.name}",
            select=name.strip(),
        )

    @Slot()
    def ask_rename_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        new_name, ok = QInputDialog.getText(
            self, "Rename list", f"New name for {name}:", QLineEdit.EchoMode.Normal, name
        )
        if ok and new_name.strip() and new_name.strip() != name:
            self._change(
                self._workspace.rename_list,
                name,
                new_name,
                done=lambda renamed: f"Renamed {name} to {renamed.name}",
                select=new_name.strip(),
            )

    @Slot()
    def ask_delete_selected(self) -> None:
        chosen = self.selected_list()
        if chosen is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete list",
            f"Delete the list {chosen.name} and its {count_of(chosen.total, 'subscriber')}? "
            "The suppression list stays as it is.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._change(
            self._workspace.delete_list, chosen.name, done=lambda _r: f"Deleted {chosen.name}"
        )

    @Slot()
    def ask_export_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        path, _filter = QFileDialog.getSaveFileName(
            self, f"Export {name}", f"{name}.csv", "CSV files (*.csv)"
        )
        if path:
            self.export_selected(Path(path))

    def export_selected(self, path: Path) -> None:
        """Write the selected list to ``path`` (on the loop thread's executor)."""
        name = self.selected_name()
        if name is None:
            return
        self.report(f"Exporting {name}…")
        self._bridge.call(
            functools.partial(self._workspace.export_list, raw=not self.protect_check.isChecked()),
            name,
            path,
            on_success=lambda rows: self.report(
                f"Exported {count_of(rows, 'subscriber')} to {path}"
            ),
            on_error=self._on_error,
        )

    @Slot()
    def open_import_wizard(self) -> ImportWizard | None:
        """Open the CSV import wizard for the selected list (window-modal)."""
        name = self.selected_name()
        if name is None:
            return None
        if self.import_wizard is not None:
            self.import_wizard.raise_()
            return self.import_wizard
        wizard = ImportWizard(self._workspace, self._bridge, name, parent=self)
        wizard.imported.connect(self._on_wizard_imported)
        wizard.finished.connect(self._on_wizard_finished)
        self.import_wizard = wizard
        wizard.open()
        return wizard

    @Slot(object)
    def _on_wizard_imported(self, report: ImportReport) -> None:
        self.report(describe_report(report))
        self.reload()
        self.lists_changed.emit()

    @Slot(int)
    def _on_wizard_finished(self, _result: int) -> None:
        wizard, self.import_wizard = self.import_wizard, None
        if wizard is not None:
            wizard.deleteLater()  # a child of this page: it would otherwise live on hidden

    # -- suppression list ------------------------------------------------------------------

    @Slot()
    def suppress_entered(self) -> None:
        address = self.suppress_input.text().strip()
        if not address:
            return

        def done(added: Suppression) -> str:
            # Cleared only once stored: a mistyped address stays there to be corrected.
            self.suppress_input.clear()
            return f"{added.email_key} is suppressed ({added.reason})"

        self._change(self._workspace.suppress, address, done=done)

    @Slot()
    def unsuppress_selected(self) -> None:
        rows = self.suppressions_table.selectionModel().selectedRows()
        keys = [self.suppressions_model.suppression_at(index.row()).email_key for index in rows]
        if not keys:
            return

        def unsuppress_all() -> int:
            for key in keys:
                self._workspace.unsuppress(key)
            return len(keys)

        self._change(
            unsuppress_all,
            done=lambda count: (
                f"{keys[0]} removed from the suppression list"
                if count == 1
                else f"{count} addresses removed from the suppression list"
            ),
        )
