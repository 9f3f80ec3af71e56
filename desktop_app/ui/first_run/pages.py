"""The pages of the first-run wizard: who sends, the first provider (typed or imported), an
optional backup, and what Finish will save."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from desktop_app.core.errors import UserInputError
from desktop_app.core.models import ProviderConfig
from desktop_app.core.provider_files.adding import (
    ADDED,
    ImportOutcome,
    after_existing,
    next_priority,
    plan_import,
)
from desktop_app.core.validation import check_no_line_breaks, validate_address
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.feedback import ERROR_STYLE
from desktop_app.ui.first_run.import_panel import ImportPanel
from desktop_app.ui.first_run.setup import DEMO_SUGGESTION, FirstRunSetup, describe_setup
from desktop_app.ui.provider_dialog import ProviderForm, labelled

# The provider form's validation message looks the same on every page.
_VALIDATION_STYLE = "color: palette(highlight);"


def _plain_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


class SetupDraft:
    """What the pages gathered that more than one page needs; nothing here is stored."""

    def __init__(self, existing: list[ProviderConfig]) -> None:
        #: Providers already stored (normally none: the wizard runs when there are none).
        self.existing = list(existing)
        #: The first provider as typed, once its page was left with Next (None: imports only).
        self.first: ProviderConfig | None = None
        #: Providers read from Thunderbird or a providers file, to be added at Finish.
        self.imported: list[ProviderConfig] = []

    def chosen(self) -> list[ProviderConfig]:
        """Every provider the setup has so far (stored, typed first, imported)."""
        return [*self.existing, *([self.first] if self.first else []), *self.imported]


class IdentityPage(QWizardPage):
    """Welcome, and the sender identity new messages and campaigns start with."""

    def __init__(self) -> None:
        super().__init__()
        self.setTitle("Welcome to Relaydesk")
        self.setSubTitle("Three short steps: who you send as, your SMTP provider, and a backup.")
        intro = _plain_label(
            "Relaydesk sends your mail through a list of SMTP providers and switches to the "
            "next one when one fails. New messages and campaigns start with this sender; "
            "you can change it for each of them."
        )
        self.from_name = labelled(QLineEdit(), "Your name")
        self.from_name.setPlaceholderText("Ada Lovelace (optional)")
        self.from_address = labelled(QLineEdit(), "From address")
        self.from_address.setPlaceholderText("ada@example.com")
        self.error = labelled(_plain_label(), "Validation message")
        self.error.setObjectName("validation_error")
        self.error.setStyleSheet(_VALIDATION_STYLE)
        form = QFormLayout()
        rows = (("&Your name", self.from_name), ("From &address", self.from_address))
        for caption_text, field in rows:
            caption = QLabel(caption_text)
            caption.setBuddy(field)
            form.addRow(caption, field)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addStretch(1)
        self._identity: tuple[str, str] | None = None
        self.from_name.textChanged.connect(self._revalidate)
        self.from_address.textChanged.connect(self._revalidate)
        self._revalidate()

    @Slot()
    def _revalidate(self) -> None:
        self._identity = None
        message = ""
        try:
            name = check_no_line_breaks("your name", self.from_name.text()).strip()
            address = self.from_address.text().strip()
            if not address:
                raise UserInputError("a From address is required")
            self._identity = (name, validate_address("From address", address))
        except UserInputError as exc:
            message = str(exc)
        self.error.setText(message)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self._identity is not None

    def identity(self) -> tuple[str, str]:
        """(name, address), valid once the page is complete."""
        assert self._identity is not None
        return self._identity


class ProviderPage(QWizardPage):
    """The provider form; on the first page also imports, on the backup page a Skip."""

    def __init__(self, bridge: CoreBridge, draft: SetupDraft, *, backup: bool) -> None:
        super().__init__()
        self._draft = draft
        self._backup = backup
        self.form = ProviderForm(bridge, [p.name for p in draft.existing])
        self.form.set_optional(backup)
        self.form.validity_changed.connect(self._on_form_validity_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        self.imports: ImportPanel | None = None
        self.imported_label = labelled(_plain_label(), "Imported providers")
        self.imported_label.setVisible(False)
        if backup:
            self.setTitle("A backup provider (optional)")
            self.setSubTitle(
                "When the first provider fails, mail goes on through this one. No backup "
                "yet? Leave the form empty and press Skip (the Providers page adds one later)."
            )
        else:
            self.setTitle("Your SMTP provider")
            self.setSubTitle(
                "The server Relaydesk sends through. Test the connection before you go on; "
                "the password goes to the OS keyring, never to a file."
            )
            # Typing comes first (the wizard focuses the first field); importing is the
            # other way to the same end, below a rule.
            rule = QFrame()
            rule.setFrameShape(QFrame.Shape.HLine)
            rule.setFrameShadow(QFrame.Shadow.Sunken)
            layout.addWidget(rule)
            self.imports = ImportPanel(bridge)
            self.imports.providers_found.connect(self._on_imports_providers_found)
            layout.addWidget(self.imports)
            layout.addWidget(self.imported_label)
        layout.addStretch(1)
        # Alt+N belongs to the form's Name field here; Enter still means Next.
        self.setButtonText(QWizard.WizardButton.NextButton, "Next >")

    def initializePage(self) -> None:
        names = [p.name for p in self._draft.existing]
        if self._backup:
            chosen = self._draft.chosen()
            names = [p.name for p in chosen]
            # A backup comes after everything chosen so far, as on the Providers page.
            self.form.priority.setValue(next_priority(chosen))
        else:
            names += [p.name for p in self._draft.imported]
        self.form.set_taken_names(names)
        self.form.set_optional(self._backup or bool(self._draft.imported))

    def isComplete(self) -> bool:
        if self.form.config() is not None:
            return True
        # An empty form is fine on the backup page (skip), and on the first page once
        # providers were imported (the form is optional then).
        return self.form.is_blank() and (self._backup or bool(self._draft.imported))

    def validatePage(self) -> bool:
        if not self._backup:
            self._draft.first = self.form.config()
            if self._draft.first is not None and self._draft.imported:
                # The typed provider stays the preferred one; imports keep their own tiers.
                base = [*self._draft.existing, self._draft.first]
                self._draft.imported = after_existing(self._draft.imported, base)
        return True

    def entry(self) -> tuple[ProviderConfig, str | None] | None:
        config = self.form.config()
        return None if config is None else (config, self.form.password_text())

    @Slot()
    def _on_form_validity_changed(self) -> None:
        if self._backup:
            skip = self.form.is_blank()
            self.setButtonText(QWizard.WizardButton.NextButton, "Skip" if skip else "Next >")
        self.completeChanged.emit()

    @Slot(list, list, str)
    def _on_imports_providers_found(
        self, found: list[ProviderConfig], skipped: list[ImportOutcome], source: str
    ) -> None:
        """Keep the providers whose names are free; say what was kept and what not, why."""
        typed = self.form.config()
        chosen = [*self._draft.existing, *([typed] if typed else []), *self._draft.imported]
        plan = plan_import(chosen, after_existing(found, chosen))
        self._draft.imported += plan.additions
        lines = [f"From {source}:"]
        for outcome in [*plan.outcomes, *skipped]:
            if outcome.action == ADDED:
                lines.append(f"  will add {outcome.name} ({outcome.detail})")
            else:
                lines.append(f"  skipped {outcome.name}: {outcome.detail}")
        if any(p.username for p in plan.additions):
            lines.append(
                "Passwords are never imported: set them after Finish with Edit on the "
                "Providers page."
            )
        assert self.imports is not None
        self.imports.show_report("\n".join(lines))
        names = ", ".join(p.name for p in self._draft.imported)
        self.imported_label.setText(
            f"Imported, saved when you press Finish: {names}. Fill in the form above only to "
            "add one more."
            if names
            else ""
        )
        self.imported_label.setVisible(bool(names))
        self.imports.make_room()
        self.form.set_taken_names([p.name for p in chosen] + [p.name for p in plan.additions])
        self.form.set_optional(bool(self._draft.imported))


class FinishPage(QWizardPage):
    """What Finish saves, the demo suggestion, and why saving failed if it did."""

    def __init__(self, setup: Callable[[], FirstRunSetup]) -> None:
        super().__init__()
        self._setup = setup
        self.setTitle("Ready to save")
        self.setSubTitle("Nothing has been saved yet: Finish saves all of this, Cancel nothing.")
        self.summary = labelled(_plain_label(), "Summary")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.demo = labelled(_plain_label(DEMO_SUGGESTION), "Demo suggestion")
        self.demo.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error = labelled(_plain_label(), "Save error")
        self.error.setObjectName("save_error")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addSpacing(12)
        layout.addWidget(self.demo)
        layout.addStretch(1)
        layout.addWidget(self.error)

    def initializePage(self) -> None:
        self.summary.setText(describe_setup(self._setup()))
        self.error.setText("")
