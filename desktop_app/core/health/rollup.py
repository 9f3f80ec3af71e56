"""What one provider did in one minute, accumulated in memory and added to the rollup rows.

The monitor keeps one ``RollupDelta`` per (provider, minute) it has seen something in since
the last flush; a flush *adds* each delta to the stored row (storage/health.py), so a late
correction to a minute already written (an incident confirmed after the minute ended) is
just another delta.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from desktop_app.core.health import histogram
from desktop_app.core.models import OutcomeClass

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
#: The ranges people look at (Dashboard, ``relaydesk health``), in seconds.
RANGES: dict[str, float] = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}

#: Rollup column for each outcome class of a real send.
OUTCOME_COLUMNS: dict[OutcomeClass, str] = {
    OutcomeClass.DELIVERED: "sent",
    OutcomeClass.PROVIDER_FAILURE: "provider_failure",
    OutcomeClass.RECIPIENT_PERMANENT: "recipient_permanent",
    OutcomeClass.RECIPIENT_TRANSIENT: "recipient_transient",
    OutcomeClass.CONTENT_REJECTED: "content_rejected",
    OutcomeClass.TRANSIENT_AFTER_DATA: "transient_after_data",
    OutcomeClass.AMBIGUOUS: "ambiguous",
}
#: Additive integer and float columns (the histograms and maxima merge differently).
COUNT_COLUMNS = ("probes_up", "probes_down", *OUTCOME_COLUMNS.values())
SECONDS_COLUMNS = ("up_seconds", "down_seconds", "maintenance_seconds")


def bucket_start(at: float, width: float = MINUTE) -> float:
    """The start of the bucket ``at`` falls in."""
    return math.floor(at / width) * width


def split_by_bucket(
    start: float, end: float, width: float = MINUTE
) -> Iterator[tuple[float, float]]:
    """(bucket start, seconds of [start, end) inside it) for every bucket the span touches."""
    at = start
    while at < end:
        bucket = bucket_start(at, width)
        stop = min(end, bucket + width)
        yield bucket, stop - at
        at = stop


@dataclass
class LatencyDelta:
    """Count, sum, max and histogram of latencies (ms)."""

    count: int = 0
    sum_ms: float = 0.0
    max_ms: float | None = None
    hist: dict[str, int] = field(default_factory=dict)

    def add(self, latency_ms: float) -> None:
        self.count += 1
        self.sum_ms += latency_ms
        self.max_ms = latency_ms if self.max_ms is None else max(self.max_ms, latency_ms)
        histogram.add(self.hist, latency_ms)

    def merge(self, other: LatencyDelta) -> None:
        self.count += other.count
        self.sum_ms += other.sum_ms
        if other.max_ms is not None:
            self.max_ms = other.max_ms if self.max_ms is None else max(self.max_ms, other.max_ms)
        self.hist = histogram.merge((self.hist, other.hist))


@dataclass
class RollupDelta:
    """Additions to one provider's row for one bucket."""

    provider_name: str
    seconds: dict[str, float] = field(default_factory=dict)  # SECONDS_COLUMNS
    counts: dict[str, int] = field(default_factory=dict)  # COUNT_COLUMNS
    probe_latency: LatencyDelta = field(default_factory=LatencyDelta)
    send_latency: LatencyDelta = field(default_factory=LatencyDelta)

    def add_seconds(self, status: str, seconds: float) -> None:
        column = f"{status}_seconds"
        self.seconds[column] = self.seconds.get(column, 0.0) + seconds

    def count(self, column: str, n: int = 1) -> None:
        self.counts[column] = self.counts.get(column, 0) + n

    def merge(self, other: RollupDelta) -> None:
        """Add ``other`` into this delta (a failed write is kept for the next one)."""
        for column, seconds in other.seconds.items():
            self.add_seconds(column.removesuffix("_seconds"), seconds)
        for column, n in other.counts.items():
            self.count(column, n)
        self.probe_latency.merge(other.probe_latency)
        self.send_latency.merge(other.send_latency)
