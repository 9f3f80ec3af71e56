"""Opening the database: engine, pragmas, migrations, and readable errors.

``Database.write()`` is the one way to change data (``BEGIN IMMEDIATE`` on SQLite), and
``Database.read()`` the way to look at it without blocking the engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from desktop_app.core.errors import (
    DatabaseCorruptError,
    DatabaseLockedError,
    DiskFullError,
    EnvironmentProblem,
)
from desktop_app.core.storage.dialect import (
    WRITE_OPTION,
    configure_engine,
    translate_database_error,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DATABASE_FILENAME = "relaydesk.sqlite3"
#: How long a zero-length database file may stay empty before it is taken for damage: a
#: Relaydesk creating the file this very moment writes its first page within microseconds.
EMPTY_FILE_GRACE_SECONDS = 1.0


class Database:
    """A migrated database and the transactions Relaydesk runs on it."""

    def __init__(self, engine: Engine, location: str) -> None:
        self.engine = engine
        self.location = location
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._disk_full_listeners: list[Callable[[DiskFullError], None]] = []

    def on_disk_full(self, listener: Callable[[DiskFullError], None]) -> Callable[[], None]:
        """Call ``listener`` (on the failing writer's thread) whenever a write finds the
        disk full, whoever wrote; returns the function that stops it.

        The delivery service listens, so a full disk met by the health monitor, the
        alerter or the window stops the engine just as one met by its journal does.
        """
        self._disk_full_listeners.append(listener)

        def stop() -> None:
            if listener in self._disk_full_listeners:
                self._disk_full_listeners.remove(listener)

        return stop

    @classmethod
    def open_file(cls, path: Path) -> Database:
        """Open (creating if needed) the SQLite file at ``path`` and migrate it to head.

        A file that exists but is empty is refused, never taken for a new install: SQLite
        would happily make a fresh database of it, and the outbox and providers it held
        would be gone without a word (issue 14). In a folder that cannot be written the
        database opens read-only (see ``_open_read_only``).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        _refuse_an_empty_file(path)
        try:
            return cls.open_url(f"sqlite:///{path}", location=str(path))
        except (DatabaseLockedError, DatabaseCorruptError):
            raise
        except EnvironmentProblem:
            if not path.is_file() or os.access(path.parent, os.W_OK):
                raise
            return cls._open_read_only(path)

    @classmethod
    def _open_read_only(cls, path: Path) -> Database:
        """Open the database in a read-only folder for reading; any write fails in one line.

        A WAL database needs its ``-shm`` (and ``-wal``) files next to it, which SQLite
        cannot create in a read-only folder (a closed database leaves neither behind).
        Without a ``-wal`` holding changes, the file alone is the whole database and is
        opened ``immutable``: SQLite then takes no locks, which is right for a read-only
        copy (a backup, a snapshot) but would miss writes another machine makes through a
        writable mount of the same folder meanwhile. A ``-wal`` with changes is read
        through its ``-shm`` if that exists; otherwise the folder has to be writable.
        """
        wal = path.with_name(path.name + "-wal")
        unfinished = wal.is_file() and wal.stat().st_size > 0
        url = URL.create(
            "sqlite",
            database=path.as_uri(),  # percent-encoded: a "?" or "#" in the path is safe
            query={"uri": "true", "mode": "ro", **({} if unfinished else {"immutable": "1"})},
        )
        try:
            return cls.open_url(url, location=str(path))
        except (DatabaseLockedError, DatabaseCorruptError):
            raise
        except EnvironmentProblem as exc:
            if "readonly" in str(exc):  # only migrating writes while opening
                why = f"the database {path} needs upgrading for this version of Relaydesk"
            else:
                why = f"reading the database {path} needs to write next to it"
            raise EnvironmentProblem(
                f"{why}, but its folder is read-only; make the folder writable (or copy it "
                "somewhere writable) and try again"
            ) from exc

    @classmethod
    def open_url(cls, url: str | URL, *, location: str | None = None) -> Database:
        """Open any SQLAlchemy URL (PostgreSQL later) and migrate it to head."""
        engine = create_engine(url, pool_pre_ping=False)
        configure_engine(engine)
        database = cls(engine, location or str(url))
        with database.translated_errors():
            database.upgrade()
        return database

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        """Re-raise driver errors a user can cause as one-line ``EnvironmentProblem``s."""
        try:
            yield
        except DatabaseError as exc:
            problem = translate_database_error(exc, self.location)
            if problem is None:
                raise
            if isinstance(problem, DiskFullError):
                for listener in list(self._disk_full_listeners):
                    listener(problem)
            raise problem from exc

    def upgrade(self, revision: str = "head") -> None:
        """Apply pending migrations; a database from an older version upgrades in place."""
        if revision == "head":
            # The usual case, checked without the write lock: a read-only command must
            # not wait for (or fail on) a writer just because it opened the database.
            with self.engine.connect() as reader:
                if self._is_at_head(reader):
                    return
        with self._writer.begin() as connection:
            if revision == "head" and self._is_at_head(connection):
                return
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS_DIR))
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def _is_at_head(self, connection: Connection) -> bool:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is None:
            return False
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        return current == ScriptDirectory.from_config(config).get_current_head()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, committed when the block exits without error."""
        with self.translated_errors(), self._writer.begin() as connection:
            yield connection

    def open_writer(self) -> Connection:
        """A connection of one's own for many write transactions (see ``write_on``).

        The delivery engine's journal commits hundreds of times a second; checking a
        connection out of the pool for each cost a fifth of its database thread's CPU.
        The caller closes it, on the thread that opened it.
        """
        with self.translated_errors():
            return self._writer.connect()

    @contextmanager
    def write_on(self, connection: Connection) -> Iterator[Connection]:
        """A write transaction on a connection from ``open_writer``, like ``write()``."""
        with self.translated_errors(), connection.begin():
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot; never blocks the writer (WAL)."""
        with self.translated_errors(), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def session(self) -> Iterator[Session]:
        """An ORM session in one write transaction (for the small CRUD tables)."""
        with self.translated_errors(), Session(self._writer) as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _refuse_an_empty_file(path: Path) -> None:
    """Raise ``DatabaseCorruptError`` if ``path`` is a zero-length file (and stays one).

    A missing file is a new install; an empty one is damage (a crash while a disk filled
    up, a failed copy or sync) and must not silently become a fresh database.
    """
    deadline = time.monotonic() + EMPTY_FILE_GRACE_SECONDS
    while True:
        try:
            if path.stat().st_size > 0:
                return
        except OSError:  # missing: a new install; unreadable: SQLite will say so
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    raise DatabaseCorruptError(
        f"the database {path} is empty (0 bytes), so what it held is lost; restore it from "
        "a backup, or delete it (or move it aside) to start afresh with no providers and an "
        "empty outbox"
    )
