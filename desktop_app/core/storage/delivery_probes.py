"""End-to-end delivery probes: sent, seen in the seed mailbox, or lost."""

from __future__ import annotations

import statistics
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import delete, func, insert, select, update

from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import DeliveryProbeRow


class ProbeStatus:
    PENDING = "pending"
    DELIVERED = "delivered"
    LOST = "lost"  # SMTP accepted it; it never showed up in the seed mailbox
    SEND_FAILED = "send_failed"


@dataclass(frozen=True, slots=True)
class LostProbe:
    provider_name: str
    token: str
    sent_at: float


@dataclass(frozen=True, slots=True)
class DeliveryFigures:
    """One provider's delivery probes over a window."""

    latency_p50_ms: float | None
    delivered: int
    lost: int


class ProbePoint(NamedTuple):
    """One probe as the Dashboard charts it."""

    provider_uid: str
    provider_name: str
    sent_at: float
    status: str
    delivery_latency_ms: float | None  # None unless delivered


class DeliveryProbeRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, *, token: str, provider_uid: str, provider_name: str, sent_at: float) -> None:
        """Stored before the message is sent: it can arrive before SMTP's final reply does."""
        with self._database.write() as connection:
            connection.execute(
                insert(DeliveryProbeRow).values(
                    token=token,
                    provider_uid=provider_uid,
                    provider_name=provider_name,
                    sent_at=sent_at,
                    status=ProbeStatus.PENDING,
                    detail="",
                )
            )

    def record_send(
        self, token: str, *, smtp_latency_ms: float | None, accepted: bool, detail: str = ""
    ) -> None:
        with self._database.write() as connection:
            values: dict[str, object] = {"smtp_latency_ms": smtp_latency_ms}
            if not accepted:
                values.update(status=ProbeStatus.SEND_FAILED, detail=detail[:300])
            connection.execute(
                update(DeliveryProbeRow).where(DeliveryProbeRow.token == token).values(**values)
            )

    def mark_seen(self, token: str, seen_at: float) -> bool:
        """The probe arrived (late ones too: it did arrive). True if it was ours and new."""
        with self._database.write() as connection:
            row = connection.execute(
                select(DeliveryProbeRow.sent_at, DeliveryProbeRow.status).where(
                    DeliveryProbeRow.token == token
                )
            ).first()
            if row is None or row.status in (ProbeStatus.DELIVERED, ProbeStatus.SEND_FAILED):
                return False
            seen_at = max(seen_at, row.sent_at)  # clocks of two machines: never negative
            connection.execute(
                update(DeliveryProbeRow)
                .where(DeliveryProbeRow.token == token)
                .values(
                    status=ProbeStatus.DELIVERED,
                    seen_at=seen_at,
                    delivery_latency_ms=(seen_at - row.sent_at) * 1000,
                )
            )
            return True

    def expire(self, now: float, timeout_seconds: float) -> list[LostProbe]:
        """Pending probes older than the limit become lost; returns the newly lost ones."""
        with self._database.write() as connection:
            rows = connection.execute(
                select(
                    DeliveryProbeRow.id,
                    DeliveryProbeRow.provider_name,
                    DeliveryProbeRow.token,
                    DeliveryProbeRow.sent_at,
                ).where(
                    DeliveryProbeRow.status == ProbeStatus.PENDING,
                    DeliveryProbeRow.sent_at < now - timeout_seconds,
                )
            ).all()
            if rows:
                connection.execute(
                    update(DeliveryProbeRow)
                    .where(DeliveryProbeRow.id.in_([row.id for row in rows]))
                    .values(
                        status=ProbeStatus.LOST,
                        detail=f"accepted, not in the seed mailbox after {timeout_seconds:.0f} s",
                    )
                )
        return [LostProbe(row.provider_name, row.token, row.sent_at) for row in rows]

    def figures(self, provider_uid: str, since: float) -> DeliveryFigures:
        with self._database.read() as connection:
            latencies = [
                value
                for value in connection.execute(
                    select(DeliveryProbeRow.delivery_latency_ms).where(
                        DeliveryProbeRow.provider_uid == provider_uid,
                        DeliveryProbeRow.sent_at >= since,
                        DeliveryProbeRow.status == ProbeStatus.DELIVERED,
                    )
                ).scalars()
                if value is not None
            ]
            lost = connection.scalar(
                select(func.count()).where(
                    DeliveryProbeRow.provider_uid == provider_uid,
                    DeliveryProbeRow.sent_at >= since,
                    DeliveryProbeRow.status == ProbeStatus.LOST,
                )
            )
        return DeliveryFigures(
            latency_p50_ms=statistics.median(latencies) if latencies else None,
            delivered=len(latencies),
            lost=int(lost or 0),
        )

    def points(
        self, since: float, until: float, statuses: Collection[str] | None = None
    ) -> list[ProbePoint]:
        """Probes sent in [since, until), oldest first; only those in ``statuses`` if given
        (the (status, sent_at) index then does the work, not a scan of the table)."""
        query = select(
            DeliveryProbeRow.provider_uid,
            DeliveryProbeRow.provider_name,
            DeliveryProbeRow.sent_at,
            DeliveryProbeRow.status,
            DeliveryProbeRow.delivery_latency_ms,
        ).where(DeliveryProbeRow.sent_at >= since, DeliveryProbeRow.sent_at < until)
        if statuses is not None:
            query = query.where(DeliveryProbeRow.status.in_(list(statuses)))
        with self._database.read() as connection:
            rows = connection.execute(query.order_by(DeliveryProbeRow.sent_at)).all()
        return [ProbePoint(*row) for row in rows]

    def status_counts(
        self, since: float, until: float, statuses: Collection[str]
    ) -> dict[str, int]:
        """How many probes sent in [since, until) are in each of ``statuses`` (0 for none)."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(DeliveryProbeRow.status, func.count())
                .where(
                    DeliveryProbeRow.status.in_(list(statuses)),
                    DeliveryProbeRow.sent_at >= since,
                    DeliveryProbeRow.sent_at < until,
                )
                .group_by(DeliveryProbeRow.status)
            ).all()
        counts = dict.fromkeys(statuses, 0)
        counts.update({status: int(count) for status, count in rows})
        return counts

    def last_sent_at(self) -> float | None:
        with self._database.read() as connection:
            return connection.scalar(select(func.max(DeliveryProbeRow.sent_at)))

    def prune(self, before: float) -> None:
        with self._database.write() as connection:
            connection.execute(delete(DeliveryProbeRow).where(DeliveryProbeRow.sent_at < before))
