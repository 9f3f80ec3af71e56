"""The campaign composer: content, list, sender, unsubscribe, headers, attachments, and a live
preview for one chosen subscriber (the scheduling dialog is in schedule_dialog.py).

Everything that reads the database or renders templates runs off the GUI thread through
the bridge; the preview is re-rendered a moment after the last keystroke, and answers to
older renders are dropped so a slow one never overwrites a newer one.
"""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QFontDatabase, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QTextBrowser,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.campaigns.message import Attachment
from desktop_app.core.campaigns.message import parse_header_lines as parse_custom_header_lines
from desktop_app.core.campaigns.templates import RenderedContent, TemplateError
from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.campaigns import Campaign, CampaignDraft
from desktop_app.core.storage.lists import Subscriber, SubscriberList
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import ERROR_STYLE, one_line
from desktop_app.ui.provider_dialog import labelled

#: Quiet time after the last keystroke before the preview is rendered again.
PREVIEW_DELAY_MS = 300
#: Subscribers offered in the preview's combo (and read for the list's column names).
PREVIEW_SAMPLE = 20
#: Variables every template sees, whatever the list's columns.
STANDARD_PLACEHOLDERS = ("email", "name", "unsubscribe_url")
_ERROR_BOX_STYLE = "color: #b71c1c; background: #ffebee; border: 1px solid #e57373; padding: 10px;"
_ERROR_LINE_COLOUR = QColor("#ffcdd2")
_WARNING_STYLE = "color: #8a4b00; background: #fff3e0; padding: 4px;"


def monospace(widget: QWidget) -> QWidget:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    widget.setFont(font)
    return widget


def placeholder_for(field: str) -> str:
    """The Jinja2 expression for a column; names that are not identifiers go through
    ``fields`` (``{{ first name }}`` would not compile)."""
    if field.isidentifier():
        return "{{ " + field + " }}"
    return "{{ fields[" + repr(field) + "] }}"


def parse_header_lines(text: str) -> dict[str, str]:
    """The composer's ``Name: value`` box to headers (one-line ``UserInputError`` if not)."""
    return parse_custom_header_lines(
        text.splitlines(), label=lambda number, _line: f"custom header line {number}"
    )


def list_sample(workspace: Workspace, list_name: str) -> tuple[list[Subscriber], list[str]]:
    """Subscribers to preview with, and the list's custom column names (blocking)."""
    sample = workspace.lists.sample_sendable(list_name, PREVIEW_SAMPLE)
    readers = sample
    if not readers:
        # Nobody sendable (all unsubscribed, say): the columns still come from the rows.
        readers = []
        for subscriber in workspace.lists.iter_subscribers(list_name, batch_size=PREVIEW_SAMPLE):
            readers.append(subscriber)
            if len(readers) >= PREVIEW_SAMPLE:
                break
    fields: dict[str, None] = {}  # ordered set: columns in the order the file had them
    for subscriber in readers:
        fields.update(dict.fromkeys(subscriber.fields))
    return sample, [f for f in fields if f not in STANDARD_PLACEHOLDERS]


def read_attachment(path: Path) -> Attachment:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment(filename=path.name, content=path.read_bytes(), content_type=content_type)


class PreviewPane(QWidget):
    """Subject, HTML and text of one rendered message, or the error in their place."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.subscriber_combo = labelled(QComboBox(), "Preview subscriber")
        self.subscriber_combo.setMinimumContentsLength(24)
        self.subscriber_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.subject_label = labelled(QLabel(), "Preview subject")
        self.subject_label.setWordWrap(True)
        self.subject_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bold = QFont(self.subject_label.font())
        bold.setBold(True)
        self.subject_label.setFont(bold)
        self.html_view = labelled(QTextBrowser(), "HTML preview")
        self.html_view.setOpenLinks(False)  # a click in a preview must not navigate away
        self.text_view = labelled(QPlainTextEdit(), "Text preview")
        self.text_view.setReadOnly(True)
        monospace(self.text_view)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.html_view, "HTML")
        self.tabs.addTab(self.text_view, "Text")
        self.error_label = labelled(QLabel(), "Preview error")
        self.error_label.setWordWrap(True)
        self.error_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.error_label.setStyleSheet(_ERROR_BOX_STYLE)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # The error takes the preview's place: a stale preview beside an error misleads.
        self.stack = QStackedWidget()
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.error_label)

        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("Preview for"))
        chooser.addWidget(self.subscriber_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(chooser)
        layout.addWidget(self.subject_label)
        layout.addWidget(self.stack, 1)

    def subscriber_email(self) -> str | None:
        email = self.subscriber_combo.currentData()
        return str(email) if email else None

    def set_subscribers(self, subscribers: list[Subscriber]) -> None:
        chosen = self.subscriber_email()
        self.subscriber_combo.blockSignals(True)
        self.subscriber_combo.clear()
        for subscriber in subscribers:
            label = (
                f"{subscriber.name} <{subscriber.email}>" if subscriber.name else subscriber.email
            )
            self.subscriber_combo.addItem(label, subscriber.email)
        index = self.subscriber_combo.findData(chosen) if chosen else -1
        self.subscriber_combo.setCurrentIndex(max(index, 0))
        self.subscriber_combo.blockSignals(False)

    def show_content(self, content: RenderedContent) -> None:
        self.subject_label.setText(f"Subject: {content.subject}")
        self.html_view.setHtml(content.html or "<p><i>No HTML body: the text is sent.</i></p>")
        self.text_view.setPlainText(content.text)
        self.stack.setCurrentWidget(self.tabs)

    def show_error(self, error: BaseException, source_line: str | None = None) -> None:
        """The error in the preview's place; ``source_line`` quotes the line it names."""
        if isinstance(error, TemplateError):
            text = f"Template error in the {error.part}"
            text += f", line {error.line}" if error.line is not None else ""
            text += f":\n{error.problem}"
            if source_line is not None and source_line.strip():
                text += f"\n\n    {source_line.strip()}"
        else:
            text = one_line(error)
        self.subject_label.setText("The preview cannot be rendered:")
        self.error_label.setStyleSheet(_ERROR_BOX_STYLE)
        self.error_label.setText(text)
        self.stack.setCurrentWidget(self.error_label)

    def show_note(self, text: str) -> None:
        self.subject_label.setText("")
        self.error_label.setText(text)
        self.error_label.setStyleSheet("color: palette(mid); padding: 10px;")
        self.stack.setCurrentWidget(self.error_label)

    def error_text(self) -> str:
        return self.error_label.text() if self.stack.currentWidget() is self.error_label else ""


class AttachmentsEditor(QWidget):
    """Files sent with every message; read off the GUI thread when added."""

    changed = Signal()

    def __init__(self, bridge: CoreBridge, report: Callable[[str], None]) -> None:
        super().__init__()
        self._bridge = bridge
        self._report = report
        self.attachments: list[Attachment] = []
        self.list = labelled(QListWidget(), "Attachments")
        self.add_button = labelled(QPushButton("Add files…"), "Add attachment")
        self.remove_button = labelled(QPushButton("Remove"), "Remove attachment")
        self.add_button.clicked.connect(self._choose_files)
        self.remove_button.clicked.connect(self.remove_selected)
        buttons = QVBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def set_attachments(self, attachments: tuple[Attachment, ...]) -> None:
        self.attachments = list(attachments)
        self._show()

    def add_files(self, paths: list[Path]) -> None:
        def read_all() -> list[Attachment]:
            return [read_attachment(path) for path in paths]

        self._bridge.call(read_all, on_success=self._added, on_error=self._failed)

    def remove_selected(self) -> None:
        rows = sorted((self.list.row(item) for item in self.list.selectedItems()), reverse=True)
        for row in rows:
            del self.attachments[row]
        if rows:
            self._show()
            self.changed.emit()

    def _choose_files(self) -> None:
        names, _filter = QFileDialog.getOpenFileNames(self, "Attach files")
        if names:
            self.add_files([Path(name) for name in names])

    def _added(self, attachments: list[Attachment]) -> None:
        self.attachments.extend(attachments)
        self._show()
        self.changed.emit()

    def _failed(self, error: BaseException) -> None:
        if not is_shutdown_error(error):
            self._report(f"Could not read the file: {one_line(error)}")

    def _show(self) -> None:
        self.list.clear()
        for attachment in self.attachments:
            self.list.addItem(f"{attachment.filename}  ({_size(len(attachment.content))})")


class CampaignEditor(QDialog):
    """Write or edit a campaign, with a live preview for one subscriber of its list.

    Signals:
        saved(Campaign): the campaign was created or updated.
    """

    saved = Signal(object)

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        campaign: Campaign | None = None,
        *,
        on_mail_queued: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._on_mail_queued = on_mail_queued
        #: The stored name to update; None until the campaign exists.
        self._saved_name = campaign.name if campaign else None
        self._list_wanted = campaign.list_name if campaign else ""
        self._attachments_changed = campaign is None
        #: Bumped by every render request: only the newest answer is shown.
        self._preview_generation = 0
        self._sample_generation = 0
        self.campaign = campaign
        self.fields: list[str] = []
        self.setWindowTitle(f"Edit campaign — {campaign.name}" if campaign else "New campaign")

        self.name_edit = labelled(QLineEdit(), "Campaign name")
        self.list_combo = labelled(QComboBox(), "Subscriber list")
        self.from_address_edit = labelled(QLineEdit(), "From address")
        self.from_address_edit.setPlaceholderText("news@example.com")
        self.from_name_edit = labelled(QLineEdit(), "From name")
        self.from_name_edit.setPlaceholderText("Display name (optional)")
        self.reply_to_edit = labelled(QLineEdit(), "Reply-To")
        self.reply_to_edit.setPlaceholderText("optional")
        self.subject_edit = labelled(QLineEdit(), "Subject")
        self.unsubscribe_url_edit = labelled(QLineEdit(), "Unsubscribe URL")
        self.unsubscribe_url_edit.setPlaceholderText("https://example.com/unsubscribe")
        self.unsubscribe_mailto_edit = labelled(QLineEdit(), "Unsubscribe mailto")
        self.unsubscribe_mailto_edit.setPlaceholderText("unsubscribe@example.com")
        self.html_edit = labelled(QPlainTextEdit(), "HTML body")
        self.text_edit = labelled(QPlainTextEdit(), "Text body")
        self.headers_edit = labelled(QPlainTextEdit(), "Custom headers")
        self.headers_edit.setPlaceholderText("One per line, e.g.\nX-Campaign: spring-sale")
        for editor in (self.html_edit, self.text_edit, self.headers_edit):
            monospace(editor)
            editor.setTabChangesFocus(False)
        self.attachments = AttachmentsEditor(bridge, self._report_error)
        self.body_tabs = QTabWidget()
        self.body_tabs.addTab(self.html_edit, "HTML body")
        self.body_tabs.addTab(self.text_edit, "Text body")
        self.body_tabs.addTab(self.headers_edit, "Headers")
        self.body_tabs.addTab(self.attachments, "Attachments")

        self.placeholder_menu = QMenu(self)
        # A push button: a tool button's menu arrow was drawn over the end of its text.
        self.placeholder_button = labelled(QPushButton("Insert placeholder"), "Insert placeholder")
        self.placeholder_button.setMenu(self.placeholder_menu)
        # Clicking the button must not take the focus from the editor it inserts into.
        self.placeholder_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._insert_target: QLineEdit | QPlainTextEdit = self.html_edit

        self.preview = PreviewPane()
        self.warnings_label = labelled(QLabel(), "Sender warnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet(_WARNING_STYLE)
        self.warnings_label.setVisible(False)
        self.status_label = labelled(QLabel(), "Editor status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.test_button = labelled(QPushButton("Send test…"), "Send test")
        self.save_button = labelled(QPushButton("Save"), "Save")
        self.save_button.setDefault(True)
        self.close_button = labelled(QPushButton("Close"), "Close")
        self.test_button.clicked.connect(self.send_test)
        self.save_button.clicked.connect(self.save)
        self.close_button.clicked.connect(self.reject)

        self._layout()
        self._fill(campaign)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.refresh_preview)
        for line in (
            self.subject_edit,
            self.from_address_edit,
            self.from_name_edit,
            self.unsubscribe_url_edit,
            self.unsubscribe_mailto_edit,
        ):
            line.textChanged.connect(self._schedule_preview)
        for editor in (self.html_edit, self.text_edit):
            editor.textChanged.connect(self._schedule_preview)
        self.list_combo.currentIndexChanged.connect(self._on_list_combo_changed)
        self.preview.subscriber_combo.currentIndexChanged.connect(self._schedule_preview)
        _application().focusChanged.connect(self._on_app_focus_changed)
        self.finished.connect(self._on_finished)
        self._load_lists()
        if campaign is not None:
            bridge.call(
                workspace.campaign_store.attachments,
                campaign.id,
                on_success=self._on_attachments_loaded,
                on_error=self._on_request_failed,
            )
        else:
            self._prefill_sender()
        self.attachments.changed.connect(self._on_attachments_changed)
        self.resize(1180, 760)
        #: What the form said when it was last saved or loaded: Close asks when it differs.
        self._clean_state = self._form_state()

    def _layout(self) -> None:
        sender = QHBoxLayout()
        sender.addWidget(self.from_address_edit, 3)
        sender.addWidget(self.from_name_edit, 2)
        unsubscribe = QHBoxLayout()
        unsubscribe.addWidget(self.unsubscribe_url_edit, 3)
        unsubscribe.addWidget(self.unsubscribe_mailto_edit, 2)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("&Name", self.name_edit)
        form.addRow("&List", self.list_combo)
        form.addRow(_buddy("&From", self.from_address_edit), sender)
        form.addRow("&Reply-To", self.reply_to_edit)
        form.addRow("&Subject", self.subject_edit)
        form.addRow(_buddy("&Unsubscribe", self.unsubscribe_url_edit), unsubscribe)
        placeholder_row = QHBoxLayout()
        placeholder_row.addStretch(1)
        placeholder_row.addWidget(self.placeholder_button)
        composer = QWidget()
        left = QVBoxLayout(composer)
        left.setContentsMargins(0, 0, 0, 0)
        left.addLayout(form)
        left.addLayout(placeholder_row)
        left.addWidget(self.body_tabs, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(composer)
        splitter.addWidget(self.preview)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        buttons = QDialogButtonBox()
        buttons.addButton(self.test_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.close_button, QDialogButtonBox.ButtonRole.RejectRole)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.warnings_label)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status_label, 1)
        bottom.addWidget(buttons)
        layout.addLayout(bottom)

    def _fill(self, campaign: Campaign | None) -> None:
        if campaign is None:
            return
        self.name_edit.setText(campaign.name)
        self.from_address_edit.setText(campaign.from_address)
        self.from_name_edit.setText(campaign.from_name or "")
        self.reply_to_edit.setText(campaign.reply_to or "")
        self.subject_edit.setText(campaign.subject)
        self.html_edit.setPlainText(campaign.html or "")
        self.text_edit.setPlainText(campaign.text or "")
        self.unsubscribe_url_edit.setText(campaign.unsubscribe_url or "")
        self.unsubscribe_mailto_edit.setText(campaign.unsubscribe_mailto or "")
        self.headers_edit.setPlainText(
            "\n".join(f"{name}: {value}" for name, value in campaign.headers.items())
        )

    def _prefill_sender(self) -> None:
        """A new campaign starts from the sender identity (settings ``identity.*``)."""

        def read_identity() -> tuple[str, str]:
            return (
                self._workspace.get_setting("identity.from_address"),
                self._workspace.get_setting("identity.from_name"),
            )

        self._bridge.call(
            read_identity, on_success=self._on_identity_loaded, on_error=self._on_request_failed
        )

    def _on_identity_loaded(self, identity: tuple[str, str]) -> None:
        address, name = identity
        with self._loading():
            # Only into empty fields: whatever a person typed meanwhile stays.
            if address and not self.from_address_edit.text():
                self.from_address_edit.setText(address)
            if name and not self.from_name_edit.text():
                self.from_name_edit.setText(name)

    def _on_attachments_loaded(self, attachments: tuple[Attachment, ...]) -> None:
        with self._loading():
            self.attachments.set_attachments(attachments)

    # -- unsaved changes -------------------------------------------------------------------

    def _form_state(self) -> tuple[object, ...]:
        """Everything a person can change, to compare with what was saved or loaded."""
        return (
            self.name_edit.text(),
            self.list_combo.currentText(),
            self.from_address_edit.text(),
            self.from_name_edit.text(),
            self.reply_to_edit.text(),
            self.subject_edit.text(),
            self.html_edit.toPlainText(),
            self.text_edit.toPlainText(),
            self.unsubscribe_url_edit.text(),
            self.unsubscribe_mailto_edit.text(),
            self.headers_edit.toPlainText(),
            tuple((a.filename, len(a.content)) for a in self.attachments.attachments),
        )

    def has_unsaved_changes(self) -> bool:
        return self._form_state() != getattr(self, "_clean_state", self._form_state())

    @contextlib.contextmanager
    def _loading(self) -> Iterator[None]:
        """What arrives from the core (lists, the sender identity, stored attachments) is not
        a person's change: a form untouched before it stays untouched after."""
        untouched = not self.has_unsaved_changes()
        yield
        if untouched:
            self._clean_state = self._form_state()

    def discard_changes(self) -> None:
        """Forget the edits, so closing does not ask (the campaign stays as last saved)."""
        self._clean_state = self._form_state()

    def reject(self) -> None:
        """Close, Escape and the window's close button: ask first when there are unsaved
        changes (Save, Discard or Cancel), as a mail client's composer does."""
        if not self.has_unsaved_changes():
            super().reject()
            return
        answer = QMessageBox.question(
            self,
            "Unsaved changes",
            "Save the changes to this campaign before closing?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            self.save()  # closes once stored; stays open with the reason if it cannot be
        elif answer == QMessageBox.StandardButton.Discard:
            super().reject()

    # -- the draft -------------------------------------------------------------------------

    def draft(self, *, for_preview: bool = False) -> CampaignDraft:
        """What the form says; raises a one-line ``UserInputError`` for bad header lines
        (the preview ignores the headers: they do not change what a reader sees)."""
        headers = {} if for_preview else parse_header_lines(self.headers_edit.toPlainText())
        attachments: tuple[Attachment, ...] | None = None
        if self._attachments_changed and not for_preview:
            attachments = tuple(self.attachments.attachments)
        return CampaignDraft(
            name=self.name_edit.text() or ("preview" if for_preview else ""),
            list_name=self.list_combo.currentText(),
            from_address=self.from_address_edit.text(),
            subject=self.subject_edit.text(),
            html=self.html_edit.toPlainText() or None,
            text=self.text_edit.toPlainText() or None,
            from_name=self.from_name_edit.text() or None,
            reply_to=self.reply_to_edit.text() or None,
            unsubscribe_url=self.unsubscribe_url_edit.text() or None,
            unsubscribe_mailto=self.unsubscribe_mailto_edit.text() or None,
            headers=headers,
            attachments=attachments,
        )

    # -- lists, placeholders ---------------------------------------------------------------

    def _load_lists(self) -> None:
        self._bridge.call(
            self._workspace.subscriber_lists,
            on_success=self._on_lists_loaded,
            on_error=self._on_request_failed,
        )

    def _on_lists_loaded(self, lists: list[SubscriberList]) -> None:
        with self._loading():
            self._show_lists(lists)

    def _show_lists(self, lists: list[SubscriberList]) -> None:
        self.list_combo.blockSignals(True)
        self.list_combo.clear()
        for subscriber_list in lists:
            self.list_combo.addItem(subscriber_list.name)
        index = self.list_combo.findText(self._list_wanted) if self._list_wanted else 0
        self.list_combo.setCurrentIndex(max(index, 0) if lists else -1)
        self.list_combo.blockSignals(False)
        if not lists:
            self.preview.show_note("No subscriber list yet: create one on the Lists page.")
        self._on_list_combo_changed()

    @Slot()
    def _on_list_combo_changed(self, *_args: Any) -> None:
        list_name = self.list_combo.currentText()
        if not list_name:
            return
        self._sample_generation += 1
        generation = self._sample_generation

        def loaded(result: tuple[list[Subscriber], list[str]]) -> None:
            if generation == self._sample_generation:
                self._on_sample_loaded(*result)

        self._bridge.call(
            list_sample,
            self._workspace,
            list_name,
            on_success=loaded,
            on_error=self._on_request_failed,
        )

    def _on_sample_loaded(self, sample: list[Subscriber], fields: list[str]) -> None:
        self.fields = fields
        self.preview.set_subscribers(sample)
        self.placeholder_menu.clear()
        for field in (*STANDARD_PLACEHOLDERS, *fields):
            action = self.placeholder_menu.addAction(field)
            action.triggered.connect(
                lambda _checked=False, name=field: self.insert_placeholder(name)
            )
        self.refresh_preview()

    def placeholder_names(self) -> list[str]:
        return [action.text() for action in self.placeholder_menu.actions()]

    def insert_placeholder(self, field: str) -> None:
        """Insert ``{{ field }}`` at the cursor of the editor last focused (HTML by default)."""
        target = self._insert_target
        if isinstance(target, QLineEdit):
            target.insert(placeholder_for(field))
        else:
            self.body_tabs.setCurrentWidget(target)  # the reader sees where it went
            target.insertPlainText(placeholder_for(field))
        target.setFocus()

    @Slot(object, object)
    def _on_app_focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if isinstance(new, QLineEdit | QPlainTextEdit) and new in (
            self.subject_edit,
            self.html_edit,
            self.text_edit,
        ):
            self._insert_target = new
            if new is not self.subject_edit:
                self.body_tabs.setCurrentWidget(new)

    # -- preview ---------------------------------------------------------------------------

    @Slot()
    def _schedule_preview(self, *_args: Any) -> None:
        self._preview_timer.start()  # restarts: renders once the typing pauses

    @Slot()
    def refresh_preview(self) -> None:
        """Render the draft for the chosen subscriber, and check the sender, off-thread."""
        self._preview_timer.stop()
        if not self.list_combo.currentText():
            return
        draft = self.draft(for_preview=True)
        self._preview_generation += 1
        generation = self._preview_generation

        def rendered(content: RenderedContent) -> None:
            if generation == self._preview_generation:
                self._mark_error_line(None)
                self.preview.show_content(content)

        def failed(error: BaseException) -> None:
            if generation == self._preview_generation and not is_shutdown_error(error):
                source = self._mark_error_line(error)
                self.preview.show_error(error, source)

        campaigns = self._workspace.campaigns
        self._bridge.call(
            campaigns.preview,
            draft,
            self.preview.subscriber_email(),
            on_success=rendered,
            on_error=failed,
        )
        if "@" in draft.from_address:
            self._bridge.call(
                campaigns.warnings,
                draft,
                on_success=self._on_warnings_loaded,
                on_error=self._on_request_failed,
            )
        else:
            self._on_warnings_loaded([])

    def _mark_error_line(self, error: BaseException | None) -> str | None:
        """Tint the line a template error names in its editor; returns that line's text."""
        for editor in (self.html_edit, self.text_edit):
            editor.setExtraSelections([])
        if not isinstance(error, TemplateError) or error.line is None:
            return None
        if error.part == "subject":
            return self.subject_edit.text()
        editors = {"HTML": self.html_edit, "text": self.text_edit}
        if error.part not in editors:
            return None
        editor = editors[error.part]
        block = editor.document().findBlockByNumber(error.line - 1)
        if not block.isValid():
            return None
        selection = QTextEdit.ExtraSelection()
        selection.format.setBackground(_ERROR_LINE_COLOUR)
        selection.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        selection.cursor = QTextCursor(block)
        editor.setExtraSelections([selection])
        return block.text()

    def _on_warnings_loaded(self, warnings: list[str]) -> None:
        self.warnings_label.setText("\n".join(f"⚠ {warning}" for warning in warnings))
        self.warnings_label.setVisible(bool(warnings))

    # -- save, test ------------------------------------------------------------------------

    @Slot()
    def save(self) -> None:
        """Save and close."""
        self._save(then=lambda _campaign: self.accept())

    @Slot()
    def send_test(self) -> None:
        """Ask for addresses, save, then queue the test (it needs the stored campaign)."""
        text, ok = QInputDialog.getText(
            self, "Send test", "Send a test to (addresses, comma separated):"
        )
        if ok and text.strip():
            self.send_test_to([a for a in text.split(",") if a.strip()])

    def send_test_to(self, addresses: list[str]) -> None:
        """Save, then queue the message personalised for the previewed subscriber."""
        subscriber = self.preview.subscriber_email()

        def queue_test(campaign_name: str) -> list[int]:
            return self._workspace.campaigns.test_send(
                campaign_name, addresses, subscriber_email=subscriber
            )

        def test(campaign: Campaign) -> None:
            self._bridge.call(
                queue_test,
                campaign.name,
                on_success=self._on_test_queued,
                on_error=self._on_request_failed,
            )

        self._save(then=test)

    def _save(self, then: Callable[..., None]) -> None:
        try:
            draft = self.draft()
        except UserInputError as error:
            self._report_error(one_line(error))
            return
        campaigns = self._workspace.campaigns
        self.save_button.setEnabled(False)
        self.test_button.setEnabled(False)

        def stored(campaign: Campaign) -> None:
            self._enable_buttons()
            self.campaign = campaign
            self._saved_name = campaign.name
            self._attachments_changed = False
            self._clean_state = self._form_state()
            self.setWindowTitle(f"Edit campaign — {campaign.name}")
            self.status_label.setStyleSheet("")
            self.status_label.setText(f"Saved {campaign.name}.")
            self.saved.emit(campaign)
            then(campaign)

        def failed(error: BaseException) -> None:
            self._enable_buttons()
            self._on_request_failed(error)

        if self._saved_name is None:
            self._bridge.call(campaigns.create, draft, on_success=stored, on_error=failed)
        else:
            self._bridge.call(
                campaigns.update, self._saved_name, draft, on_success=stored, on_error=failed
            )

    def _enable_buttons(self) -> None:
        self.save_button.setEnabled(True)
        self.test_button.setEnabled(True)

    def _on_test_queued(self, outbox_ids: list[int]) -> None:
        count = len(outbox_ids)
        self.status_label.setStyleSheet("")
        self.status_label.setText(
            f"Test queued to {count} address{'es' if count != 1 else ''}; it leaves when "
            "sending is running."
        )
        if self._on_mail_queued is not None:
            self._on_mail_queued()

    def _on_attachments_changed(self) -> None:
        self._attachments_changed = True

    def _on_request_failed(self, error: BaseException) -> None:
        if not is_shutdown_error(error):
            self._report_error(one_line(error))

    def _report_error(self, text: str) -> None:
        self.status_label.setStyleSheet(ERROR_STYLE)
        self.status_label.setText(text)

    @Slot()
    def _on_finished(self, *_args: Any) -> None:
        # The application outlives the dialog: a focus change must not reach a dead editor.
        _application().focusChanged.disconnect(self._on_app_focus_changed)
        self._preview_timer.stop()


def _buddy(text: str, field: QWidget) -> QLabel:
    """A form label whose mnemonic focuses ``field`` (a row holding a layout has none)."""
    label = QLabel(text)
    label.setBuddy(field)
    return label


def _application() -> QApplication:
    application = QApplication.instance()
    assert isinstance(application, QApplication), "the editor needs a QApplication"
    return application


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KB"
    return f"{count / (1024 * 1024):.1f} MB"
