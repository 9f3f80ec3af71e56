"""Issue 14: a zero-length database file is damage, not a new install."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from desktop_app.core.errors import DatabaseCorruptError, EnvironmentProblem
from desktop_app.core.storage import database as database_module
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.outbox import NewMessage, OutboxRepository


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_module, "EMPTY_FILE_GRACE_SECONDS", 0.1)


def test_an_empty_file_is_refused_and_left_alone(short_grace: None, db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")

    with pytest.raises(DatabaseCorruptError) as caught:
        Database.open_file(db_path)

    message = str(caught.value)
    assert isinstance(caught.value, EnvironmentProblem)
    assert "\n" not in message
    assert str(db_path) in message
    assert "empty (0 bytes)" in message and "start afresh" in message
    assert db_path.read_bytes() == b""
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


def test_a_missing_file_is_still_a_new_install(db_path: Path) -> None:
    database = Database.open_file(db_path)
    try:
        assert OutboxRepository(database).counts().queued == 0
    finally:
        database.dispose()


def test_a_file_another_relaydesk_is_creating_right_now_is_waited_for(
    tmp_path: Path, db_path: Path
) -> None:
    # Between SQLite creating the file and writing its first page, the file is empty for a
    # moment; a second Relaydesk starting just then must not call that damage.
    template = tmp_path / "template.sqlite3"
    made = Database.open_file(template)
    OutboxRepository(made).enqueue([NewMessage("<a@b>", "s@example.com", ("r@x.test",), "", b"x")])
    made.dispose()
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")
    filler = threading.Timer(0.2, shutil.copyfile, (template, db_path))
    filler.start()
    try:
        database = Database.open_file(db_path)
    finally:
        filler.join()
    try:
        assert OutboxRepository(database).counts().queued == 1
    finally:
        database.dispose()
