"""What ``relaydesk health`` prints and the Dashboard shows, per provider.

Computed from the rollup tables (health_minute / health_hour), the incidents table and the
engine's live state; see ``compute_figures``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from desktop_app.core.models import BreakerState


@dataclass(frozen=True, slots=True)
class Incident:
    """Consecutive failures of one provider: when, how long, why."""

    provider_name: str
    started_at: float
    ended_at: float | None  # None: still going on
    cause: str
    failures: int

    def duration_seconds(self, now: float) -> float:
        return (self.ended_at if self.ended_at is not None else now) - self.started_at


@dataclass(frozen=True, slots=True)
class ProviderFigures:
    """One provider's health figures. Percentages are 0..100; None means "no data yet".

    Latency is over the last 24 h: ``latency_*`` of probes and real sends together,
    ``send_latency_*`` of real sends alone, each from ``histogram.summarize`` (so
    p50 <= p95 <= max); ``latency_probes_24h`` / ``latency_sends_24h`` say how many of each
    were timed.
    """

    provider: str
    state: str  # "up" | "down" | "maintenance" | "unknown"
    breaker: BreakerState
    uptime_1h: float | None
    uptime_24h: float | None
    uptime_7d: float | None
    uptime_30d: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    send_latency_p50_ms: float | None
    send_latency_p95_ms: float | None
    error_rate_24h: float | None
    errors_24h: dict[str, int] = field(default_factory=dict)  # outcome class -> count
    sent_24h: int = 0
    incidents: tuple[Incident, ...] = ()  # newest first
    uptime_target: float = 99.9  # percent (setting health.uptime_target_percent)
    # End-to-end delivery probes (bounces/delivery_probes.py), last 24 h.
    delivery_latency_p50_ms: float | None = None
    delivery_failures_24h: int = 0
    send_latency_max_ms: float | None = None
    latency_probes_24h: int = 0
    latency_sends_24h: int = 0

    def as_json(self, now: float) -> dict[str, Any]:
        """The JSON object of ``relaydesk health --json`` (see README)."""
        return {
            "provider": self.provider,
            "state": self.state,
            "breaker": self.breaker.value,
            "uptime_1h": _round(self.uptime_1h, 3),
            "uptime_24h": _round(self.uptime_24h, 3),
            "uptime_7d": _round(self.uptime_7d, 3),
            "uptime_30d": _round(self.uptime_30d, 3),
            "uptime_target": self.uptime_target,
            "latency_p50_ms": _round(self.latency_p50_ms, 1),
            "latency_p95_ms": _round(self.latency_p95_ms, 1),
            "latency_max_ms": _round(self.latency_max_ms, 1),
            "send_latency_p50_ms": _round(self.send_latency_p50_ms, 1),
            "send_latency_p95_ms": _round(self.send_latency_p95_ms, 1),
            "send_latency_max_ms": _round(self.send_latency_max_ms, 1),
            "latency_samples_24h": {
                "probes": self.latency_probes_24h,
                "sends": self.latency_sends_24h,
            },
            "error_rate_24h": _round(self.error_rate_24h, 3),
            "errors_24h": dict(self.errors_24h),
            "sent_24h": self.sent_24h,
            "delivery_latency_p50_ms": _round(self.delivery_latency_p50_ms, 1),
            "delivery_failures_24h": self.delivery_failures_24h,
            "incidents": [
                {
                    "started_at": incident.started_at,
                    "ended_at": incident.ended_at,
                    "duration_seconds": round(incident.duration_seconds(now), 3),
                    "cause": incident.cause,
                    "failures": incident.failures,
                }
                for incident in self.incidents
            ],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
