"""The real GUI stack for tests: workspace, loop thread, bridge, controller and main window.

Nothing is faked: ``Workspace.open`` on a temporary data directory, a started ``LoopThread``,
the ``CoreBridge`` and ``DeliveryController`` the app uses, and a ``MainWindow`` shown
(offscreen) through qtbot, with its QSettings in an ini file under ``tmp_path``. Passwords go
to the private Secret Service of ``tests/support/secret_service.py``, never to a real keyring.

Tests that need data before the window exists ask for ``workspace``, fill it, then call
``make_stack()``; the others ask for ``stack``.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, Qt, QTimer
from PySide6.QtWidgets import QAbstractButton, QApplication, QDialog, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.core.compose import build_message
from desktop_app.core.models import ProviderConfig, Security
from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.main_window import MainWindow

THREAD_END_TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def gui_thread_hygiene() -> Iterator[None]:
    """Garbage is collected on the GUI thread, and every thread a test starts has ended.

    Python's cyclic collector runs on whichever thread happens to allocate: the loop
    thread, an executor thread, an SMTP server's thread. When the garbage holds a QObject
    that Python owns (a CoreBridge kept in a cycle by its pending callbacks, a model without
    a parent), its C++ destructor ran on that thread, and the test run died with a
    segmentation fault now and then. During a GUI test nothing is collected automatically;
    afterwards everything is, here. Autouse, so it is set up before and torn down after
    every other function fixture.
    """
    before = set(threading.enumerate())
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()
    deadline = time.monotonic() + THREAD_END_TIMEOUT
    leaked: list[threading.Thread] = []
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked:
            return
        time.sleep(0.02)
    pytest.fail(f"threads left running after the test: {[t.name for t in leaked]}")


@pytest.fixture
def workspace(data_dir: Path, secret_service: dict[str, str]) -> Iterator[Workspace]:
    """The opened data directory; closed after the GUI stack is gone."""
    opened = Workspace.open(data_dir)
    yield opened
    opened.close()


@dataclass
class GuiStack:
    """Everything ``app.run_gui`` wires together, for one test."""

    workspace: Workspace
    runtime: LoopThread
    bridge: CoreBridge
    controller: DeliveryController
    window: MainWindow
    settings_path: Path
    extra_windows: list[MainWindow] = field(default_factory=list)

    def open_window(self) -> MainWindow:
        """Another MainWindow on the same core and the same settings file (a restart)."""
        window = MainWindow(
            self.workspace, self.bridge, self.controller, settings=ini_settings(self.settings_path)
        )
        self.extra_windows.append(window)
        return window


def ini_settings(path: Path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


def quit_window(window: QWidget) -> None:
    """What the Quit action does; as qtbot's before-close hook it avoids the close prompt."""
    if isinstance(window, MainWindow):
        window.quit()


@pytest.fixture
def make_stack(
    qtbot: QtBot, workspace: Workspace, tmp_path: Path
) -> Iterator[Callable[[], GuiStack]]:
    """Factory: build (once) and show the real main window over ``workspace``."""
    stacks: list[GuiStack] = []

    def make() -> GuiStack:
        assert not stacks, "one stack per test"
        runtime = LoopThread()
        runtime.start()
        bridge = CoreBridge(runtime)
        controller = DeliveryController(workspace, bridge)
        settings_path = tmp_path / "relaydesk-gui.ini"
        window = MainWindow(workspace, bridge, controller, settings=ini_settings(settings_path))
        stack = GuiStack(workspace, runtime, bridge, controller, window, settings_path)
        stacks.append(stack)
        qtbot.addWidget(window, before_close_func=quit_window)
        with qtbot.waitExposed(window):
            window.show()
        return stack

    yield make

    for stack in stacks:
        # qtbot has already closed the window through quit_window (its teardown hook runs
        # before fixture teardown); closing again is harmless and covers a failed setup.
        for window in (*stack.extra_windows, stack.window):
            quit_window(window)
        stack.controller.stop()
        stack.runtime.stop()
        # Answers of requests cut short by the loop's shutdown arrive as queued signals:
        # deliver them while the widgets still exist, then delete the widgets.
        QApplication.processEvents()
        # The QObjects without a parent go now, on this thread, not whenever the garbage
        # collector finds them (see gui_thread_hygiene).
        for owned in (*stack.extra_windows, stack.window, stack.controller, stack.bridge):
            owned.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QApplication.processEvents()


@pytest.fixture
def stack(make_stack: Callable[[], GuiStack]) -> GuiStack:
    """The real stack over an empty workspace, window shown, engine not started."""
    return make_stack()


# -- helpers reached through fixtures (conftest modules are not importable by name) ------


def loopback_provider(name: str, port: int, **fields: Any) -> ProviderConfig:
    """A provider on 127.0.0.1 without TLS (allowed on loopback)."""
    return ProviderConfig(name=name, host="127.0.0.1", port=port, security=Security.NONE, **fields)


def queue_messages(workspace: Workspace, count: int, *, subject: str = "Newsletter") -> list[int]:
    """``count`` one-recipient messages, queued in one transaction; their outbox ids."""
    return workspace.queue(
        [
            build_message(
                sender="news@example.test",
                recipients=[f"reader{n:05d}@example.test"],
                subject=f"{subject} {n}",
                text=f"Hello reader {n}\n",
            )
            for n in range(count)
        ]
    )


class ModalDriver:
    """Answer the next modal dialog from inside its own ``exec()``, as a person would.

    ``drive(handler)`` arms a timer; when the dialog is up, ``handler(dialog)`` runs inside the
    dialog's event loop. If the handler fails or no dialog shows up, the dialog (if any) is
    rejected so that ``exec()`` returns and the test fails instead of hanging.
    """

    POLL_MS = 10
    GIVE_UP_POLLS = 500

    def __init__(self, qtbot: QtBot) -> None:
        self._qtbot = qtbot
        self.error: BaseException | None = None
        self.handled = 0
        self._expected = 0
        self._polls = 0
        self._closed = False

    def drive(self, handler: Callable[[QDialog], None]) -> None:
        self._polls = 0
        self._expected = self.handled + 1
        QTimer.singleShot(self.POLL_MS, lambda: self._poll(handler))

    def close(self) -> None:
        """Stop polling (end of the test): never answer the next test's dialogs."""
        self._closed = True

    def _poll(self, handler: Callable[[QDialog], None]) -> None:
        if self._closed or self.handled >= self._expected:
            return
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QDialog) or not dialog.isVisible():
            self._polls += 1
            if self._polls < self.GIVE_UP_POLLS:
                QTimer.singleShot(self.POLL_MS, lambda: self._poll(handler))
            else:
                self.error = TimeoutError("no modal dialog appeared")
            return
        try:
            handler(dialog)
            self.handled += 1
        except BaseException as exc:  # re-raised by check(), in the test's own frame
            self.error = exc
            dialog.reject()

    def check(self) -> None:
        """After the call that should have shown the dialog: it was shown and answered."""
        if self.error is not None:
            raise self.error
        if self.handled < self._expected:
            self._closed = True
            raise AssertionError("the expected dialog did not appear")

    def click(self, dialog: QDialog, text: str) -> None:
        """Click the dialog's button labelled ``text`` (mnemonic '&' ignored)."""
        for button in dialog.findChildren(QAbstractButton):
            if button.text().replace("&", "") == text and button.isVisible():
                self._qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
                return
        labels = [b.text() for b in dialog.findChildren(QAbstractButton)]
        raise AssertionError(f"no button {text!r} in {dialog.windowTitle()!r}: {labels}")


@pytest.fixture
def modal(qtbot: QtBot) -> Iterator[ModalDriver]:
    driver = ModalDriver(qtbot)
    yield driver
    driver.close()


@pytest.fixture
def gui_helpers() -> Any:
    """The plain helpers above, for test modules."""

    class Helpers:
        loopback_provider = staticmethod(loopback_provider)
        queue_messages = staticmethod(queue_messages)
        ini_settings = staticmethod(ini_settings)

    return Helpers
