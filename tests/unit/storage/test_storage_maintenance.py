"""Maintenance windows on a real SQLite file: stored, read with their providers, removed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from desktop_app.core.errors import ProviderNotFoundError, UserInputError
from desktop_app.core.health.maintenance import once_window, weekly_window
from desktop_app.core.models import MaintenanceKind, ProviderConfig, Security
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.maintenance import MaintenanceRepository
from desktop_app.core.storage.providers import ProviderRepository
from tests.unit.storage.storage_rows import RawRows

WEEKLY = weekly_window(6, 120, 90, "Europe/Berlin", "upgrade")
ONCE = once_window(1_800_000_000.0, 1_800_003_600.0, "move")


@pytest.fixture
def windows(database: Database) -> MaintenanceRepository:
    return MaintenanceRepository(database)


def add(providers: ProviderRepository, name: str, priority: int = 0) -> ProviderConfig:
    return providers.add(
        ProviderConfig(
            name=name, host="smtp.example.com", port=587, security=Security.STARTTLS,
            priority=priority,
        )
    )  # fmt: skip


@pytest.fixture
def selects(database: Database) -> Iterator[list[str]]:
    """Every SELECT the database runs while the test does."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    yield seen
    event.remove(database.engine, "before_cursor_execute", record)


def test_windows_are_stored_exactly_and_come_back_with_their_provider(
    providers: ProviderRepository, windows: MaintenanceRepository, rows: RawRows
) -> None:
    primary = add(providers, "primary")
    weekly = windows.add("primary", WEEKLY)
    once = windows.add("primary", ONCE)

    assert weekly.id is not None and once.id is not None and weekly.id != once.id
    (stored_weekly, stored_once) = rows.query("SELECT * FROM maintenance_windows ORDER BY id")
    assert stored_weekly["provider_id"] == primary.id
    assert (stored_weekly["kind"], stored_weekly["weekday"], stored_weekly["start_minute"]) == (
        "weekly",
        6,
        120,
    )
    assert (stored_weekly["duration_minutes"], stored_weekly["timezone"]) == (90, "Europe/Berlin")
    assert (stored_once["kind"], stored_once["starts_at"], stored_once["ends_at"]) == (
        "once",
        1_800_000_000.0,
        1_800_003_600.0,
    )
    assert stored_once["created_at"] > 0

    assert providers.get("primary").maintenance == (weekly, once)
    assert weekly.kind is MaintenanceKind.WEEKLY and weekly.note == "upgrade"
    assert windows.by_provider() == {"primary": (weekly, once)}


def test_all_reads_every_providers_windows_in_two_queries(
    providers: ProviderRepository, windows: MaintenanceRepository, selects: list[str]
) -> None:
    for n in range(12):
        add(providers, f"p{n:02d}", priority=n)
        if n % 3 == 0:
            windows.add(f"p{n:02d}", WEEKLY)
            windows.add(f"p{n:02d}", ONCE)
    selects.clear()

    listed = providers.all()

    assert len(selects) == 2, selects
    assert [len(p.maintenance) for p in listed] == [2, 0, 0] * 4
    assert all(w.kind is MaintenanceKind.WEEKLY for w in (p.maintenance[0] for p in listed[::3]))


def test_renaming_or_editing_a_provider_keeps_its_windows(
    providers: ProviderRepository, windows: MaintenanceRepository
) -> None:
    primary = add(providers, "primary")
    stored = windows.add("primary", WEEKLY)

    # A stale copy without windows (an edit dialog opened earlier) must not drop them.
    renamed = providers.update("primary", dataclasses.replace(primary, name="main", maintenance=()))

    assert renamed.maintenance == (stored,)
    assert windows.by_provider("main") == {"main": (stored,)}


def test_removing_a_provider_removes_its_windows(
    providers: ProviderRepository, windows: MaintenanceRepository, rows: RawRows
) -> None:
    add(providers, "primary")
    add(providers, "backup", priority=1)
    windows.add("primary", WEEKLY)
    kept = windows.add("backup", ONCE)

    removed = providers.remove("primary")

    assert len(removed.maintenance) == 1
    assert [r["id"] for r in rows.query("SELECT id FROM maintenance_windows")] == [kept.id]


def test_a_window_is_removed_only_through_its_own_provider(
    providers: ProviderRepository, windows: MaintenanceRepository
) -> None:
    add(providers, "primary")
    add(providers, "backup", priority=1)
    theirs = windows.add("backup", WEEKLY)

    with pytest.raises(UserInputError, match="provider 'primary' has no maintenance window"):
        windows.remove("primary", theirs.id or 0)
    assert windows.by_provider("backup") == {"backup": (theirs,)}

    assert windows.remove("backup", theirs.id or 0) == theirs
    assert windows.by_provider() == {"primary": (), "backup": ()}
    with pytest.raises(UserInputError):
        windows.remove("backup", theirs.id or 0)


def test_unknown_providers_are_named(windows: MaintenanceRepository) -> None:
    with pytest.raises(ProviderNotFoundError, match="no provider named 'ghost'"):
        windows.add("ghost", WEEKLY)
    with pytest.raises(ProviderNotFoundError):
        windows.by_provider("ghost")
    with pytest.raises(ProviderNotFoundError):
        windows.remove("ghost", 1)
