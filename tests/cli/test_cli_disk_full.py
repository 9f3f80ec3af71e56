"""Issue 14, item 2: a disk that fills up is one line, exit 4, and nothing lost or sent twice.

The data folder lives on a real tmpfs of a few MB that the test fills with a filler file
(ENOSPC for real: SQLite's write-ahead log, its ``-shm``, the log file and the disk reserve
all meet it). Exit 4 is documented in README ("Exit codes") and ``relaydesk run --help``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli.cli_harness import ERROR_PREFIX, Relaydesk, Run
from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.small_disk import SmallDisk, small_disk_or_skip

EXIT_DISK_FULL = 4
MESSAGES = 300
SENDER = "news@example.com"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk_or_skip(tmp_path / "disk", size="16m") as disk:
        yield disk


@pytest.fixture
def relaydesk_on_disk(disk: SmallDisk, tmp_path: Path) -> Relaydesk:
    return Relaydesk(disk.mount_point / "data", cwd=tmp_path)


def _queue(relaydesk: Relaydesk, tmp_path: Path, server: ScriptedSMTPServer) -> None:
    relaydesk.ok("provider", "add", "primary", "--host", "127.0.0.1", "--port", str(server.port),
                 "--security", "none", "--allow-insecure")  # fmt: skip
    body = tmp_path / "body.txt"
    body.write_text("Hello from a disk that fills up.\n" * 40, encoding="utf-8")
    recipients = tmp_path / "to.txt"
    recipients.write_text("".join(f"r{i}@example.net\n" for i in range(MESSAGES)))
    relaydesk.ok("send", "--from", SENDER, "--subject", "full", "--text-file", str(body),
                 "--to-file", str(recipients))  # fmt: skip


def _assert_one_disk_full_line(run: Run, disk: SmallDisk, path: Path) -> None:
    assert run.code == EXIT_DISK_FULL, str(run)
    assert "Traceback" not in run.out + run.err, str(run)
    assert "Logging error" not in run.err, str(run)
    [line] = run.err.splitlines()
    assert line.startswith(f"{ERROR_PREFIX} the disk holding "), str(run)
    assert f"(file system {disk.mount_point}, " in line, str(run)
    assert f"cannot write {path};" in line, str(run)
    assert "is full" in line and "free some space" in line, str(run)


def _assert_everything_sent_exactly_once(relaydesk: Relaydesk, server: ScriptedSMTPServer) -> None:
    ids = server.message_ids()
    assert len(ids) == MESSAGES, f"{len(ids)} messages reached the server"
    assert len(set(ids)) == MESSAGES, f"{len(ids) - len(set(ids))} sent twice"
    rows = relaydesk.outbox_rows()
    assert [row["state"] for row in rows] == ["sent"] * MESSAGES
    assert not any(row["possible_duplicate"] for row in rows)
    with closing(sqlite3.connect(relaydesk.database)) as connection:
        delivered = connection.execute(
            "SELECT outbox_id, COUNT(*) FROM attempts WHERE outcome = 'delivered' "
            "GROUP BY outbox_id"
        ).fetchall()
    assert sorted(count for _id, count in delivered) == [1] * MESSAGES


def _run_in_background(relaydesk: Relaydesk, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "desktop_app", "--data-dir", str(relaydesk.data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=relaydesk.cwd,
        env=relaydesk.env,
    )


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_disk_that_fills_up_mid_run_stops_it_cleanly_and_loses_nothing(
    relaydesk_on_disk: Relaydesk,
    disk: SmallDisk,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    tmp_path: Path,
    verbose: bool,
) -> None:
    relaydesk = relaydesk_on_disk
    # Slow enough that the disk fills while mail is on the wire, not after the run.
    server = scripted_smtp(delay_seconds=0.002)
    _queue(relaydesk, tmp_path, server)

    flags = ("-v",) if verbose else ()
    process = _run_in_background(relaydesk, *flags, "run", "--until-idle", "--timeout", "90")
    try:
        _wait_for(lambda: len(server.messages) >= 20, process)
        disk.fill()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    run = Run(("run", "--until-idle"), process.returncode, out, err)
    assert len(server.messages) < MESSAGES, "the disk did not fill up before the run ended"

    if verbose:
        # The log goes to stderr too: one warning, never a traceback per task.
        assert run.code == EXIT_DISK_FULL, str(run)
        assert "Traceback" not in err and "Logging error" not in err, str(run)
        problems = [line for line in err.splitlines() if "(file system " in line]
        assert len(problems) == 2, str(run)  # the engine's warning, and the error line
        assert problems[-1].startswith(ERROR_PREFIX), str(run)
    else:
        _assert_one_disk_full_line(run, disk, relaydesk.database)

    # Nothing was lost, and once there is room everything goes out, each message once.
    disk.make_room()
    again = relaydesk("run", "--until-idle", "--timeout", "90", "--quiet")
    assert (again.code, again.err) == (0, ""), str(again)
    _assert_everything_sent_exactly_once(relaydesk, server)
    assert not (relaydesk.data_dir / "relaydesk.reserve").exists()  # no file left behind


def test_a_full_disk_at_start_says_which_in_one_line(
    relaydesk_on_disk: Relaydesk,
    disk: SmallDisk,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    tmp_path: Path,
) -> None:
    relaydesk = relaydesk_on_disk
    server = scripted_smtp()
    _queue(relaydesk, tmp_path, server)
    disk.fill()

    body = tmp_path / "body.txt"
    send = relaydesk("send", "--from", SENDER, "--to", "late@example.net", "--subject", "x",
                     "--text-file", str(body))  # fmt: skip
    _assert_one_disk_full_line(send, disk, relaydesk.database)
    run = relaydesk("run", "--until-idle", "--timeout", "60")
    _assert_one_disk_full_line(run, disk, relaydesk.database)
    assert server.messages == []

    # Room for the database but not for the disk reserve: still no sending, still one line.
    disk.make_room()
    disk.fill(leave=1024 * 1024)
    run = relaydesk("run", "--until-idle", "--timeout", "60")
    _assert_one_disk_full_line(run, disk, relaydesk.data_dir / "relaydesk.reserve")
    assert server.messages == []

    disk.make_room()
    relaydesk.ok("run", "--until-idle", "--timeout", "90", "--quiet")
    _assert_everything_sent_exactly_once(relaydesk, server)


def test_run_help_documents_the_disk_full_exit_code(relaydesk: Relaydesk) -> None:
    help_text = " ".join(relaydesk.ok("run", "--help").out.split())
    assert "4 the disk holding the data folder is full" in help_text
