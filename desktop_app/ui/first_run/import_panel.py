"""Providers from elsewhere on the wizard's first-provider page: a Thunderbird profile's SMTP
servers or a team's providers file. Finding and reading files runs off the GUI thread; what
was found comes back as a signal, and the page decides what to keep."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.models import ProviderConfig
from desktop_app.core.provider_files.adding import place_unprioritized, skipped_outcomes
from desktop_app.core.provider_files.text_file import read_text_file
from desktop_app.core.provider_files.thunderbird import (
    ThunderbirdServers,
    find_thunderbird_profiles,
    scan_thunderbird_prefs,
)
from desktop_app.core.provider_files.toml_file import read_providers_toml
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.feedback import ERROR_STYLE, one_line
from desktop_app.ui.provider_dialog import labelled

#: The entry of the profile list that opens a file chooser instead.
OTHER_PREFS_FILE = "Another prefs.js file…"


def read_thunderbird_servers(prefs_js: Path) -> ThunderbirdServers:
    """The SMTP servers of a prefs.js (a profile directory means its prefs.js); blocking."""
    if prefs_js.is_dir():
        prefs_js = prefs_js / "prefs.js"
    return scan_thunderbird_prefs(read_text_file(prefs_js, "prefs.js"))


def read_providers_file(path: Path) -> list[ProviderConfig]:
    """The providers of a TOML providers file, those without a priority one step behind
    the ones before them (the wizard moves them all behind its own); blocking."""
    found = read_providers_toml(read_text_file(path, "providers file"))
    return place_unprioritized(found.providers, found.unprioritized, ())


def thunderbird_profiles() -> list[Path]:
    """Where this user's Thunderbird keeps its profiles; blocking (it reads directories)."""
    return find_thunderbird_profiles(Path.home(), os.environ)


class ImportPanel(QWidget):
    """ "Import from Thunderbird…" and "Import providers file…", and what they found.

    Signals:
        providers_found(list[ProviderConfig], list[ImportOutcome], str): providers read from
            a source, the servers in it that could not be used, and the source's name.
    """

    providers_found = Signal(list, list, str)

    def __init__(self, bridge: CoreBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._closed = False
        # Alt+F and Alt+L: every other letter of these names is taken by a field of the
        # provider form or by the wizard's Back and Next.
        self.thunderbird_button = labelled(
            QPushButton("Import &from Thunderbird…"), "Import from Thunderbird"
        )
        self.file_button = labelled(QPushButton("Import providers fi&le…"), "Import providers file")
        self.report = labelled(QLabel(), "Import report")
        self.report.setWordWrap(True)
        self.report.setTextFormat(Qt.TextFormat.PlainText)
        self.report.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.thunderbird_button.clicked.connect(self._on_thunderbird_clicked)
        self.file_button.clicked.connect(self._on_file_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(QLabel("Already set up elsewhere?"))
        buttons.addWidget(self.thunderbird_button)
        buttons.addWidget(self.file_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.report)
        self.report.setVisible(False)

    def close_panel(self) -> None:
        """The wizard is closing: answers still on their way must not touch the panel."""
        self._closed = True

    def show_report(self, text: str, *, error: bool = False) -> None:
        self.report.setStyleSheet(ERROR_STYLE if error else "")
        self.report.setText(text)
        self.report.setVisible(bool(text))  # an empty label would leave a gap
        self.make_room()

    def make_room(self) -> None:
        """Grow the window when what is shown needs more height: a dialog keeps its size,
        and the form was squeezed until its fields were cut in half."""
        window = self.window()
        if not window.isVisible():
            return
        needed = max(window.sizeHint().height(), window.minimumSizeHint().height())
        if needed > window.height():
            window.resize(window.width(), needed)

    # -- Thunderbird -----------------------------------------------------------------------

    def _on_thunderbird_clicked(self) -> None:
        self._set_busy(True, "Looking for Thunderbird profiles…")
        self._bridge.call(
            thunderbird_profiles, on_success=self._on_profiles_found, on_error=self._on_failed
        )

    def _on_profiles_found(self, profiles: list[Path]) -> None:
        if self._closed:
            return
        self._set_busy(False, "")
        chosen: Path | None = None
        if profiles:
            entries = [str(profile) for profile in profiles] + [OTHER_PREFS_FILE]
            text, ok = QInputDialog.getItem(
                self,
                "Import from Thunderbird",
                "Thunderbird profile to read the SMTP servers of (never passwords):",
                entries,
                0,
                False,
            )
            if not ok:
                return
            if text != OTHER_PREFS_FILE:
                chosen = Path(text)
        if chosen is None:
            name, _filter = QFileDialog.getOpenFileName(
                self,
                "Thunderbird's prefs.js",
                str(Path.home()),
                "Thunderbird preferences (prefs.js);;All files (*)",
            )
            if not name:
                if not profiles:
                    self.show_report("No Thunderbird profile found in the usual places.")
                return
            chosen = Path(name)
        self.import_thunderbird(chosen)

    def import_thunderbird(self, prefs_js: Path) -> None:
        """Read a prefs.js (or a profile directory) off the GUI thread, then report."""
        self._set_busy(True, f"Reading {prefs_js}…")

        def read() -> ThunderbirdServers:
            return read_thunderbird_servers(prefs_js)

        def done(scan: ThunderbirdServers) -> None:
            if self._closed:
                return
            self._set_busy(False, "")
            if not scan.providers and not scan.skipped:
                self.show_report(f"No SMTP servers found in {prefs_js}.", error=True)
                return
            skipped = skipped_outcomes(scan.skipped)
            self.providers_found.emit(list(scan.providers), skipped, "Thunderbird")

        self._bridge.call(read, on_success=done, on_error=self._on_failed)

    # -- providers file --------------------------------------------------------------------

    def _on_file_clicked(self) -> None:
        name, _filter = QFileDialog.getOpenFileName(
            self, "Providers file", str(Path.home()), "Providers files (*.toml);;All files (*)"
        )
        if name:
            self.import_providers_file(Path(name))

    def import_providers_file(self, path: Path) -> None:
        """Read a TOML providers file off the GUI thread, then report."""
        self._set_busy(True, f"Reading {path}…")

        def done(providers: list[ProviderConfig]) -> None:
            if self._closed:
                return
            self._set_busy(False, "")
            if not providers:
                self.show_report(f"{path.name} lists no providers.", error=True)
                return
            self.providers_found.emit(providers, [], path.name)

        self._bridge.call(read_providers_file, path, on_success=done, on_error=self._on_failed)

    # -- both ------------------------------------------------------------------------------

    def _set_busy(self, busy: bool, text: str) -> None:
        self.thunderbird_button.setEnabled(not busy)
        self.file_button.setEnabled(not busy)
        if text or busy:
            self.show_report(text)

    def _on_failed(self, error: BaseException) -> None:
        if self._closed or is_shutdown_error(error):
            return
        self._set_busy(False, "")
        self.show_report(f"Nothing imported: {one_line(error)}", error=True)
