"""Trouble with the machine, not the input: exit 1 and one line, never a traceback."""

from __future__ import annotations

import random
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.cli.cli_harness import Relaydesk


def test_a_locked_database_is_one_line(relaydesk: Relaydesk, body: Path) -> None:
    relaydesk.ok("outbox")  # creates and migrates the database
    send = ("send", "--from", "a@example.com", "--to", "b@example.net", "--subject", "x",
            "--text-file", str(body))  # fmt: skip

    with closing(sqlite3.connect(relaydesk.database, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            # Without the override the CLI would wait the full 10 s busy timeout first.
            error = relaydesk.fails(*send, code=1, env={"RELAYDESK_BUSY_TIMEOUT_MS": "100"})
        finally:
            other.execute("ROLLBACK")

    assert "locked" in error
    assert str(relaydesk.database) in error
    assert relaydesk.outbox_rows() == []
    relaydesk.ok(*send)  # once the other program lets go, all is well
    assert len(relaydesk.outbox_rows()) == 1


def test_a_damaged_database_is_one_line(relaydesk: Relaydesk) -> None:
    relaydesk.data_dir.mkdir(parents=True)
    relaydesk.database.write_bytes(random.Random(7).randbytes(8192))

    error = relaydesk.fails("outbox", code=1)

    assert "damaged" in error
    assert str(relaydesk.database) in error


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    relaydesk = Relaydesk(not_a_dir, cwd=tmp_path)

    error = relaydesk.fails("outbox", code=2)

    assert error == (
        f"--data-dir {not_a_dir} is a file, not a folder: give a folder (it is created if missing)"
    )


def test_a_password_without_a_keyring_stores_nothing(relaydesk: Relaydesk) -> None:
    # The harness runs with keyring's explicit null backend: no usable keyring at all.
    error = relaydesk.fails(
        "provider", "add", "p", "--host", "smtp.example.com", "--port", "587",
        "--security", "starttls", "--username", "me", "--password-stdin",
        stdin="secret-pw\n", code=1,
    )  # fmt: skip

    assert "keyring" in error
    assert "secret-pw" not in error
    assert relaydesk.provider_names() == []


def test_an_empty_password_on_stdin_is_bad_input(relaydesk: Relaydesk) -> None:
    error = relaydesk.fails(
        "provider", "add", "p", "--host", "smtp.example.com", "--port", "587",
        "--security", "starttls", "--username", "me", "--password-stdin", stdin="",
    )  # fmt: skip
    assert "--password-stdin" in error
    assert relaydesk.provider_names() == []


def test_version_and_help_do_not_open_the_data_dir(relaydesk: Relaydesk) -> None:
    assert relaydesk.ok("--version").out.startswith("relaydesk ")
    assert "provider" in relaydesk.ok("--help").out
    assert not relaydesk.data_dir.exists()
