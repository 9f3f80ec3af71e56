"""Per-provider health figures from the stored history (``relaydesk health``, the Dashboard).

Uptime is time-weighted over the minute rollups: seconds up / (seconds up + down), with
maintenance and unwatched time left out; latency percentiles come from merged histograms;
the error rate is the share of real sends that did not deliver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from desktop_app.core.health import histogram, maintenance
from desktop_app.core.health.figures import ProviderFigures
from desktop_app.core.health.rollup import DAY, OUTCOME_COLUMNS, RANGES
from desktop_app.core.models import BreakerState, ProviderConfig
from desktop_app.core.storage.delivery_probes import DeliveryFigures
from desktop_app.core.storage.health import HealthRepository, StoredStatus

#: A stored status older than this was written by an app that is no longer watching.
STALE_AFTER_SECONDS = 120.0
INCIDENT_HISTORY = 30 * DAY

LiveStates = Mapping[str, tuple[str, BreakerState]]


def compute_figures(
    health: HealthRepository,
    providers: Sequence[ProviderConfig],
    now: float,
    *,
    live: LiveStates | None = None,
    uptime_target: float = 99.9,
    delivery: Callable[[str, float], DeliveryFigures] | None = None,
) -> list[ProviderFigures]:
    """Figures for each provider, in the order given (most preferred first).

    ``live``: states from a monitor running in this process; without it, the status the
    watching app last stored is used while fresh, else the state is ``unknown``.
    """
    stored = health.statuses() if live is None else {}
    figures = []
    for provider in providers:
        state, breaker = _state(provider, now, live, stored)
        day = health.totals(provider.uid, now - DAY, now)
        uptimes = {
            key: day.uptime_percent()
            if span == DAY
            else health.totals(provider.uid, now - span, now, histograms=False).uptime_percent()
            for key, span in RANGES.items()
        }
        counts = day.counts
        probes = delivery(provider.uid, now - DAY) if delivery is not None else None
        sends = sum(counts.get(column, 0) for column in OUTCOME_COLUMNS.values())
        sent = counts.get("sent", 0)
        errors = {
            column: counts.get(column, 0)
            for column in OUTCOME_COLUMNS.values()
            if column != "sent" and counts.get(column, 0)
        }
        figures.append(
            ProviderFigures(
                provider=provider.name,
                state=state,
                breaker=breaker,
                uptime_1h=uptimes["1h"],
                uptime_24h=uptimes["24h"],
                uptime_7d=uptimes["7d"],
                uptime_30d=uptimes["30d"],
                latency_p50_ms=histogram.percentile(day.probe_hist, 0.50),
                latency_p95_ms=histogram.percentile(day.probe_hist, 0.95),
                latency_max_ms=day.probe_latency_max_ms,
                send_latency_p50_ms=histogram.percentile(day.send_hist, 0.50),
                send_latency_p95_ms=histogram.percentile(day.send_hist, 0.95),
                error_rate_24h=None if sends == 0 else 100.0 * (sends - sent) / sends,
                errors_24h=errors,
                sent_24h=sent,
                incidents=tuple(health.incidents(provider.uid, now - INCIDENT_HISTORY)),
                uptime_target=uptime_target,
                delivery_latency_p50_ms=probes.latency_p50_ms if probes else None,
                delivery_failures_24h=probes.lost if probes else 0,
            )
        )
    return figures


def _state(
    provider: ProviderConfig,
    now: float,
    live: LiveStates | None,
    stored: Mapping[str, StoredStatus],
) -> tuple[str, BreakerState]:
    if maintenance.active_window(provider.maintenance, now) is not None:
        breaker = live[provider.name][1] if live and provider.name in live else BreakerState.CLOSED
        return "maintenance", breaker
    if live is not None:
        return live.get(provider.name, ("unknown", BreakerState.CLOSED))
    status = stored.get(provider.uid)
    if status is None or now - status.updated_at > STALE_AFTER_SECONDS:
        return "unknown", BreakerState.CLOSED
    return status.state, BreakerState(status.breaker)
