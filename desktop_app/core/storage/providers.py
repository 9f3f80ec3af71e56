"""Providers in the database: add, change, remove, list in priority order."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from desktop_app.core.errors import DuplicateProviderError, ProviderNotFoundError
from desktop_app.core.models import MaintenanceWindow, ProviderConfig, RateLimits, Security
from desktop_app.core.storage.changes import Topic, bump
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.maintenance import windows_by_provider
from desktop_app.core.storage.schema import ProviderRow


def _to_config(row: ProviderRow, maintenance: tuple[MaintenanceWindow, ...] = ()) -> ProviderConfig:
    return ProviderConfig(
        id=row.id,
        uid=row.uid,
        name=row.name,
        host=row.host,
        port=row.port,
        security=Security(row.security),
        username=row.username,
        priority=row.priority,
        weight=row.weight,
        max_connections=row.max_connections,
        rate_limits=RateLimits(
            per_second=row.rate_per_second,
            per_minute=row.rate_per_minute,
            per_hour=row.rate_per_hour,
            per_day=row.rate_per_day,
        ),
        sender_domains=tuple(row.sender_domains or ()),
        enabled=row.enabled,
        allow_insecure=row.allow_insecure,
        maintenance=maintenance,
    )


def _apply(row: ProviderRow, config: ProviderConfig) -> None:
    row.name = config.name
    row.host = config.host
    row.port = config.port
    row.security = config.security.value
    row.username = config.username
    row.priority = config.priority
    row.weight = config.weight
    row.max_connections = config.max_connections
    row.rate_per_second = config.rate_limits.per_second
    row.rate_per_minute = config.rate_limits.per_minute
    row.rate_per_hour = config.rate_limits.per_hour
    row.rate_per_day = config.rate_limits.per_day
    row.sender_domains = list(config.sender_domains)
    row.enabled = config.enabled
    row.allow_insecure = config.allow_insecure
    row.updated_at = time.time()


class ProviderRepository:
    """CRUD on the providers table. Validation and secrets are the caller's job.

    Providers come back with their maintenance windows; ``add`` and ``update`` leave the
    windows alone (they change only through storage/maintenance.py). Every write bumps
    ``Topic.PROVIDERS`` in its transaction (storage/changes.py).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def all(self) -> list[ProviderConfig]:
        """All providers, most preferred first (two queries, however many providers)."""
        with self._database.session() as session:
            rows = session.scalars(
                select(ProviderRow).order_by(ProviderRow.priority, ProviderRow.name)
            ).all()
            windows = windows_by_provider(session)
            return [_to_config(row, windows.get(row.id, ())) for row in rows]

    def get(self, name: str) -> ProviderConfig:
        with self._database.session() as session:
            return self._with_windows(session, self._row(session, name))

    def add(self, config: ProviderConfig) -> ProviderConfig:
        now = time.time()
        row = ProviderRow(uid=config.uid or str(uuid.uuid4()), created_at=now)
        _apply(row, config)
        try:
            with self._database.session() as session:
                session.add(row)
                session.flush()
                bump(session.connection(), Topic.PROVIDERS)
                return _to_config(row)
        except IntegrityError:
            raise DuplicateProviderError(config.name) from None

    def update(self, name: str, config: ProviderConfig) -> ProviderConfig:
        """Replace the settings of provider ``name`` (which may be renamed by ``config``)."""
        try:
            with self._database.session() as session:
                row = self._row(session, name)
                _apply(row, config)
                session.flush()
                bump(session.connection(), Topic.PROVIDERS)
                return self._with_windows(session, row)
        except IntegrityError:
            raise DuplicateProviderError(config.name) from None

    def remove(self, name: str) -> ProviderConfig:
        with self._database.session() as session:
            row = self._row(session, name)
            removed = self._with_windows(session, row)
            session.delete(row)  # its windows go with it (ON DELETE CASCADE)
            topics = [Topic.PROVIDERS]
            if removed.maintenance:
                topics.append(Topic.MAINTENANCE)
            bump(session.connection(), *topics)
            return removed

    def set_priorities(self, ordered_names: list[str]) -> None:
        """Give providers priorities 0, 1, 2... in the order given (drag and drop)."""
        with self._database.session() as session:
            for priority, name in enumerate(ordered_names):
                self._row(session, name).priority = priority
            bump(session.connection(), Topic.PROVIDERS)

    @staticmethod
    def _with_windows(session: Session, row: ProviderRow) -> ProviderConfig:
        return _to_config(row, windows_by_provider(session, [row.id]).get(row.id, ()))

    @staticmethod
    def _row(session: Session, name: str) -> ProviderRow:
        row = session.scalars(select(ProviderRow).where(ProviderRow.name == name)).one_or_none()
        if row is None:
            raise ProviderNotFoundError(name)
        return row
