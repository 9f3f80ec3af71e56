"""Read-only views of the outbox for people: filtered, paged, cheap on 100,000 rows.

Pages use keyset pagination (``id > last seen id``), so the thousandth page costs what the
first one does; OFFSET would rescan everything before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select

from desktop_app.core.models import MessageState
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import OutboxRow, ProviderRow


@dataclass(frozen=True, slots=True)
class OutboxFilter:
    """Which messages a view shows: some states (empty: all) and a text to search for."""

    states: tuple[MessageState, ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row as a person sees it."""

    outbox_id: int
    state: MessageState
    recipients: str
    subject: str
    provider_name: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: float | None
    created_at: float
    possible_duplicate: bool


_COLUMNS = (
    OutboxRow.id,
    OutboxRow.state,
    OutboxRow.remaining_recipients,
    OutboxRow.recipients,
    OutboxRow.subject,
    ProviderRow.name,
    OutboxRow.attempt_count,
    OutboxRow.last_error,
    OutboxRow.next_attempt_at,
    OutboxRow.created_at,
    OutboxRow.possible_duplicate,
)


def _filtered(query: Select[*tuple[Any, ...]], view: OutboxFilter) -> Any:
    if view.states:
        query = query.where(OutboxRow.state.in_([s.value for s in view.states]))
    text = view.text.strip()
    if text:
        # Recipients are stored as JSON text; a LIKE over it finds addresses well enough.
        pattern = f"%{text.replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(
                OutboxRow.subject.ilike(pattern),
                func.cast(OutboxRow.recipients, OutboxRow.subject.type).ilike(pattern),
                OutboxRow.message_id.ilike(pattern),
            )
        )
    return query


class OutboxViews:
    """Queries behind the Outbox page."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def count(self, view: OutboxFilter) -> int:
        with self._database.read() as connection:
            return connection.scalar(_filtered(select(func.count(OutboxRow.id)), view)) or 0

    def page(self, view: OutboxFilter, *, after_id: int = 0, limit: int = 500) -> list[OutboxEntry]:
        """Up to ``limit`` entries with ids above ``after_id``, in id order."""
        query = (
            select(*_COLUMNS)
            .outerjoin(ProviderRow, ProviderRow.id == OutboxRow.provider_id)
            .where(OutboxRow.id > after_id)
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        with self._database.read() as connection:
            return [_entry(row) for row in connection.execute(_filtered(query, view))]

    def entries(self, outbox_ids: Sequence[int]) -> list[OutboxEntry]:
        """The current state of specific messages (for live updates of visible rows)."""
        if not outbox_ids:
            return []
        query = (
            select(*_COLUMNS)
            .outerjoin(ProviderRow, ProviderRow.id == OutboxRow.provider_id)
            .where(OutboxRow.id.in_(list(outbox_ids)))
        )
        with self._database.read() as connection:
            return [_entry(row) for row in connection.execute(query)]


def _entry(row: Any) -> OutboxEntry:
    state = MessageState(row[1])
    remaining: list[str] = row[2] or []
    recipients: list[str] = row[3] or []
    # Once done, show who it was for; while waiting, who it still has to reach.
    shown = recipients if not remaining or state is MessageState.SENT else remaining
    return OutboxEntry(
        outbox_id=int(row[0]),
        state=state,
        recipients=", ".join(shown),
        subject=str(row[4]),
        provider_name=row[5],
        attempts=int(row[6]),
        last_error=row[7],
        next_attempt_at=row[8],
        created_at=float(row[9]),
        possible_duplicate=bool(row[10]),
    )
