"""The ``provider_status`` table: each provider's live state, as the sending app last saw it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select

from desktop_app.core.models import BreakerState, ProviderLiveState, ProviderState
from desktop_app.core.storage.changes import Topic, bump
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import ProviderStatusRow

_DETAIL_LENGTH = 300


class ProviderStateRepository:
    """Saves and loads ``ProviderLiveState`` records (one row per provider uid)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def save(self, states: Iterable[ProviderLiveState], *, keep: Iterable[str]) -> None:
        """Write ``states``; rows of providers not in ``keep`` (removed ones) go."""
        moved = False
        with self._database.session() as session:
            for live in states:
                row = session.get(ProviderStatusRow, live.provider_uid)
                if row is None:
                    row = ProviderStatusRow(provider_uid=live.provider_uid)
                    session.add(row)
                    moved = True
                elif (row.state, row.breaker, row.provider_name) != (
                    live.state.value,
                    live.breaker.value,
                    live.provider_name,
                ):
                    moved = True
                row.provider_name = live.provider_name
                row.state = live.state.value
                row.health = live.health
                row.breaker = live.breaker.value
                row.breaker_retry_at = live.breaker_retry_at
                row.last_probe_at = live.last_probe_at
                row.last_probe_ok = live.last_probe_ok
                row.last_send_at = live.last_send_at
                row.last_send_outcome = live.last_send_outcome
                row.quota_free_at = live.quota_free_at
                row.in_maintenance = live.in_maintenance
                row.password_missing = live.password_missing
                row.enabled = live.enabled
                row.since = live.since
                row.updated_at = live.updated_at
                row.detail = live.detail[:_DETAIL_LENGTH]
            session.flush()
            connection = session.connection()
            gone = connection.execute(
                delete(ProviderStatusRow).where(ProviderStatusRow.provider_uid.not_in(list(keep)))
            )
            if moved or gone.rowcount:
                # Only word moves: the heartbeat alone must not wake every window each flush.
                bump(connection, Topic.PROVIDER_STATE)

    def load(self) -> dict[str, ProviderLiveState]:
        """Every stored record, by provider uid."""
        with self._database.session() as session:
            rows = session.scalars(select(ProviderStatusRow)).all()
            return {row.provider_uid: _live(row) for row in rows}


def _live(row: ProviderStatusRow) -> ProviderLiveState:
    try:
        state = ProviderState(row.state)
    except ValueError:  # a word an older version wrote
        state = ProviderState.UNKNOWN
    try:
        breaker = BreakerState(row.breaker)
    except ValueError:
        breaker = BreakerState.CLOSED
    return ProviderLiveState(
        provider_uid=row.provider_uid,
        provider_name=row.provider_name,
        state=state,
        health=row.health or "unknown",
        breaker=breaker,
        breaker_retry_at=row.breaker_retry_at,
        last_probe_at=row.last_probe_at,
        last_probe_ok=row.last_probe_ok,
        last_send_at=row.last_send_at,
        last_send_outcome=row.last_send_outcome,
        quota_free_at=row.quota_free_at,
        in_maintenance=bool(row.in_maintenance),
        password_missing=bool(row.password_missing),
        enabled=True if row.enabled is None else bool(row.enabled),
        since=row.since,
        updated_at=row.updated_at,
        detail=row.detail or "",
    )
