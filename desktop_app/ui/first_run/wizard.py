"""The first-run wizard: with no provider configured, the app asks for the sender identity, a
first provider (typed and tested, or imported from Thunderbird or a providers file), an
optional backup, then shows what it will save.

Nothing is stored before Finish, and Finish stores everything or nothing (a missing keyring
is a one-line message on the last page, and the wizard stays open). Cancel stores nothing:
the main window opens as usual, and the wizard comes back at the next start while there is
still no provider.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QWidget, QWizard

from desktop_app.core.models import ProviderConfig
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import one_line
from desktop_app.ui.first_run.pages import FinishPage, IdentityPage, ProviderPage, SetupDraft
from desktop_app.ui.first_run.setup import FirstRunSetup, save_setup

IDENTITY_PAGE, FIRST_PROVIDER_PAGE, BACKUP_PAGE, FINISH_PAGE = range(4)


class FirstRunWizard(QWizard):
    """The wizard; ``exec()`` returns Accepted once the setup was saved.

    Signals:
        setup_saved(FirstRunSetup): Finish stored this setup.
    """

    setup_saved = Signal(object)

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        existing: list[ProviderConfig] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._saving = False
        self.setWindowTitle("Set up Relaydesk")
        self.setAccessibleName(self.windowTitle())
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.draft = SetupDraft(existing or [])
        self.identity_page = IdentityPage()
        self.first_page = ProviderPage(bridge, self.draft, backup=False)
        self.backup_page = ProviderPage(bridge, self.draft, backup=True)
        self.finish_page = FinishPage(self.setup)
        self.setPage(IDENTITY_PAGE, self.identity_page)
        self.setPage(FIRST_PROVIDER_PAGE, self.first_page)
        self.setPage(BACKUP_PAGE, self.backup_page)
        self.setPage(FINISH_PAGE, self.finish_page)
        self.setMinimumWidth(640)

    def setup(self) -> FirstRunSetup:
        """What Finish would save, from the pages as they are now."""
        name, address = self.identity_page.identity()
        entries: list[tuple[ProviderConfig, str | None]] = []
        first = self.first_page.entry()
        if first is not None:
            entries.append(first)
        entries += [(config, None) for config in self.draft.imported]
        backup = self.backup_page.entry()
        if backup is not None:
            entries.append(backup)
        return FirstRunSetup(name, address, tuple(entries))

    def accept(self) -> None:
        """Finish: save off the GUI thread; close only once everything is stored."""
        if self._saving:
            return
        setup = self.setup()
        self._set_saving(True)
        self.finish_page.error.setText("Saving…")
        self._bridge.call(
            save_setup,
            self._workspace,
            setup,
            on_success=self._on_setup_saved,
            on_error=self._on_save_failed,
        )

    def reject(self) -> None:
        if self._saving:
            return  # the save runs to its end; what it stored is then reported, not hidden
        super().reject()

    def done(self, result: int) -> None:
        # Answers of connection tests or imports still running must not reach closed pages.
        for page in (self.first_page, self.backup_page):
            page.form.forget_pending_test()
            if page.imports is not None:
                page.imports.close_panel()
        super().done(result)

    def _on_setup_saved(self, setup: FirstRunSetup) -> None:
        self._set_saving(False)
        self.finish_page.error.setText("")
        self.setup_saved.emit(setup)
        super().accept()

    def _on_save_failed(self, error: BaseException) -> None:
        self._set_saving(False)
        if is_shutdown_error(error):
            return
        reason = one_line(error).rstrip(".")
        self.finish_page.error.setText(
            f"Nothing was saved. {reason}. Go Back to change the setup (a provider without "
            "a password needs no keyring), or Cancel."
        )

    def _set_saving(self, saving: bool) -> None:
        self._saving = saving
        for which in (
            QWizard.WizardButton.BackButton,
            QWizard.WizardButton.FinishButton,
            QWizard.WizardButton.CancelButton,
        ):
            self.button(which).setEnabled(not saving)


def should_run_first_run_wizard(workspace: Workspace, *, demo: bool) -> bool:
    """The wizard is for a real start with no provider at all (the demo brings its own)."""
    return not demo and not workspace.list_providers()


def run_first_run_wizard_if_needed(
    workspace: Workspace, bridge: CoreBridge, *, demo: bool = False
) -> bool:
    """Run the wizard (modal) when ``should_run_first_run_wizard``; whether it saved."""
    if not should_run_first_run_wizard(workspace, demo=demo):
        return False
    wizard = FirstRunWizard(workspace, bridge)
    try:
        return wizard.exec() == QDialog.DialogCode.Accepted
    finally:
        wizard.deleteLater()  # no parent: delete it on this thread, not in a gc pass
