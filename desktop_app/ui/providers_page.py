"""The Providers page: the list in priority order and what a person can do with it."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.health.probe import ProbeResult
from desktop_app.core.models import ProviderConfig
from desktop_app.core.provider_files.adding import next_priority
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.maintenance_dialog import MaintenanceDialog
from desktop_app.ui.provider_dialog import ProviderDialog, ShortcutButton, labelled
from desktop_app.ui.provider_states import ProviderStates
from desktop_app.ui.providers_model import ProvidersModel


@dataclasses.dataclass(frozen=True)
class _Change:
    """A change to the stored providers, waiting for the ones asked for before it."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    done: str
    select: str | None


class ProvidersPage(QWidget):
    """Add, edit, reorder, enable/disable, delete and test providers.

    The State column shows ``states`` (the window's one copy of the providers' live
    states); the list follows changes made elsewhere (``relaydesk provider add``) too.

    Signals:
        providers_changed(): this page changed the stored providers (the engine reloads them).
    """

    providers_changed = Signal()

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        parent: QWidget | None = None,
        *,
        states: ProviderStates | None = None,
    ):
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._changes: collections.deque[_Change] = collections.deque()
        self._change_running = False
        self.states = states if states is not None else ProviderStates(workspace, bridge, self)
        self.model = ProvidersModel(self)
        self.model.order_changed.connect(self._on_model_order_changed)
        self.states.changed.connect(self._on_states_changed)
        self.states.providers_read.connect(self._on_states_providers_read)

        self.table = QTableView()
        self.table.setAccessibleName("Providers")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.table.setDragEnabled(True)
        self.table.setAcceptDrops(True)
        self.table.setDropIndicatorShown(True)
        self.table.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda _index: self.edit_selected())

        def button(text: str, shortcut: str | QKeySequence.StandardKey | None) -> QPushButton:
            widget = labelled(ShortcutButton(text), text)
            if shortcut is not None:
                widget.setShortcut(QKeySequence(shortcut))
                widget.setToolTip(f"{text} ({QKeySequence(shortcut).toString()})")
            return widget

        self.add_button = button("Add provider", "Ctrl+N")
        self.edit_button = button("Edit", "Ctrl+E")
        self.up_button = button("Move up", "Ctrl+Up")
        self.down_button = button("Move down", "Ctrl+Down")
        self.toggle_button = button("Disable", "Ctrl+D")
        self.delete_button = button("Delete", QKeySequence.StandardKey.Delete)
        self.test_button = button("Test connection", "Ctrl+T")
        self.maintenance_button = button("Maintenance…", "Ctrl+M")
        self.add_button.clicked.connect(self.add_provider)
        self.edit_button.clicked.connect(self.edit_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(+1))
        self.toggle_button.clicked.connect(self.toggle_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.test_button.clicked.connect(self.test_selected)
        self.maintenance_button.clicked.connect(self.edit_maintenance)

        self.status = QLabel()
        self.status.setObjectName("provider_status")
        self.status.setAccessibleName("Provider status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # A column beside the table: eight buttons in a row made the page (and so the
        # window) wider than a small laptop screen.
        buttons = QVBoxLayout()
        for widget in (
            self.add_button,
            self.edit_button,
            self.up_button,
            self.down_button,
            self.toggle_button,
            self.delete_button,
            self.test_button,
            self.maintenance_button,
        ):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.table, 1)
        body.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.status)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.reload()

    # -- state -----------------------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        providers = self._workspace.list_providers()
        self.states.load(self._workspace.provider_live_states())
        self._show_providers(providers, select)

    def _show_providers(self, providers: list[ProviderConfig], select: str | None = None) -> None:
        current = self.selected()
        selected = select or (current.name if current else None)
        self.model.set_providers(providers)
        self.model.set_live(self.states.snapshot())
        if selected and selected in self.model.names():
            self.table.selectRow(self.model.row_of(selected))
        self._update_buttons()

    def selected(self) -> ProviderConfig | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.model.provider_at(rows[0].row()) if rows else None

    def _update_buttons(self, *_args: Any) -> None:
        provider = self.selected()
        for widget in (
            self.edit_button,
            self.toggle_button,
            self.delete_button,
            self.test_button,
            self.maintenance_button,
        ):
            widget.setEnabled(provider is not None)
        row = self.model.row_of(provider.name) if provider else -1
        self.up_button.setEnabled(provider is not None and row > 0)
        self.down_button.setEnabled(provider is not None and row < self.model.rowCount() - 1)
        toggle = "Enable" if provider and not provider.enabled else "Disable"
        self.toggle_button.setText(toggle)
        self.toggle_button.setAccessibleName(toggle)
        # The tooltip said "Disable (Ctrl+D)" on a button that read "Enable".
        self.toggle_button.setToolTip(f"{toggle} ({self.toggle_button.shortcut().toString()})")

    def _report(self, text: str) -> None:
        self.status.setText(text)

    def _run(self, function: Any, *args: Any, done: str, select: str | None = None) -> None:
        """Change providers off the GUI thread (keyring and SQLite block), then refresh.

        Changes run one after another, in the order they were asked for: the bridge runs
        calls on a thread pool, where two quick reorders could commit in either order (the
        older one winning) and a refresh between them would show the table jumping back.
        """
        self._changes.append(_Change(function, args, done, select))
        if not self._change_running:
            self._next_change()

    def _next_change(self) -> None:
        if not self._changes:
            return
        change = self._changes.popleft()
        self._change_running = True

        def on_success(_result: Any) -> None:
            self._change_running = False
            self._report(change.done)
            if not self._changes:  # the table shows the stored state once all is stored
                self.reload(change.select)
            self.providers_changed.emit()
            self._next_change()

        def on_error(error: BaseException) -> None:
            self._change_running = False
            self._on_error(error)
            self._next_change()

        self._bridge.call(change.function, *change.args, on_success=on_success, on_error=on_error)

    def _on_error(self, error: BaseException) -> None:
        self._report(f"Error: {error}")
        self.reload()

    # -- intents ---------------------------------------------------------------------------

    @Slot()
    def add_provider(self) -> None:
        dialog = ProviderDialog(self._bridge, self.model.names(), parent=self)
        # A new provider is a backup by default: one step after the last one.
        existing = [self.model.provider_at(r) for r in range(self.model.rowCount())]
        dialog.priority.setValue(next_priority(existing))
        try:
            if dialog.exec() != ProviderDialog.DialogCode.Accepted:
                return
            config = dialog.result_config()
            password = dialog.result_password()
        finally:
            dialog.deleteLater()  # a child of this page: it would otherwise live on hidden
        self._run(
            self._workspace.add_provider,
            config,
            password,
            done=f"Added {config.name}",
            select=config.name,
        )

    @Slot()
    def edit_selected(self) -> None:
        provider = self.selected()
        if provider is None:
            return
        dialog = ProviderDialog(
            self._bridge,
            self.model.names(),
            provider,
            parent=self,
            stored_password=lambda: self._workspace.provider_password(provider),
        )
        try:
            if dialog.exec() != ProviderDialog.DialogCode.Accepted:
                return
            config = dialog.result_config()
            # Read here, on the GUI thread: the change itself runs on a worker thread,
            # where the dialog's widgets must not be touched (and are deleted by then).
            password = dialog.result_password()
        finally:
            dialog.deleteLater()
        changes = {
            field.name: getattr(config, field.name)
            for field in dataclasses.fields(ProviderConfig)
            if field.name not in ("id", "uid")
        }
        self._run(
            lambda: self._workspace.update_provider(provider.name, changes, password=password),
            done=f"Saved {config.name}",
            select=config.name,
        )

    def move_selected(self, step: int) -> None:
        provider = self.selected()
        if provider is None:
            return
        row = self.model.row_of(provider.name)
        target = row + step
        if not 0 <= target < self.model.rowCount():
            return
        # The model announces the new order (order_changed), which persists it.
        self.model.move(row, target + 1 if step > 0 else target)
        self.table.selectRow(self.model.row_of(provider.name))

    @Slot(list)
    def _on_model_order_changed(self, names: list[str]) -> None:
        self._run(self._workspace.reorder_providers, names, done="Priorities saved")

    @Slot()
    def toggle_selected(self) -> None:
        provider = self.selected()
        if provider is None:
            return
        enabled = not provider.enabled
        self._run(
            lambda: self._workspace.update_provider(provider.name, {"enabled": enabled}),
            done=f"{'Enabled' if enabled else 'Disabled'} {provider.name}",
            select=provider.name,
        )

    @Slot()
    def delete_selected(self) -> None:
        provider = self.selected()
        if provider is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete provider",
            f"Delete {provider.name} and its stored password? Mail in the outbox stays "
            "and goes through the other providers.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._run(self._workspace.remove_provider, provider.name, done=f"Deleted {provider.name}")

    @Slot()
    def edit_maintenance(self) -> None:
        """The selected provider's maintenance windows (changes are stored as they are made)."""
        provider = self.selected()
        if provider is None:
            return
        dialog = MaintenanceDialog(self._workspace, self._bridge, provider.name, parent=self)
        changed: list[bool] = []
        dialog.windows_changed.connect(lambda: changed.append(True))
        try:
            dialog.exec()
        finally:
            dialog.deleteLater()
        if changed:
            self._report(f"Maintenance windows of {provider.name} saved")
            self.reload(provider.name)
            self.providers_changed.emit()  # the engine reloads them at once

    @Slot()
    def test_selected(self) -> None:
        provider = self.selected()
        if provider is None:
            return
        self.test_button.setEnabled(False)
        self._report(f"Testing {provider.name}…")
        self._bridge.run(
            self._workspace.test_provider(provider.name),
            on_success=self._on_test_finished,
            on_error=self._on_test_error,
        )

    def _on_test_finished(self, result: ProbeResult) -> None:
        self._update_buttons()
        if result.ok:
            self._report(f"{result.provider_name}: connected in {result.latency_ms:.0f} ms")
        else:
            phase = result.failed_phase.value if result.failed_phase else "connect"
            self._report(f"{result.provider_name}: failed at {phase}: {result.detail}")

    def _on_test_error(self, error: BaseException) -> None:
        self._update_buttons()
        self._report(f"Test failed: {error}")

    @Slot()
    def _on_states_changed(self) -> None:
        self.model.set_live(self.states.snapshot())

    @Slot(list)
    def _on_states_providers_read(self, providers: list[ProviderConfig]) -> None:
        """Another process (or this one) changed the providers: show them as stored now."""
        if self._change_running or self._changes:
            return  # this page's own change reloads when it is done
        if self.model.shows(providers):
            return  # nothing new (a reset would cut a drag in progress short)
        self._show_providers(providers)
