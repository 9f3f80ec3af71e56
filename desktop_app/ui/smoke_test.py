"""``relaydesk --smoke-test``: prove a build starts, shows its outbox and quits cleanly."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer

from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.outbox_model import PAGE_SIZE

SMOKE_TEST_TIMEOUT_MS = 30_000


class SmokeTest(QObject):
    """``relaydesk --smoke-test``: once the window shows the outbox, say so and quit.

    For packaging checks (packaging/build_bundle.sh): a build that gets this far has found
    Qt and its plugins, migrated and read its database and shown the window; it then leaves
    through the normal quit path, so a crash on the way out fails the check too.
    """

    def __init__(self, window: MainWindow, timeout_ms: int = SMOKE_TEST_TIMEOUT_MS) -> None:
        super().__init__(window)
        self._window = window
        self._timeout_ms = timeout_ms
        self._done = False
        self.exit_status = 0
        model = window.outbox.model
        # The outbox loads in the background: it is counted after the window's first
        # refresh and its first page of rows arrives separately, in either order.
        model.total_changed.connect(self._on_outbox_changed)
        model.rowsInserted.connect(self._on_outbox_changed)
        QTimer.singleShot(timeout_ms, self._on_timeout)

    def _on_outbox_changed(self, *_args: object) -> None:
        model = self._window.outbox.model
        total = model.total()
        if self._done or total is None or not self._window.isVisible():
            return
        if model.rowCount() < min(total, PAGE_SIZE):
            return
        messages = "message" if total == 1 else "messages"
        self._finish(0, f"smoke test: window open, outbox loaded ({total} {messages})")

    def _on_timeout(self) -> None:
        if self._done:
            return
        model = self._window.outbox.model
        self._finish(
            1,
            f"smoke test: the outbox did not load within {self._timeout_ms // 1000} s "
            f"(window visible: {self._window.isVisible()}, messages counted: {model.total()}, "
            f"rows shown: {model.rowCount()})",
        )

    def _finish(self, status: int, line: str) -> None:
        self._done = True
        self.exit_status = status
        print(line, file=sys.stdout if status == 0 else sys.stderr, flush=True)
        # Not from inside the model's signal: the window quits from the event loop.
        QTimer.singleShot(0, self._window.quit)
