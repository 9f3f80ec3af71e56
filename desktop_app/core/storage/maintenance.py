"""Maintenance windows in the database: add, remove and list them per provider.

Windows are read together with their providers (``ProviderRepository`` fills
``ProviderConfig.maintenance``) and written only here, so that editing a provider's settings
can never overwrite windows someone added meanwhile. Checking what people typed is the
caller's job (core/health/maintenance.py).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app.core.errors import ProviderNotFoundError, UserInputError
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow
from desktop_app.core.storage.changes import Topic, bump
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import MaintenanceWindowRow, ProviderRow


def window_from_row(row: MaintenanceWindowRow) -> MaintenanceWindow:
    return MaintenanceWindow(
        kind=MaintenanceKind(row.kind),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        weekday=row.weekday,
        start_minute=row.start_minute,
        duration_minutes=row.duration_minutes,
        timezone=row.timezone,
        note=row.note or "",
        id=row.id,
    )


def windows_by_provider(
    session: Session, provider_ids: Iterable[int] | None = None
) -> dict[int, tuple[MaintenanceWindow, ...]]:
    """Windows of the given providers (all when None), oldest first, in one query."""
    query = select(MaintenanceWindowRow).order_by(
        MaintenanceWindowRow.provider_id, MaintenanceWindowRow.id
    )
    if provider_ids is not None:
        query = query.where(MaintenanceWindowRow.provider_id.in_(list(provider_ids)))
    grouped: defaultdict[int, list[MaintenanceWindow]] = defaultdict(list)
    for row in session.scalars(query):
        grouped[row.provider_id].append(window_from_row(row))
    return {provider_id: tuple(windows) for provider_id, windows in grouped.items()}


class MaintenanceRepository:
    """The maintenance_windows table, addressed by provider name.

    Every write bumps ``Topic.MAINTENANCE`` in its transaction (storage/changes.py).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, provider_name: str, window: MaintenanceWindow) -> MaintenanceWindow:
        """Store ``window`` for the provider; returns it with its id."""
        with self._database.session() as session:
            provider = _provider(session, provider_name)
            row = MaintenanceWindowRow(
                provider_id=provider.id,
                kind=MaintenanceKind(window.kind).value,
                starts_at=window.starts_at,
                ends_at=window.ends_at,
                weekday=window.weekday,
                start_minute=window.start_minute,
                duration_minutes=window.duration_minutes,
                timezone=window.timezone,
                note=window.note,
                created_at=time.time(),
            )
            session.add(row)
            session.flush()
            bump(session.connection(), Topic.MAINTENANCE)
            return window_from_row(row)

    def remove(self, provider_name: str, window_id: int) -> MaintenanceWindow:
        """Delete one window of the provider; the id must belong to that provider."""
        with self._database.session() as session:
            provider = _provider(session, provider_name)
            row = session.get(MaintenanceWindowRow, window_id)
            if row is None or row.provider_id != provider.id:
                raise UserInputError(
                    f"provider {provider_name!r} has no maintenance window {window_id}"
                )
            removed = window_from_row(row)
            session.delete(row)
            bump(session.connection(), Topic.MAINTENANCE)
            return removed

    def by_provider(
        self, provider_name: str | None = None
    ) -> dict[str, tuple[MaintenanceWindow, ...]]:
        """{provider name: its windows}, every provider (or just one), in priority order."""
        with self._database.session() as session:
            query = select(ProviderRow).order_by(ProviderRow.priority, ProviderRow.name)
            if provider_name is not None:
                query = query.where(ProviderRow.name == provider_name)
            providers = list(session.scalars(query))
            if provider_name is not None and not providers:
                raise ProviderNotFoundError(provider_name)
            ids = None if provider_name is None else [p.id for p in providers]
            windows = windows_by_provider(session, ids)
            return {p.name: windows.get(p.id, ()) for p in providers}


def _provider(session: Session, name: str) -> ProviderRow:
    row = session.scalars(select(ProviderRow).where(ProviderRow.name == name)).one_or_none()
    if row is None:
        raise ProviderNotFoundError(name)
    return row
