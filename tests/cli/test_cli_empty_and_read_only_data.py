"""Issue 14: an empty database file is damage, and a read-only data folder can still be read.

Exit 1 and one line for the first; the read-only commands simply work for the second.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.cli_harness import Relaydesk

READ_ONLY_COMMANDS = (("outbox", "--json"), ("provider", "list", "--json"), ("health", "--json"))


def test_an_empty_database_file_is_refused_by_every_command(
    relaydesk: Relaydesk, body: Path
) -> None:
    relaydesk.ok("outbox")  # a real install...
    relaydesk.database.write_bytes(b"")  # ...whose database a crash or a failed copy emptied
    for suffix in ("-wal", "-shm"):
        relaydesk.database.with_name(relaydesk.database.name + suffix).unlink(missing_ok=True)
    send = ("send", "--from", "a@example.com", "--to", "b@example.net", "--subject", "x",
            "--text-file", str(body))  # fmt: skip

    for command in (("outbox", "--json"), ("provider", "list"), ("settings", "list"), send):
        error = relaydesk.fails(*command, code=1)
        assert str(relaydesk.database) in error
        assert "empty" in error and "afresh" in error

    assert relaydesk.database.stat().st_size == 0  # left alone, not made a new database
    relaydesk.database.unlink()  # starting afresh on purpose
    assert relaydesk.json("outbox")["queued"] == 0


def test_read_only_commands_work_when_the_log_file_cannot_be_opened(
    relaydesk: Relaydesk,
) -> None:
    """A directory where the log file belongs: ``open()`` fails even for root.

    (``chmod`` would not stop a test running as root from writing.)
    """
    relaydesk.ok("outbox")
    log = relaydesk.data_dir / "relaydesk.log"
    log.unlink()
    log.mkdir()

    for command in READ_ONLY_COMMANDS:
        relaydesk.json(*command[:-1])  # exit 0, nothing at all on stderr
    run = relaydesk("-v", "outbox")
    assert run.code == 0, str(run)
    assert "Traceback" not in run.err
    assert [line for line in run.err.splitlines() if "relaydesk.log" in line] == [
        f"WARNING desktop_app.core.log_setup: not logging to {log}: Is a directory"
    ]


MOUNT_READ_ONLY = (
    'd=$1; shift; mount --bind "$d" "$d" && mount -o remount,ro,bind "$d" "$d" && exec "$@"'
)


def read_only_mount_runner(folder: Path) -> list[str]:
    """A command prefix that runs the rest with ``folder`` bind-mounted read-only.

    ``unshare -rm`` gives the child its own user and mount namespace, so this works without
    root and leaves no mount behind; the folder is really read-only (EROFS), for root too.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1)")
    runner = [unshare, "-rm", "sh", "-c", MOUNT_READ_ONLY, "sh", str(folder)]
    probe = subprocess.run([*runner, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here: {probe.stderr!r}")
    return runner


def test_read_only_commands_work_in_a_read_only_data_folder(relaydesk: Relaydesk) -> None:
    """A real read-only mount: no log file, and SQLite cannot create ``-wal``/``-shm`` there.

    A cleanly closed database is then opened read-only and ``immutable`` (see
    ``Database._open_read_only``); reading works, writing is one line and exit 1.
    """
    relaydesk.ok("settings", "set", "retry.min_backoff_seconds", "45")  # a database at head
    runner = read_only_mount_runner(relaydesk.data_dir)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "desktop_app", "--data-dir", str(relaydesk.data_dir)]
        return subprocess.run(
            [*runner, *command, *args],
            capture_output=True,
            text=True,
            cwd=relaydesk.cwd,
            env=relaydesk.env,
            timeout=120,
            check=False,
        )

    for command in READ_ONLY_COMMANDS:
        result = run(*command)
        assert (result.returncode, result.stderr) == (0, ""), result
    assert "retry.min_backoff_seconds = 45" in run("settings", "list").stdout

    # Writing cannot work there; it says so in one line.
    result = run("settings", "set", "retry.min_backoff_seconds", "50")
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert line.startswith("relaydesk: error: ") and "readonly" in line, result
    assert relaydesk.stored_settings() == {"retry.min_backoff_seconds": 45}
