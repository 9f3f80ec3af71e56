"""Helpers for tests that drive the real window and its loop thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget
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


def retype(qtbot: QtBot, widget: QWidget, text: str) -> None:
    """Select everything in the field and type over it, as a person would."""
    target = widget.lineEdit() if isinstance(widget, QAbstractSpinBox) else widget
    qtbot.keyClick(target, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    if text:
        qtbot.keyClicks(target, text)
    else:
        qtbot.keyClick(target, Qt.Key.Key_Backspace)


def choose(qtbot: QtBot, combo: QComboBox, prefix: str) -> None:
    """Pick an entry with the keyboard: Home, then Down until it shows."""
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentText().startswith(prefix):
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    raise AssertionError(f"no entry {prefix!r} in {combo.objectName()}")
