"""Health history in the database: probes, rollups, incidents, live status; pruning.

Only the running app's health monitor writes here (one writer per data folder: it runs
under the instance lock), on its own thread, in small transactions, so delivery's
commits never wait long behind it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from desktop_app.core.health import histogram
from desktop_app.core.health.figures import Incident
from desktop_app.core.health.histogram import LatencySummary
from desktop_app.core.health.rollup import (
    COUNT_COLUMNS,
    HOUR,
    SECONDS_COLUMNS,
    RollupDelta,
    bucket_start,
)
from desktop_app.core.health.tracker import OpenIncident
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import (
    AlertRow,
    HealthHourRow,
    HealthMinuteRow,
    IncidentRow,
    ProbeResultRow,
)

#: How long each kind of history is kept (the health issue's retention).
RAW_RETENTION = 7 * 86400.0
MINUTE_RETENTION = 30 * 86400.0
HOUR_RETENTION = 365 * 86400.0
INCIDENT_RETENTION = 365 * 86400.0
ALERT_RETENTION = 365 * 86400.0
#: Rows deleted per transaction when pruning: the write lock is held for milliseconds.
PRUNE_BATCH = 2000

_ADDITIVE = (*SECONDS_COLUMNS, *COUNT_COLUMNS)
_LATENCY_KINDS = ("probe", "send")


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """One probe as stored."""

    provider_uid: str
    provider_name: str
    started_at: float
    status: str  # up / down / maintenance
    latency_ms: float
    phases_ms: Mapping[str, float] = field(default_factory=dict)
    failed_phase: str | None = None
    reply_code: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RangeTotals:
    """Sums over a time range of one provider's rollups."""

    up_seconds: float = 0.0
    down_seconds: float = 0.0
    maintenance_seconds: float = 0.0
    counts: Mapping[str, int] = field(default_factory=dict)
    probe_hist: Mapping[str, int] = field(default_factory=dict)
    send_hist: Mapping[str, int] = field(default_factory=dict)
    probe_latency_max_ms: float | None = None
    send_latency_max_ms: float | None = None

    def uptime_percent(self) -> float | None:
        """Seconds up / seconds watched (maintenance and unwatched time left out), percent."""
        watched = self.up_seconds + self.down_seconds
        return None if watched <= 0 else 100.0 * self.up_seconds / watched

    def latency(self, *, probes: bool = True, sends: bool = True) -> LatencySummary | None:
        """p50/p95/max of the range's probes and real sends (or of one of them)."""
        return histogram.summarize(
            [
                *([(self.probe_hist, self.probe_latency_max_ms)] if probes else []),
                *([(self.send_hist, self.send_latency_max_ms)] if sends else []),
            ]
        )


@dataclass(frozen=True, slots=True)
class PruneReport:
    deleted: dict[str, int]
    transactions: int


class HealthRepository:
    """Reads and writes the health tables."""

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- writes (the monitor's thread) -----------------------------------------------------

    def record_probes(self, probes: Sequence[ProbeRecord]) -> None:
        if not probes:
            return
        with self._database.write() as connection:
            connection.execute(
                insert(ProbeResultRow),
                [
                    {
                        "provider_uid": p.provider_uid,
                        "provider_name": p.provider_name,
                        "started_at": p.started_at,
                        "status": p.status,
                        "latency_ms": p.latency_ms,
                        "phases_ms": dict(p.phases_ms),
                        "failed_phase": p.failed_phase,
                        "reply_code": p.reply_code,
                        "detail": p.detail[:300],
                    }
                    for p in probes
                ],
            )

    def add_minute_deltas(self, deltas: Mapping[tuple[str, float], RollupDelta]) -> None:
        """Add each (provider uid, minute) delta to its stored row, creating it if needed."""
        if not deltas:
            return
        with self._database.session() as session:
            for (uid, bucket), delta in deltas.items():
                row = session.get(HealthMinuteRow, (uid, bucket))
                if row is None:
                    row = _empty_rollup(HealthMinuteRow, uid, bucket, delta.provider_name)
                    session.add(row)
                _add_delta(row, delta)

    def roll_up_hours(self, since: float, until: float) -> int:
        """(Re)build the hour rows of [since, until) from their minute rows; returns hours."""
        with self._database.session() as session:
            minutes = session.scalars(
                select(HealthMinuteRow)
                .where(HealthMinuteRow.bucket_start >= since, HealthMinuteRow.bucket_start < until)
                .order_by(HealthMinuteRow.provider_uid, HealthMinuteRow.bucket_start)
            ).all()
            hours: dict[tuple[str, float], HealthHourRow] = {}
            for minute in minutes:
                hour_start = bucket_start(minute.bucket_start, HOUR)
                key = (minute.provider_uid, hour_start)
                if key not in hours:
                    hours[key] = _empty_rollup(
                        HealthHourRow, minute.provider_uid, hour_start, minute.provider_name
                    )
                _add_row(hours[key], minute)
            session.execute(
                delete(HealthHourRow).where(
                    HealthHourRow.bucket_start >= since, HealthHourRow.bucket_start < until
                )
            )
            session.add_all(hours.values())
            return len(hours)

    def open_incident(
        self, uid: str, name: str, started_at: float, cause: str, failures: int
    ) -> int:
        with self._database.write() as connection:
            result = connection.execute(
                insert(IncidentRow)
                .values(
                    provider_uid=uid,
                    provider_name=name,
                    started_at=started_at,
                    ended_at=None,
                    cause=cause[:300],
                    failures=failures,
                )
                .returning(IncidentRow.id)
            )
            return int(result.scalar_one())

    def update_incident(self, row_id: int, *, failures: int, ended_at: float | None) -> None:
        with self._database.write() as connection:
            connection.execute(
                update(IncidentRow)
                .where(IncidentRow.id == row_id)
                .values(failures=failures, ended_at=ended_at)
            )

    def prune(self, now: float | None = None, *, batch: int = PRUNE_BATCH) -> PruneReport:
        """Delete history past its retention, ``batch`` rows per transaction."""
        now = time.time() if now is None else now
        plans = (
            ("probe_results", ProbeResultRow, ProbeResultRow.started_at, now - RAW_RETENTION),
            (
                "health_minute",
                HealthMinuteRow,
                HealthMinuteRow.bucket_start,
                now - MINUTE_RETENTION,
            ),
            ("health_hour", HealthHourRow, HealthHourRow.bucket_start, now - HOUR_RETENTION),
            ("incidents", IncidentRow, IncidentRow.ended_at, now - INCIDENT_RETENTION),
            ("alerts", AlertRow, AlertRow.raised_at, now - ALERT_RETENTION),
        )
        deleted: dict[str, int] = {}
        transactions = 0
        for name, table, column, cutoff in plans:
            deleted[name] = 0
            while True:
                with self._database.write() as connection:
                    transactions += 1
                    # The time of the batch-th oldest doomed row bounds this transaction
                    # (portable: no DELETE ... LIMIT, no rowid).
                    boundary = connection.execute(
                        select(column)
                        .where(column < cutoff)
                        .order_by(column)
                        .limit(1)
                        .offset(batch - 1)
                    ).scalar_one_or_none()
                    condition = column < cutoff if boundary is None else column <= boundary
                    count = connection.execute(delete(table).where(condition)).rowcount or 0
                deleted[name] += count
                if boundary is None:
                    break
        return PruneReport(deleted, transactions)

    # -- reads ------------------------------------------------------------------------------

    def open_incidents(self) -> dict[str, OpenIncident]:
        """Incidents still open (left so by the last run), by provider uid."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(
                    IncidentRow.provider_uid,
                    IncidentRow.id,
                    IncidentRow.started_at,
                    IncidentRow.cause,
                    IncidentRow.failures,
                ).where(IncidentRow.ended_at.is_(None))
            ).all()
        return {
            uid: OpenIncident(started, cause, failures, row_id=row_id)
            for uid, row_id, started, cause, failures in rows
        }

    def incidents(self, uid: str, since: float, *, limit: int = 50) -> list[Incident]:
        """Incidents of a provider that were going on after ``since``, newest first."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(
                    IncidentRow.provider_name,
                    IncidentRow.started_at,
                    IncidentRow.ended_at,
                    IncidentRow.cause,
                    IncidentRow.failures,
                )
                .where(
                    IncidentRow.provider_uid == uid,
                    (IncidentRow.ended_at.is_(None)) | (IncidentRow.ended_at >= since),
                )
                .order_by(IncidentRow.started_at.desc())
                .limit(limit)
            ).all()
        return [Incident(*row) for row in rows]

    def totals(
        self, uid: str, since: float, until: float, *, histograms: bool = True
    ) -> RangeTotals:
        """Sums of a provider's minute rollups whose bucket starts in [since, until)."""
        table = HealthMinuteRow
        where = (table.provider_uid == uid, table.bucket_start >= since, table.bucket_start < until)
        sums = [func.coalesce(func.sum(getattr(table, c)), 0) for c in _ADDITIVE]
        with self._database.read() as connection:
            row = connection.execute(
                select(
                    *sums, func.max(table.probe_latency_max_ms), func.max(table.send_latency_max_ms)
                ).where(*where)
            ).one()
            probe_hist: dict[str, int] = {}
            send_hist: dict[str, int] = {}
            if histograms:
                hists = connection.execute(
                    select(table.probe_latency_hist, table.send_latency_hist).where(*where)
                ).all()
                probe_hist = histogram.merge(h[0] for h in hists)
                send_hist = histogram.merge(h[1] for h in hists)
        values = dict(zip(_ADDITIVE, row[: len(_ADDITIVE)], strict=True))
        return RangeTotals(
            up_seconds=float(values["up_seconds"]),
            down_seconds=float(values["down_seconds"]),
            maintenance_seconds=float(values["maintenance_seconds"]),
            counts={c: int(values[c]) for c in COUNT_COLUMNS},
            probe_hist=probe_hist,
            send_hist=send_hist,
            probe_latency_max_ms=row[-2],
            send_latency_max_ms=row[-1],
        )

    def probe_results(self, uid: str, since: float) -> list[ProbeRecord]:
        """Raw probes of a provider since ``since``, oldest first."""
        with self._database.read() as connection:
            rows = connection.execute(
                select(ProbeResultRow)
                .where(ProbeResultRow.provider_uid == uid, ProbeResultRow.started_at >= since)
                .order_by(ProbeResultRow.started_at)
            ).all()
        return [
            ProbeRecord(
                provider_uid=r.provider_uid,
                provider_name=r.provider_name,
                started_at=r.started_at,
                status=r.status,
                latency_ms=r.latency_ms,
                phases_ms=r.phases_ms or {},
                failed_phase=r.failed_phase,
                reply_code=r.reply_code,
                detail=r.detail,
            )
            for r in rows
        ]


def _empty_rollup(table: Any, uid: str, bucket: float, name: str) -> Any:
    row = table(provider_uid=uid, bucket_start=bucket, provider_name=name)
    for column in _ADDITIVE:
        setattr(row, column, 0)
    for kind in _LATENCY_KINDS:
        setattr(row, f"{kind}_latency_count", 0)
        setattr(row, f"{kind}_latency_sum_ms", 0.0)
        setattr(row, f"{kind}_latency_max_ms", None)
        setattr(row, f"{kind}_latency_hist", {})
    return row


def _add_latency(
    row: Any, kind: str, count: int, sum_ms: float, max_ms: float | None, hist: Mapping[str, int]
) -> None:
    if count == 0:
        return
    setattr(row, f"{kind}_latency_count", getattr(row, f"{kind}_latency_count") + count)
    setattr(row, f"{kind}_latency_sum_ms", getattr(row, f"{kind}_latency_sum_ms") + sum_ms)
    current = getattr(row, f"{kind}_latency_max_ms")
    if max_ms is not None:
        setattr(row, f"{kind}_latency_max_ms", max_ms if current is None else max(current, max_ms))
    # A new dict: the JSON column only notices assignment, not mutation in place.
    setattr(
        row, f"{kind}_latency_hist", histogram.merge((getattr(row, f"{kind}_latency_hist"), hist))
    )


def _add_delta(row: Any, delta: RollupDelta) -> None:
    row.provider_name = delta.provider_name
    for column, seconds in delta.seconds.items():
        setattr(row, column, getattr(row, column) + seconds)
    for column, count in delta.counts.items():
        setattr(row, column, getattr(row, column) + count)
    for kind, latency in (("probe", delta.probe_latency), ("send", delta.send_latency)):
        _add_latency(row, kind, latency.count, latency.sum_ms, latency.max_ms, latency.hist)


def _add_row(target: Any, source: Any) -> None:
    for column in _ADDITIVE:
        setattr(target, column, getattr(target, column) + getattr(source, column))
    for kind in _LATENCY_KINDS:
        _add_latency(
            target,
            kind,
            getattr(source, f"{kind}_latency_count"),
            getattr(source, f"{kind}_latency_sum_ms"),
            getattr(source, f"{kind}_latency_max_ms"),
            getattr(source, f"{kind}_latency_hist") or {},
        )
