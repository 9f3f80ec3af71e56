"""Latency p50/p95/max of a window: one definition (``histogram.summarize``), always ordered,
never missing for a provider that was timed, and the same through storage and the figures."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.core.health import histogram
from desktop_app.core.health.histogram import summarize
from desktop_app.core.health.report import compute_figures
from desktop_app.core.health.rollup import MINUTE, RollupDelta, bucket_start
from desktop_app.core.models import ProviderConfig, Security
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.health import HealthRepository

NOW = 1_750_000_050.0

latencies = st.floats(min_value=0.0, max_value=3_600_000.0, allow_nan=False)


def hist_of(samples: list[float]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for sample in samples:
        histogram.add(counted, sample)
    return counted


def nearest_rank(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@given(st.lists(latencies, min_size=1, max_size=300), st.lists(latencies, max_size=300))
def test_p50_p95_max_are_ordered_and_present_for_any_samples(
    probes: list[float], sends: list[float]
) -> None:
    summary = summarize(
        [(hist_of(probes), max(probes)), (hist_of(sends), max(sends, default=None))]
    )
    assert summary is not None
    assert summary.p50_ms <= summary.p95_ms <= summary.max_ms
    assert summary.max_ms == max(probes + sends)
    assert summary.count == len(probes) + len(sends)


@given(st.lists(latencies, min_size=1, max_size=300))
def test_a_source_without_a_known_max_still_gives_ordered_figures(samples: list[float]) -> None:
    summary = summarize([(hist_of(samples), None)])
    assert summary is not None
    assert summary.p50_ms <= summary.p95_ms <= summary.max_ms


@given(st.lists(st.floats(min_value=1.0, max_value=600_000.0), min_size=1, max_size=300))
def test_percentiles_are_within_five_percent_of_the_samples(samples: list[float]) -> None:
    summary = summarize([(hist_of(samples), max(samples))])
    assert summary is not None
    for fraction, figure in ((0.50, summary.p50_ms), (0.95, summary.p95_ms)):
        true = nearest_rank(samples, fraction)
        assert figure == pytest.approx(true, rel=0.05)


def test_one_probe_reads_back_as_itself_not_its_buckets_middle() -> None:
    # 46 ms lands in the bucket [45.3, 49.8): its middle, 47.4 ms, was shown as p95 while
    # max said 46 ms.
    summary = summarize([(hist_of([46.0]), 46.0)])
    assert summary is not None
    assert (summary.p50_ms, summary.p95_ms, summary.max_ms) == (46.0, 46.0, 46.0)


def test_nothing_timed_is_no_figure() -> None:
    assert summarize([]) is None
    assert summarize([({}, None), (None, None), ({"3": 0}, 12.0)]) is None


def test_sends_alone_give_a_provider_its_latency(database: Database) -> None:
    """A backup that carried mail but was never probed has numbers, and sends-only ones."""
    health = HealthRepository(database)
    delta = RollupDelta("backup")
    delta.count("sent", 250)
    for n in range(250):
        delta.send_latency.add(2.0 + n % 50)
    health.add_minute_deltas({("u-backup", bucket_start(NOW - 10 * MINUTE)): delta})
    backup = ProviderConfig("backup", "127.0.0.1", 25, Security.NONE, uid="u-backup")

    (figures,) = compute_figures(health, [backup], NOW)
    shown = figures.as_json(NOW)

    p50, p95, top = (shown[f"latency_{key}_ms"] for key in ("p50", "p95", "max"))
    assert p50 is not None and p95 is not None and top == 51.0
    assert p50 <= p95 <= top
    assert [shown[f"send_latency_{key}_ms"] for key in ("p50", "p95", "max")] == [p50, p95, top]
    assert shown["latency_samples_24h"] == {"probes": 0, "sends": 250}
