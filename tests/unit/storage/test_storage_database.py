"""Opening the database file: pragmas, migrations, and what a locked or damaged file does."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, text
from sqlalchemy.exc import OperationalError

from desktop_app.core.errors import DatabaseCorruptError, DatabaseLockedError, EnvironmentProblem
from desktop_app.core.models import AmbiguousPolicy, ProviderConfig, Security
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage import dialect
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.outbox import NewMessage, OutboxRepository
from desktop_app.core.storage.providers import ProviderRepository
from desktop_app.core.storage.schema import OutboxRow
from tests.unit.storage.storage_rows import RawRows

HEAD = "0011"


@contextmanager
def write_lock_held_elsewhere(path: Path) -> Iterator[None]:
    """Another program (another sqlite3 connection) holds the write lock on ``path``."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read by every new connection (the pragma is set at connect time): patch it before
    # the database is opened so that no pooled connection keeps the 10 s default.
    monkeypatch.setattr(dialect, "BUSY_TIMEOUT_MS", 50)


# -- pragmas --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["read", "write"])
def test_every_connection_has_the_durability_pragmas(database: Database, kind: str) -> None:
    context = database.read() if kind == "read" else database.write()
    with context as connection:
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,  # FULL
        "foreign_keys": 1,
        "busy_timeout": dialect.BUSY_TIMEOUT_MS,
    }
    assert dialect.BUSY_TIMEOUT_MS > 0


def test_busy_timeout_is_read_when_a_connection_opens(
    short_busy_timeout: None, tmp_path: Path
) -> None:
    database = Database.open_file(tmp_path / "db.sqlite3")
    try:
        with database.read() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 50
    finally:
        database.dispose()


def test_busy_timeout_comes_from_the_environment_in_a_new_process(tmp_path: Path) -> None:
    # A subprocess cannot be monkeypatched: this is how the CLI tests shorten the wait.
    script = (
        "import sys; from pathlib import Path\n"
        "from desktop_app.core.storage.database import Database\n"
        "db = Database.open_file(Path(sys.argv[1]))\n"
        "with db.read() as c: print(c.exec_driver_sql('PRAGMA busy_timeout').scalar())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "db.sqlite3")],
        cwd=Path(__file__).resolve().parents[3],  # this checkout's desktop_app comes first
        env={**os.environ, dialect.BUSY_TIMEOUT_ENV: "1234"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip() == "1234"


@pytest.mark.parametrize(
    ("env_value", "expected"),
    [("1234", 1234), ("0", 0), (" 250 ", 250), ("abc", 10_000), ("-5", 10_000), ("²", 10_000)],
)
def test_busy_timeout_from_the_environment_falls_back_on_nonsense(
    monkeypatch: pytest.MonkeyPatch, env_value: str, expected: int
) -> None:
    monkeypatch.setenv(dialect.BUSY_TIMEOUT_ENV, env_value)
    assert dialect._busy_timeout_from_env() == expected


def test_busy_timeout_default_without_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(dialect.BUSY_TIMEOUT_ENV, raising=False)
    assert dialect._busy_timeout_from_env() == dialect.DEFAULT_BUSY_TIMEOUT_MS == 10_000


def test_foreign_keys_are_enforced_by_the_app_connection(
    database: Database, rows: RawRows, providers: ProviderRepository
) -> None:
    provider = providers.add(ProviderConfig("p", "smtp.example.com", 465, Security.TLS))
    outbox = OutboxRepository(database)
    (outbox_id,) = outbox.enqueue([NewMessage("<a@b>", "s@example.com", ("r@x.test",), "", b"x")])
    rows.update_outbox(outbox_id, provider_id=provider.id)
    rows.execute(
        "INSERT INTO attempts (outbox_id, number, provider_id, provider_name, started_at) "
        "VALUES (?, 1, ?, 'p', 1.0)",
        (outbox_id, provider.id),
    )

    # ON DELETE SET NULL only happens when the deleting connection has foreign_keys=ON.
    providers.remove("p")
    assert rows.outbox(outbox_id)["provider_id"] is None
    (attempt,) = rows.attempts(outbox_id)
    assert attempt["provider_id"] is None
    assert attempt["provider_name"] == "p"  # history outlives the provider

    with database.write() as connection:
        connection.execute(delete(OutboxRow).where(OutboxRow.id == outbox_id))
    assert rows.attempts(outbox_id) == []  # ON DELETE CASCADE


# -- migrations -----------------------------------------------------------------------------


def test_a_new_file_is_created_at_head(database: Database, rows: RawRows) -> None:
    assert database.current_revision() == HEAD
    tables = {r["name"] for r in rows.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"providers", "outbox", "attempts", "settings", "alembic_version"} <= tables


def test_the_migrations_build_exactly_the_orm_schema(database: Database) -> None:
    # Alembic's own comparison: a column or index added to schema.py without a migration
    # (or the other way round) shows up here instead of on a user's machine.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from desktop_app.core.storage.schema import Base

    with database.read() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_reopening_keeps_the_data_and_the_revision(db_path: Path) -> None:
    first = Database.open_file(db_path)
    SettingsStore(first).set_text("retry.max_age_hours", "12")
    first.dispose()

    again = Database.open_file(db_path)
    try:
        assert again.current_revision() == HEAD
        assert SettingsStore(again).get("retry.max_age_hours") == 12.0
    finally:
        again.dispose()


def test_a_database_from_revision_0001_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    # What the first release shipped: the engine Database.open_url builds, migrated to 0001.
    engine = create_engine(f"sqlite:///{path}")
    dialect.configure_engine(engine)
    Database(engine, str(path)).upgrade("0001")
    engine.dispose()
    raw = RawRows(path)
    tables = {r["name"] for r in raw.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "settings" not in tables
    raw.execute(
        "INSERT INTO providers (id, uid, name, host, port, security, username, priority, weight,"
        " max_connections, rate_per_minute, sender_domains, enabled, allow_insecure,"
        " created_at, updated_at) VALUES (1, 'uid-1', 'legacy', 'smtp.example.com', 587,"
        " 'starttls', 'me', 0, 1, 2, 30, '[\"example.com\"]', 1, 0, 1.0, 1.0)"
    )
    raw.execute(
        "INSERT INTO outbox (id, message_id, state, envelope_from, recipients,"
        " remaining_recipients, subject, raw, created_at, updated_at, next_attempt_at,"
        " attempt_count, deferral_count, possible_duplicate) VALUES (7, '<old@example.com>',"
        " 'queued', 's@example.com', '[\"r@example.net\"]', '[\"r@example.net\"]', 'old',"
        " X'48690D0A', 5.0, 5.0, 5.0, 0, 0, 0)"
    )

    database = Database.open_file(path)
    try:
        assert database.current_revision() == HEAD
        (provider,) = ProviderRepository(database).all()
        assert (provider.id, provider.uid, provider.name, provider.port) == (
            1,
            "uid-1",
            "legacy",
            587,
        )
        assert provider.rate_limits.per_minute == 30
        assert provider.sender_domains == ("example.com",)
        outbox = OutboxRepository(database)
        assert outbox.counts().queued == 1
        (message,) = outbox.claim_due("w", 10, now=5.0)
        assert (message.outbox_id, message.message_id) == (7, "<old@example.com>")
        assert message.recipients == ("r@example.net",)
        assert message.raw == b"Hi\r\n"
        settings = SettingsStore(database)
        assert settings.get("ambiguous.policy") == AmbiguousPolicy.RETRY.value
        settings.set_text("ambiguous.policy", "hold")
        assert settings.get("ambiguous.policy") == "hold"
    finally:
        database.dispose()


# -- a locked or damaged file ---------------------------------------------------------------


def test_a_write_while_another_program_holds_the_lock_is_a_clear_error(
    short_busy_timeout: None, db_path: Path
) -> None:
    database = Database.open_file(db_path)
    outbox = OutboxRepository(database)
    try:
        with write_lock_held_elsewhere(db_path):
            with pytest.raises(DatabaseLockedError) as caught:
                outbox.enqueue([NewMessage("<a@b>", "s@example.com", ("r@x.test",), "", b"x")])
            # WAL: reading never waits for the writer.
            assert outbox.counts().queued == 0
        message = str(caught.value)
        assert "\n" not in message
        assert str(db_path) in message
        assert "locked" in message
        assert isinstance(caught.value, EnvironmentProblem)
        # Once the other program lets go, the same Database works again.
        outbox.enqueue([NewMessage("<a@b>", "s@example.com", ("r@x.test",), "", b"x")])
        assert outbox.counts().queued == 1
    finally:
        database.dispose()


def test_opening_a_file_that_needs_migrating_while_locked_is_a_clear_error(
    short_busy_timeout: None, tmp_path: Path
) -> None:
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as creator:
        creator.execute("CREATE TABLE unrelated (x)")
        creator.commit()

    with write_lock_held_elsewhere(path), pytest.raises(DatabaseLockedError) as caught:
        Database.open_file(path)

    assert "\n" not in str(caught.value)


def test_a_file_of_random_bytes_is_reported_as_damaged(tmp_path: Path) -> None:
    path = tmp_path / "relaydesk.sqlite3"
    path.write_bytes(random.Random(0).randbytes(16_384))

    with pytest.raises(DatabaseCorruptError) as caught:
        Database.open_file(path)

    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message


def test_a_damaged_schema_page_is_reported_as_damaged(db_path: Path) -> None:
    Database.open_file(db_path).dispose()
    with closing(sqlite3.connect(db_path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db_path.read_bytes())
    assert data.startswith(b"SQLite format 3\x00")
    data[100:4096] = random.Random(1).randbytes(3996)  # page 1 after the header: the schema
    db_path.write_bytes(bytes(data))

    with pytest.raises(DatabaseCorruptError) as caught:
        database = Database.open_file(db_path)
        with database.read() as connection:
            connection.execute(text("SELECT count(*) FROM outbox"))

    assert "\n" not in str(caught.value)


def test_a_bug_in_sql_keeps_its_traceback(database: Database) -> None:
    # Only errors a user can meet in the field are translated; ours stay loud.
    with pytest.raises(OperationalError, match="no_such_column"), database.read() as connection:
        connection.execute(text("SELECT no_such_column FROM outbox"))
