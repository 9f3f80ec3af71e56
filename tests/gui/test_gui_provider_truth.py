"""One truth about providers: every view says the same word, and follows other processes.

The Providers page, the Dashboard's health table, the tray's tooltip, ``relaydesk health
--json`` and ``relaydesk provider list --json`` all show the core's state word
(``ProviderLiveState.state``); a provider added or disabled with the CLI while the window
sends shows in the window within 2 s, and the engine starts or stops using it then too.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from desktop_app.core.workspace import Workspace
from desktop_app.ui.health_table import STATE_COLUMN as DASHBOARD_STATE_COLUMN
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.provider_states import STATE_WORD_ROLE, state_label
from desktop_app.ui.providers_model import STATE_COLUMN
from tests.cli.cli_harness import Relaydesk
from tests.support.servers import LOOPBACK, free_port

#: The issue's bound: a change made by another process shows in a running window within 2 s.
SHOWN_WITHIN_MS = 2000
SETTLE_MS = 30_000
SEND_TIMEOUT_MS = 30_000
CLI_TIMEOUT_MS = 120_000


def page_words(window: MainWindow) -> dict[str, str]:
    """Providers page: name -> raw word (and the shown text is that word's label)."""
    model = window.providers.model
    words: dict[str, str] = {}
    for row in range(model.rowCount()):
        index = model.index(row, STATE_COLUMN)
        word = index.data(STATE_WORD_ROLE)
        assert index.data() == state_label(word), (index.data(), word)
        words[model.provider_at(row).name] = word
    return words


def dashboard_words(window: MainWindow) -> dict[str, str]:
    """Dashboard health table: name -> raw word (shown as its label)."""
    table = window.dashboard.providers_table
    words: dict[str, str] = {}
    for name in table.names():
        word = table.state_word(name)
        assert word is not None, name
        shown = table.text(table.names().index(name), DASHBOARD_STATE_COLUMN)
        assert shown == state_label(word), (shown, word)
        words[name] = word
    return words


def tray_words(window: MainWindow) -> dict[str, str]:
    """The tray's tooltip: one "name: label" line per provider after the summary line."""
    lines = window.tray.toolTip().splitlines()[1:]
    return dict(line.rsplit(": ", 1) for line in lines)


def stored_words(workspace: Workspace) -> dict[str, str]:
    return {s.provider_name: s.state.value for s in workspace.provider_live_states().values()}


def run_cli(qtbot: QtBot, relaydesk: Relaydesk, *args: str) -> tuple[str, float]:
    """``relaydesk ARGS`` as a subprocess while the window's event loop keeps running.

    Returns its standard output and the (monotonic) moment it returned.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "desktop_app", "--data-dir", str(relaydesk.data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=relaydesk.cwd,
        env=relaydesk.env,
    )
    try:
        qtbot.waitUntil(lambda: process.poll() is not None, timeout=CLI_TIMEOUT_MS)
    finally:
        if process.poll() is None:
            process.kill()
    returned = time.monotonic()
    out, err = process.communicate()
    assert process.returncode == 0, f"relaydesk {' '.join(args)}: {out}\n{err}"
    return out, returned


def wait_within(qtbot: QtBot, since: float, condition: Any) -> None:
    """``condition()`` holds within SHOWN_WITHIN_MS of ``since`` (a monotonic moment)."""
    left = SHOWN_WITHIN_MS - (time.monotonic() - since) * 1000
    qtbot.waitUntil(condition, timeout=max(1, int(left)))


def test_every_view_says_the_same_word(
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    qtbot: QtBot,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    server = scripted_smtp()
    workspace.add_provider(gui_helpers.loopback_provider("Alpha", server.port, priority=0))
    workspace.add_provider(gui_helpers.loopback_provider("Bravo", free_port(), priority=1))
    workspace.add_provider(
        gui_helpers.loopback_provider("Charlie", server.port, priority=2, enabled=False)
    )
    workspace.settings.set("health.probe_interval_seconds", 0.5)
    workspace.settings.set("health.probe_interval_down_seconds", 0.5)
    expected = {"Alpha": "up", "Bravo": "down", "Charlie": "disabled"}
    stack = make_stack()
    window = stack.window
    stack.controller.start()

    # Settled: the window shows them, and the monitor has stored them for other processes.
    qtbot.waitUntil(lambda: page_words(window) == expected, timeout=SETTLE_MS)
    qtbot.waitUntil(lambda: stored_words(workspace) == expected, timeout=SETTLE_MS)
    qtbot.waitUntil(lambda: dashboard_words(window) == expected, timeout=SETTLE_MS)

    relaydesk = Relaydesk(data_dir, cwd=tmp_path)
    health = relaydesk.json("health")
    listing = relaydesk.json("provider", "list")

    views = {
        "Providers page": page_words(window),
        "Dashboard": dashboard_words(window),
        "tray": {name: word.replace(" ", "_") for name, word in tray_words(window).items()},
        "health --json": {entry["provider"]: entry["state"] for entry in health},
        "provider list --json": {entry["name"]: entry["state"] for entry in listing},
    }
    assert views == dict.fromkeys(views, expected)

    # A window opened now (a restart) shows the stored words at once, not "unknown".
    again = stack.open_window()
    assert page_words(again) == expected
    window.grab().save(str(tmp_path / "providers-truth.png"))


def test_cli_changes_show_within_2_s_and_the_engine_follows(
    workspace: Workspace,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    qtbot: QtBot,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    old_server, new_server = scripted_smtp(), scripted_smtp()
    workspace.add_provider(gui_helpers.loopback_provider("Old", old_server.port, priority=5))
    stack = make_stack()
    window = stack.window
    stack.controller.start()
    relaydesk = Relaydesk(data_dir, cwd=tmp_path)
    gui_helpers.queue_messages(workspace, 2, subject="Before")
    stack.controller.wake()
    qtbot.waitUntil(lambda: len(old_server.messages) == 2, timeout=SEND_TIMEOUT_MS)

    # Added in a terminal, in front of the one in use.
    _out, returned = run_cli(
        qtbot,
        relaydesk,
        "provider", "add", "New", "--host", LOOPBACK, "--port", str(new_server.port),
        "--security", "none", "--priority", "0",
    )  # fmt: skip
    wait_within(qtbot, returned, lambda: "New" in window.providers.model.names())
    wait_within(qtbot, returned, lambda: "New" in window.dashboard.providers_table.names())
    assert window.providers.model.names() == ["New", "Old"]
    # ... and the engine sends through it.
    gui_helpers.queue_messages(workspace, 3, subject="Added")
    stack.controller.wake()
    qtbot.waitUntil(lambda: len(new_server.messages) == 3, timeout=SEND_TIMEOUT_MS)
    assert len(old_server.messages) == 2

    # Disabled in a terminal: the window says so within 2 s, and the engine stops using it.
    _out, returned = run_cli(qtbot, relaydesk, "provider", "set", "New", "--disable")
    wait_within(qtbot, returned, lambda: page_words(window).get("New") == "disabled")
    wait_within(qtbot, returned, lambda: dashboard_words(window).get("New") == "disabled")
    assert tray_words(window).get("New") == "disabled"
    gui_helpers.queue_messages(workspace, 3, subject="Disabled")
    stack.controller.wake()
    qtbot.waitUntil(lambda: len(old_server.messages) == 5, timeout=SEND_TIMEOUT_MS)
    assert len(new_server.messages) == 3
    window.navigation.setCurrentRow(3)
    window.grab().save(str(tmp_path / "providers-after-cli.png"))
