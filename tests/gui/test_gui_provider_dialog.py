"""The provider form on its own: validation as a person types, accessibility, focus order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)
from pytestqt.qtbot import QtBot

from desktop_app.core.models import Security
from desktop_app.ui.provider_dialog import ProviderDialog
from tests.support.qt_helpers import choose, retype, settle

FORM_ORDER = (
    "name",
    "host",
    "port",
    "security",
    "username",
    "password",
    "priority",
    "weight",
    "max_connections",
    "rate_per_second",
    "rate_per_minute",
    "rate_per_hour",
    "rate_per_day",
    "sender_domains",
)


@pytest.fixture
def dialog(stack: Any, qtbot: QtBot) -> ProviderDialog:
    """The Add dialog, shown and active, with one provider ("Primary") already stored."""
    form = ProviderDialog(stack.bridge, ["Primary"], parent=stack.window)
    qtbot.addWidget(form)
    with qtbot.waitActive(form):
        form.show()
        form.activateWindow()
    return form


def save_button(dialog: ProviderDialog) -> QPushButton:
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Save)


def form_fields(dialog: ProviderDialog) -> list[tuple[str, QWidget]]:
    """(caption as shown, field) for every row of the form, top to bottom."""
    form = dialog.findChild(QFormLayout)
    assert form is not None
    rows = []
    for row in range(form.rowCount()):
        label_item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
        field_item = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
        assert label_item is not None and field_item is not None
        label, field = label_item.widget(), field_item.widget()
        assert isinstance(label, QLabel) and field is not None
        rows.append((label.text(), field))
    return rows


def expect(dialog: ProviderDialog, *, valid: bool, says: str = "") -> None:
    assert save_button(dialog).isEnabled() is valid, dialog.error.text()
    assert dialog.test_button.isEnabled() is valid
    if valid:
        assert dialog.error.text() == ""
    else:
        assert says and says in dialog.error.text(), dialog.error.text()


# -- validation as you type ------------------------------------------------------------------


def test_save_is_enabled_only_while_the_form_is_valid(
    dialog: ProviderDialog, qtbot: QtBot, tmp_path: Path
) -> None:
    expect(dialog, valid=False, says="a name is required")

    qtbot.keyClicks(dialog.name, "primary")  # taken (names are compared case-insensitively)
    expect(dialog, valid=False, says="a host is required")
    qtbot.keyClicks(dialog.host, "smtp.example.com")
    expect(dialog, valid=False, says="a provider named 'primary' already exists")
    dialog.grab().save(str(tmp_path / "dialog-duplicate-name.png"))  # what a person sees
    retype(qtbot, dialog.name, "Backup")
    expect(dialog, valid=True)

    # Host: a character a host name cannot have, then taken back.
    qtbot.keyClick(dialog.host, Qt.Key.Key_End)
    qtbot.keyClicks(dialog.host, "!")
    expect(dialog, valid=False, says="is not a valid domain name")
    qtbot.keyClick(dialog.host, Qt.Key.Key_Backspace)
    expect(dialog, valid=True)

    # Port: the spin box refuses 0 and 65536 outright; an emptied field must not save the
    # number that was there before.
    retype(qtbot, dialog.port, "")
    assert dialog.port.lineEdit().text() == ""
    expect(dialog, valid=False, says="port must be a number from 1 to 65535")
    qtbot.keyClicks(dialog.port.lineEdit(), "65536")
    assert dialog.port.value() == 6553  # the last digit was refused
    expect(dialog, valid=True)
    retype(qtbot, dialog.port, "2525")
    expect(dialog, valid=True)
    assert dialog.result_config().port == 2525

    # A password needs a username.
    qtbot.keyClicks(dialog.password, "secret")
    expect(dialog, valid=False, says="a password needs a username")
    qtbot.keyClicks(dialog.username, "mailer")
    expect(dialog, valid=True)

    # No encryption is for loopback only.
    choose(qtbot, dialog.security, "None")
    assert dialog.security.currentData() == Security.NONE
    expect(dialog, valid=False, says="security 'none' sends mail and passwords in clear")
    retype(qtbot, dialog.host, "127.0.0.1")
    expect(dialog, valid=True)

    # Sender domains are checked too.
    qtbot.keyClicks(dialog.sender_domains, "example.com, not a domain")
    expect(dialog, valid=False, says="is not a valid domain name")
    retype(qtbot, dialog.sender_domains, "example.com, example.org")
    expect(dialog, valid=True)

    config = dialog.result_config()
    assert (config.name, config.host, config.username, config.sender_domains) == (
        "Backup",
        "127.0.0.1",
        "mailer",
        ("example.com", "example.org"),
    )
    assert dialog.result_password() == "secret"


def test_duplicate_name_cannot_be_saved_even_with_enter(
    dialog: ProviderDialog, qtbot: QtBot
) -> None:
    qtbot.keyClicks(dialog.name, "Primary")
    qtbot.keyClicks(dialog.host, "smtp.example.com")
    expect(dialog, valid=False, says="already exists")
    qtbot.keyClick(dialog.host, Qt.Key.Key_Return)  # the default button is disabled
    assert dialog.isVisible()
    assert dialog.result() == 0


def test_security_choice_moves_a_conventional_port_but_not_a_typed_one(
    dialog: ProviderDialog, qtbot: QtBot
) -> None:
    assert dialog.port.value() == 587
    choose(qtbot, dialog.security, "TLS")
    assert dialog.port.value() == 465
    choose(qtbot, dialog.security, "None")
    assert dialog.port.value() == 25
    retype(qtbot, dialog.port, "2465")
    choose(qtbot, dialog.security, "STARTTLS")
    assert dialog.security.currentData() == Security.STARTTLS
    assert dialog.port.value() == 2465


# -- accessibility ---------------------------------------------------------------------------


def test_every_field_is_named_after_its_label_and_has_its_own_mnemonic(
    dialog: ProviderDialog,
) -> None:
    rows = form_fields(dialog)
    assert [field.objectName() for _caption, field in rows] == list(FORM_ORDER)
    mnemonics = []
    for caption, field in rows:
        assert isinstance(field, QLineEdit | QSpinBox | QComboBox)
        assert field.accessibleName() == caption.replace("&", ""), caption
        assert caption.count("&") == 1, caption
        mnemonics.append(caption[caption.index("&") + 1].lower())
    buttons = [b for b in dialog.findChildren(QPushButton) if b.isVisible()]
    assert {b.accessibleName() for b in buttons} == {"Test connection", "Save", "Cancel"}
    for button in buttons:
        assert button.accessibleName() == button.text().replace("&", "")
        if "&" in button.text():
            mnemonics.append(button.text()[button.text().index("&") + 1].lower())
    # Alt+letter reaches exactly one field or button (S and C stay free for Save/Cancel).
    assert len(mnemonics) == len(set(mnemonics)), sorted(mnemonics)
    assert not {"s", "c"} & set(mnemonics[: len(rows)])
    # Every input a screen reader meets has a name (spin boxes' inner editors are theirs).
    for kind in (QLineEdit, QSpinBox, QComboBox, QPushButton):
        for widget in dialog.findChildren(kind):
            if isinstance(widget.parentWidget(), QAbstractSpinBox | QComboBox):
                continue
            assert widget.accessibleName(), widget


def test_alt_mnemonic_moves_focus_to_its_field(dialog: ProviderDialog, qtbot: QtBot) -> None:
    dialog.name.setFocus()
    qtbot.keyClick(dialog, Qt.Key.Key_W, Qt.KeyboardModifier.AltModifier)
    assert QApplication.focusWidget() is dialog.password
    qtbot.keyClick(dialog, Qt.Key.Key_G, Qt.KeyboardModifier.AltModifier)
    assert owner(QApplication.focusWidget()) is dialog.weight


def owner(widget: QWidget | None) -> QWidget | None:
    """The form field a focused widget belongs to (a spin box's inner line edit -> the box)."""
    if widget is not None and isinstance(widget.parentWidget(), QAbstractSpinBox):
        return widget.parentWidget()
    return widget


def test_tab_order_follows_the_form(dialog: ProviderDialog, qtbot: QtBot) -> None:
    qtbot.keyClicks(dialog.name, "Backup")
    qtbot.keyClicks(dialog.host, "smtp.example.com")
    expect(dialog, valid=True)  # disabled buttons are skipped by Tab
    fields = [field for _caption, field in form_fields(dialog)]
    buttons = dialog.buttons.buttons()
    expected = [*fields, dialog.test_button, *buttons]

    in_form_order = [*fields, dialog.test_button]  # then Save and Cancel, in platform order

    # The focus chain, as Qt keeps it...
    chain: list[QWidget] = []
    widget = dialog.name.nextInFocusChain()
    while widget is not None and widget is not dialog.name and len(chain) < 500:
        found = owner(widget)
        if found in expected and found not in chain:
            chain.append(found)
        widget = widget.nextInFocusChain()
    assert chain[: len(in_form_order) - 1] == in_form_order[1:]
    assert set(chain[len(in_form_order) - 1 :]) == set(buttons)

    # ...and what Tab really does, starting in Name.
    dialog.name.setFocus()
    visited = [owner(QApplication.focusWidget())]
    for _ in range(len(expected) - 1):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        visited.append(owner(QApplication.focusWidget()))
    assert visited[: len(in_form_order)] == in_form_order
    assert set(visited[len(in_form_order) :]) == set(buttons)


def test_test_connection_in_the_dialog_uses_the_typed_password(
    dialog: ProviderDialog, qtbot: QtBot, scripted_smtp: Any
) -> None:
    server = scripted_smtp(auth=("user", "pw"), auth_require_tls=False)
    qtbot.keyClicks(dialog.name, "Local")
    qtbot.keyClicks(dialog.host, "127.0.0.1")
    choose(qtbot, dialog.security, "None")
    retype(qtbot, dialog.port, str(server.port))
    qtbot.keyClicks(dialog.username, "user")
    qtbot.keyClicks(dialog.password, "pw")
    expect(dialog, valid=True)
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    assert dialog.test_result.text() == "Testing…"
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("Connected in"), timeout=10_000)
    assert server.command_count("AUTH") >= 1
    retype(qtbot, dialog.password, "wrong")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("Failed at"), timeout=10_000)
    assert "535" in dialog.test_result.text()


def test_closing_during_a_connection_test_is_safe(
    stack: Any, qtbot: QtBot, scripted_smtp: Any
) -> None:
    """The answer of a test still running when the dialog closes must not touch it."""
    server = scripted_smtp(delays={"EHLO": 0.3})
    form = ProviderDialog(stack.bridge, [], parent=stack.window)  # deleted with the window
    form.show()
    qtbot.keyClicks(form.name, "Slow")
    qtbot.keyClicks(form.host, "127.0.0.1")
    choose(qtbot, form.security, "None")
    retype(qtbot, form.port, str(server.port))
    qtbot.mouseClick(form.test_button, Qt.MouseButton.LeftButton)
    form.reject()
    form.deleteLater()
    qtbot.waitUntil(lambda: server.command_count("QUIT") >= 1, timeout=10_000)
    settle(qtbot, stack.bridge)
    assert server.command_count("EHLO") == 1
