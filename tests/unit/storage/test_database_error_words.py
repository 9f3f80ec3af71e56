"""Which driver errors read as "locked by another program" (issue 18: a PostgreSQL deadlock
did, since its report says "blocked by process" and the check looked for "locked")."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from desktop_app.core.errors import DatabaseLockedError, EnvironmentProblem
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.dialect import translate_database_error

#: PostgreSQL's own report of a deadlock (psycopg's message text).
DEADLOCK = (
    "deadlock detected\nDETAIL:  Process 4711 waits for ShareLock on transaction 815; "
    "blocked by process 4712.\nProcess 4712 waits for ShareLock on transaction 816; "
    "blocked by process 4711."
)


def _operational(message: str) -> OperationalError:
    return OperationalError("UPDATE outbox ...", {}, Exception(message))


def test_a_postgresql_deadlock_is_not_a_locked_database() -> None:
    problem = translate_database_error(_operational(DEADLOCK), "relaydesk@db")
    assert problem is not None and not isinstance(problem, DatabaseLockedError)
    assert str(problem) == (
        "the database relaydesk@db stopped this change in a deadlock with another Relaydesk "
        "using it at the same time; try again"
    )


@pytest.mark.parametrize("message", ["database is locked", "database table is locked"])
def test_sqlite_words_for_locked_still_are(message: str) -> None:
    problem = translate_database_error(_operational(message), "F")
    assert isinstance(problem, DatabaseLockedError)


def test_a_file_another_program_holds_is_locked(tmp_path: Path) -> None:
    # A real SQLite lock: another connection holds an exclusive transaction.
    path = tmp_path / "relaydesk.sqlite3"
    database = Database.open_file(path)
    try:
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            engine = database.engine.execution_options()
            with pytest.raises(OperationalError) as caught, engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA busy_timeout = 0")
                # A write: in WAL mode readers go on beside a writer, writers wait.
                connection.execute(text("DELETE FROM outbox WHERE id = -1"))
            other.execute("ROLLBACK")
        problem = translate_database_error(caught.value, str(path))
        assert isinstance(problem, DatabaseLockedError), problem
        assert isinstance(problem, EnvironmentProblem)
    finally:
        database.dispose()
