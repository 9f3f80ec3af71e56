"""The Compose page: write one message to a few recipients and queue it.

The same path as ``relaydesk send``. Campaigns (lists, templates, scheduling) have their
own page; this one is for the single mail that does not need them.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.compose import build_message
from desktop_app.core.errors import UserInputError
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.provider_dialog import labelled


class ComposePage(QWidget):
    """From, To, Subject, text; "Queue message" stores it in the outbox.

    Signals:
        message_queued(): a message went into the outbox.
    """

    message_queued = Signal()

    def __init__(self, workspace: Workspace, bridge: CoreBridge, parent: QWidget | None = None):
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self.from_field = labelled(QLineEdit(), "From")
        self.recipients = labelled(QLineEdit(), "To")
        self.recipients.setPlaceholderText("one or more addresses, separated by commas")
        self.subject = labelled(QLineEdit(), "Subject")
        self.body = labelled(QPlainTextEdit(), "Message")
        self.queue_button = labelled(QPushButton("Queue message"), "Queue message")
        self.queue_button.setShortcut(QKeySequence("Ctrl+Return"))
        self.queue_button.clicked.connect(self.queue_message)
        self.status = QLabel()
        self.status.setObjectName("compose_status")
        self.status.setAccessibleName("Compose status")
        form = QFormLayout()
        for text, widget in (
            ("&From", self.from_field),
            ("&To", self.recipients),
            ("&Subject", self.subject),
            ("&Message", self.body),
        ):
            label = QLabel(text)
            label.setBuddy(widget)
            form.addRow(label, widget)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Queue one message to a few recipients. To send to a list with a template, "
                "use the Campaigns page (Ctrl+2)."
            )
        )
        layout.addLayout(form)
        layout.addWidget(self.queue_button)
        layout.addWidget(self.status)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # Each time the page shows: the sender identity may have been set since (the
        # first-run wizard, ``relaydesk settings set``).
        self.prefill_sender()

    def prefill_sender(self) -> None:
        """An empty From becomes the ``identity.from_address`` setting (read off-thread)."""
        if self.from_field.text():
            return
        self._bridge.call(
            self._workspace.get_setting,
            "identity.from_address",
            on_success=self._on_sender_loaded,
            on_error=lambda _error: None,  # no identity then; the field just stays empty
        )

    def _on_sender_loaded(self, address: str) -> None:
        if address and not self.from_field.text():  # never over what a person typed
            self.from_field.setText(address)

    @Slot()
    def queue_message(self) -> None:
        try:
            message = build_message(
                sender=self.from_field.text(),
                recipients=[r.strip() for r in self.recipients.text().split(",") if r.strip()],
                subject=self.subject.text(),
                text=self.body.toPlainText(),
            )
        except UserInputError as exc:
            self.status.setText(f"Not queued: {exc}")
            return

        def done(_ids: object) -> None:
            self.status.setText(f"Queued {message.message_id}")
            self.message_queued.emit()

        self._bridge.call(
            self._workspace.queue,
            [message],
            on_success=done,
            on_error=lambda exc: self.status.setText(f"Not queued: {exc}"),
        )
