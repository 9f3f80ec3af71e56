"""``relaydesk --demo`` end to end: the real app in a child process, offscreen."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0

T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], process: subprocess.Popen[bytes]) -> T:
    """Poll ``check`` until it returns something; fail early if the app died meanwhile."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        if process.poll() is not None:
            pytest.fail(f"the app exited ({process.returncode}) before {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def outbox_states(database: Path) -> dict[str, int]:
    """Counts by state, read-only (the app holds the database meanwhile)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return dict(connection.execute("SELECT state, count(*) FROM outbox GROUP BY state"))
    except sqlite3.OperationalError:
        return {}  # not created or not migrated yet


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``python -m desktop_app --demo``, its throwaway folder and settings under tmp_path."""
    env = {
        key: value
        for key, value in os.environ.items()
        # The demo needs no keyring, and no D-Bus session of the test run.
        if key not in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND")
    }
    env.update(
        QT_QPA_PLATFORM="offscreen",
        TMPDIR=str(tmp_path),  # DemoProviders makes its data folder with mkdtemp
        XDG_CONFIG_HOME=str(tmp_path / "config"),  # QSettings
        XDG_DATA_HOME=str(tmp_path / "data"),
        HOME=str(tmp_path / "home"),
    )
    output = (tmp_path / "app-output.txt").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "desktop_app", "--demo"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process, tmp_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        output.close()


@pytest.mark.slow
def test_demo_sends_and_quits_cleanly_on_sigterm(
    demo_app: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, root = demo_app
    demo_dir = wait_for(
        "the demo data folder",
        lambda: next(
            (p for p in root.glob("relaydesk-demo-*") if (p / "relaydesk.log").exists()), None
        ),
        process,
    )
    log = demo_dir / "relaydesk.log"
    database = demo_dir / "relaydesk.sqlite3"
    # The demo servers log what they receive; the outbox says what was sent.
    wait_for(
        "the log to show mail arriving", lambda: log.read_text().count("b'DATA'") >= 5, process
    )
    wait_for("sent messages", lambda: outbox_states(database).get("sent", 0) >= 5, process)

    process.send_signal(signal.SIGTERM)  # a logout, or `kill`
    try:
        returncode = process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("the app did not quit on SIGTERM")
    output = (root / "app-output.txt").read_text(errors="replace")
    assert returncode == 0, output[-3000:]
    assert "Traceback" not in output and "Fatal Python error" not in output, output[-3000:]
    assert "termination signal: quitting" in log.read_text()

    # A clean stop: nothing left in flight, nothing lost: the 150 sample messages, and each
    # of the demo campaign's 120 recipients either in the outbox or still waiting its turn.
    states = outbox_states(database)
    assert "sending" not in states, states
    assert states.get("sent", 0) >= 5
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        (single,) = connection.execute("SELECT count(*) FROM outbox WHERE campaign_id IS NULL")
        (rendered,) = connection.execute(
            "SELECT count(*) FROM outbox WHERE campaign_id IS NOT NULL"
        )
        (waiting,) = connection.execute(
            "SELECT count(*) FROM campaign_recipients WHERE state != 'queued'"
        )
    assert single == (150,), states
    assert rendered[0] + waiting[0] == 120, (rendered, waiting)
