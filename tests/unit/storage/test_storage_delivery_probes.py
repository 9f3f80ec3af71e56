"""DeliveryProbeRepository's chart reads: ``points`` and ``status_counts``, on a real file."""

from __future__ import annotations

from sqlalchemy import text

from desktop_app.core.storage.database import Database
from desktop_app.core.storage.delivery_probes import (
    DeliveryProbeRepository,
    ProbePoint,
    ProbeStatus,
)

T0 = 1_750_000_000.0


def fill(probes: DeliveryProbeRepository) -> None:
    """a1 delivered in 4 s at T0; a2 lost at T0+60; b1 refused at T0+120; b2 pending at
    T0+180; a3 delivered in 9 s at T0+240."""
    for token, uid, sent_at in (
        ("a1", "uid-a", T0),
        ("a2", "uid-a", T0 + 60),
        ("b1", "uid-b", T0 + 120),
        ("b2", "uid-b", T0 + 180),
        ("a3", "uid-a", T0 + 240),
    ):
        probes.add(token=token, provider_uid=uid, provider_name=uid.upper(), sent_at=sent_at)
        probes.record_send(token, smtp_latency_ms=50.0, accepted=token != "b1", detail="554 no")
    assert probes.mark_seen("a1", T0 + 4)
    assert probes.mark_seen("a3", T0 + 249)
    assert [p.token for p in probes.expire(T0 + 170, 100)] == ["a2"]


def test_points_are_the_probes_sent_in_the_range_oldest_first(database: Database) -> None:
    probes = DeliveryProbeRepository(database)
    fill(probes)
    assert probes.points(T0, T0 + 300) == [
        ProbePoint("uid-a", "UID-A", T0, ProbeStatus.DELIVERED, 4000.0),
        ProbePoint("uid-a", "UID-A", T0 + 60, ProbeStatus.LOST, None),
        ProbePoint("uid-b", "UID-B", T0 + 120, ProbeStatus.SEND_FAILED, None),
        ProbePoint("uid-b", "UID-B", T0 + 180, ProbeStatus.PENDING, None),
        ProbePoint("uid-a", "UID-A", T0 + 240, ProbeStatus.DELIVERED, 9000.0),
    ]
    # [since, until): the end is left out.
    assert [p.sent_at for p in probes.points(T0 + 60, T0 + 240)] == [T0 + 60, T0 + 120, T0 + 180]
    charted = probes.points(T0, T0 + 300, (ProbeStatus.DELIVERED, ProbeStatus.LOST))
    assert [p.status for p in charted] == ["delivered", "lost", "delivered"]
    assert probes.points(T0 + 300, T0 + 600) == []


def test_status_counts_count_every_status_asked(database: Database) -> None:
    probes = DeliveryProbeRepository(database)
    fill(probes)
    asked = (ProbeStatus.PENDING, ProbeStatus.LOST)
    assert probes.status_counts(T0, T0 + 300, asked) == {"pending": 1, "lost": 1}
    assert probes.status_counts(T0 + 100, T0 + 300, asked) == {"pending": 1, "lost": 0}
    assert probes.mark_seen("a2", T0 + 400)  # lost, then it turned up after all
    assert probes.status_counts(T0, T0 + 300, asked) == {"pending": 1, "lost": 0}


def test_status_reads_use_the_status_index(database: Database) -> None:
    """The charts ask every second: an index search, not a scan of months of probes."""
    query = (
        "EXPLAIN QUERY PLAN SELECT * FROM delivery_probes WHERE status IN ('pending', 'lost') "
        "AND sent_at >= 0 AND sent_at < 1 ORDER BY sent_at"
    )
    with database.read() as connection:
        plan = " ".join(str(row[-1]) for row in connection.execute(text(query)))
    assert "ix_delivery_probes_status" in plan, plan
