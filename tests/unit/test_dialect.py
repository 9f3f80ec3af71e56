"""The claim query is the piece that must also run on PostgreSQL later."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from desktop_app.core.storage.dialect import lock_for_claim
from desktop_app.core.storage.schema import OutboxRow


def _claim_sql(dialect: object) -> str:
    query = lock_for_claim(select(OutboxRow.id).where(OutboxRow.state == "queued").limit(10))
    return str(query.compile(dialect=dialect))  # type: ignore[arg-type]


def test_claim_skips_locked_rows_on_postgresql() -> None:
    assert "FOR UPDATE SKIP LOCKED" in _claim_sql(postgresql.dialect())


def test_claim_on_sqlite_relies_on_begin_immediate_instead() -> None:
    sql = _claim_sql(sqlite.dialect())
    assert "FOR UPDATE" not in sql
    assert "LIMIT" in sql
