"""Delivery probes in the Dashboard's series: read with the range, kept up to date by
``load_since`` (new probes, pending ones that arrive or get lost, lost ones that turn up)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from desktop_app.core.health import series
from desktop_app.core.health.series import HOUR, MINUTE, DeliveryPoints
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.delivery_probes import DeliveryProbeRepository, ProbePoint

NOW = 1_750_000_020.0 + 30.0
CURRENT = math.floor(NOW / MINUTE) * MINUTE


@pytest.fixture
def probes(database: Database) -> DeliveryProbeRepository:
    return DeliveryProbeRepository(database)


def send(
    probes: DeliveryProbeRepository,
    uid: str,
    sent_at: float,
    *,
    seen_after: float | None = None,
    accepted: bool = True,
) -> str:
    token = f"{uid}-{sent_at:.0f}"
    probes.add(token=token, provider_uid=uid, provider_name=uid.title(), sent_at=sent_at)
    probes.record_send(token, smtp_latency_ms=40.0, accepted=accepted)
    if seen_after is not None:
        probes.mark_seen(token, sent_at + seen_after)
    return token


def test_load_holds_the_probes_of_the_range(
    database: Database, probes: DeliveryProbeRepository
) -> None:
    send(probes, "alpha", NOW - 2 * HOUR, seen_after=1)  # before the 1 h range
    send(probes, "alpha", NOW - 50 * MINUTE, seen_after=8)
    send(probes, "alpha", NOW - 40 * MINUTE)
    send(probes, "beta", NOW - 30 * MINUTE, seen_after=3)
    send(probes, "beta", NOW - 20 * MINUTE, accepted=False)  # refused: not charted
    send(probes, "alpha", NOW - 10 * MINUTE)  # pending
    probes.expire(NOW - 5 * MINUTE, 15 * MINUTE)  # the one 40 minutes ago is lost

    deliveries = series.load(database, HOUR, NOW).deliveries
    assert len(deliveries) == 4  # delivered, lost, delivered, pending
    x, ms = deliveries.delivered("alpha")
    assert (x.tolist(), ms.tolist()) == ([NOW - 50 * MINUTE], [8000.0])
    assert deliveries.lost("alpha").tolist() == [NOW - 40 * MINUTE]
    assert deliveries.delivered("beta")[1].tolist() == [3000.0]
    assert deliveries.lost("beta").tolist() == []
    assert deliveries.delivered("nobody")[0].tolist() == []
    assert deliveries.changing_counts() == {"pending": 1, "lost": 1}


def test_load_since_returns_the_same_series_while_no_probe_changed(
    database: Database, probes: DeliveryProbeRepository
) -> None:
    send(probes, "alpha", NOW - 50 * MINUTE, seen_after=8)
    before = series.load(database, HOUR, NOW)
    assert series.load_since(database, before, NOW + 1) is before


def test_load_since_adds_new_probes(database: Database, probes: DeliveryProbeRepository) -> None:
    send(probes, "alpha", NOW - 50 * MINUTE, seen_after=8)
    before = series.load(database, HOUR, NOW)
    send(probes, "beta", NOW - 10, seen_after=2)
    after = series.load_since(database, before, NOW + 1)
    assert after is not before
    assert after.deliveries.delivered("beta")[1].tolist() == [2000.0]
    assert after.deliveries.delivered("alpha")[1].tolist() == [8000.0]
    assert_same_as_a_full_load(database, after)


def test_load_since_sees_old_probes_change(
    database: Database, probes: DeliveryProbeRepository
) -> None:
    """Older than the buckets read again, a pending probe arrives, another is lost, and a
    lost one turns up late: each is noticed, though only the newest minutes are re-read."""
    arrives = send(probes, "alpha", NOW - 50 * MINUTE)
    send(probes, "alpha", NOW - 45 * MINUTE)  # never arrives
    late = send(probes, "beta", NOW - 55 * MINUTE)
    probes.expire(NOW - 50 * MINUTE, 60)  # "late" is lost
    first = series.load(database, HOUR, NOW)
    assert first.deliveries.changing_counts() == {"pending": 2, "lost": 1}

    probes.mark_seen(arrives, NOW - 50 * MINUTE + 20)
    second = series.load_since(database, first, NOW + 1)
    assert second.deliveries.delivered("alpha")[1].tolist() == [20_000.0]
    assert_same_as_a_full_load(database, second)

    probes.expire(NOW, 15 * MINUTE)
    third = series.load_since(database, second, NOW + 2)
    assert third.deliveries.lost("alpha").tolist() == [NOW - 45 * MINUTE]

    probes.mark_seen(late, NOW - 10 * MINUTE)
    fourth = series.load_since(database, third, NOW + 3)
    assert fourth.deliveries.lost("beta").tolist() == []
    assert fourth.deliveries.delivered("beta")[1].tolist() == [45 * MINUTE * 1000]
    assert fourth.deliveries.lost("alpha").tolist() == [NOW - 45 * MINUTE]
    assert_same_as_a_full_load(database, fourth)


def test_load_since_drops_probes_that_left_the_range(
    database: Database, probes: DeliveryProbeRepository
) -> None:
    send(probes, "alpha", NOW - 59 * MINUTE, seen_after=8)
    send(probes, "alpha", NOW - 30 * MINUTE, seen_after=9)
    before = series.load(database, HOUR, NOW)
    assert len(before.deliveries) == 2
    later = series.load_since(database, before, NOW + 5 * MINUTE)
    assert later.deliveries.delivered("alpha")[1].tolist() == [9000.0]
    assert_same_as_a_full_load(database, later)


def test_points_of_two_reads_join_with_their_providers_mapped() -> None:
    empty = DeliveryPoints.of([])
    assert len(empty.followed_by(empty)) == 0
    older = [ProbePoint("b", "B", 1.0, "delivered", 5.0)]
    newer = [ProbePoint("a", "A", 2.0, "lost", None), ProbePoint("b", "B", 3.0, "pending", None)]
    joined = DeliveryPoints.of(older).followed_by(DeliveryPoints.of(newer))
    assert joined.uids == ("a", "b")
    assert joined.delivered("b")[0].tolist() == [1.0]
    assert joined.lost("a").tolist() == [2.0]
    assert joined.changing_counts() == {"pending": 1, "lost": 1}
    assert joined.same_as(DeliveryPoints.of([*older, *newer]))
    assert not joined.same_as(DeliveryPoints.of(newer))


def assert_same_as_a_full_load(database: Database, result: series.HealthSeries) -> None:
    full = series.load(database, result.span, result.now).deliveries
    assert result.deliveries.same_as(full)
    np.testing.assert_array_equal(result.deliveries.sent_at, full.sent_at)
