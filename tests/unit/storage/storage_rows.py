"""Direct SQL on a test's database file, bypassing the repositories under test.

Arranging a state (a lease that expired, a deferral due later) and checking what is on disk
go through their own ``sqlite3`` connection, so an assertion about what is stored never
trusts the code under test to read it back.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

_JSON_COLUMNS = ("recipients", "remaining_recipients", "sender_domains")


class RawRows:
    """Direct SQL on the database file, for arranging states and checking what is on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with closing(self._connect()) as connection:
            rows = [dict(row) for row in connection.execute(sql, params)]
        for row in rows:
            for column in _JSON_COLUMNS:
                if isinstance(row.get(column), str):
                    row[column] = json.loads(row[column])
        return rows

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with closing(self._connect()) as connection:
            connection.execute(sql, params)

    def outbox(self, outbox_id: int) -> dict[str, Any]:
        (row,) = self.query("SELECT * FROM outbox WHERE id = ?", (outbox_id,))
        return row

    def all_outbox(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM outbox ORDER BY id")

    def attempts(self, outbox_id: int) -> list[dict[str, Any]]:
        return self.query(
            "SELECT * FROM attempts WHERE outbox_id = ? ORDER BY number", (outbox_id,)
        )

    def update_outbox(self, outbox_id: int, **columns: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        values = tuple(json.dumps(v) if isinstance(v, list) else v for v in columns.values())
        self.execute(f"UPDATE outbox SET {assignments} WHERE id = ?", (*values, outbox_id))  # noqa: S608
