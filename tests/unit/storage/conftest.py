"""A real SQLite file per test, the repositories over it, and a raw view of its rows."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop_app.core.storage.database import DATABASE_FILENAME, Database
from desktop_app.core.storage.outbox import NewMessage, OutboxRepository
from desktop_app.core.storage.providers import ProviderRepository
from tests.unit.storage.storage_rows import RawRows


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / DATABASE_FILENAME


@pytest.fixture
def database(db_path: Path) -> Iterator[Database]:
    database = Database.open_file(db_path)
    yield database
    database.dispose()


@pytest.fixture
def outbox(database: Database) -> OutboxRepository:
    return OutboxRepository(database)


@pytest.fixture
def providers(database: Database) -> ProviderRepository:
    return ProviderRepository(database)


@pytest.fixture
def rows(database: Database, db_path: Path) -> RawRows:
    return RawRows(db_path)


@pytest.fixture
def make_message() -> Callable[..., NewMessage]:
    """Factory: ``make_message(recipients=("a@x.test",))``; every call has its own Message-ID."""
    counter = itertools.count(1)

    def make(recipients: tuple[str, ...] = ("rcpt@example.net",), **fields: Any) -> NewMessage:
        n = next(counter)
        values: dict[str, Any] = {
            "message_id": f"<m{n}@example.com>",
            "envelope_from": "sender@example.com",
            "recipients": recipients,
            "subject": f"subject {n}",
            "raw": f"Subject: subject {n}\r\n\r\nbody {n}\r\n".encode(),
        }
        values.update(fields)
        return NewMessage(**values)

    return make
