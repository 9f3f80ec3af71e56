"""The first-run wizard as a person goes through it, against real servers on loopback and the
private Secret Service: identity, first provider (typed and tested, or imported), an optional
backup, and what Finish (or Cancel) leaves in the data directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QInputDialog, QWizard
from pytestqt.qtbot import QtBot

from desktop_app.core.models import MaintenanceKind, MaintenanceWindow, Security
from desktop_app.core.provider_files.toml_file import providers_to_toml
from desktop_app.core.workspace import Workspace
from desktop_app.ui.campaign_editor import CampaignEditor
from desktop_app.ui.first_run import (
    FirstRunWizard,
    run_first_run_wizard_if_needed,
    should_run_first_run_wizard,
)
from desktop_app.ui.first_run.import_panel import OTHER_PREFS_FILE
from desktop_app.ui.first_run.setup import DEMO_SUGGESTION
from desktop_app.ui.first_run.wizard import (
    BACKUP_PAGE,
    FINISH_PAGE,
    FIRST_PROVIDER_PAGE,
    IDENTITY_PAGE,
)
from desktop_app.ui.provider_dialog import ProviderForm
from tests.support.qt_helpers import choose, retype, settle
from tests.support.secret_service import reset_keyring_backend
from tests.support.servers import free_port

WAIT_MS = 10_000
NEXT = QWizard.WizardButton.NextButton
FINISH = QWizard.WizardButton.FinishButton
CANCEL = QWizard.WizardButton.CancelButton
BACK = QWizard.WizardButton.BackButton

PREFS_JS = r"""// Mozilla User Preferences
user_pref("mail.smtpservers", "smtp1,smtp2,smtp3");
user_pref("mail.smtpserver.smtp1.hostname", "smtp.example.org");
user_pref("mail.smtpserver.smtp1.try_ssl", 3);
user_pref("mail.smtpserver.smtp1.username", "ada@example.org");
user_pref("mail.smtpserver.smtp1.description", "Work");
user_pref("mail.smtpserver.smtp1.password", "hunter2-in-prefs");
user_pref("mail.smtpserver.smtp2.hostname", "mail.example.net");
user_pref("mail.smtpserver.smtp2.try_ssl", 2);
user_pref("mail.smtpserver.smtp2.port", 2525);
user_pref("mail.smtpserver.smtp3.hostname", "plain.example.com");
user_pref("mail.smtpserver.smtp3.try_ssl", 0);
"""


@pytest.fixture
def wizard(stack: Any, qtbot: QtBot) -> FirstRunWizard:
    """The wizard over the real stack's (empty) workspace, shown and active."""
    shown = FirstRunWizard(stack.workspace, stack.bridge)
    qtbot.addWidget(shown)
    with qtbot.waitActive(shown):
        shown.show()
        shown.activateWindow()
    return shown


def click(qtbot: QtBot, wizard: FirstRunWizard, which: QWizard.WizardButton) -> None:
    button = wizard.button(which)
    assert button.isEnabled(), (button.text(), wizard.currentId())
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def fill_identity(qtbot: QtBot, wizard: FirstRunWizard) -> None:
    page = wizard.identity_page
    qtbot.keyClicks(page.from_name, "Ada Lovelace")
    qtbot.keyClicks(page.from_address, "ada@example.com")
    click(qtbot, wizard, NEXT)
    assert wizard.currentId() == FIRST_PROVIDER_PAGE


def fill_loopback(
    qtbot: QtBot,
    form: ProviderForm,
    name: str,
    port: int,
    *,
    username: str = "",
    password: str = "",
) -> None:
    qtbot.keyClicks(form.name, name)
    qtbot.keyClicks(form.host, "127.0.0.1")
    choose(qtbot, form.security, "None")
    retype(qtbot, form.port, str(port))
    if username:
        qtbot.keyClicks(form.username, username)
    if password:
        qtbot.keyClicks(form.password, password)
    assert form.config() is not None, form.error.text()


def finish(qtbot: QtBot, wizard: FirstRunWizard) -> None:
    assert wizard.currentId() == FINISH_PAGE
    click(qtbot, wizard, FINISH)
    qtbot.waitUntil(lambda: wizard.result() == QDialog.DialogCode.Accepted, timeout=WAIT_MS)
    assert not wizard.isVisible()


def files_containing(directory: Path, secret: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and secret in p.read_bytes()]


def identity_settings(workspace: Workspace) -> tuple[str, str]:
    return (
        workspace.get_setting("identity.from_name"),
        workspace.get_setting("identity.from_address"),
    )


# -- identity --------------------------------------------------------------------------------


def test_identity_is_checked_as_you_type_and_next_waits_for_a_valid_address(
    wizard: FirstRunWizard, qtbot: QtBot
) -> None:
    page = wizard.identity_page
    assert wizard.currentId() == IDENTITY_PAGE
    assert not wizard.button(NEXT).isEnabled()
    assert page.error.text() == "a From address is required"

    qtbot.keyClicks(page.from_name, "Ada Lovelace")
    qtbot.keyClicks(page.from_address, "ada@")
    assert page.error.text() == "From address: 'ada@' is not an email address"
    assert "\n" not in page.error.text()
    assert not wizard.button(NEXT).isEnabled()

    qtbot.keyClicks(page.from_address, "example.com")
    assert page.error.text() == ""
    assert wizard.button(NEXT).isEnabled()

    # A line break would inject headers through the From display name (pasted text can
    # carry one); the field is refused like any other.
    page.from_name.setText("Ada\r\nBcc: everyone@example.com")
    assert "must not contain line breaks" in page.error.text()
    assert not wizard.button(NEXT).isEnabled()
    retype(qtbot, page.from_name, "Ada Lovelace")
    assert wizard.button(NEXT).isEnabled()
    assert page.identity() == ("Ada Lovelace", "ada@example.com")


# -- the first provider ----------------------------------------------------------------------


def test_test_connection_reaches_a_real_server_and_shows_the_exact_failure(
    wizard: FirstRunWizard, qtbot: QtBot, scripted_smtp: Any
) -> None:
    server = scripted_smtp(auth=("mailer", "pw"), auth_require_tls=False)
    fill_identity(qtbot, wizard)
    form = wizard.first_page.form
    assert not wizard.button(NEXT).isEnabled()  # nothing typed, nothing imported
    fill_loopback(qtbot, form, "Local", server.port, username="mailer", password="pw")
    assert wizard.button(NEXT).isEnabled()

    qtbot.mouseClick(form.test_button, Qt.MouseButton.LeftButton)
    assert form.test_result.text() == "Testing…"
    qtbot.waitUntil(lambda: form.test_result.text().startswith("Connected in"), timeout=WAIT_MS)
    assert server.command_count("AUTH") == 1  # with the typed password

    retype(qtbot, form.port, str(free_port()))  # nobody listens there
    qtbot.mouseClick(form.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: form.test_result.text() != "Testing…", timeout=WAIT_MS)
    assert form.test_result.text() == "Failed at connect: connection refused"
    assert stack_is_empty(wizard)


def stack_is_empty(wizard: FirstRunWizard) -> bool:
    """Testing stores nothing."""
    return wizard._workspace.list_providers() == []


# -- finishing -------------------------------------------------------------------------------


def test_finish_saves_identity_both_providers_in_order_and_the_password_in_the_keyring_only(
    stack: Any, wizard: FirstRunWizard, qtbot: QtBot, scripted_smtp: Any, data_dir: Path
) -> None:
    password = f"Pw-{uuid.uuid4().hex}"
    primary = scripted_smtp(auth=("mailer", password), auth_require_tls=False)
    backup = scripted_smtp()
    fill_identity(qtbot, wizard)
    fill_loopback(
        qtbot, wizard.first_page.form, "Primary", primary.port, username="mailer", password=password
    )
    click(qtbot, wizard, NEXT)
    assert wizard.currentId() == BACKUP_PAGE

    form = wizard.backup_page.form
    assert form.priority.value() == 1  # after the first provider
    assert wizard.button(NEXT).text() == "Skip"
    qtbot.keyClicks(form.name, "primary")  # taken by the first page (case-insensitively)
    qtbot.keyClicks(form.host, "127.0.0.1")
    choose(qtbot, form.security, "None")
    assert form.error.text() == "a provider named 'primary' already exists"
    assert not wizard.button(NEXT).isEnabled()
    retype(qtbot, form.name, "Backup")
    retype(qtbot, form.port, str(backup.port))
    assert wizard.button(NEXT).text() == "Next >"
    click(qtbot, wizard, NEXT)

    summary = wizard.finish_page.summary.text()
    assert "Sender: Ada Lovelace <ada@example.com>" in summary
    assert "1. Primary: 127.0.0.1:" in summary
    assert "password in the OS keyring" in summary
    assert "2. Backup: 127.0.0.1:" in summary
    assert password not in summary
    assert wizard.finish_page.demo.text() == DEMO_SUGGESTION
    assert "relaydesk --demo" in DEMO_SUGGESTION
    assert stack.workspace.list_providers() == []  # nothing before Finish
    finish(qtbot, wizard)

    workspace = stack.workspace
    stored = sorted(workspace.list_providers(), key=lambda p: p.priority)
    assert [(p.name, p.priority, p.port, p.username) for p in stored] == [
        ("Primary", 0, primary.port, "mailer"),
        ("Backup", 1, backup.port, None),
    ]
    assert identity_settings(workspace) == ("Ada Lovelace", "ada@example.com")
    assert keyring.get_password("relaydesk", f"smtp:{stored[0].uid}") == password
    assert keyring.get_password("relaydesk", f"smtp:{stored[1].uid}") is None
    assert files_containing(data_dir, password.encode()) == []
    # The stored provider works with the stored password: the real test the Providers page runs.
    result = stack.runtime.submit(workspace.test_provider("Primary", timeout=10)).result(15)
    assert result.ok, result.detail
    assert not should_run_first_run_wizard(workspace, demo=False)


def test_the_backup_can_be_skipped(stack: Any, wizard: FirstRunWizard, qtbot: QtBot) -> None:
    fill_identity(qtbot, wizard)
    fill_loopback(qtbot, wizard.first_page.form, "Only", 2525)
    click(qtbot, wizard, NEXT)
    assert wizard.backup_page.form.error.text() == ""  # an empty optional form is no error
    assert wizard.button(NEXT).text() == "Skip"
    click(qtbot, wizard, NEXT)
    assert "2." not in wizard.finish_page.summary.text()
    finish(qtbot, wizard)
    assert [(p.name, p.priority) for p in stack.workspace.list_providers()] == [("Only", 0)]


def test_cancel_saves_nothing_and_the_wizard_comes_back(
    stack: Any, wizard: FirstRunWizard, qtbot: QtBot, data_dir: Path
) -> None:
    fill_identity(qtbot, wizard)
    fill_loopback(
        qtbot, wizard.first_page.form, "Never", 2525, username="mailer", password="Pw-cancel"
    )
    click(qtbot, wizard, NEXT)
    click(qtbot, wizard, NEXT)
    assert wizard.currentId() == FINISH_PAGE
    click(qtbot, wizard, CANCEL)
    assert wizard.result() == QDialog.DialogCode.Rejected
    settle(qtbot, stack.bridge)  # a (wrongly) started save would have landed by now
    assert stack.workspace.list_providers() == []
    assert identity_settings(stack.workspace) == ("", "")
    assert files_containing(data_dir, b"Pw-cancel") == []
    assert should_run_first_run_wizard(stack.workspace, demo=False)


@pytest.fixture
def no_keyring(secret_service: dict[str, str]) -> Iterator[None]:
    """The user's keyring is unusable (keyring's own "fail" backend, chosen explicitly)."""
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    reset_keyring_backend()
    yield
    os.environ.pop("PYTHON_KEYRING_BACKEND", None)
    reset_keyring_backend()


def test_no_keyring_is_one_line_in_the_wizard_and_saves_nothing(
    no_keyring: None, stack: Any, wizard: FirstRunWizard, qtbot: QtBot
) -> None:
    fill_identity(qtbot, wizard)
    form = wizard.first_page.form
    fill_loopback(qtbot, form, "Primary", 2525, username="mailer", password="secret")
    click(qtbot, wizard, NEXT)
    fill_loopback(qtbot, wizard.backup_page.form, "Backup", 2526)
    click(qtbot, wizard, NEXT)
    click(qtbot, wizard, FINISH)
    error = wizard.finish_page.error
    qtbot.waitUntil(lambda: error.text().startswith("Nothing was saved"), timeout=WAIT_MS)
    assert error.text().startswith(
        "Nothing was saved. No OS keyring is available to store provider passwords;"
    )
    assert "\n" not in error.text()
    assert wizard.isVisible()
    assert wizard.button(FINISH).isEnabled()
    # All or nothing: the backup (no password) was not stored either, nor the identity.
    assert stack.workspace.list_providers() == []
    assert identity_settings(stack.workspace) == ("", "")

    # Without the password the setup needs no keyring (the password can be set later).
    click(qtbot, wizard, BACK)
    click(qtbot, wizard, BACK)
    retype(qtbot, form.password, "")
    click(qtbot, wizard, NEXT)
    click(qtbot, wizard, NEXT)
    finish(qtbot, wizard)
    assert [p.name for p in stack.workspace.list_providers()] == ["Primary", "Backup"]


# -- imports ---------------------------------------------------------------------------------


def test_thunderbird_import_finds_the_profile_and_never_takes_a_password(
    stack: Any,
    wizard: FirstRunWizard,
    qtbot: QtBot,
    modal: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
) -> None:
    home = tmp_path / "home"
    profile = home / ".thunderbird" / "abcd1234.default-release"
    profile.mkdir(parents=True)
    (profile / "prefs.js").write_text(PREFS_JS, encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    fill_identity(qtbot, wizard)
    panel = wizard.first_page.imports
    assert panel is not None
    offered: list[list[str]] = []

    def pick_the_profile(dialog: QDialog) -> None:
        assert isinstance(dialog, QInputDialog)
        offered.append(dialog.comboBoxItems())
        dialog.accept()  # the first entry: the profile found

    modal.drive(pick_the_profile)
    qtbot.mouseClick(panel.thunderbird_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: modal.handled == 1, timeout=WAIT_MS)
    modal.check()
    assert offered == [[str(profile.resolve()), OTHER_PREFS_FILE]]
    qtbot.waitUntil(lambda: panel.report.text().startswith("From Thunderbird:"), timeout=WAIT_MS)
    report = panel.report.text().splitlines()
    assert report[1:4] == [
        "  will add Work (smtp.example.org:465, tls)",
        "  will add mail.example.net (mail.example.net:2525, starttls)",
        "  skipped (Thunderbird server smtp3): security 'none' sends mail and passwords in "
        "clear to plain.example.com; use tls or starttls, or pass --allow-insecure if you "
        "really mean it",
    ]
    assert "Passwords are never imported" in report[4]
    assert "hunter2" not in panel.report.text()

    # With imports the form may stay empty: straight on to the end.
    assert wizard.first_page.form.error.text() == ""
    click(qtbot, wizard, NEXT)
    click(qtbot, wizard, NEXT)  # Skip the backup
    summary = wizard.finish_page.summary.text()
    assert "Set the password of Work afterwards" in summary
    finish(qtbot, wizard)

    stored = sorted(stack.workspace.list_providers(), key=lambda p: p.priority)
    assert [(p.name, p.host, p.port, p.security, p.username, p.priority) for p in stored] == [
        ("Work", "smtp.example.org", 465, Security.TLS, "ada@example.org", 0),
        ("mail.example.net", "mail.example.net", 2525, Security.STARTTLS, None, 1),
    ]
    assert keyring.get_password("relaydesk", f"smtp:{stored[0].uid}") is None
    assert files_containing(data_dir, b"hunter2") == []


def test_thunderbird_import_comes_after_the_typed_provider(
    stack: Any, wizard: FirstRunWizard, qtbot: QtBot, tmp_path: Path
) -> None:
    prefs = tmp_path / "prefs.js"
    prefs.write_text(PREFS_JS, encoding="utf-8")
    fill_identity(qtbot, wizard)
    panel = wizard.first_page.imports
    assert panel is not None
    panel.import_thunderbird(prefs)
    qtbot.waitUntil(lambda: panel.report.text().startswith("From Thunderbird:"), timeout=WAIT_MS)
    # Typed after the import: it is still the preferred one.
    fill_loopback(qtbot, wizard.first_page.form, "Typed", 2525)
    click(qtbot, wizard, NEXT)
    assert wizard.backup_page.form.priority.value() == 3
    click(qtbot, wizard, NEXT)
    finish(qtbot, wizard)
    stored = sorted(stack.workspace.list_providers(), key=lambda p: p.priority)
    assert [(p.name, p.priority) for p in stored] == [
        ("Typed", 0),
        ("Work", 1),
        ("mail.example.net", 2),
    ]


def test_providers_file_import_keeps_tiers_and_windows_and_skips_taken_names(
    stack: Any, wizard: FirstRunWizard, qtbot: QtBot, tmp_path: Path, gui_helpers: Any
) -> None:
    window = MaintenanceWindow(
        MaintenanceKind.WEEKLY, weekday=6, start_minute=120, duration_minutes=90, timezone="UTC"
    )
    shared = tmp_path / "team.toml"
    shared.write_text(
        providers_to_toml(
            [
                gui_helpers.loopback_provider("Team A", 2525, priority=5, weight=3),
                gui_helpers.loopback_provider(
                    "Team B", 2526, priority=5, maintenance=(window,), username="team"
                ),
                gui_helpers.loopback_provider("Team C", 2527, priority=6),
            ]
        ),
        encoding="utf-8",
    )
    fill_identity(qtbot, wizard)
    panel = wizard.first_page.imports
    assert panel is not None
    panel.import_providers_file(shared)
    qtbot.waitUntil(lambda: panel.report.text().startswith("From team.toml:"), timeout=WAIT_MS)
    panel.import_providers_file(shared)  # twice: the names are taken now
    qtbot.waitUntil(lambda: "skipped Team A" in panel.report.text(), timeout=WAIT_MS)
    assert panel.report.text().splitlines()[1:] == [
        "  skipped Team A: a provider with this name exists",
        "  skipped Team B: a provider with this name exists",
        "  skipped Team C: a provider with this name exists",
    ]
    # A name from the file cannot be typed for another provider.
    form = wizard.first_page.form
    qtbot.keyClicks(form.name, "team a")
    qtbot.keyClicks(form.host, "smtp.example.com")
    assert form.error.text() == "a provider named 'team a' already exists"
    assert not wizard.button(NEXT).isEnabled()
    retype(qtbot, form.name, "")
    retype(qtbot, form.host, "")
    assert wizard.button(NEXT).isEnabled()
    click(qtbot, wizard, NEXT)
    click(qtbot, wizard, NEXT)
    finish(qtbot, wizard)

    stored = sorted(stack.workspace.list_providers(), key=lambda p: (p.priority, p.name))
    # The file's tiers are kept (A and B share one), moved to the front of an empty setup.
    assert [(p.name, p.priority, p.weight) for p in stored] == [
        ("Team A", 0, 3),
        ("Team B", 0, 1),
        ("Team C", 1, 1),
    ]
    windows = stack.workspace.list_maintenance("Team B")["Team B"]
    assert [(w.weekday, w.start_minute, w.duration_minutes) for w in windows] == [(6, 120, 90)]


def test_a_broken_providers_file_is_one_line_and_imports_nothing(
    wizard: FirstRunWizard, qtbot: QtBot, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('version = 1\n[[providers]]\nname = "X"\npassword = "pw"\n', "utf-8")
    fill_identity(qtbot, wizard)
    panel = wizard.first_page.imports
    assert panel is not None
    panel.import_providers_file(broken)
    qtbot.waitUntil(lambda: panel.report.text().startswith("Nothing imported"), timeout=WAIT_MS)
    assert "passwords are never read from files" in panel.report.text()
    assert "\n" not in panel.report.text()
    assert wizard.draft.imported == []
    assert not wizard.button(NEXT).isEnabled()


# -- when the wizard shows -------------------------------------------------------------------


def test_the_wizard_is_for_a_real_start_without_providers(
    stack: Any, qtbot: QtBot, modal: Any, gui_helpers: Any
) -> None:
    workspace = stack.workspace
    assert should_run_first_run_wizard(workspace, demo=False)
    assert not should_run_first_run_wizard(workspace, demo=True)

    seen: list[str] = []

    def cancel(dialog: QDialog) -> None:
        assert isinstance(dialog, FirstRunWizard)
        seen.append(dialog.windowTitle())
        modal.click(dialog, "Cancel")

    modal.drive(cancel)
    assert run_first_run_wizard_if_needed(workspace, stack.bridge) is False
    modal.check()
    assert seen == ["Set up Relaydesk"]
    assert workspace.list_providers() == []

    workspace.add_provider(gui_helpers.loopback_provider("Relay", 2525))
    assert not should_run_first_run_wizard(workspace, demo=False)
    assert run_first_run_wizard_if_needed(workspace, stack.bridge) is False  # nothing shown


# -- the identity where mail is written --------------------------------------------------------


def test_compose_and_a_new_campaign_start_from_the_sender_identity(
    workspace: Workspace, make_stack: Any, qtbot: QtBot
) -> None:
    workspace.set_setting("identity.from_name", "Ada Lovelace")
    workspace.set_setting("identity.from_address", "ada@example.com")
    stack = make_stack()
    window = stack.window
    window.pages.setCurrentWidget(window.compose)
    qtbot.waitUntil(lambda: window.compose.from_field.text() == "ada@example.com")

    editor = CampaignEditor(workspace, stack.bridge, parent=window)
    qtbot.waitUntil(lambda: editor.from_address_edit.text() == "ada@example.com")
    assert editor.from_name_edit.text() == "Ada Lovelace"
    editor.reject()
    editor.deleteLater()
