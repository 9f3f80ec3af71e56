"""Made-up but plausible health history, written into the real rollup tables.

For what needs weeks of history right away: the README screenshot of the Dashboard, the
chart benchmark (30 days of minutes for five providers) and demo data. Deterministic for a
given seed. Each provider has a latency level and noise, a send rate and error shares; an
``Event`` adds an outage, a maintenance window or a stretch nobody watched (app closed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import insert

from desktop_app.core.health import histogram
from desktop_app.core.health.series import ERROR_CLASSES, MINUTE
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import HealthMinuteRow


@dataclass(frozen=True, slots=True)
class Event:
    """``kind`` ("outage" | "maintenance" | "unwatched") from ``start`` to ``end`` (epoch s)."""

    kind: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class SampleProvider:
    """How one made-up provider behaves."""

    uid: str
    name: str
    latency_ms: float = 120.0
    latency_noise: float = 0.25  # relative spread (lognormal sigma)
    sends_per_minute: float = 20.0
    error_shares: dict[str, float] = field(default_factory=dict)  # class -> share of attempts
    events: tuple[Event, ...] = ()


#: Rows per INSERT batch: big enough to be quick, small enough to keep memory flat.
_BATCH = 20_000


def write_minutes(
    database: Database,
    providers: Sequence[SampleProvider],
    *,
    start: float,
    end: float,
    seed: int = 7,
) -> int:
    """Minute rows for every provider from ``start`` to ``end``; returns how many."""
    random = np.random.default_rng(seed)
    first = math.floor(start / MINUTE) * MINUTE
    times = np.arange(first, end, MINUTE, dtype=np.float64)
    written = 0
    for provider in providers:
        rows = _provider_rows(provider, times, random)
        with database.write() as connection:
            for offset in range(0, len(rows), _BATCH):
                connection.execute(insert(HealthMinuteRow), rows[offset : offset + _BATCH])
        written += len(rows)
    return written


def _provider_rows(
    provider: SampleProvider, times: np.ndarray, random: np.random.Generator
) -> list[dict[str, Any]]:
    n = len(times)
    down = np.zeros(n, dtype=bool)
    maintenance = np.zeros(n, dtype=bool)
    watched = np.ones(n, dtype=bool)
    for event in provider.events:
        inside = (times >= event.start) & (times < event.end)
        if event.kind == "outage":
            down |= inside
        elif event.kind == "maintenance":
            maintenance |= inside
        elif event.kind == "unwatched":
            watched &= ~inside
        else:
            raise ValueError(f"unknown event kind {event.kind!r}")
    down &= ~maintenance
    up = watched & ~down & ~maintenance
    # Latency drifts slowly (a daily wave) around its level, with per-minute noise.
    wave = 1.0 + 0.15 * np.sin(2 * np.pi * times / 86400.0)
    noise = random.lognormal(0.0, provider.latency_noise, n)
    probe_ms = provider.latency_ms * wave * noise
    send_ms = probe_ms * 1.8
    sends = random.poisson(provider.sends_per_minute, n) * (watched & ~maintenance)
    errors = {
        name: random.binomial(sends, provider.error_shares.get(name, 0.0)) for name in ERROR_CLASSES
    }
    # While down, every send is a provider failure.
    errors["provider_failure"] = np.where(down, sends, errors["provider_failure"])
    failed = sum(errors.values(), np.zeros(n, dtype=np.int64))
    delivered = np.maximum(sends - failed, 0)

    rows: list[dict[str, Any]] = []
    for i in np.flatnonzero(watched):
        probe = float(probe_ms[i])
        send = float(send_ms[i])
        is_up = bool(up[i])
        sent = int(delivered[i])
        row: dict[str, Any] = {
            "provider_uid": provider.uid,
            "provider_name": provider.name,
            "bucket_start": float(times[i]),
            "up_seconds": MINUTE if is_up else 0.0,
            "down_seconds": MINUTE if down[i] else 0.0,
            "maintenance_seconds": MINUTE if maintenance[i] else 0.0,
            "probes_up": int(is_up),
            "probes_down": int(bool(down[i])),
            "sent": sent,
            "probe_latency_count": int(is_up),
            "probe_latency_sum_ms": probe if is_up else 0.0,
            "probe_latency_max_ms": probe if is_up else None,
            "probe_latency_hist": {str(histogram.bucket_of(probe)): 1} if is_up else {},
            "send_latency_count": sent,
            "send_latency_sum_ms": send * sent,
            "send_latency_max_ms": send if sent else None,
            "send_latency_hist": {str(histogram.bucket_of(send)): sent} if sent else {},
        }
        for name in ERROR_CLASSES:
            row[name] = int(errors[name][i])
        rows.append(row)
    return rows
