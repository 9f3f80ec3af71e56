"""The Providers page as a person uses it: add through the dialog, reorder, test a connection."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import keyring
import pytest
from PySide6.QtCore import QModelIndex, Qt, QTimer
from PySide6.QtWidgets import QDialog, QMessageBox
from pytestqt.qtbot import QtBot

from desktop_app.core.models import Security
from desktop_app.core.workspace import Workspace
from desktop_app.ui.provider_dialog import ProviderDialog
from desktop_app.ui.providers_page import ProvidersPage
from tests.support.qt_helpers import settle
from tests.support.servers import free_port

PROVIDERS_PAGE = 3


def show_providers_page(qtbot: QtBot, stack: Any) -> ProvidersPage:
    """Go to the Providers page the way the banner tells people to: Ctrl+4."""
    window = stack.window
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.pages.currentWidget() is window.providers
    return window.providers


def click_row(qtbot: QtBot, page: ProvidersPage, row: int) -> None:
    table = page.table
    rect = table.visualRect(page.model.index(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.selected() is page.model.provider_at(row)


def selected_name(page: ProvidersPage) -> str | None:
    selected = page.selected()
    return selected.name if selected else None


def stored_order(workspace: Workspace) -> list[tuple[str, int]]:
    providers = sorted(workspace.list_providers(), key=lambda p: p.priority)
    return [(p.name, p.priority) for p in providers]


def files_containing(directory: Path, secret: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and secret in p.read_bytes()]


# -- adding ----------------------------------------------------------------------------------


def test_add_provider_through_dialog_stores_it_and_keeps_password_in_keyring_only(
    stack: Any, qtbot: QtBot, modal: Any, data_dir: Path, tmp_path: Path
) -> None:
    page = show_providers_page(qtbot, stack)
    password = f"Pw-{uuid.uuid4().hex}"
    seen: dict[str, Any] = {}

    def fill_and_save(dialog: QDialog) -> None:
        assert isinstance(dialog, ProviderDialog)
        assert dialog.windowTitle() == "Add provider"
        save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
        assert not save.isEnabled()  # an empty form cannot be saved
        qtbot.keyClicks(dialog.name, "Primary relay")
        qtbot.keyClicks(dialog.host, "smtp.example.com")
        # Keyboard search in the combo box picks "TLS (implicit)"; the port follows (465).
        qtbot.keyClicks(dialog.security, "TLS")
        qtbot.keyClicks(dialog.username, "mailer")
        qtbot.keyClicks(dialog.password, password)
        seen["port"] = dialog.port.value()
        seen["security"] = dialog.security.currentData()
        seen["error"] = dialog.error.text()
        dialog.grab().save(str(tmp_path / "provider-dialog.png"))
        assert save.isEnabled(), dialog.error.text()
        modal.click(dialog, "Save")

    modal.drive(fill_and_save)
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)  # exec() returns after Save
    modal.check()
    assert modal.handled == 1
    assert seen == {"port": 465, "security": Security.TLS, "error": ""}

    # The row appears once the keyring and the database were written on the loop thread.
    qtbot.waitUntil(lambda: "Primary relay" in page.model.names())
    row = page.model.row_of("Primary relay")
    assert page.model.index(row, 0).data() == "Primary relay"
    assert page.model.index(row, 2).data() == "smtp.example.com"
    assert selected_name(page) == "Primary relay"
    assert page.status.text() == "Added Primary relay"

    [stored] = stack.workspace.list_providers()
    assert (stored.name, stored.host, stored.port, stored.security, stored.username) == (
        "Primary relay",
        "smtp.example.com",
        465,
        Security.TLS,
        "mailer",
    )
    assert stored.uid
    assert keyring.get_password("relaydesk", f"smtp:{stored.uid}") == password
    # Not in the database, its WAL, the settings file or anything else the app wrote.
    stack.window._save_geometry()
    assert files_containing(data_dir, password.encode()) == []
    assert files_containing(stack.settings_path.parent, password.encode()) == []


def test_add_provider_cancelled_stores_nothing(stack: Any, qtbot: QtBot, modal: Any) -> None:
    page = show_providers_page(qtbot, stack)

    def fill_and_cancel(dialog: QDialog) -> None:
        assert isinstance(dialog, ProviderDialog)
        qtbot.keyClicks(dialog.name, "Never")
        qtbot.keyClicks(dialog.host, "smtp.example.com")
        modal.click(dialog, "Cancel")

    modal.drive(fill_and_cancel)
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    modal.check()
    assert modal.handled == 1
    # A round trip through the loop thread, so a (wrongly) started add would have landed.
    settle(qtbot, stack.bridge)
    assert page.model.names() == []
    assert stack.workspace.list_providers() == []


def test_name_taken_meanwhile_is_refused_with_a_message(
    stack: Any, qtbot: QtBot, modal: Any, gui_helpers: Any
) -> None:
    """Another Relaydesk (or the CLI) adds the same name while the dialog is open."""
    page = show_providers_page(qtbot, stack)

    def race_and_save(dialog: QDialog) -> None:
        assert isinstance(dialog, ProviderDialog)
        qtbot.keyClicks(dialog.name, "Shared")
        qtbot.keyClicks(dialog.host, "smtp.example.com")
        stack.workspace.add_provider(gui_helpers.loopback_provider("Shared", 2525))
        modal.click(dialog, "Save")

    modal.drive(race_and_save)
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    modal.check()
    qtbot.waitUntil(lambda: page.status.text().startswith("Error:"))
    assert "already exists" in page.status.text()
    [stored] = stack.workspace.list_providers()
    assert stored.host == "127.0.0.1"  # the first one stays as it was
    assert page.model.names() == ["Shared"]


# -- reordering ------------------------------------------------------------------------------


@pytest.fixture
def three_providers(workspace: Workspace, gui_helpers: Any) -> list[str]:
    names = ["Alpha", "Bravo", "Charlie"]
    for priority, name in enumerate(names):
        workspace.add_provider(gui_helpers.loopback_provider(name, 2525, priority=priority))
    return names


def test_reorder_by_keyboard_and_move_button_persists_priorities(
    three_providers: list[str], make_stack: Any, qtbot: QtBot
) -> None:
    stack = make_stack()
    page = show_providers_page(qtbot, stack)
    assert page.model.names() == ["Alpha", "Bravo", "Charlie"]

    click_row(qtbot, page, 0)
    assert not page.up_button.isEnabled()
    qtbot.keyClick(page.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    assert page.model.names() == ["Bravo", "Alpha", "Charlie"]
    qtbot.waitUntil(
        lambda: stored_order(stack.workspace) == [("Bravo", 0), ("Alpha", 1), ("Charlie", 2)]
    )
    qtbot.waitUntil(lambda: page.status.text() == "Priorities saved")
    assert selected_name(page) == "Alpha"

    qtbot.mouseClick(page.down_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: stored_order(stack.workspace) == [("Bravo", 0), ("Charlie", 1), ("Alpha", 2)]
    )
    # The page re-reads the stored providers: the priority column shows the new values.
    qtbot.waitUntil(lambda: [page.model.index(r, 5).data() for r in range(3)] == [0, 1, 2])
    assert page.model.names() == ["Bravo", "Charlie", "Alpha"]
    assert not page.down_button.isEnabled()  # Alpha is last now


def test_reorder_by_drag_and_drop_persists_priorities(
    three_providers: list[str], make_stack: Any, qtbot: QtBot
) -> None:
    stack = make_stack()
    page = show_providers_page(qtbot, stack)
    model = page.model

    # What QAbstractItemView.startDrag does: mimeData() of the selected indexes...
    click_row(qtbot, page, 2)
    mime = model.mimeData(page.table.selectionModel().selectedIndexes())
    # ...and what its dropEvent does above the first row (InternalMove: MoveAction).
    assert model.canDropMimeData(mime, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    assert model.dropMimeData(mime, Qt.DropAction.MoveAction, 0, 0, QModelIndex())
    assert model.names() == ["Charlie", "Alpha", "Bravo"]
    qtbot.waitUntil(
        lambda: stored_order(stack.workspace) == [("Charlie", 0), ("Alpha", 1), ("Bravo", 2)]
    )

    # Dropped onto a row (row -1, that row as parent): it takes that row's place.
    click_row(qtbot, page, 0)
    mime = model.mimeData(page.table.selectionModel().selectedIndexes())
    assert model.dropMimeData(mime, Qt.DropAction.MoveAction, -1, -1, model.index(2, 0))
    assert model.names() == ["Alpha", "Charlie", "Bravo"]
    qtbot.waitUntil(
        lambda: stored_order(stack.workspace) == [("Alpha", 0), ("Charlie", 1), ("Bravo", 2)]
    )
    # A copy is not a reorder; the order stays.
    mime = model.mimeData([model.index(0, 0)])
    assert not model.dropMimeData(mime, Qt.DropAction.CopyAction, 2, 0, QModelIndex())


def test_quick_successive_moves_are_all_kept(
    workspace: Workspace, gui_helpers: Any, make_stack: Any, qtbot: QtBot
) -> None:
    """Moving a row several times in a row must end with that order stored, not an older one."""
    names = [f"P{n}" for n in range(6)]
    for priority, name in enumerate(names):
        workspace.add_provider(gui_helpers.loopback_provider(name, 2525, priority=priority))
    stack = make_stack()
    page = show_providers_page(qtbot, stack)
    click_row(qtbot, page, 0)
    for _ in range(5):  # faster than the stores finish: no events processed in between
        qtbot.keyClick(page.table, Qt.Key.Key_Down, Qt.KeyboardModifier.ControlModifier)
    expected = [*names[1:], "P0"]
    assert page.model.names() == expected
    qtbot.waitUntil(lambda: [name for name, _ in stored_order(workspace)] == expected)
    # Settle: every store has answered; neither the table nor the database went back.
    settle(qtbot, stack.bridge)
    qtbot.waitUntil(lambda: page.status.text() == "Priorities saved")
    assert [name for name, _ in stored_order(workspace)] == expected
    assert page.model.names() == expected


# -- testing a connection --------------------------------------------------------------------


class Heartbeat:
    """A 5 ms timer on the GUI thread: it only ticks while the GUI thread is free."""

    def __init__(self) -> None:
        self.ticks = 0
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self) -> None:
        self.ticks += 1


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("good password", r"^Relay: connected in \d+ ms$"),
        ("wrong password", r"^Relay: failed at auth: 535\b"),
        ("closed port", r"^Relay: failed at connect: connection refused$"),
    ],
)
def test_test_connection_reports_result_and_gui_keeps_running(
    case: str,
    expected: str,
    workspace: Workspace,
    scripted_smtp: Any,
    gui_helpers: Any,
    make_stack: Any,
    qtbot: QtBot,
) -> None:
    # EHLO answers after half a second: long enough to see whether the GUI thread waits.
    server = scripted_smtp(auth=("user", "pw"), auth_require_tls=False, delays={"EHLO": 0.5})
    port = free_port() if case == "closed port" else server.port
    password = "wrong" if case == "wrong password" else "pw"
    workspace.add_provider(gui_helpers.loopback_provider("Relay", port, username="user"), password)
    stack = make_stack()
    page = show_providers_page(qtbot, stack)
    click_row(qtbot, page, 0)

    heartbeat = Heartbeat()
    qtbot.mouseClick(page.test_button, Qt.MouseButton.LeftButton)
    ticks_at_start = heartbeat.ticks
    assert page.status.text() == "Testing Relay…"
    assert not page.test_button.isEnabled()  # one test at a time
    qtbot.waitUntil(lambda: not page.status.text().startswith("Testing"), timeout=20_000)
    ticks_during_probe = heartbeat.ticks - ticks_at_start
    heartbeat.timer.stop()

    assert re.search(expected, page.status.text()), page.status.text()
    assert page.test_button.isEnabled()
    if case == "closed port":
        assert server.command_count("EHLO") == 0
    else:
        assert server.command_count("EHLO") >= 1
        assert server.command_count("AUTH") >= 1
        # The probe waited >= 0.5 s for EHLO; a blocked GUI thread would have ticked once.
        assert ticks_during_probe >= 20, ticks_during_probe


# -- editing, disabling, deleting ------------------------------------------------------------


def test_edit_through_the_dialog_changes_the_provider_and_its_password(
    workspace: Workspace, gui_helpers: Any, make_stack: Any, qtbot: QtBot, modal: Any
) -> None:
    stored = workspace.add_provider(
        gui_helpers.loopback_provider("Relay", 2525, username="user"), "old-password"
    )
    stack = make_stack()
    page = show_providers_page(qtbot, stack)

    def change_and_save(dialog: QDialog) -> None:
        assert isinstance(dialog, ProviderDialog)
        assert dialog.windowTitle() == "Edit provider"
        assert dialog.name.text() == "Relay" and dialog.password.text() == ""
        dialog.port.lineEdit().selectAll()
        qtbot.keyClicks(dialog.port.lineEdit(), "2526")
        qtbot.keyClicks(dialog.password, "new-password")
        modal.click(dialog, "Save")

    modal.drive(change_and_save)
    # A double click is a click, then the double-click event (QTest sends only the latter).
    click_row(qtbot, page, 0)
    rect = page.table.visualRect(page.model.index(0, 0))
    qtbot.mouseDClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    modal.check()
    assert modal.handled == 1
    qtbot.waitUntil(lambda: page.status.text() == "Saved Relay")
    [changed] = workspace.list_providers()
    assert (changed.port, changed.uid) == (2526, stored.uid)
    assert keyring.get_password("relaydesk", f"smtp:{stored.uid}") == "new-password"
    assert page.model.index(0, 3).data() == 2526
    qtbot.waitUntil(lambda: not page.findChildren(ProviderDialog))  # deleted, not hidden


def test_disable_then_delete(
    workspace: Workspace, gui_helpers: Any, make_stack: Any, qtbot: QtBot, modal: Any
) -> None:
    stored = workspace.add_provider(
        gui_helpers.loopback_provider("Old", 2525, username="user"), "secret"
    )
    stack = make_stack()
    page = show_providers_page(qtbot, stack)
    click_row(qtbot, page, 0)

    qtbot.mouseClick(page.toggle_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.status.text() == "Disabled Old")
    assert workspace.list_providers()[0].enabled is False
    assert page.model.index(0, 1).data() == "disabled"
    assert page.toggle_button.text() == page.toggle_button.accessibleName() == "Enable"

    asked: list[str] = []

    def confirm(box: QDialog) -> None:
        assert isinstance(box, QMessageBox)
        asked.append(box.text())
        modal.click(box, "Yes")

    modal.drive(confirm)
    assert page.delete_button.isEnabled(), page.selected()
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    modal.check()
    assert "Delete Old and its stored password?" in asked[0]
    qtbot.waitUntil(lambda: page.status.text() == "Deleted Old")
    assert workspace.list_providers() == []
    assert page.model.names() == []
    assert keyring.get_password("relaydesk", f"smtp:{stored.uid}") is None
