"""The in-app alert log: every alert raised, when it cleared, and its email if one was sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update

from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import AlertRow

# Alerts older than a year are pruned with the rest of the health history (storage/health.py).


@dataclass(frozen=True, slots=True)
class LoggedAlert:
    id: int
    raised_at: float
    rule: str
    subject: str
    severity: str
    message: str
    resolved_at: float | None
    email_outbox_id: int | None
    acknowledged_at: float | None = None


class AlertRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    def add(
        self,
        *,
        raised_at: float,
        rule: str,
        subject: str,
        severity: str,
        message: str,
        email_outbox_id: int | None,
    ) -> int:
        with self._database.write() as connection:
            return int(
                connection.execute(
                    insert(AlertRow)
                    .values(
                        raised_at=raised_at,
                        rule=rule,
                        subject=subject[:100],
                        severity=severity,
                        message=message[:500],
                        resolved_at=None,
                        email_outbox_id=email_outbox_id,
                    )
                    .returning(AlertRow.id)
                ).scalar_one()
            )

    def resolve(self, alert_id: int, at: float) -> None:
        with self._database.write() as connection:
            connection.execute(
                update(AlertRow)
                .where(AlertRow.id == alert_id, AlertRow.resolved_at.is_(None))
                .values(resolved_at=at)
            )

    def open_alerts(self) -> list[LoggedAlert]:
        """Alerts not resolved yet, oldest first (what an alerter takes over at start)."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(AlertRow).where(AlertRow.resolved_at.is_(None)).order_by(AlertRow.id)
            ).all()
        return [_logged(r) for r in rows]

    def last_raised(self) -> dict[tuple[str, str], float]:
        """When each (rule, subject) last raised an alert: repeats are counted from there,
        across restarts."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(AlertRow.rule, AlertRow.subject, func.max(AlertRow.raised_at)).group_by(
                    AlertRow.rule, AlertRow.subject
                )
            ).all()
        return {(rule, subject): float(at) for rule, subject, at in rows}

    def acknowledge(self, alert_id: int, at: float) -> LoggedAlert:
        """Mark an alert as seen by someone (kept at the first time it was); the alert as
        it now is. A one-line ``UserInputError`` for an id the log does not have."""
        with self._database.write() as connection:
            connection.execute(
                update(AlertRow)
                .where(AlertRow.id == alert_id, AlertRow.acknowledged_at.is_(None))
                .values(acknowledged_at=at)
            )
            row = connection.execute(select(AlertRow).where(AlertRow.id == alert_id)).first()
        if row is None:
            raise UserInputError(f"no alert with id {alert_id}")
        return _logged(row)

    def recent(self, limit: int = 200, *, open_only: bool = False) -> list[LoggedAlert]:
        """The newest alerts first; ``open_only``: those not cleared yet."""
        query = select(AlertRow)
        if open_only:
            query = query.where(AlertRow.resolved_at.is_(None))
        with self._database.read() as connection:
            rows = connection.execute(
                query.order_by(AlertRow.raised_at.desc(), AlertRow.id.desc()).limit(limit)
            ).all()
        return [_logged(r) for r in rows]


def _logged(r: Any) -> LoggedAlert:
    return LoggedAlert(
        id=r.id,
        raised_at=r.raised_at,
        rule=r.rule,
        subject=r.subject,
        severity=r.severity,
        message=r.message,
        resolved_at=r.resolved_at,
        email_outbox_id=r.email_outbox_id,
        acknowledged_at=r.acknowledged_at,
    )
