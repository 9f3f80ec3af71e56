"""Per-provider health figures from the stored history (``relaydesk health``, the Dashboard).

Uptime is time-weighted over the minute rollups: seconds up / (seconds up + down), with
maintenance and unwatched time left out (``uptime_over``, which the uptime alert quotes
too); latency p50/p95/max come from the merged histograms of probes and real sends
(``histogram.summarize``); the error rate is the share of real sends that did not deliver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from desktop_app.core.health import histogram
from desktop_app.core.health.figures import ProviderFigures
from desktop_app.core.health.rollup import DAY, OUTCOME_COLUMNS, RANGES
from desktop_app.core.models import BreakerState, ProviderConfig, ProviderLiveState, ProviderState
from desktop_app.core.storage.delivery_probes import DeliveryFigures
from desktop_app.core.storage.health import HealthRepository, RangeTotals

INCIDENT_HISTORY = 30 * DAY

#: Each provider's live state by uid, from the provider-state home (core/provider_state.py):
#: the running monitor's board in this process, or the stored rows.
LiveStates = Mapping[str, ProviderLiveState]


def window_totals(
    health: HealthRepository, uid: str, span: float, now: float, *, histograms: bool = True
) -> RangeTotals:
    """A provider's rollups over "the last ``span`` seconds at ``now``": the one window
    every figure of a range (table, ``health --json``, alerts) is read over."""
    return health.totals(uid, now - span, now, histograms=histograms)


def uptime_over(health: HealthRepository, uid: str, span: float, now: float) -> float | None:
    """Uptime in percent of the last ``span`` seconds at ``now``; None: never watched."""
    return window_totals(health, uid, span, now, histograms=False).uptime_percent()


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
    live = live if live is not None else {}
    figures = []
    for provider in providers:
        state, breaker = _state(provider, live)
        day = window_totals(health, provider.uid, DAY, now)
        uptimes = {
            key: day.uptime_percent()
            if span == DAY
            else uptime_over(health, provider.uid, span, now)
            for key, span in RANGES.items()
        }
        latency = day.latency()
        send_latency = day.latency(probes=False)
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
                latency_p50_ms=latency.p50_ms if latency else None,
                latency_p95_ms=latency.p95_ms if latency else None,
                latency_max_ms=latency.max_ms if latency else None,
                send_latency_p50_ms=send_latency.p50_ms if send_latency else None,
                send_latency_p95_ms=send_latency.p95_ms if send_latency else None,
                send_latency_max_ms=send_latency.max_ms if send_latency else None,
                latency_probes_24h=histogram.total(day.probe_hist),
                latency_sends_24h=histogram.total(day.send_hist),
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


def _state(provider: ProviderConfig, live: LiveStates) -> tuple[str, BreakerState]:
    """The provider's state word and breaker, as every other view shows them."""
    if not provider.enabled:
        return ProviderState.DISABLED.value, BreakerState.CLOSED
    state = live.get(provider.uid)
    if state is None:
        return ProviderState.UNKNOWN.value, BreakerState.CLOSED
    return state.state.value, state.breaker
