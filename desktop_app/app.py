"""Composition root of the desktop app: wires the core, the loop thread and the window."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app.core.demo import DemoProviders
from desktop_app.core.errors import EnvironmentProblem
from desktop_app.core.log_setup import configure_logging
from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.tray import Health, health_icon

log = logging.getLogger(__name__)


def open_workspace_interactively(data_dir: Path) -> Workspace | None:
    """Open the data folder; on a locked or damaged database, say so and offer a retry."""
    while True:
        try:
            return Workspace.open(data_dir)
        except EnvironmentProblem as exc:
            log.error("cannot open the workspace: %s", exc)
            answer = QMessageBox.critical(
                None,
                "Relaydesk cannot open its data",
                f"{exc}\n\nNothing queued so far has been changed.",
                QMessageBox.StandardButton.Retry | QMessageBox.StandardButton.Close,
            )
            if answer != QMessageBox.StandardButton.Retry:
                return None


def run_gui(*, data_dir: Path, demo: bool = False, verbose: bool = False) -> int:
    """Open the main window and deliver until the user quits."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("Relaydesk")
    app.setOrganizationName("Relaydesk")
    app.setDesktopFileName("relaydesk")
    app.setWindowIcon(QIcon(health_icon(Health.GOOD, 256)))
    # Closing the window may mean "keep sending in the tray"; the window quits explicitly.
    app.setQuitOnLastWindowClosed(False)

    demo_providers = DemoProviders.start() if demo else None
    if demo_providers is not None:
        data_dir = demo_providers.data_dir
    configure_logging(data_dir, verbose=verbose)
    workspace = open_workspace_interactively(data_dir)
    if workspace is None:
        if demo_providers is not None:
            demo_providers.stop()
        return 1
    if demo_providers is not None:
        demo_providers.populate(workspace)

    runtime = LoopThread()
    runtime.start()
    bridge = CoreBridge(runtime)
    controller = DeliveryController(workspace, bridge)
    settings = QSettings("Relaydesk", "Relaydesk-demo" if demo else "Relaydesk")
    window = MainWindow(workspace, bridge, controller, demo=demo, settings=settings)
    window.show()
    controller.start()
    try:
        return app.exec()
    finally:
        controller.stop()
        # Destroy the widgets while Qt still runs: left to interpreter shutdown, PySide6
        # can crash while finalizing them.
        window.deleteLater()
        app.processEvents()
        runtime.stop()
        workspace.close()
        if demo_providers is not None:
            demo_providers.stop()
