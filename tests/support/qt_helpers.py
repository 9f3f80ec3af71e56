"""Helpers for tests that drive the real window and its loop thread."""

from __future__ import annotations

from typing import Any

from pytestqt.qtbot import QtBot


def settle(qtbot: QtBot, bridge: Any, timeout: int = 10_000) -> None:
    """Wait for a round trip through the loop thread (requests run there in order).

    Deliberately not ``qtbot.wait_signal`` on the bridge's private
    signal: that signal is emitted from the loop thread all the time (the window's refresh),
    and a queued emission reaching pytest-qt's blocker after it was torn down crashed
    PySide6 (a dangling bound method in a queued call).
    """
    answered: list[bool] = []
    bridge.call(lambda: None, on_success=lambda _result: answered.append(True))
    qtbot.waitUntil(lambda: bool(answered), timeout=timeout)
