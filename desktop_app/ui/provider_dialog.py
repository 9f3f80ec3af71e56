"""Add or edit one provider, with validation as the user types and a real connection test.

``ProviderForm`` is the form itself (fields, the one-line validation message, "Test
connection"); ``ProviderDialog`` puts it in a dialog with Save and Cancel, and the first-run
wizard puts it on two of its pages.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable
from typing import TypeVar

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QShortcutEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.errors import UserInputError
from desktop_app.core.health.probe import ProbeResult, probe_provider
from desktop_app.core.models import ProviderConfig, RateLimits, Security
from desktop_app.core.validation import validate_provider_config
from desktop_app.ui.bridge import CoreBridge

_DEFAULT_PORTS = {Security.TLS: 465, Security.STARTTLS: 587, Security.NONE: 25}


_W = TypeVar("_W", bound=QWidget)


def labelled(widget: _W, label: str) -> _W:
    """Give ``widget`` the accessible name a screen reader should say: its visible label."""
    widget.setAccessibleName(label)
    widget.setObjectName(label.lower().replace(" ", "_").replace("/", "_"))
    return widget


def check_server_fields(name: QLineEdit, host: QLineEdit, port: QSpinBox) -> None:
    """What a server form needs before its values mean anything (shared by the provider
    and the mailbox dialogs); raises a one-line ``UserInputError``."""
    if not name.text().strip():
        raise UserInputError("a name is required")
    if not host.text().strip():
        raise UserInputError("a host is required")
    if not port.hasAcceptableInput():
        # An emptied port field keeps its last value() and would save that.
        raise UserInputError("port must be a number from 1 to 65535")


@dataclasses.dataclass(frozen=True)
class ServerFields:
    """The connection fields a provider and an IMAP mailbox both have."""

    host: QLineEdit
    port: QSpinBox
    security: QComboBox
    username: QLineEdit
    password: QLineEdit


def server_fields(
    security_choices: Iterable[tuple[Security, str]], *, port: int, editing: bool
) -> ServerFields:
    """Host, port, security (in the order given), username and a password field that says
    where the password goes (and, when ``editing``, that empty keeps the stored one)."""
    fields = ServerFields(
        host=labelled(QLineEdit(), "Host"),
        port=labelled(QSpinBox(), "Port"),
        security=labelled(QComboBox(), "Security"),
        username=labelled(QLineEdit(), "Username"),
        password=labelled(QLineEdit(), "Password"),
    )
    fields.port.setRange(1, 65535)
    fields.port.setValue(port)
    for value, text in security_choices:
        fields.security.addItem(text, value)
    fields.password.setEchoMode(QLineEdit.EchoMode.Password)
    fields.password.setPlaceholderText(
        "unchanged (stored in the OS keyring)" if editing else "stored in the OS keyring"
    )
    return fields


class ShortcutButton(QPushButton):
    """A push button whose keyboard shortcut clicks it at once and leaves the focus alone.

    QPushButton's own handling animates the click 100 ms later, moves the keyboard focus to
    the button (a person reordering the providers table lost their place in it) and drops
    every press that comes within those 100 ms (held Ctrl+Down moved one row, not several).
    """

    def event(self, event: QEvent) -> bool:
        if isinstance(event, QShortcutEvent) and not event.isAmbiguous():
            self.click()
            return True
        return super().event(event)


class ProviderForm(QWidget):
    """The provider fields, validated on every keystroke, and a real "Test connection".

    ``config()`` is the validated provider (None while the form is not valid) and
    ``password()`` what was typed in the password field.

    Signals:
        validity_changed(): the form was checked again (it may have become valid or not).
    """

    validity_changed = Signal()

    def __init__(
        self,
        bridge: CoreBridge,
        existing_names: list[str],
        provider: ProviderConfig | None = None,
        parent: QWidget | None = None,
        *,
        stored_password: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._stored_password = stored_password
        self._original = provider
        self._taken: set[str] = set()
        self._validated: ProviderConfig | None = None
        self._optional = False
        #: Bumped when a test's answer must be dropped (a newer test, or the form went away).
        self._test_generation = 0
        self.set_taken_names(existing_names)

        self.name = labelled(QLineEdit(), "Name")
        server = server_fields(
            (
                (Security.STARTTLS, "STARTTLS (required)"),
                (Security.TLS, "TLS (implicit)"),
                (Security.NONE, "None (loopback only)"),
            ),
            port=587,
            editing=provider is not None,
        )
        self.host, self.port, self.security = server.host, server.port, server.security
        self.username, self.password = server.username, server.password
        self.priority = labelled(QSpinBox(), "Priority")
        self.priority.setRange(0, 999)
        self.weight = labelled(QSpinBox(), "Weight")
        self.weight.setRange(1, 1000)
        self.max_connections = labelled(QSpinBox(), "Max connections")
        self.max_connections.setRange(1, 100)
        self.max_connections.setValue(2)
        self.rates: dict[str, QSpinBox] = {}
        for key, label in (
            ("per_second", "Rate per second"),
            ("per_minute", "Rate per minute"),
            ("per_hour", "Rate per hour"),
            ("per_day", "Rate per day"),
        ):
            box = labelled(QSpinBox(), label)
            box.setRange(0, 10_000_000)
            box.setSpecialValueText("no limit")
            self.rates[key] = box
        self.sender_domains = labelled(QLineEdit(), "Sender domains")
        self.sender_domains.setPlaceholderText("example.com, example.org (empty: any)")

        form = QFormLayout()
        for caption_text, widget in (
            ("&Name", self.name),
            ("&Host", self.host),
            ("&Port", self.port),
            ("Securit&y", self.security),
            ("&Username", self.username),
            ("Pass&word", self.password),
            ("Pr&iority", self.priority),
            ("Wei&ght", self.weight),
            ("&Max connections", self.max_connections),
            ("Rate per s&econd", self.rates["per_second"]),
            ("&Rate per minute", self.rates["per_minute"]),
            ("Rate per h&our", self.rates["per_hour"]),
            ("Rate per &day", self.rates["per_day"]),
            ("Sender dom&ains", self.sender_domains),
        ):
            # One mnemonic per field (Alt+letter): "&" before the first letter of each
            # gave Port, Password and Priority all Alt+P, and the four rates all Alt+R.
            # S and C stay free for Save and Cancel where the platform underlines them.
            caption = QLabel(caption_text)
            caption.setBuddy(widget)
            form.addRow(caption, widget)

        self.error = QLabel()
        self.error.setObjectName("validation_error")
        self.error.setAccessibleName("Validation message")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: palette(highlight);")
        self.test_button = labelled(QPushButton("&Test connection"), "Test connection")
        self.test_result = QLabel()
        self.test_result.setObjectName("test_result")
        self.test_result.setAccessibleName("Test result")
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addLayout(test_row)

        if provider is not None:
            self.fill(provider)
        self.security.currentIndexChanged.connect(self._on_security_changed)
        for line in (self.name, self.host, self.username, self.password, self.sender_domains):
            line.textChanged.connect(self.revalidate)
        # Every keystroke: QSpinBox.textChanged stays silent while the text is not a number.
        self.port.lineEdit().textChanged.connect(self.revalidate)
        for spin in (
            self.port,
            self.priority,
            self.weight,
            self.max_connections,
            *self.rates.values(),
        ):
            spin.valueChanged.connect(self.revalidate)
        self.security.currentIndexChanged.connect(self.revalidate)
        self.test_button.clicked.connect(self._on_test_clicked)
        self.revalidate()

    def set_taken_names(self, names: Iterable[str]) -> None:
        """Names this provider must not have (compared case-insensitively); the edited
        provider's own name is never taken."""
        own = {self._original.name.casefold()} if self._original else set()
        self._taken = {n.casefold() for n in names} - own

    def fill(self, provider: ProviderConfig) -> None:
        self.name.setText(provider.name)
        self.host.setText(provider.host)
        self.security.setCurrentIndex(self.security.findData(provider.security))
        self.port.setValue(provider.port)
        self.username.setText(provider.username or "")
        self.priority.setValue(provider.priority)
        self.weight.setValue(provider.weight)
        self.max_connections.setValue(provider.max_connections)
        for key, box in self.rates.items():
            box.setValue(getattr(provider.rate_limits, key) or 0)
        self.sender_domains.setText(", ".join(provider.sender_domains))

    def set_optional(self, optional: bool) -> None:
        """An optional form left blank is not an error (no message), just no provider."""
        self._optional = optional
        self.revalidate()

    def is_blank(self) -> bool:
        """Nothing typed that says which server (what "skip this provider" looks like)."""
        return not any(
            line.text().strip()
            for line in (self.name, self.host, self.username, self.password, self.sender_domains)
        )

    def _on_security_changed(self) -> None:
        # Follow the conventional port while the user has not typed another one.
        if self.port.value() in _DEFAULT_PORTS.values():
            self.port.setValue(_DEFAULT_PORTS[self.security.currentData()])

    def _candidate(self) -> ProviderConfig:
        rates = {key: (box.value() or None) for key, box in self.rates.items()}
        domains = tuple(d.strip() for d in self.sender_domains.text().split(",") if d.strip())
        base = self._original or ProviderConfig(name="", host="", port=1, security=Security.NONE)
        return dataclasses.replace(
            base,
            name=self.name.text(),
            host=self.host.text(),
            port=self.port.value(),
            security=self.security.currentData(),
            username=self.username.text().strip() or None,
            priority=self.priority.value(),
            weight=self.weight.value(),
            max_connections=self.max_connections.value(),
            rate_limits=RateLimits(**rates),
            sender_domains=domains,
        )

    def revalidate(self) -> None:
        """Check the form (every keystroke); "Test connection" only for a valid provider."""
        message = ""
        self._validated = None
        try:
            if self._optional and self.is_blank():
                raise UserInputError("")
            check_server_fields(self.name, self.host, self.port)
            config = validate_provider_config(self._candidate())
            if config.name.casefold() in self._taken:
                raise UserInputError(f"a provider named {config.name!r} already exists")
            if self.password.text() and not config.username:
                raise UserInputError("a password needs a username")
            self._validated = config
        except UserInputError as exc:
            message = str(exc)
        self.error.setText(message)
        self.test_button.setEnabled(self._validated is not None)
        self.validity_changed.emit()

    def config(self) -> ProviderConfig | None:
        return self._validated

    def password_text(self) -> str | None:
        return self.password.text() or None

    def forget_pending_test(self) -> None:
        """The form is going away: a connection test still running must not touch it."""
        self._test_generation += 1

    def _on_test_clicked(self) -> None:
        if self._validated is None:
            return
        self.test_button.setEnabled(False)
        self.test_result.setText("Testing…")
        typed = self.password.text() or None
        config = self._validated
        lookup = self._stored_password
        self._test_generation += 1
        generation = self._test_generation

        async def probe() -> ProbeResult:
            # An edited provider with the password left blank tests with the stored one
            # (read from the keyring here, on the loop thread: it may block).
            password = typed
            if password is None and lookup is not None and config.username:
                password = await asyncio.to_thread(lookup)
            return await probe_provider(config, password, timeout=15.0)

        def finished(result: ProbeResult | None, error: BaseException | None = None) -> None:
            if generation == self._test_generation:
                self._on_test_finished(result, error)

        self._bridge.run(
            probe(),
            on_success=finished,
            on_error=lambda exc: finished(None, exc),
        )

    def _on_test_finished(self, result: ProbeResult | None, error: BaseException | None) -> None:
        self.test_button.setEnabled(self._validated is not None)
        if result is None:
            self.test_result.setText(f"Test failed: {error}")
        elif result.ok:
            self.test_result.setText(f"Connected in {result.latency_ms:.0f} ms")
        else:
            phase = result.failed_phase.value if result.failed_phase else "connect"
            self.test_result.setText(f"Failed at {phase}: {result.detail}")


class ProviderDialog(QDialog):
    """The provider form with Save and Cancel. ``result_config()`` and ``result_password()``
    after ``accept()``."""

    def __init__(
        self,
        bridge: CoreBridge,
        existing_names: list[str],
        provider: ProviderConfig | None = None,
        parent: QWidget | None = None,
        *,
        stored_password: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit provider" if provider else "Add provider")
        self.setAccessibleName(self.windowTitle())
        self.setMinimumWidth(480)
        self.form = ProviderForm(
            bridge, existing_names, provider, self, stored_password=stored_password
        )
        # The fields stay reachable as the dialog's own (the Providers page and tests use them).
        form = self.form
        self.name = form.name
        self.host = form.host
        self.port = form.port
        self.security = form.security
        self.username = form.username
        self.password = form.password
        self.priority = form.priority
        self.weight = form.weight
        self.max_connections = form.max_connections
        self.rates = form.rates
        self.sender_domains = form.sender_domains
        self.error = form.error
        self.test_button = form.test_button
        self.test_result = form.test_result

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        save = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        save.setAccessibleName("Save")
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName("Cancel")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(form)
        layout.addWidget(self.buttons)
        form.validity_changed.connect(self._on_form_validity_changed)
        self._on_form_validity_changed()

    def _on_form_validity_changed(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(
            self.form.config() is not None
        )

    def done(self, result: int) -> None:
        self.form.forget_pending_test()  # the dialog may be deleted before the answer comes
        super().done(result)

    def result_config(self) -> ProviderConfig:
        config = self.form.config()
        assert config is not None
        return config

    def result_password(self) -> str | None:
        return self.form.password_text()
