"""Latency histograms small enough to keep per provider per minute, good enough for p50/p95.

Buckets grow by 10 % from 1 ms: bucket ``i`` holds latencies in [1.1**i, 1.1**(i+1)) ms, so
a percentile read back from the histogram is within 5 % of the true value at any scale
(1 ms .. 10 min in 140 buckets). A histogram is stored sparse, {bucket index: count}, as JSON
(keys are strings there), and histograms add by adding counts: minute rollups merge into
hours and into any range a chart or ``relaydesk health`` asks for.

``summarize`` is the one definition of a window's latency figures (p50, p95, max) that
``relaydesk health``, its ``--json`` and the Dashboard's table show.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GROWTH = 1.1
_LOG_GROWTH = math.log(GROWTH)
#: Everything at or under 1 ms lands in bucket 0.
MAX_BUCKET = 140


def bucket_of(latency_ms: float) -> int:
    """The bucket a latency falls in."""
    if latency_ms <= 1.0:
        return 0
    return min(MAX_BUCKET, int(math.log(latency_ms) / _LOG_GROWTH))


def bucket_value(index: int) -> float:
    """A representative latency of a bucket: the geometric middle of its edges."""
    if index == 0:
        return 1.0
    return float(GROWTH ** (index + 0.5))


def add(histogram: dict[str, int], latency_ms: float) -> None:
    """Count one latency into a (JSON-shaped) histogram in place."""
    key = str(bucket_of(latency_ms))
    histogram[key] = histogram.get(key, 0) + 1


def merge(histograms: Iterable[Mapping[str, int] | None]) -> dict[str, int]:
    """The sum of several histograms."""
    total: dict[str, int] = {}
    for histogram in histograms:
        if not histogram:
            continue
        for key, count in histogram.items():
            total[key] = total.get(key, 0) + int(count)
    return total


def total(histogram: Mapping[str, int]) -> int:
    """How many latencies a histogram counted."""
    return sum(int(n) for n in histogram.values() if int(n) > 0)


def percentile(histogram: Mapping[str, int], fraction: float) -> float | None:
    """The latency under which ``fraction`` (0..1) of the counted latencies fall."""
    counts = sorted((int(key), int(count)) for key, count in histogram.items() if count > 0)
    total = sum(count for _, count in counts)
    if total == 0:
        return None
    # Nearest rank: the smallest bucket whose cumulative count reaches the rank.
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index, count in counts:
        seen += count
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(counts[-1][0])


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """p50, p95 and max of the latencies counted in a window, in ms: p50 <= p95 <= max."""

    p50_ms: float
    p95_ms: float
    max_ms: float
    count: int


def summarize(
    sources: Iterable[tuple[Mapping[str, int] | None, float | None]],
) -> LatencySummary | None:
    """The latency figures of (histogram, exact max or None) sources taken together.

    None only when no source counted a latency. Percentiles are read from the merged
    histogram (a bucket's middle, within 5 %), the max is exact where it is known: a
    bucket's middle can lie above the largest latency in it, so the percentiles are capped
    by the max, which is what keeps p50 <= p95 <= max. A source without a known max
    counts with its top bucket's middle.
    """
    histograms: list[Mapping[str, int]] = []
    maxima: list[float] = []
    for hist, max_ms in sources:
        counted = [int(key) for key, n in (hist or {}).items() if int(n) > 0]
        if not counted:
            continue
        histograms.append(hist or {})
        maxima.append(bucket_value(max(counted)) if max_ms is None else float(max_ms))
    merged = merge(histograms)
    p50, p95 = percentile(merged, 0.50), percentile(merged, 0.95)
    if p50 is None or p95 is None:
        return None
    top = max(maxima)
    p95 = min(p95, top)
    return LatencySummary(
        p50_ms=min(p50, p95),
        p95_ms=p95,
        max_ms=top,
        count=total(merged),
    )
