"""Change counters: what the change feed watches (core/change_feed.py).

Every write of providers, maintenance windows, settings or the outbox (outside the delivery
engine's journal) calls ``bump`` inside its own transaction, so the counter moves exactly
when the change commits and never without it. A reader compares ``read_versions`` with what
it saw before to learn which kinds of thing changed, whichever process changed them.

The engine's journal (claims, attempts, transitions: hundreds of commits a second) does not
bump: the engine announces its own progress through its events.

The sources below are how a change feed learns that the counters may have moved, one per
kind of database (the feed itself is dialect-free): SQLite asks ``PRAGMA data_version``, a
no-I/O check, and reads the counters only when another connection committed; any other
database reads the counters on each poll. A PostgreSQL source on LISTEN/NOTIFY (``bump``
adding a ``pg_notify`` that the server delivers at commit) fits the same three methods.
"""

from __future__ import annotations

import sqlite3
import threading
from enum import StrEnum
from pathlib import Path

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from desktop_app.core.errors import DatabaseLockedError
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.dialect import is_busy_or_locked
from desktop_app.core.storage.schema import ChangeCounterRow


class Topic(StrEnum):
    """A kind of change the feed reports. Each has a row in ``change_counters`` (a new
    topic needs a migration that adds its row: ``bump`` only updates rows)."""

    PROVIDERS = "providers"
    MAINTENANCE = "maintenance"
    SETTINGS = "settings"
    OUTBOX = "outbox"  # messages queued, cancelled, retried, held... (its counts changed)
    PROVIDER_STATE = "provider_state"  # a stored provider's state word or breaker moved


_BUMP = (
    update(ChangeCounterRow)
    .where(ChangeCounterRow.topic.in_(bindparam("topics", expanding=True)))
    .values(version=ChangeCounterRow.version + 1)
)
_READ = select(ChangeCounterRow.topic, ChangeCounterRow.version)


def bump(connection: Connection, *topics: Topic) -> None:
    """Count a change of ``topics`` in the caller's (write) transaction."""
    if topics:
        connection.execute(_BUMP, {"topics": sorted({str(topic) for topic in topics})})


def read_versions(connection: Connection) -> dict[str, int]:
    """{topic: version} of every counter."""
    return {topic: int(version) for topic, version in connection.execute(_READ)}


class _TimedWait:
    """``wait``/``interrupt`` for sources that poll on a timer."""

    def __init__(self) -> None:
        self._woken = threading.Event()

    def wait(self, timeout: float) -> None:
        """Return after ``timeout`` seconds, or at once when ``interrupt`` was called."""
        if self._woken.wait(timeout):
            self._woken.clear()

    def interrupt(self) -> None:
        self._woken.set()


class SqliteChangeSource(_TimedWait):
    """The counters of one SQLite file, read only when another connection has committed.

    Its own ``sqlite3`` connection, in autocommit (no read transaction is held between
    polls, so checkpoints never wait for it), that never writes: ``PRAGMA data_version``
    on it changes exactly when some other connection, of this process or another, commits.
    Most such commits are the engine's journal; then one four-row read says nothing moved.
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        # mode=rw: never create an empty file where the database went missing.
        self._uri = Path(path).resolve().as_uri() + "?mode=rw"
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._closed = False

    def versions(self) -> dict[str, int] | None:
        """The counters, or None: no commit since the last answer, or the file is busy."""
        with self._lock:
            if self._closed:
                return None
            try:
                if self._connection is None:
                    self._connection = sqlite3.connect(
                        self._uri,
                        uri=True,
                        isolation_level=None,
                        check_same_thread=False,
                        # A locked file (a recovery, another program) skips a poll, not waits.
                        timeout=0,
                    )
                # fetchall: each statement runs to its end, so no read transaction stays open.
                ((data_version,),) = self._connection.execute("PRAGMA data_version").fetchall()
                if data_version == self._data_version:
                    return None
                rows = self._connection.execute(
                    "SELECT topic, version FROM change_counters"
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if is_busy_or_locked(exc):
                    return None
                raise
            # Only now: a poll that failed above is repeated in full next time.
            self._data_version = data_version
            return {str(topic): int(version) for topic, version in rows}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        self.interrupt()


class PollingChangeSource(_TimedWait):
    """The counters read through the database's engine on every poll: any database
    (PostgreSQL until it has a LISTEN/NOTIFY source, an in-memory SQLite)."""

    def __init__(self, database: Database) -> None:
        super().__init__()
        self._database = database

    def versions(self) -> dict[str, int] | None:
        try:
            with self._database.read() as connection:
                return read_versions(connection)
        except DatabaseLockedError:
            return None

    def close(self) -> None:
        self.interrupt()


def open_change_source(database: Database) -> SqliteChangeSource | PollingChangeSource:
    """The cheapest source that sees every process's commits to ``database``."""
    url = database.engine.url
    if (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and "uri" not in url.query
    ):
        return SqliteChangeSource(str(url.database))
    return PollingChangeSource(database)
