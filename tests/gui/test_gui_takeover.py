"""A window watching another Relaydesk takes over once that one lets go of the data folder.

The other Relaydesk is a real second process holding the real instance lock on the same
data directory; it "exits" when its stdin is closed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from desktop_app.core.models import MessageState
from desktop_app.core.storage.outbox_views import OutboxViews
from desktop_app.core.workspace import Workspace
from desktop_app.ui.delivery_controller import TOOK_OVER_MESSAGE

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The issue's promise: the watching window takes over within 5 s of the lock being released.
TAKEOVER_TIMEOUT_MS = 5000
#: How long a paused window is watched to make sure it does not take over anyway.
NO_TAKEOVER_MS = 3000
SEND_TIMEOUT_MS = 30_000

HOLD_LOCK = """
import sys
from pathlib import Path
from desktop_app.core.instance_lock import InstanceLock

lock = InstanceLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
sys.stdin.read()  # until the test closes stdin: then the process ends, and the lock with it
lock.release()
"""


class OtherRelaydesk:
    """A second process that holds ``data_dir``'s instance lock until ``exit()``."""

    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "locked", f"the lock holder did not start: {line!r}"

    def exit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=10) == 0

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.fixture
def other_relaydesk(data_dir: Path) -> Iterator[Callable[[], OtherRelaydesk]]:
    others: list[OtherRelaydesk] = []

    def start() -> OtherRelaydesk:
        other = OtherRelaydesk(data_dir)
        others.append(other)
        return other

    yield start
    for other in others:
        other.kill()


@pytest.fixture
def watching_stack(
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    other_relaydesk: Callable[[], OtherRelaydesk],
) -> Any:
    """A window started while another process holds the lock, with one message queued."""
    server = scripted_smtp()
    workspace.add_provider(gui_helpers.loopback_provider("Local", server.port))
    ids = gui_helpers.queue_messages(workspace, 1, subject="Waiting")
    other = other_relaydesk()
    stack = make_stack()
    stack.controller.start()
    assert stack.controller.state == "watching"
    assert stack.window.engine_label.text() == "Watching (another Relaydesk is sending)"
    stack.server = server
    stack.ids = ids
    stack.other = other
    return stack


def outbox_states(workspace: Workspace, ids: list[int]) -> list[MessageState]:
    return [entry.state for entry in OutboxViews(workspace.database).entries(ids)]


def test_watching_window_takes_over_when_the_other_relaydesk_exits(
    watching_stack: Any, qtbot: QtBot
) -> None:
    stack = watching_stack
    window = stack.window
    qtbot.wait(1500)  # a few retries while the other one still holds the lock
    assert stack.controller.state == "watching"
    assert stack.server.messages == []

    stack.other.exit()
    qtbot.waitUntil(lambda: stack.controller.state == "sending", timeout=TAKEOVER_TIMEOUT_MS)
    assert window.engine_label.text() == "Sending"
    assert window.send_action.text() == "Pause sending"
    assert window.statusBar().currentMessage() == TOOK_OVER_MESSAGE
    qtbot.waitUntil(lambda: len(stack.server.messages) == 1, timeout=SEND_TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: outbox_states(stack.workspace, stack.ids) == [MessageState.SENT],
        timeout=SEND_TIMEOUT_MS,
    )
    # "Engine started" and "Engine idle" came meanwhile: the takeover is still what it says.
    assert window.statusBar().currentMessage() == TOOK_OVER_MESSAGE


def test_paused_while_watching_does_not_take_over_until_started(
    watching_stack: Any, qtbot: QtBot
) -> None:
    stack = watching_stack
    window = stack.window
    # While watching, the toolbar offers to pause: "do not take over".
    assert window.send_action.text() == "Pause sending"
    window.send_action.trigger()
    assert stack.controller.state == "paused"
    assert window.engine_label.text() == "Paused"
    assert window.send_action.text() == "Start sending"

    stack.other.exit()
    qtbot.wait(NO_TAKEOVER_MS)
    assert stack.controller.state == "paused"
    assert stack.server.messages == []
    assert window.statusBar().currentMessage() != TOOK_OVER_MESSAGE

    # "Start sending" with the lock free: this window sends at once.
    window.send_action.trigger()
    assert stack.controller.state == "sending"
    qtbot.waitUntil(lambda: len(stack.server.messages) == 1, timeout=SEND_TIMEOUT_MS)
    qtbot.waitUntil(
        lambda: outbox_states(stack.workspace, stack.ids) == [MessageState.SENT],
        timeout=SEND_TIMEOUT_MS,
    )


def test_started_again_while_the_other_still_sends_watches_and_takes_over(
    watching_stack: Any, qtbot: QtBot
) -> None:
    stack = watching_stack
    window = stack.window
    window.send_action.trigger()  # pause
    assert stack.controller.state == "paused"
    window.send_action.trigger()  # start: the other one still holds the lock
    assert stack.controller.state == "watching"

    stack.other.exit()
    qtbot.waitUntil(lambda: stack.controller.state == "sending", timeout=TAKEOVER_TIMEOUT_MS)
    assert window.statusBar().currentMessage() == TOOK_OVER_MESSAGE
    qtbot.waitUntil(lambda: len(stack.server.messages) == 1, timeout=SEND_TIMEOUT_MS)


def test_stopped_while_watching_does_not_take_over(watching_stack: Any, qtbot: QtBot) -> None:
    stack = watching_stack
    stack.controller.stop()
    assert stack.controller.state == "stopped"
    stack.other.exit()
    qtbot.wait(NO_TAKEOVER_MS)
    assert stack.controller.state == "stopped"
    assert stack.server.messages == []
