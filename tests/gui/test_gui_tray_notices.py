"""Tray notices that fit the state (issue 15 item 7): "Outbox empty" once per backlog and
never while a provider is down, failures said instead of a cheer, the icon of the severity."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QSystemTrayIcon
from pytestqt.qtbot import QtBot

from desktop_app.core.events import AlertRaised
from desktop_app.core.workspace import Workspace
from desktop_app.ui import main_window
from desktop_app.ui.tray import Health, drained_notice

TRAY_NOISE = r"No such signal QPlatformNativeInterface::systemTrayWindowChanged"
SEND_TIMEOUT_MS = 30_000


@pytest.mark.parametrize(
    ("health", "failed", "expected"),
    [
        (Health.GOOD, 0, ("Outbox empty", "Every queued message has been sent", "info")),
        (
            Health.GOOD,
            3,
            ("Outbox empty", "3 messages failed; the Outbox page has the reasons", "warning"),
        ),
        (
            Health.GOOD,
            1,
            ("Outbox empty", "1 message failed; the Outbox page has the reasons", "warning"),
        ),
        (Health.DEGRADED, 0, None),  # a provider is down: no cheer
        (Health.DOWN, 0, None),
        (Health.IDLE, 0, None),  # paused
    ],
)  # fmt: skip
def test_what_an_empty_outbox_says(
    health: Health, failed: int, expected: tuple[str, str, str] | None
) -> None:
    assert drained_notice(health, failed) == expected


@pytest.fixture
def tray_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
    # Longer than the window's 1 s count refresh, so the next batch is seen in time.
    monkeypatch.setattr(main_window, "DRAIN_QUIET_MS", 3000)


@pytest.mark.qt_log_ignore(TRAY_NOISE, extend=True)
def test_a_backlog_sent_in_batches_makes_one_outbox_empty_notice(
    tray_available: None,
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    qtbot: QtBot,
) -> None:
    # Slow enough (one connection, 0.3 s a message) that the window sees each batch waiting.
    server = scripted_smtp(delays={".": 0.3})
    workspace.add_provider(gui_helpers.loopback_provider("Slow", server.port, max_connections=1))
    stack = make_stack()
    window = stack.window
    stack.controller.start()
    for batch in range(3):  # the outbox empties between batches, for less than the quiet time
        gui_helpers.queue_messages(workspace, 5, subject=f"Batch {batch}")
        stack.controller.wake()
        qtbot.waitUntil(lambda: window._counts.waiting > 0, timeout=SEND_TIMEOUT_MS)
        qtbot.waitUntil(lambda: window._counts.waiting == 0, timeout=SEND_TIMEOUT_MS)
    assert len(server.messages) == 15
    qtbot.waitUntil(
        lambda: ("Outbox empty", "Every queued message has been sent") in window.tray.notifications,
        timeout=SEND_TIMEOUT_MS,
    )
    qtbot.wait(2 * main_window.DRAIN_QUIET_MS)
    empties = [n for n in window.tray.notifications if n[0] == "Outbox empty"]
    assert len(empties) == 1, window.tray.notifications


@pytest.mark.qt_log_ignore(TRAY_NOISE, extend=True)
def test_alert_balloons_carry_the_icon_of_their_severity(
    tray_available: None, make_stack: Any, qtbot: QtBot
) -> None:
    tray = make_stack().window.tray
    tray.on_alert(
        AlertRaised(1, "provider_down", "alpha", "critical", "alpha is down", 0.0, emailed=False)
    )
    tray.on_alert(
        AlertRaised(2, "failover", "alpha", "warning", "Failover: alpha", 0.0, emailed=False)
    )
    assert tray.severities[-2:] == ["critical", "warning"]
    assert tray.notifications[-2][0] == "Critical: provider down"
