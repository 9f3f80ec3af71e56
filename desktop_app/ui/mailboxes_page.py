"""The Mailboxes page: the IMAP mailboxes Relaydesk reads (bounces, unsubscribe requests,
delivery-probe seeds), what they brought in, and what was left for a person to read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Slot
from PySide6.QtGui import QBrush, QColor, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.events import BouncesRecorded, MailboxStatusChanged
from desktop_app.core.storage.bounces import BounceEvent, EventKind, UnrecognisedMessage
from desktop_app.core.wording import local_time
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import ERROR_COLOUR, ERROR_STYLE, one_line
from desktop_app.ui.mailbox_dialog import MailboxDialog
from desktop_app.ui.provider_dialog import labelled
from desktop_app.ui.table_model import FlatTableModel

REFRESH_MS = 5000
#: Bounce events shown (the newest); the rest stay in the database.
SHOWN_EVENTS = 500
_KIND_COLOURS = {EventKind.HARD: ERROR_COLOUR, EventKind.SOFT: QColor("#ef6c00")}


@dataclass(frozen=True, slots=True)
class MailboxesSnapshot:
    """Everything the page shows, read at once off the GUI thread."""

    mailboxes: tuple[MailboxConfig, ...]
    events: tuple[BounceEvent, ...]
    unrecognised: tuple[UnrecognisedMessage, ...]
    providers: tuple[str, ...]


def load_snapshot(workspace: Workspace) -> MailboxesSnapshot:
    """Read the page's data (blocking: SQLite)."""
    return MailboxesSnapshot(
        mailboxes=tuple(workspace.mailboxes.all()),
        events=tuple(workspace.bounces.events(limit=SHOWN_EVENTS)),
        unrecognised=tuple(workspace.bounces.unrecognised()),
        providers=tuple(p.name for p in workspace.providers.all()),
    )


class _RowsModel(FlatTableModel):
    """A read-only table of frozen rows, replaced whole on each reload."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: tuple[Any, ...] = ()

    def row_total(self) -> int:
        return len(self.rows)

    def replace(self, rows: tuple[Any, ...]) -> None:
        if rows == self.rows:
            return  # the 5 s reload must not reset the selection or the scroll position
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def cells(self, row: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def foreground(self, row: Any, column: int) -> QColor | None:
        return None

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            text = self.cells(row)[index.column()]
            return text if role == Qt.ItemDataRole.DisplayRole or text else None
        if role == Qt.ItemDataRole.ForegroundRole:
            colour = self.foreground(row, index.column())
            return QBrush(colour) if colour is not None else None
        return None


class MailboxesModel(_RowsModel):
    columns = (
        "Name",
        "Role",
        "Account",
        "Server",
        "Folder → processed",
        "State",
        "Last checked",
        "Last error",
    )

    def cells(self, row: MailboxConfig) -> tuple[str, ...]:
        role = row.role.value
        if row.provider_name is not None:
            role += f" ({row.provider_name})"
        return (
            row.name,
            role,
            row.username,
            f"{row.host}:{row.port} ({row.security.value})",
            f"{row.folder} → {row.processed_folder}",
            "enabled" if row.enabled else "disabled",
            local_time(row.last_checked_at)
            or ("not yet" if row.role is not MailboxRole.SEED else ""),
            row.last_error or "",
        )

    def foreground(self, row: MailboxConfig, column: int) -> QColor | None:
        return ERROR_COLOUR if column == 7 else None

    def names(self) -> list[str]:
        return [mailbox.name for mailbox in self.rows]


class BounceEventsModel(_RowsModel):
    columns = ("Time", "Kind", "Address", "Status", "Campaign", "Detail")

    def cells(self, row: BounceEvent) -> tuple[str, ...]:
        return (
            local_time(row.received_at),
            row.kind,
            row.address,
            row.status or "",
            row.campaign or "",
            row.detail,
        )

    def foreground(self, row: BounceEvent, column: int) -> QColor | None:
        return _KIND_COLOURS.get(row.kind) if column == 1 else None


class UnrecognisedModel(_RowsModel):
    columns = ("Received", "Mailbox", "From", "Subject")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mailbox_names: dict[int, str] = {}

    def cells(self, row: UnrecognisedMessage) -> tuple[str, ...]:
        return (
            local_time(row.received_at),
            self.mailbox_names.get(row.mailbox_id, ""),
            row.sender,
            row.subject,
        )


def _table(name: str, model: FlatTableModel, stretch: int) -> QTableView:
    table = QTableView()
    table.setAccessibleName(name)
    table.setObjectName(name.lower().replace(" ", "_"))
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
    return table


def _titled(title: str, table: QTableView, note: QLabel | None = None) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    caption = QLabel(f"<b>{title}</b>")
    caption.setBuddy(table)
    layout.addWidget(caption)
    if note is not None:
        layout.addWidget(note)
    layout.addWidget(table, 1)
    return box


class MailboxesPage(QWidget):
    """Add, edit and remove mailboxes; see recent bounces and messages left for a person.

    Reads everything off the GUI thread: when shown, every 5 s while visible, and when the
    core reports bounces or a mailbox's status.
    """

    def __init__(self, workspace: Workspace, bridge: CoreBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._loading = False
        self._reload_again = False
        self._changing = False
        self._providers: tuple[str, ...] = ()

        self.mailboxes_model = MailboxesModel(self)
        self.events_model = BounceEventsModel(self)
        self.unrecognised_model = UnrecognisedModel(self)
        self.mailboxes_table = _table("Mailboxes", self.mailboxes_model, stretch=7)
        self.events_table = _table("Bounce events", self.events_model, stretch=5)
        self.unrecognised_table = _table("Left for a person", self.unrecognised_model, stretch=3)
        self.mailboxes_table.doubleClicked.connect(lambda _index: self.edit_selected())

        self.empty_note = QLabel(
            "No mailboxes yet. Add the mailbox bounces come back to, the List-Unsubscribe "
            "mailto address and, for delivery probes, a seed inbox."
        )
        self.empty_note.setWordWrap(True)
        self.unrecognised_note = QLabel(
            "Messages in a bounce or unsubscribe mailbox that were neither: they stay in "
            "the folder for someone to read."
        )
        self.unrecognised_note.setWordWrap(True)

        self.add_button = labelled(QPushButton("&Add mailbox…"), "Add mailbox")
        self.edit_button = labelled(QPushButton("&Edit…"), "Edit")
        self.remove_button = labelled(QPushButton("&Remove…"), "Remove")
        self.add_button.clicked.connect(self.add_mailbox)
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QVBoxLayout()
        for button in (self.add_button, self.edit_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.status = QLabel()
        self.status.setObjectName("mailbox_status")
        self.status.setAccessibleName("Mailbox status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QWidget()
        top_layout = QHBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(_titled("Mailboxes", self.mailboxes_table, self.empty_note), 1)
        top_layout.addLayout(buttons)
        # A splitter: which of the three tables matters most differs from day to day.
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(top)
        splitter.addWidget(_titled("Recent bounces and unsubscribe requests", self.events_table))
        splitter.addWidget(
            _titled("Left for a person", self.unrecognised_table, self.unrecognised_note)
        )
        splitter.setSizes([220, 300, 140])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.reload)
        self.mailboxes_table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.mailboxes_model.modelReset.connect(self._update_buttons)
        bridge.bounces_recorded.connect(self._on_bridge_bounces_recorded)
        bridge.mailbox_status_changed.connect(self._on_bridge_mailbox_status_changed)
        self._update_buttons()

    # -- reading ---------------------------------------------------------------------------

    @Slot()
    def reload(self, select: str | None = None) -> None:
        """Read everything off the GUI thread; a reload asked for meanwhile runs after."""
        if self._loading:
            self._reload_again = True
            return
        self._loading = True
        chosen = select or self.selected_name()

        def loaded(snapshot: MailboxesSnapshot) -> None:
            self._loading = False
            self._show(snapshot, chosen)
            self._reload_if_asked()

        def failed(error: BaseException) -> None:
            self._loading = False
            if not is_shutdown_error(error):
                self._report_error(f"Could not read the mailboxes: {one_line(error)}")
                self._reload_if_asked()

        self._bridge.call(load_snapshot, self._workspace, on_success=loaded, on_error=failed)

    def _reload_if_asked(self) -> None:
        if self._reload_again:
            self._reload_again = False
            self.reload()

    def _show(self, snapshot: MailboxesSnapshot, chosen: str | None) -> None:
        self._providers = snapshot.providers
        self.mailboxes_model.replace(snapshot.mailboxes)
        self.events_model.replace(snapshot.events)
        names = {m.id: m.name for m in snapshot.mailboxes if m.id is not None}
        if names != self.unrecognised_model.mailbox_names:
            self.unrecognised_model.mailbox_names = names
            self.unrecognised_model.rows = ()  # force the reset: the names changed
        self.unrecognised_model.replace(snapshot.unrecognised)
        self.empty_note.setVisible(not snapshot.mailboxes)
        if chosen and chosen != self.selected_name() and chosen in self.mailboxes_model.names():
            self.mailboxes_table.selectRow(self.mailboxes_model.names().index(chosen))
        self._update_buttons()

    def selected(self) -> MailboxConfig | None:
        rows = self.mailboxes_table.selectionModel().selectedRows()
        return self.mailboxes_model.rows[rows[0].row()] if rows else None

    def selected_name(self) -> str | None:
        mailbox = self.selected()
        return mailbox.name if mailbox else None

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        chosen = self.selected() is not None
        self.edit_button.setEnabled(chosen and not self._changing)
        self.remove_button.setEnabled(chosen and not self._changing)
        self.add_button.setEnabled(not self._changing)

    def _report(self, text: str) -> None:
        self.status.setStyleSheet("")
        self.status.setText(text)

    def _report_error(self, text: str) -> None:
        self.status.setStyleSheet(ERROR_STYLE)
        self.status.setText(text)

    # -- live ------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._timer.start()
        self.reload()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()

    @Slot(object)
    def _on_bridge_bounces_recorded(self, event: BouncesRecorded) -> None:
        parts = [
            f"{count} {word}"
            for count, word in (
                (event.hard, "hard"),
                (event.soft, "soft"),
                (event.unsubscribed, "unsubscribed"),
                (event.suppressed, "suppressed"),
            )
            if count
        ]
        if parts:
            self._report(f"{event.mailbox}: {', '.join(parts)}")
        self.reload()

    @Slot(object)
    def _on_bridge_mailbox_status_changed(self, event: MailboxStatusChanged) -> None:
        self.reload()

    # -- actions ---------------------------------------------------------------------------

    @Slot()
    def add_mailbox(self) -> None:
        self._edit(None)

    @Slot()
    def edit_selected(self) -> None:
        mailbox = self.selected()
        if mailbox is not None:
            self._edit(mailbox)

    def _edit(self, mailbox: MailboxConfig | None) -> None:
        dialog = MailboxDialog(
            self._workspace,
            self._bridge,
            self.mailboxes_model.names(),
            self._providers,
            mailbox,
            parent=self,
        )
        try:
            if dialog.exec() != MailboxDialog.DialogCode.Accepted:
                return
            # Read here, on the GUI thread: the change runs on a worker thread.
            config = dialog.result_config()
            password = dialog.result_password()
        finally:
            dialog.deleteLater()  # a child of this page: it would otherwise live on hidden
        verb = "Saved" if mailbox else "Added"
        self._change(
            self._workspace.configure_mailbox,
            config,
            password,
            done=f"{verb} mailbox {config.name}",
            select=config.name,
        )

    @Slot()
    def remove_selected(self) -> None:
        mailbox = self.selected()
        if mailbox is None:
            return
        answer = QMessageBox.question(
            self,
            "Remove mailbox",
            f"Remove the mailbox {mailbox.name!r} and its password from the keyring?\n"
            "Bounces already recorded stay; nothing on the server is deleted.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._change(
            self._workspace.remove_mailbox, mailbox.name, done=f"Removed mailbox {mailbox.name}"
        )

    def _change(self, function: Any, *args: Any, done: str, select: str | None = None) -> None:
        """Change the stored mailboxes off the GUI thread (keyring and SQLite block)."""
        self._changing = True
        self._update_buttons()

        def on_success(_result: Any) -> None:
            self._changing = False
            self._report(done)
            self.reload(select)

        def on_error(error: BaseException) -> None:
            self._changing = False
            if not is_shutdown_error(error):
                self._report_error(one_line(error))
            self.reload()

        self._bridge.call(function, *args, on_success=on_success, on_error=on_error)
