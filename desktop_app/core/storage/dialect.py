"""Everything that differs between SQLite and PostgreSQL lives here, and only here.

SQLite (the default, one file per user) needs per-connection pragmas and ``BEGIN IMMEDIATE``
for writers; PostgreSQL (a team sharing one outbox later) needs ``FOR UPDATE SKIP LOCKED``
so several instances can claim from one table without waiting on each other.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError, DBAPIError, OperationalError

from desktop_app.core.disk_space import disk_full, nearly_full
from desktop_app.core.errors import DatabaseCorruptError, DatabaseLockedError, EnvironmentProblem

#: Environment variable that overrides the busy timeout below (milliseconds, a whole
#: number >= 0), e.g. for tests that check what a locked database does, or for a data
#: directory on a slow network drive. Anything else is ignored.
BUSY_TIMEOUT_ENV = "RELAYDESK_BUSY_TIMEOUT_MS"
DEFAULT_BUSY_TIMEOUT_MS = 10_000


def _busy_timeout_from_env(default: int = DEFAULT_BUSY_TIMEOUT_MS) -> int:
    """``$RELAYDESK_BUSY_TIMEOUT_MS`` if it is a whole number of milliseconds, else ``default``."""
    text = os.environ.get(BUSY_TIMEOUT_ENV, "").strip()
    # isascii: str.isdigit() is also true for "²", which int() refuses.
    if not (text.isascii() and text.isdigit()):  # unset, empty, negative, not a number
        return default
    return int(text)


#: How long a writer waits for another process's write lock before giving up.
#: Read by every new connection, so tests may also monkeypatch it.
BUSY_TIMEOUT_MS = _busy_timeout_from_env()

#: Execution option that asks for a write transaction (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "relaydesk_write"

_SelectT = TypeVar("_SelectT", bound=Select[Any])


def configure_engine(engine: Engine) -> None:
    """Install the per-dialect connection setup on a freshly created engine."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Take transaction control away from the sqlite3 module so that we decide
        # between BEGIN and BEGIN IMMEDIATE below (SQLAlchemy's documented recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: readers (the GUI) never block the writer (the engine) and vice versa.
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we tell anyone; "no lost mail" starts here.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY
        # when another process writes meanwhile (the busy handler cannot help a
        # read->write upgrade in WAL). Writers therefore take the lock up front.
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def lock_for_claim(query: _SelectT) -> _SelectT:
    """Make a claim's SELECT skip rows another instance is claiming right now.

    PostgreSQL renders ``FOR UPDATE SKIP LOCKED``. SQLite has no row locks and
    SQLAlchemy renders nothing there: ``BEGIN IMMEDIATE`` already serializes writers.
    """
    return query.with_for_update(skip_locked=True)


def insert_unless_present(
    connection: Connection, table: Any, key: Sequence[str], values: dict[str, Any]
) -> bool:
    """INSERT ``values`` unless a row with the same ``key`` columns exists; True if inserted.

    ``ON CONFLICT DO NOTHING`` on both SQLite (>= 3.24) and PostgreSQL: one statement, no
    race between a SELECT and the INSERT.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    statement: Any
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
    else:
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
    return bool(connection.execute(statement.values(**values)).rowcount)


#: SQLite's SQLITE_BUSY and SQLITE_LOCKED primary result codes.
_SQLITE_BUSY_CODES = (5, 6)
#: SQLite's words for them ("database is locked", "database table is locked", "database is
#: busy"), as whole words: PostgreSQL's deadlock report says "blocked by process", which a
#: bare "locked" matched.
_LOCKED_WORDS = re.compile(r"\bis locked\b|\bis busy\b")


def is_busy_or_locked(error: BaseException | None) -> bool:
    """SQLite's SQLITE_BUSY/SQLITE_LOCKED, by result code where the driver gives one, else by
    SQLite's words (never by a bare "locked", which a PostgreSQL deadlock report contains)."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(error, sqlite3.Error) and code is not None:
        return code & 0xFF in _SQLITE_BUSY_CODES
    return _LOCKED_WORDS.search(str(error).lower()) is not None


def translate_database_error(exc: DatabaseError, location: str) -> EnvironmentProblem | None:
    """Turn a driver error a user can meet in the field into a one-line message.

    Returns None for errors that are bugs, which should keep their traceback.
    """
    text = str(exc.orig) if exc.orig is not None else str(exc)
    lowered = text.lower()
    if isinstance(exc, OperationalError) and is_busy_or_locked(exc.orig or exc):
        return DatabaseLockedError(
            f"the database {location} is locked by another program; close it and try again"
        )
    if "deadlock detected" in lowered:
        # PostgreSQL ended one of two transactions that waited for each other: nobody else
        # holds the database, and the same command again usually goes through.
        return EnvironmentProblem(
            f"the database {location} stopped this change in a deadlock with another "
            "Relaydesk using it at the same time; try again"
        )
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return DatabaseCorruptError(
            f"the database {location} is damaged ({text}); restore it from a backup "
            "or move it aside to start fresh"
        )
    full = _disk_full(exc, lowered, location)
    if full is not None:
        return full
    if isinstance(exc, OperationalError) and (
        "unable to open" in lowered or "readonly" in lowered or "disk" in lowered
    ):
        return EnvironmentProblem(f"cannot write the database {location}: {text}")
    return None


def _disk_full(exc: DatabaseError, lowered: str, location: str) -> EnvironmentProblem | None:
    """SQLITE_FULL, or an I/O error next to a (nearly) full disk: which disk, in one line.

    SQLite reports a write that found no room as "database or disk is full", but a ``-shm``
    it cannot grow (opening a database on a full disk) as "disk I/O error"; the free space
    next to the file tells that one apart from a failing disk. A PostgreSQL location is a
    URL, not a path here: its server reports its own disk.
    """
    if "://" in location or not isinstance(exc, OperationalError):
        return None
    path = Path(location)
    if "database or disk is full" in lowered or ("disk i/o error" in lowered and nearly_full(path)):
        return disk_full(path)
    return None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A statement compiled once per dialect, with what it takes to bind a row to it."""

    sql: str
    order: tuple[str, ...] | None  # parameter names in placeholder order, when positional
    defaults: dict[str, Any]  # values fixed in the statement (e.g. ``lease_expires_at=None``)


_PREPARED: dict[tuple[int, str], _Prepared] = {}


def _prepared(connection: Connection, statement: Any) -> _Prepared:
    key = (id(statement), connection.dialect.name)
    prepared = _PREPARED.get(key)
    if prepared is None:
        compiled = statement.compile(dialect=connection.dialect)
        prepared = _Prepared(
            sql=compiled.string,
            order=tuple(compiled.positiontup) if compiled.positional else None,
            defaults={
                name: bind.value for name, bind in compiled.binds.items() if not bind.required
            },
        )
        _PREPARED[key] = prepared
    return prepared


def _bound(prepared: _Prepared, row: dict[str, Any]) -> Any:
    values = {**prepared.defaults, **row} if prepared.defaults else row
    if prepared.order is None:
        return values
    return tuple(map(values.__getitem__, prepared.order))


def execute_many_fast(
    connection: Connection, statement: Any, rows: Sequence[dict[str, Any]]
) -> None:
    """``executemany`` of a prebuilt statement straight on the driver's cursor.

    The engine's group commits run a few statements over many rows per transaction;
    SQLAlchemy's per-row parameter processing cost more than SQLite itself there, and that
    Python work competes for the GIL with the SMTP loop. So the statement is compiled once
    per dialect and the rows go to the driver as they are: callers pass values the driver
    takes directly (JSON already encoded as text).
    """
    prepared = _prepared(connection, statement)
    with _driver_cursor(connection, prepared) as cursor:
        cursor.executemany(prepared.sql, [_bound(prepared, row) for row in rows])


def fetch_all_fast(connection: Connection, statement: Any, row: dict[str, Any]) -> list[Any]:
    """Execute a prebuilt statement once on the driver's cursor and return its raw rows.

    Tuples in the statement's column order, values as the driver gives them (no type
    processing: JSON columns come back as text). For the engine's claim, run hundreds of
    times a second.
    """
    prepared = _prepared(connection, statement)
    with _driver_cursor(connection, prepared) as cursor:
        cursor.execute(prepared.sql, _bound(prepared, row))
        return list(cursor.fetchall())


@contextmanager
def _driver_cursor(connection: Connection, prepared: _Prepared) -> Iterator[Any]:
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        yield cursor
    except driver_error as exc:
        # Same exception types as everywhere else (IntegrityError, OperationalError...),
        # parameters hidden: they are message data.
        raise DBAPIError.instance(
            prepared.sql, None, exc, driver_error, hide_parameters=True, ismulti=True
        ) from exc
    finally:
        cursor.close()
