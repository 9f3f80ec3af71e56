"""A delivering ``relaydesk run`` killed with SIGKILL loses nothing and resends only what
was in flight (desktop_app/ARCHITECTURE.md, "The outbox": the attempt row is committed before
MAIL FROM, and rows left in ``sending`` are recovered as ``unknown`` or ``queued`` on the next
start).

The real CLI runs as a subprocess against a real aiosmtpd server on loopback; the test reads
the SQLite outbox itself, between the kill and the restart, to know what was in flight.
"""

from __future__ import annotations

import collections
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.servers import LOOPBACK, wait_for

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASE = "relaydesk.sqlite3"
LOCK_FILE = "relaydesk.lock"
SENDER = "campaign@example.test"
MESSAGES = 2000
# Kill well before the end: a few hundred of 2,000 delivered, the rest still queued.
KILL_AFTER = 300
CLI_TIMEOUT = 180.0

ScriptedFactory = Callable[..., ScriptedSMTPServer]


def relaydesk_command(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "desktop_app", "--data-dir", str(data_dir), *args]


def relaydesk(
    data_dir: Path, *args: str, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (stdin closed, output captured)."""
    return subprocess.run(
        relaydesk_command(data_dir, *args),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_relaydesk(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    """Start the CLI in the background; the caller kills or waits for it."""
    return subprocess.Popen(
        relaydesk_command(data_dir, *args),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def succeed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{result.args[4:]} exited {result.returncode}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}"
    )
    return result.stdout


def add_provider(data_dir: Path, server: ScriptedSMTPServer) -> None:
    succeed(
        relaydesk(
            data_dir,
            "provider",
            "add",
            "scripted",
            "--host",
            LOOPBACK,
            "--port",
            str(server.port),
            "--security",
            "none",
        )
    )


def queue_messages(data_dir: Path, tmp_path: Path, count: int) -> None:
    recipients = tmp_path / "recipients.txt"
    recipients.write_text("".join(f"reader{i}@example.test\n" for i in range(count)))
    body = tmp_path / "body.txt"
    body.write_text("Hello,\n\nthis is the crash recovery campaign.\n")
    out = succeed(
        relaydesk(
            data_dir,
            "send",
            "--from",
            SENDER,
            "--to-file",
            str(recipients),
            "--subject",
            "Crash recovery",
            "--text-file",
            str(body),
        )
    )
    assert f"queued {count:,} messages" in out


def outbox_counts(data_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = json.loads(succeed(relaydesk(data_dir, "outbox", "--json")))
    return counts


def read_db(data_dir: Path, query: str, *parameters: object) -> list[tuple[Any, ...]]:
    """Query the outbox database directly, as an independent reader."""
    connection = sqlite3.connect(data_dir / DATABASE, timeout=30)
    try:
        return connection.execute(query, parameters).fetchall()
    finally:
        connection.close()


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_sigkill_mid_run_loses_nothing_and_resends_only_what_was_in_flight(
    scripted_smtp: ScriptedFactory, data_dir: Path, tmp_path: Path
) -> None:
    # A little time per message, so that the run lasts seconds and the kill lands mid-way.
    server = scripted_smtp(delays={".": 0.002})
    add_provider(data_dir, server)
    queue_messages(data_dir, tmp_path, MESSAGES)
    queued_ids = {
        str(message_id): int(outbox_id)
        for outbox_id, message_id in read_db(data_dir, "SELECT id, message_id FROM outbox")
    }
    assert len(queued_ids) == MESSAGES, "every message must get its own Message-ID"

    started = time.monotonic()
    run = start_relaydesk(data_dir, "run", "--until-idle")

    def delivered_enough() -> bool:
        if run.poll() is not None:
            stdout, stderr = run.communicate()
            pytest.fail(f"run ended before the kill ({run.returncode}):\n{stdout}\n{stderr}")
        return len(server.messages) >= KILL_AFTER

    wait_for(delivered_enough, timeout=120, interval=0.002, message="run delivered too little")
    kill(run)
    killed_after = time.monotonic() - started
    received_before_kill = len(server.messages)

    # What the killed process left behind, read before anything can recover it.
    states = dict(read_db(data_dir, "SELECT state, count(*) FROM outbox GROUP BY state"))
    in_flight_ids = {
        int(row[0])
        for row in read_db(
            data_dir,
            "SELECT o.id FROM outbox o WHERE o.state = 'sending' AND EXISTS ("
            " SELECT 1 FROM attempts a WHERE a.outbox_id = o.id AND a.finished_at IS NULL)",
        )
    }
    in_flight = len(in_flight_ids)
    print(
        f"\nkilled after {killed_after:.1f} s with {received_before_kill} messages at the server; "
        f"outbox then: {states}; in flight (sending + open attempt): {in_flight}"
    )
    assert sum(states.values()) == MESSAGES
    assert states.get("queued", 0) > 0, "the kill came too late to test anything"
    assert received_before_kill < MESSAGES

    # The OS dropped the instance lock with the process: the restart may deliver.
    assert (data_dir / LOCK_FILE).exists()
    restarted = time.monotonic()
    out = succeed(relaydesk(data_dir, "run", "--until-idle", "--timeout", "120"))
    restart_seconds = time.monotonic() - restarted

    arrivals = collections.Counter(m.message_id for m in server.messages)
    duplicated = {message_id for message_id, n in arrivals.items() if n > 1}
    duplicates = sum(n - 1 for n in arrivals.values())
    print(
        f"restart delivered the rest in {restart_seconds:.1f} s; "
        f"{len(server.messages)} arrivals, {duplicates} duplicates; summary: {out.strip()}"
    )

    assert set(arrivals) == set(queued_ids), "every queued message arrives, and nothing else"
    assert duplicates <= in_flight
    # Only a message that was on the wire at the kill may have been sent twice.
    assert {queued_ids[message_id] for message_id in duplicated} <= in_flight_ids

    counts = outbox_counts(data_dir)
    assert counts["sent"] == MESSAGES
    assert counts["queued"] == counts["sending"] == counts["deferred"] == counts["unknown"] == 0
    assert counts["failed"] == 0

    flagged = {
        int(row[0]) for row in read_db(data_dir, "SELECT id FROM outbox WHERE possible_duplicate")
    }
    assert flagged == in_flight_ids, "recovered-as-unknown rows stay flagged, others are not"
    # The interrupted attempt is closed as ambiguous, and a second one delivered the message.
    for outbox_id in in_flight_ids:
        attempts = read_db(
            data_dir,
            "SELECT outcome FROM attempts WHERE outbox_id = ? ORDER BY number",
            outbox_id,
        )
        assert [outcome for (outcome,) in attempts] == ["ambiguous", "delivered"]
    assert read_db(data_dir, "SELECT count(*) FROM attempts WHERE finished_at IS NULL") == [(0,)]


def lock_holder(data_dir: Path) -> str:
    try:
        return (data_dir / LOCK_FILE).read_text()
    except FileNotFoundError:
        return ""


def test_one_sender_per_data_dir_and_sigkill_releases_the_lock(
    scripted_smtp: ScriptedFactory, data_dir: Path
) -> None:
    server = scripted_smtp()
    add_provider(data_dir, server)

    first = start_relaydesk(data_dir, "run")  # runs until stopped
    try:
        # The pid is written only once the lock is held.
        wait_for(
            lambda: lock_holder(data_dir) == str(first.pid) or first.poll() is not None,
            timeout=60,
            message="the first run never took the instance lock",
        )
        assert first.poll() is None, first.communicate()

        second = relaydesk(data_dir, "run", "--until-idle", "--timeout", "30")
        assert second.returncode == 1, second
        assert second.stderr.splitlines() == [
            f"relaydesk: error: another Relaydesk is already sending from {data_dir.resolve()}"
        ]
        assert first.poll() is None, "the refused second run must not disturb the first"
    finally:
        if first.poll() is None:
            kill(first)

    # The killed run's lock file is still there, naming a dead pid, but the OS dropped the lock.
    assert lock_holder(data_dir) == str(first.pid)
    body = data_dir.parent / "body.txt"
    body.write_text("after the kill\n")
    succeed(
        relaydesk(
            data_dir,
            "send",
            "--from",
            SENDER,
            "--to",
            "after@example.test",
            "--subject",
            "after",
            "--text-file",
            str(body),
        )
    )
    out = succeed(relaydesk(data_dir, "run", "--until-idle", "--timeout", "60"))
    assert "0 pending" in out
    assert [m.rcpt_tos for m in server.wait_for_messages(1)] == [("after@example.test",)]
