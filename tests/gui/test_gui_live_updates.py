"""While the engine sends, the window follows: outbox rows, dashboard counts, provider state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop_app.core.events import EngineStatusChanged, MessageStateChanged
from desktop_app.core.models import MessageState
from desktop_app.core.workspace import Workspace
from tests.support.qt_helpers import settle

SEND_TIMEOUT_MS = 30_000


def states_shown(model: Any) -> list[str]:
    return [model.index(row, 0).data() for row in range(model.rowCount())]


def test_rows_and_dashboard_follow_the_engine(
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    server = scripted_smtp()
    workspace.add_provider(gui_helpers.loopback_provider("Local", server.port, max_connections=4))
    gui_helpers.queue_messages(workspace, 50)
    stack = make_stack()
    window = stack.window
    model = window.outbox.model
    qtbot.waitUntil(lambda: model.rowCount() == 50)
    assert set(states_shown(model)) == {"queued"}
    qtbot.waitUntil(lambda: window.dashboard.count_labels[MessageState.QUEUED].text() == "50")

    # Start sending the way a person does: Ctrl+P (the toolbar's "Start sending").
    with qtbot.waitActive(window):
        window.activateWindow()
    assert window.send_action.text() == "Start sending"
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert stack.controller.state == "sending"
    assert window.send_action.text() == "Pause sending"
    assert window.engine_label.text() == "Sending"

    qtbot.waitUntil(lambda: set(states_shown(model)) == {"sent"}, timeout=SEND_TIMEOUT_MS)
    assert {model.index(row, 3).data() for row in range(50)} == {"Local"}
    qtbot.waitUntil(
        lambda: window.dashboard.count_labels[MessageState.SENT].text() == "50",
        timeout=SEND_TIMEOUT_MS,
    )
    assert window.dashboard.count_labels[MessageState.QUEUED].text() == "0"
    assert window.dashboard.rate_label.text() == "50 messages/min"
    assert len(set(server.message_ids())) == 50
    # The provider's state reached the dashboard and the providers table.
    qtbot.waitUntil(lambda: window.providers.model.index(0, 1).data() == "up")
    window.navigation.setCurrentRow(2)
    window.grab().save(str(tmp_path / "outbox-after-sending.png"))


def test_message_queued_from_compose_shows_up_and_is_sent(
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    qtbot: QtBot,
) -> None:
    server = scripted_smtp()
    workspace.add_provider(gui_helpers.loopback_provider("Local", server.port))
    stack = make_stack()
    window = stack.window
    stack.controller.start()
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    compose = window.compose
    qtbot.keyClicks(compose.from_field, "team@example.test")
    qtbot.keyClicks(compose.recipients, "alice@example.test, bob@example.test")
    qtbot.keyClicks(compose.subject, "Hello from the GUI")
    qtbot.keyClicks(compose.body, "Hi!")
    qtbot.mouseClick(compose.queue_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: compose.status.text().startswith("Queued <"))

    # The Outbox page (empty until now, so its end is in view) shows it without a refresh.
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    model = window.outbox.model
    qtbot.waitUntil(lambda: model.rowCount() == 1)
    assert model.index(0, 2).data() == "Hello from the GUI"
    qtbot.waitUntil(lambda: states_shown(model) == ["sent"], timeout=SEND_TIMEOUT_MS)
    assert model.index(0, 1).data() == "alice@example.test, bob@example.test"
    [received] = server.wait_for_messages(1)
    assert set(received.rcpt_tos) == {"alice@example.test", "bob@example.test"}


def test_pause_stops_new_sends_and_start_resumes(
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    qtbot: QtBot,
) -> None:
    server = scripted_smtp()
    workspace.add_provider(gui_helpers.loopback_provider("Local", server.port))
    stack = make_stack()
    window = stack.window
    stack.controller.start()
    qtbot.waitUntil(lambda: window.engine_label.text() == "Sending")
    window.toggle_sending()  # the toolbar action: "Pause sending"
    assert stack.controller.state == "paused"
    assert window.send_action.text() == "Start sending"
    assert window.engine_label.text() == "Paused"
    # The engine took the pause before this request (the loop thread runs them in order).
    settle(qtbot, stack.bridge)
    gui_helpers.queue_messages(workspace, 3)
    window.outbox.outbox_changed.emit()  # as after "Retry now": wake the engine
    qtbot.wait(300)
    assert server.messages == []
    window.toggle_sending()
    assert stack.controller.state == "sending"
    server.wait_for_messages(3, timeout=SEND_TIMEOUT_MS / 1000)


def test_bridge_hands_over_bursts_in_order_and_in_batches(stack: Any, qtbot: QtBot) -> None:
    """One signal per batch: per-event signals froze the GUI under load (bench_gui_stall)."""
    batches: list[list[MessageStateChanged]] = []
    statuses: list[EngineStatusChanged] = []
    stack.bridge.message_states_changed.connect(batches.append)
    stack.bridge.engine_status_changed.connect(statuses.append)
    events = [
        MessageStateChanged(outbox_id=n, message_id=f"<{n}@example.test>", state=MessageState.SENT)
        for n in range(1000)
    ]
    status = EngineStatusChanged(running=True, paused=False, waiting=0, detail="idle")

    def burst() -> None:  # on the loop thread, as the engine publishes
        for event in events[:500]:
            stack.bridge.publish(event)
        stack.bridge.publish(status)
        for event in events[500:]:
            stack.bridge.publish(event)

    stack.runtime.call_soon(burst)
    qtbot.waitUntil(lambda: sum(len(batch) for batch in batches) == 1000)
    assert [event for batch in batches for event in batch] == events
    assert statuses == [status]
    assert len(batches) < 100
