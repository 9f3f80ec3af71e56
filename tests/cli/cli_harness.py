"""Runs ``python -m desktop_app`` in a subprocess against one data directory.

The command line is a contract (README, "The command line"): these helpers hold every
invocation to it, so a test only says what it does and what it expects.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATABASE_FILENAME = "relaydesk.sqlite3"
#: The checkout these tests belong to: its desktop_app is the one under test, whatever
#: else (an installed copy, another worktree) the interpreter would find first.
REPO_ROOT = Path(__file__).resolve().parents[2]
ERROR_PREFIX = "relaydesk: error:"


@dataclass(frozen=True)
class Run:
    """What one invocation did."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        command = " ".join(self.args)
        return f"relaydesk {command} -> {self.code}\nstdout: {self.out}\nstderr: {self.err}"


class Relaydesk:
    """``relaydesk --data-dir <data_dir> ...`` as a subprocess, with no keyring and no GUI."""

    def __init__(self, data_dir: Path, cwd: Path) -> None:
        self.data_dir = data_dir
        self.cwd = cwd
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key
            not in ("RELAYDESK_DATA_DIR", "DBUS_SESSION_BUS_ADDRESS", "RELAYDESK_BUSY_TIMEOUT_MS")
        }
        # An explicit "no keyring": these tests never store a password, and must never
        # reach the developer's own keyring by accident.
        self.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        )

    @property
    def database(self) -> Path:
        return self.data_dir / DATABASE_FILENAME

    def __call__(
        self,
        *args: str,
        stdin: str = "",
        env: dict[str, str] | None = None,
        memory_limit: int | None = None,
    ) -> Run:
        """``memory_limit``: bytes of address space for the command (``ulimit -v``)."""
        result = subprocess.run(
            [sys.executable, "-m", "desktop_app", "--data-dir", str(self.data_dir), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            timeout=120,
            check=False,
            preexec_fn=None if memory_limit is None else _limit_memory(memory_limit),
        )
        return Run(tuple(args), result.returncode, result.stdout, result.stderr)

    def ok(self, *args: str, stdin: str = "") -> Run:
        """Run a command that must succeed quietly on stderr."""
        run = self(*args, stdin=stdin)
        assert run.code == 0, str(run)
        assert run.err == "", str(run)
        return run

    def fails(self, *args: str, code: int = 2, stdin: str = "", **kwargs: Any) -> str:
        """Run a command that must fail the documented way; returns the error text."""
        run = self(*args, stdin=stdin, **kwargs)
        assert run.code == code, str(run)
        assert "Traceback" not in run.out + run.err, str(run)
        lines = run.err.splitlines()
        assert len(lines) == 1, str(run)
        assert run.err.endswith("\n"), str(run)
        assert lines[0].startswith(ERROR_PREFIX + " "), str(run)
        return lines[0][len(ERROR_PREFIX) + 1 :]

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").out)

    # -- looking at the database directly ------------------------------------------------------

    def _rows(self, table: str, order_by: str = "id") -> list[dict[str, Any]]:
        if not self.database.exists():
            return []
        query = f"SELECT * FROM {table} ORDER BY {order_by}"  # noqa: S608
        with closing(sqlite3.connect(self.database)) as connection:
            connection.row_factory = sqlite3.Row
            return [dict(r) for r in connection.execute(query)]

    def outbox_rows(self) -> list[dict[str, Any]]:
        rows = self._rows("outbox")
        for row in rows:
            row["recipients"] = json.loads(row["recipients"])
            row["remaining_recipients"] = json.loads(row["remaining_recipients"])
        return rows

    def stored_settings(self) -> dict[str, Any]:
        """Settings set explicitly (unset ones read as their defaults)."""
        return {row["key"]: json.loads(row["value"]) for row in self._rows("settings", "key")}

    def provider_names(self) -> list[str]:
        """What the providers table holds, read without the CLI (cheap, and independent)."""
        return [row["name"] for row in self._rows("providers")]


def _limit_memory(size: int) -> Callable[[], None]:
    """What the child runs before ``exec``: cap its address space at ``size`` bytes."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    return limit
