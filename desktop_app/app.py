"""Composition root of the desktop app: wires the core, the loop thread and the window."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, QSocketNotifier
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app.core.demo import DemoProviders
from desktop_app.core.errors import EnvironmentProblem
from desktop_app.core.log_setup import configure_logging
from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace
from desktop_app.resource_files import APP_ID, ICON_SIZES, app_icon_png
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.first_run import run_first_run_wizard_if_needed
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.smoke_test import SmokeTest

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


@contextlib.contextmanager
def quit_on_termination_signals(window: MainWindow) -> Iterator[None]:
    """SIGTERM (logout, shutdown, ``kill``) and SIGINT (Ctrl+C) quit like the Quit action.

    Without this, Python's default handling ended the process on the spot: transactions in
    flight were cut off (their messages left as ``sending``, later ``unknown``, possibly sent
    twice) and SIGINT was not even noticed while Qt's loop ran. The signal only wakes a
    socket; the window quits from the Qt event loop, which stops the engine cleanly.
    """
    receiver, sender = socket.socketpair()
    receiver.setblocking(False)
    sender.setblocking(False)
    notifier = QSocketNotifier(receiver.fileno(), QSocketNotifier.Type.Read)

    def on_signal() -> None:
        with contextlib.suppress(OSError):
            receiver.recv(64)
        log.info("termination signal: quitting")
        window.quit()

    notifier.activated.connect(on_signal)
    previous_fd = signal.set_wakeup_fd(sender.fileno())
    # The Python-level handler does nothing: the C-level one already wrote the wake-up byte.
    previous = {
        signum: signal.signal(signum, lambda _signum, _frame: None)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        receiver.close()
        sender.close()


def freeze_startup_objects() -> None:
    """Take everything built so far out of the garbage collector's full collections.

    Qt wrappers, pyqtgraph, numpy, SQLAlchemy and the widgets live as long as the app; a full
    (generation 2) collection walked them all and held the GIL for ~110 ms, which froze
    the window mid-campaign (measured with tests/benchmarks/bench_gui_stall.py).
    """
    gc.collect()
    gc.freeze()


def app_icon() -> QIcon:
    """Relaydesk's icon at every rendered size, so each place Qt draws it picks a sharp one."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = app_icon_png(size)
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
        else:
            log.warning("app icon missing: %s", path)
    return icon


def run_gui(
    *, data_dir: Path, demo: bool = False, verbose: bool = False, smoke_test: bool = False
) -> int:
    """Open the main window and deliver until the user quits (or the smoke test is done)."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("Relaydesk")
    app.setOrganizationName("Relaydesk")
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
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
    if not smoke_test:  # a smoke test runs unattended: nobody would answer the wizard
        run_first_run_wizard_if_needed(workspace, bridge, demo=demo)
    controller = DeliveryController(workspace, bridge)
    settings = QSettings("Relaydesk", "Relaydesk-demo" if demo else "Relaydesk")
    window = MainWindow(workspace, bridge, controller, demo=demo, settings=settings)
    window.show()
    smoke = SmokeTest(window) if smoke_test else None
    freeze_startup_objects()
    controller.start()
    try:
        with quit_on_termination_signals(window):
            status = app.exec()
            return status if smoke is None else max(status, smoke.exit_status)
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
