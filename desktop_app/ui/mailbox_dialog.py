"""Add or edit one IMAP mailbox (bounces, unsubscribe requests, probe seeds), with
validation as the user types and a real "Test connection"."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.bounces.checker import MailboxTest
from desktop_app.core.bounces.mailboxes import (
    MailboxConfig,
    MailboxRole,
    default_name,
    validate_mailbox,
)
from desktop_app.core.errors import UserInputError
from desktop_app.core.models import Security
from desktop_app.core.validation import check_no_line_breaks
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import ERROR_STYLE, one_line
from desktop_app.ui.provider_dialog import check_server_fields, labelled, server_fields

DEFAULT_PORTS = {Security.TLS: 993, Security.STARTTLS: 143, Security.NONE: 143}
ROLE_TEXTS = {
    MailboxRole.BOUNCES: "Bounces (delivery status notifications)",
    MailboxRole.UNSUBSCRIBE: "Unsubscribe requests (List-Unsubscribe mailto)",
    MailboxRole.SEED: "Delivery-probe seed",
}
ALL_PROVIDERS = "All providers"


def describe_test(result: MailboxTest, folder: str) -> str:
    """What a successful connection test found, in one line."""
    count = count_of(result.messages, "message")
    watch = "IDLE: new mail arrives at once" if result.idle else "no IDLE: polled"
    return f"Connected in {result.latency_ms:.0f} ms — {count} in {folder} — {watch}"


class MailboxDialog(QDialog):
    """The mailbox form. ``result_config()`` and ``result_password()`` after ``accept()``.

    An empty password while editing keeps the one in the keyring (and the connection test
    uses it). The name of a stored mailbox is its key, so it is not editable here.
    """

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        existing_names: Sequence[str],
        provider_names: Sequence[str],
        mailbox: MailboxConfig | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._original = mailbox
        self._taken = {n.lower() for n in existing_names} - (
            {mailbox.name.lower()} if mailbox else set()
        )
        self.setWindowTitle("Edit mailbox" if mailbox else "Add mailbox")
        self.setAccessibleName(self.windowTitle())
        self.setMinimumWidth(520)
        self._validated: MailboxConfig | None = None
        self._finished = False  # closed: a connection test still running must not touch us
        self._testing = False
        self._form_version = 0  # a change to the form makes a running test's answer stale

        self.name = labelled(QLineEdit(), "Name")
        self.role = labelled(QComboBox(), "Role")
        for role, text in ROLE_TEXTS.items():
            self.role.addItem(text, role)
        self.provider = labelled(QComboBox(), "Provider")
        self.provider.addItem(ALL_PROVIDERS, None)
        for name in provider_names:
            self.provider.addItem(name, name)
        self.provider.setToolTip(
            "A provider's own bounce mailbox, or one mailbox for all providers"
        )
        server = server_fields(
            (
                (Security.TLS, "TLS (implicit, port 993)"),
                (Security.STARTTLS, "STARTTLS (required, port 143)"),
                (Security.NONE, "None (loopback only)"),
            ),
            port=DEFAULT_PORTS[Security.TLS],
            editing=mailbox is not None,
        )
        self.host, self.port, self.security = server.host, server.port, server.security
        self.username, self.password = server.username, server.password
        self.host.setPlaceholderText("imap.example.com")
        self.folder = labelled(QLineEdit("INBOX"), "Folder")
        self.processed_folder = labelled(QLineEdit("Relaydesk/Processed"), "Processed folder")
        self.processed_folder.setToolTip("Messages are moved here once they have been read")
        self.enabled = labelled(QCheckBox("Read this mailbox"), "Enabled")
        self.enabled.setChecked(True)

        form = QFormLayout()
        for caption_text, widget in (
            ("&Name", self.name),
            ("&Role", self.role),
            ("Pro&vider", self.provider),
            ("&Host", self.host),
            ("&Port", self.port),
            ("Securit&y", self.security),
            ("&Username", self.username),
            ("Pass&word", self.password),
            ("&Folder", self.folder),
            ("Processed fo&lder", self.processed_folder),
            ("&Enabled", self.enabled),
        ):
            # One mnemonic per field; S, C and T stay free for Save, Cancel and Test.
            caption = QLabel(caption_text)
            caption.setBuddy(widget)
            form.addRow(caption, widget)

        self.error = QLabel()
        self.error.setObjectName("validation_error")
        self.error.setAccessibleName("Validation message")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.test_button = labelled(QPushButton("&Test connection"), "Test connection")
        self.test_result = QLabel()
        self.test_result.setObjectName("test_result")
        self.test_result.setAccessibleName("Test result")
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.test_result, 1)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setAccessibleName("Save")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName("Cancel")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(test_row)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        if mailbox is not None:
            self._fill(mailbox)
        else:
            self.name.setText(self._default_name())
        self._shown_default = self._default_name()

        self.role.currentIndexChanged.connect(self._on_role_or_provider_changed)
        self.provider.currentIndexChanged.connect(self._on_role_or_provider_changed)
        self.security.currentIndexChanged.connect(self._on_security_changed)
        for line in (
            self.name,
            self.host,
            self.username,
            self.password,
            self.folder,
            self.processed_folder,
        ):
            line.textChanged.connect(self._on_form_changed)
        # Every keystroke: QSpinBox.valueChanged stays silent while the text is not a number.
        self.port.lineEdit().textChanged.connect(self._on_form_changed)
        self.port.valueChanged.connect(self._on_form_changed)
        for combo in (self.role, self.provider, self.security):
            combo.currentIndexChanged.connect(self._on_form_changed)
        self.enabled.toggled.connect(self._on_form_changed)
        self.test_button.clicked.connect(self._on_test_clicked)
        self._revalidate()

    def _fill(self, mailbox: MailboxConfig) -> None:
        self.name.setText(mailbox.name)
        self.name.setReadOnly(True)
        self.name.setToolTip("The name identifies the stored mailbox; add a new one to rename")
        self.role.setCurrentIndex(self.role.findData(mailbox.role))
        index = self.provider.findData(mailbox.provider_name)
        if index < 0 and mailbox.provider_name is not None:
            # The provider was removed since: keep showing what is stored.
            self.provider.addItem(mailbox.provider_name, mailbox.provider_name)
            index = self.provider.count() - 1
        self.provider.setCurrentIndex(index)
        self.host.setText(mailbox.host)
        self.security.setCurrentIndex(self.security.findData(mailbox.security))
        self.port.setValue(mailbox.port)
        self.username.setText(mailbox.username)
        self.folder.setText(mailbox.folder)
        self.processed_folder.setText(mailbox.processed_folder)
        self.enabled.setChecked(mailbox.enabled)

    def _default_name(self) -> str:
        return default_name(MailboxRole(self.role.currentData()), self.provider.currentData())

    def _on_role_or_provider_changed(self) -> None:
        # Follow the role while the user has not typed a name of their own.
        if self._original is None and self.name.text().strip() in ("", self._shown_default):
            self._shown_default = self._default_name()
            self.name.setText(self._shown_default)

    def _on_security_changed(self) -> None:
        # Follow the conventional port while the user has not typed another one.
        if self.port.value() in DEFAULT_PORTS.values():
            self.port.setValue(DEFAULT_PORTS[Security(self.security.currentData())])

    def _candidate(self) -> MailboxConfig:
        base = self._original or MailboxConfig(
            name="", role=MailboxRole.BOUNCES, host="", port=1, security=Security.TLS, username=""
        )
        return dataclasses.replace(
            base,
            name=self.name.text(),
            role=MailboxRole(self.role.currentData()),
            provider_name=self.provider.currentData(),
            host=self.host.text(),
            port=self.port.value(),
            security=Security(self.security.currentData()),
            username=self.username.text(),
            folder=self.folder.text(),
            processed_folder=self.processed_folder.text(),
            enabled=self.enabled.isChecked(),
        )

    def _revalidate(self) -> None:
        """Check the form on every change; Save is enabled only for a valid mailbox."""
        message = ""
        self._validated = None
        try:
            check_server_fields(self.name, self.host, self.port)
            config = validate_mailbox(self._candidate())
            if config.name.lower() in self._taken:
                raise UserInputError(f"a mailbox named {config.name!r} already exists")
            check_no_line_breaks("password", self.password.text())
            self._validated = config
            if self._original is None and not self.password.text():
                raise UserInputError("a new mailbox needs its password")
        except UserInputError as exc:
            message = one_line(exc)
        self.error.setText(message)
        self.error.setVisible(bool(message))
        self.save_button.setEnabled(self._validated is not None and not message)
        self.test_button.setEnabled(
            not self._testing and self._validated is not None and not message
        )

    def _on_form_changed(self) -> None:
        self._form_version += 1
        self._revalidate()
        if not self._testing:
            self._show_test("", error=False)  # what a test said was about other settings

    def _show_test(self, text: str, *, error: bool) -> None:
        self.test_result.setText(text)
        self.test_result.setStyleSheet(ERROR_STYLE if error else "")

    def _on_test_clicked(self) -> None:
        if self._validated is None or self._testing:
            return
        self._testing = True
        version = self._form_version
        config = self._validated
        self.test_button.setEnabled(False)
        self._show_test("Testing…", error=False)
        self._bridge.call(
            self._workspace.test_mailbox,
            config,
            self.password.text() or None,
            on_success=lambda result: self._on_test_finished(version, config, result, None),
            on_error=lambda error: self._on_test_finished(version, config, None, error),
        )

    def _on_test_finished(
        self,
        version: int,
        config: MailboxConfig,
        result: MailboxTest | None,
        error: BaseException | None,
    ) -> None:
        if self._finished:
            return  # the dialog may be deleted by now; nobody waits for this answer
        self._testing = False
        self._revalidate()  # re-enables the button for the settings shown now
        if version != self._form_version:
            # The form changed while the test ran: its answer is about other settings.
            self._show_test("", error=False)
        elif result is not None:
            self._show_test(describe_test(result, config.folder), error=False)
        elif error is not None and not is_shutdown_error(error):
            self._show_test(f"Test failed: {one_line(error)}", error=True)

    def done(self, result: int) -> None:
        self._finished = True
        super().done(result)

    def result_config(self) -> MailboxConfig:
        assert self._validated is not None
        return self._validated

    def result_password(self) -> str | None:
        return self.password.text() or None
