"""The main window's life: closing with mail pending, geometry, shortcuts, accessible names."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QSystemTrayIcon,
)
from pytestqt.qtbot import QtBot

from desktop_app.core.models import MessageState
from desktop_app.core.storage.outbox_views import OutboxViews
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import LoopStoppedError
from desktop_app.ui.main_window import PAGES
from desktop_app.ui.provider_dialog import ProviderDialog
from tests.support.qt_helpers import settle

#: With a tray "available" on the offscreen platform, Qt's fallback tray icon looks for a
#: platform signal the offscreen plugin does not have. Platform noise, like the other one.
TRAY_NOISE = r"No such signal QPlatformNativeInterface::systemTrayWindowChanged"

SEND_TIMEOUT_MS = 30_000


def activate(qtbot: QtBot, window: Any) -> None:
    with qtbot.waitActive(window):
        window.activateWindow()


# -- closing with mail still to send ---------------------------------------------------------


@pytest.fixture
def sending_stack(
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """A window with a tray, sending 30 messages slowly (one connection, 0.1 s per message)."""
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    server = scripted_smtp(delays={".": 0.1})
    workspace.add_provider(gui_helpers.loopback_provider("Slow", server.port, max_connections=1))
    ids = gui_helpers.queue_messages(workspace, 30)
    stack = make_stack()
    assert stack.window.tray.isVisible()
    stack.controller.start()
    # The window knows mail is waiting once its counts (refreshed every second) say so.
    qtbot.waitUntil(lambda: stack.window._counts.waiting > 0 and len(server.messages) > 0)
    stack.server = server
    stack.ids = ids
    return stack


def outbox_states(workspace: Workspace, ids: list[int]) -> list[MessageState]:
    return [entry.state for entry in OutboxViews(workspace.database).entries(ids)]


@pytest.mark.qt_log_ignore(TRAY_NOISE, extend=True)
def test_close_and_keep_sending_in_the_tray(sending_stack: Any, modal: Any, qtbot: QtBot) -> None:
    stack, window = sending_stack, sending_stack.window
    seen: dict[str, str] = {}

    def keep(box: QDialog) -> None:
        assert isinstance(box, QMessageBox)
        seen["title"], seen["text"] = box.windowTitle(), box.text()
        modal.click(box, "Keep sending in the tray")

    modal.drive(keep)
    window.close()
    modal.check()
    assert seen["title"] == "Mail is still being sent"
    assert "messages are still waiting" in seen["text"]
    assert not window.isVisible()
    assert stack.controller.state == "sending"
    assert window.tray.notifications[-1] == (
        "Still sending",
        "Relaydesk keeps sending from the tray",
    )
    # The engine goes on from the tray: everything goes out.
    qtbot.waitUntil(lambda: len(stack.server.messages) == 30, timeout=SEND_TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: set(outbox_states(stack.workspace, stack.ids)) == {MessageState.SENT},
        timeout=SEND_TIMEOUT_MS,
    )


@pytest.mark.qt_log_ignore(TRAY_NOISE, extend=True)
def test_close_and_quit_stops_sending_and_loses_nothing(
    sending_stack: Any, modal: Any, qtbot: QtBot
) -> None:
    stack, window = sending_stack, sending_stack.window
    modal.drive(lambda box: modal.click(box, "Quit"))
    window.close()
    modal.check()
    assert modal.handled == 1
    assert not window.isVisible()
    assert stack.controller.state == "stopped"
    assert stack.controller.engine is None

    # Nothing deleted, nothing left half-sent, nothing sent twice.
    states = outbox_states(stack.workspace, stack.ids)
    assert len(states) == 30
    assert set(states) <= {MessageState.SENT, MessageState.QUEUED, MessageState.DEFERRED}
    assert MessageState.SENT in states and MessageState.QUEUED in states
    received = stack.server.message_ids()
    assert len(received) == len(set(received)) == states.count(MessageState.SENT)
    # And nothing more goes out after quitting.
    sent_at_quit = len(received)
    settle(qtbot, stack.bridge)
    assert len(stack.server.messages) == sent_at_quit


@pytest.mark.qt_log_ignore(TRAY_NOISE, extend=True)
def test_close_then_cancel_keeps_the_window(sending_stack: Any, modal: Any) -> None:
    stack, window = sending_stack, sending_stack.window
    modal.drive(lambda box: modal.click(box, "Cancel"))
    window.close()
    modal.check()
    assert modal.handled == 1
    assert window.isVisible()
    assert stack.controller.state == "sending"


def test_close_with_nothing_pending_does_not_ask(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_prompt(box: QMessageBox) -> int:
        raise AssertionError(f"unexpected prompt: {box.text()}")

    monkeypatch.setattr(QMessageBox, "exec", no_prompt)
    stack.controller.start()
    stack.window.close()
    assert not stack.window.isVisible()
    assert stack.controller.state == "stopped"


# -- geometry and the page are remembered ----------------------------------------------------


def test_geometry_and_page_are_remembered(stack: Any, qtbot: QtBot) -> None:
    first = stack.window
    # A fresh settings file: 1100 x 700, or what fits a smaller screen (offscreen: 800 x 800).
    available = first.screen().availableGeometry()
    assert first.height() == 700
    assert first.minimumSizeHint().width() <= first.width() <= available.width() < 1100
    # A size of the user's own, other than the default and within the (small) screen.
    minimum = first.minimumSizeHint()
    chosen = QSize(minimum.width() + 4, max(560, minimum.height() + 4))
    assert chosen.height() < first.height()
    assert chosen.width() < available.width()
    first.resize(chosen)
    qtbot.waitUntil(lambda: first.size() == chosen)
    first.navigation.setCurrentRow(3)
    first.quit()

    second = stack.open_window()
    qtbot.addWidget(second)
    with qtbot.waitExposed(second):
        second.show()
    assert second.size() == chosen
    assert second.pages.currentWidget() is second.providers
    assert second.navigation.currentRow() == 3


# -- shortcuts and accessible names ----------------------------------------------------------


def test_shortcuts_for_the_main_actions(stack: Any, qtbot: QtBot, modal: Any) -> None:
    window = stack.window
    activate(qtbot, window)
    shortcuts = {a.text(): a.shortcut().toString() for a in window.actions()}
    assert shortcuts["Quit"]  # Ctrl+Q where the platform has no Quit key of its own
    for number, name in enumerate(PAGES, start=1):
        assert shortcuts[name] == f"Ctrl+{number}"
        qtbot.keyClick(
            window, Qt.Key(Qt.Key.Key_0.value + number), Qt.KeyboardModifier.ControlModifier
        )
        assert window.pages.currentIndex() == number - 1
        assert window.navigation.currentItem().text() == name

    assert window.send_action.shortcut() == QKeySequence("Ctrl+P")
    assert window.engine_label.text() == "Stopped"
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert stack.controller.state == "sending"
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert stack.controller.state == "paused"
    assert window.engine_label.text() == "Paused"

    # Ctrl+N on the Providers page opens the Add dialog.
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.pages.currentWidget() is window.providers
    page = window.providers
    assert page.add_button.shortcut() == QKeySequence("Ctrl+N")
    opened: list[str] = []

    def look_and_cancel(dialog: QDialog) -> None:
        assert isinstance(dialog, ProviderDialog)
        opened.append(dialog.windowTitle())
        modal.click(dialog, "Cancel")

    modal.drive(look_and_cancel)
    qtbot.keyClick(page.table, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    modal.check()
    assert opened == ["Add provider"]
    # The dialog is gone, not just hidden.
    qtbot.waitUntil(lambda: not page.findChildren(ProviderDialog))


def test_providers_page_widgets_are_named_after_their_labels(
    workspace: Workspace, gui_helpers: Any, make_stack: Any
) -> None:
    workspace.add_provider(gui_helpers.loopback_provider("Off", 2525, enabled=False))
    stack = make_stack()
    page = stack.window.providers
    page.table.selectRow(0)
    buttons = page.findChildren(QPushButton)
    assert {b.text() for b in buttons} == {
        "Add provider",
        "Edit",
        "Move up",
        "Move down",
        "Enable",  # the selected provider is disabled
        "Delete",
        "Test connection",
        "Maintenance…",
    }
    for button in buttons:
        assert button.accessibleName() == button.text().replace("&", "")
        assert button.toolTip().startswith(button.accessibleName())
    for kind in (QLineEdit, QSpinBox, QComboBox):
        assert page.findChildren(kind) == []  # none today; if added, they need names too
    assert page.table.accessibleName() == "Providers"
    assert stack.window.navigation.accessibleName() == "Navigation"


def test_requests_cut_off_by_shutdown_are_not_reported_as_problems(
    stack: Any, qtbot: QtBot
) -> None:
    window = stack.window
    stack.controller.stop()
    stack.runtime.stop()
    errors: list[BaseException] = []
    stack.bridge.call(lambda: 1, on_success=errors.append, on_error=errors.append)
    assert errors == []  # answers always come from the event loop, never inside the call
    qtbot.waitUntil(lambda: len(errors) == 1)
    assert isinstance(errors[0], LoopStoppedError)
    # The once-a-second refresh keeps asking meanwhile; the window shows nothing alarming.
    qtbot.wait(1500)
    assert not window.banner.property("problem")
    assert "loop thread" not in window.banner.text()


@pytest.mark.qt_log_ignore(TRAY_NOISE, extend=True)
def test_close_while_paused_with_mail_waiting_asks_first(
    sending_stack: Any, modal: Any, qtbot: QtBot
) -> None:
    stack, window = sending_stack, sending_stack.window
    stack.controller.pause()
    qtbot.waitUntil(lambda: stack.controller.state == "paused")
    seen: dict[str, str] = {}

    def cancel(box: QDialog) -> None:
        assert isinstance(box, QMessageBox)
        seen["title"], seen["text"] = box.windowTitle(), box.text()
        modal.click(box, "Cancel")

    modal.drive(cancel)
    window.close()
    modal.check()
    assert window.isVisible()
    assert seen["title"] == "Mail is waiting"
    assert "in the outbox and sending is paused" in seen["text"]

    modal.drive(lambda box: modal.click(box, "Yes"))
    window.close()
    modal.check()
    assert not window.isVisible()
    assert stack.controller.state == "stopped"
    states = outbox_states(stack.workspace, stack.ids)
    assert len(states) == 30 and MessageState.QUEUED in states
