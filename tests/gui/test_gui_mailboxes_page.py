"""The Mailboxes page and its dialog against a real Dovecot and a real Secret Service.

The page sits in the real main window's page stack (as the app shows it); every connection
test logs in to Dovecot over STARTTLS with the test CA trusted, and passwords go to the
private Secret Service of ``tests/support/secret_service.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QLineEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.events import BouncesRecorded
from desktop_app.core.models import Security
from desktop_app.core.workspace import Workspace
from desktop_app.ui.mailbox_dialog import MailboxDialog
from desktop_app.ui.mailboxes_page import MailboxesPage
from tests.support import bounce_samples as samples
from tests.support.dovecot import DovecotServer
from tests.support.qt_helpers import choose, retype, settle
from tests.support.tls import TestCA

PASSWORD = "bounce-box-secret-4711"
WRONG_PASSWORD = "not-the-secret-9876"
#: Set to a directory to keep PNGs of the page and the dialog (to look at the layout).
GRAB_DIR = os.environ.get("RELAYDESK_GRAB_DIR")


@pytest.fixture
def imap(
    dovecot: Callable[..., DovecotServer], test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> DovecotServer:
    test_ca.trust(monkeypatch)
    return dovecot(users={"bounces": PASSWORD})


@pytest.fixture
def page(stack: Any, qtbot: QtBot) -> MailboxesPage:
    """The page in the main window's stack, shown and loaded."""
    widget = MailboxesPage(stack.workspace, stack.bridge)
    stack.window.pages.addWidget(widget)  # owned by the window, like the other pages
    stack.window.pages.setCurrentWidget(widget)
    qtbot.waitUntil(widget.isVisible)
    settle(qtbot, stack.bridge)
    return widget


def stored(imap: DovecotServer, **changes: Any) -> MailboxConfig:
    values: dict[str, Any] = {
        "name": "bounces",
        "role": MailboxRole.BOUNCES,
        "host": "127.0.0.1",
        "port": imap.port,
        "security": Security.STARTTLS,
        "username": "bounces",
    }
    values.update(changes)
    return MailboxConfig(**values)


def fill(qtbot: QtBot, dialog: MailboxDialog, imap: DovecotServer, password: str) -> None:
    retype(qtbot, dialog.host, "127.0.0.1")
    choose(qtbot, dialog.security, "STARTTLS")
    assert dialog.port.value() == 143  # follows the security while not typed over
    retype(qtbot, dialog.port, str(imap.port))
    retype(qtbot, dialog.username, "bounces")
    retype(qtbot, dialog.password, password)


def test_connection(qtbot: QtBot, dialog: MailboxDialog) -> str:
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_button.isEnabled(), timeout=20_000)
    return dialog.test_result.text()


test_connection.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def open_dialog(stack: Any, qtbot: QtBot, mailbox: MailboxConfig | None = None) -> MailboxDialog:
    dialog = MailboxDialog(stack.workspace, stack.bridge, [], [], mailbox, parent=stack.window)
    qtbot.addWidget(dialog)
    with qtbot.waitExposed(dialog):
        dialog.show()
    return dialog


def grab(widget: QWidget, name: str) -> None:
    if GRAB_DIR:
        widget.grab().save(os.path.join(GRAB_DIR, f"mailboxes_{name}.png"))


def test_a_mailbox_added_through_the_dialog_is_tested_stored_and_listed(
    stack: Any, page: MailboxesPage, imap: DovecotServer, qtbot: QtBot, modal: Any
) -> None:
    imap.append("bounces", "INBOX", samples.ordinary("reader@example.org"))
    imap.append("bounces", "INBOX", samples.ordinary("other@example.org"))

    def add(dialog: QDialog) -> None:
        assert isinstance(dialog, MailboxDialog)
        assert dialog.name.text() == "bounces"  # the default follows the role
        assert dialog.folder.text() == "INBOX"
        assert dialog.processed_folder.text() == "Relaydesk/Processed"
        fill(qtbot, dialog, imap, PASSWORD)
        result = test_connection(qtbot, dialog)
        assert result.startswith("Connected in "), result
        assert "2 messages in INBOX" in result
        assert "IDLE" in result
        grab(dialog, "dialog")
        modal.click(dialog, "Save")

    modal.drive(add)
    page.add_mailbox()
    modal.check()
    qtbot.waitUntil(lambda: page.mailboxes_model.names() == ["bounces"])

    (saved,) = stack.workspace.mailboxes.all()
    assert (saved.host, saved.port, saved.security) == ("127.0.0.1", imap.port, "starttls")
    assert stack.workspace.secrets.get_mailbox_password(saved.uid) == PASSWORD
    assert page.selected_name() == "bounces"
    assert page.status.text() == "Added mailbox bounces"
    row = [page.mailboxes_model.index(0, c).data() for c in range(8)]
    assert row[:6] == [
        "bounces",
        "bounces",
        "bounces",
        f"127.0.0.1:{imap.port} (starttls)",
        "INBOX → Relaydesk/Processed",
        "enabled",
    ]


def test_a_wrong_password_shows_one_error_line_and_never_the_password(
    stack: Any, imap: DovecotServer, qtbot: QtBot
) -> None:
    dialog = open_dialog(stack, qtbot)
    fill(qtbot, dialog, imap, WRONG_PASSWORD)
    result = test_connection(qtbot, dialog)

    assert result.startswith("Test failed: "), result
    assert "\n" not in result
    assert "c62828" in dialog.test_result.styleSheet()  # red
    shown = [dialog.windowTitle(), dialog.toolTip()]
    for label in dialog.findChildren(QLabel):
        shown += [label.text(), label.toolTip(), label.accessibleName()]
    for line in dialog.findChildren(QLineEdit):
        if line is not dialog.password:
            shown += [line.text(), line.placeholderText(), line.toolTip()]
    assert not [text for text in shown if WRONG_PASSWORD in text]
    assert dialog.password.echoMode() == QLineEdit.EchoMode.Password

    # A change to the form clears what the test said about the old settings.
    retype(qtbot, dialog.username, "someone")
    assert dialog.test_result.text() == ""


def test_a_bad_port_disables_save_with_a_one_line_reason(
    stack: Any, imap: DovecotServer, qtbot: QtBot
) -> None:
    dialog = open_dialog(stack, qtbot)
    assert not dialog.save_button.isEnabled()  # nothing filled in yet
    fill(qtbot, dialog, imap, PASSWORD)
    assert dialog.save_button.isEnabled(), dialog.error.text()
    assert dialog.error.text() == ""

    retype(qtbot, dialog.port, "0")
    assert not dialog.save_button.isEnabled()
    assert not dialog.test_button.isEnabled()
    assert dialog.error.text() == "Port must be a number from 1 to 65535"
    retype(qtbot, dialog.port, "")
    assert not dialog.save_button.isEnabled()

    retype(qtbot, dialog.port, str(imap.port))
    assert dialog.save_button.isEnabled()
    retype(qtbot, dialog.processed_folder, "INBOX")
    assert not dialog.save_button.isEnabled()
    assert dialog.error.text() == "The processed folder must differ from the folder read"


def test_editing_with_the_password_left_empty_keeps_the_stored_one(
    stack: Any, page: MailboxesPage, imap: DovecotServer, qtbot: QtBot, modal: Any
) -> None:
    workspace: Workspace = stack.workspace
    original = workspace.configure_mailbox(stored(imap), PASSWORD)
    page.reload()
    qtbot.waitUntil(lambda: page.mailboxes_model.names() == ["bounces"])
    page.mailboxes_table.selectRow(0)

    def edit(dialog: QDialog) -> None:
        assert isinstance(dialog, MailboxDialog)
        assert dialog.windowTitle() == "Edit mailbox"
        assert dialog.password.text() == ""
        assert dialog.name.isReadOnly()
        assert dialog.save_button.isEnabled(), dialog.error.text()
        result = test_connection(qtbot, dialog)  # with the password from the keyring
        assert result.startswith("Connected in "), result
        retype(qtbot, dialog.processed_folder, "Done")
        qtbot.keyClick(dialog.enabled, Qt.Key.Key_Space)
        modal.click(dialog, "Save")

    modal.drive(edit)
    page.edit_selected()
    modal.check()
    qtbot.waitUntil(lambda: page.status.text() == "Saved mailbox bounces")
    settle(qtbot, stack.bridge)

    changed = workspace.mailboxes.get("bounces")
    assert (changed.processed_folder, changed.enabled) == ("Done", False)
    assert changed.uid == original.uid
    assert workspace.secrets.get_mailbox_password(changed.uid) == PASSWORD
    assert page.mailboxes_model.index(0, 5).data() == "disabled"


def test_remove_asks_first_and_then_removes_the_mailbox_and_its_password(
    stack: Any, page: MailboxesPage, imap: DovecotServer, qtbot: QtBot, modal: Any
) -> None:
    workspace: Workspace = stack.workspace
    saved = workspace.configure_mailbox(stored(imap), PASSWORD)
    workspace.configure_mailbox(stored(imap, name="seed", role=MailboxRole.SEED), PASSWORD)
    page.reload()
    qtbot.waitUntil(lambda: page.mailboxes_model.names() == ["bounces", "seed"])
    page.mailboxes_table.selectRow(0)

    modal.drive(lambda dialog: modal.click(dialog, "No"))
    page.remove_selected()
    modal.check()
    settle(qtbot, stack.bridge)
    assert [m.name for m in workspace.mailboxes.all()] == ["bounces", "seed"]

    modal.drive(lambda dialog: modal.click(dialog, "Yes"))
    page.remove_selected()
    modal.check()
    qtbot.waitUntil(lambda: page.mailboxes_model.names() == ["seed"])
    assert [m.name for m in workspace.mailboxes.all()] == ["seed"]
    assert workspace.secrets.get_mailbox_password(saved.uid) is None
    assert page.status.text() == "Removed mailbox bounces"


def test_bounces_read_from_the_mailbox_show_when_the_core_reports_them(
    stack: Any, page: MailboxesPage, imap: DovecotServer, qtbot: QtBot
) -> None:
    workspace: Workspace = stack.workspace
    workspace.configure_mailbox(stored(imap), PASSWORD)
    failing = workspace.configure_mailbox(
        stored(imap, name="unsubscribe", role=MailboxRole.UNSUBSCRIBE, enabled=False), PASSWORD
    )
    assert failing.id is not None
    workspace.mailboxes.record_check(failing.id, "127.0.0.1:1: connection refused")
    imap.append("bounces", "INBOX", samples.postfix("gone@example.net", "<x@example.com>"))
    imap.append("bounces", "INBOX", samples.ordinary("reader@example.org", "Where is my order?"))
    (report,) = workspace.check_mailboxes()
    assert not isinstance(report, Exception), report

    # Published as the watcher would, on the loop thread: the page reloads at once,
    # without waiting for its 5 s timer.
    stack.bridge.call(
        stack.bridge.publish,
        BouncesRecorded("bounces", hard=1, soft=0, unsubscribed=0, suppressed=1),
    )
    qtbot.waitUntil(lambda: page.events_model.row_total() == 1, timeout=3000)
    event = [page.events_model.index(0, c).data() for c in range(6)]
    assert event[1:4] == ["hard", "gone@example.net", "5.1.1"]
    assert "User unknown" in event[5]
    assert page.status.text() == "bounces: 1 hard, 1 suppressed"
    assert workspace.is_suppressed("gone@example.net")

    left = [page.unrecognised_model.index(0, c).data() for c in range(4)]
    assert left[1:] == ["bounces", "reader@example.org", "Where is my order?"]
    checked = page.mailboxes_model.index(0, 6).data()
    assert checked and checked != "not yet"
    error = page.mailboxes_model.index(1, 7)
    assert error.data() == "127.0.0.1:1: connection refused"
    assert error.data(Qt.ItemDataRole.ForegroundRole).color().name() == "#c62828"
    if GRAB_DIR:
        page.resize(1100, 720)
        grab(page, "page")
