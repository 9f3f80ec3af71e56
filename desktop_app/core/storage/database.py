"""Opening the database: engine, pragmas, migrations, and readable errors.

``Database.write()`` is the one way to change data (``BEGIN IMMEDIATE`` on SQLite), and
``Database.read()`` the way to look at it without blocking the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from desktop_app.core.storage.dialect import (
    WRITE_OPTION,
    configure_engine,
    translate_database_error,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
DATABASE_FILENAME = "relaydesk.sqlite3"


class Database:
    """A migrated database and the transactions Relaydesk runs on it."""

    def __init__(self, engine: Engine, location: str) -> None:
        self.engine = engine
        self.location = location
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    @classmethod
    def open_file(cls, path: Path) -> Database:
        """Open (creating if needed) the SQLite file at ``path`` and migrate it to head."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls.open_url(f"sqlite:///{path}", location=str(path))

    @classmethod
    def open_url(cls, url: str, *, location: str | None = None) -> Database:
        """Open any SQLAlchemy URL (PostgreSQL later) and migrate it to head."""
        engine = create_engine(url, pool_pre_ping=False)
        configure_engine(engine)
        database = cls(engine, location or url)
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
