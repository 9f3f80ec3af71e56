"""Status, incidents and time accounting of one provider (pure policy, a list as the sink)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest

from desktop_app.core.health.tracker import (
    DOWN,
    MAINTENANCE,
    UNKNOWN,
    UP,
    IncidentChange,
    OpenIncident,
    ProviderTracker,
)


class Spans:
    """Collects the spans the tracker hands out and sums them per status."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float, str]] = []

    def __call__(self, start: float, end: float, status: str) -> None:
        assert end > start
        if self.spans:
            # Spans never overlap and never go back in time.
            assert start >= self.spans[-1][1] - 1e-9
        self.spans.append((start, end, status))

    def totals(self) -> dict[str, float]:
        seconds: dict[str, float] = defaultdict(float)
        for start, end, status in self.spans:
            seconds[status] += end - start
        return dict(seconds)


MaintenanceLookup = Callable[[float, float], list[tuple[float, float]]]


def windows(*spans: tuple[float, float]) -> MaintenanceLookup:
    def lookup(start: float, end: float) -> list[tuple[float, float]]:
        if start == end:  # "is the instant covered?", as health/maintenance.intervals answers
            return [(start, start)] if any(a <= start < b for a, b in spans) else []
        return [(max(a, start), min(b, end)) for a, b in spans if a < end and b > start]

    return lookup


def make(
    incident_after: int = 2,
    maintenance: MaintenanceLookup | None = None,
    open_incident: OpenIncident | None = None,
) -> tuple[ProviderTracker, Spans]:
    spans = Spans()
    tracker = ProviderTracker(
        incident_after=incident_after,
        maintenance=maintenance or windows(),
        spans=spans,
        open_incident=open_incident,
    )
    return tracker, spans


def ended(changes: list[IncidentChange]) -> list[float]:
    return [c.ended_at for c in changes if c.ended_at is not None]


def test_down_for_a_known_share_gives_exactly_that_uptime() -> None:
    tracker, spans = make(incident_after=2)
    assert tracker.observe(0, ok=True) == []
    assert tracker.observe(10, ok=False, cause="connect refused") == []  # suspect only
    (opened,) = tracker.observe(15, ok=False, cause="connect refused again")
    assert opened.ended_at is None
    assert opened.incident.started_at == 10  # the first failure of the streak
    assert opened.incident.cause == "connect refused"
    assert tracker.status_at(15) == DOWN
    tracker.observe(20, ok=False)
    tracker.observe(25, ok=False)
    (closed,) = tracker.observe(40, ok=True)
    assert closed.ended_at == 40
    assert closed.incident.failures == 4
    tracker.accrue(60)
    assert spans.totals() == {UP: 30.0, DOWN: 30.0}
    assert tracker.status_at(60) == UP


def test_a_blip_shorter_than_an_incident_counts_as_up() -> None:
    tracker, spans = make(incident_after=3)
    tracker.observe(0, ok=True)
    tracker.observe(10, ok=False)
    tracker.observe(12, ok=False)
    assert tracker.status_at(12) == DOWN  # its last word was a failure...
    assert tracker.observe(20, ok=True) == []
    tracker.accrue(30)
    assert spans.totals() == {UP: 30.0}  # ...but no incident, so no downtime either


def test_suspect_time_is_held_until_it_is_decided() -> None:
    tracker, spans = make(incident_after=2)
    tracker.observe(0, ok=True)
    tracker.observe(10, ok=False)
    tracker.accrue(14)  # a flush while suspect: nothing after the failure is counted yet
    assert spans.totals() == {UP: 10.0}
    tracker.observe(15, ok=False)
    assert spans.totals() == {UP: 10.0, DOWN: 5.0}


def test_probing_more_often_while_down_does_not_change_the_figures() -> None:
    sparse, sparse_spans = make()
    dense, dense_spans = make()
    for tracker, step in ((sparse, 15.0), (dense, 1.0)):
        tracker.observe(0, ok=True)
        at = 100.0
        while at < 200:
            tracker.observe(at, ok=False)
            at += step
        tracker.observe(200, ok=True)
        tracker.accrue(300)
    assert sparse_spans.totals() == dense_spans.totals() == {UP: 200.0, DOWN: 100.0}


def test_time_before_the_first_observation_is_not_counted() -> None:
    tracker, spans = make()
    tracker.accrue(50)
    assert tracker.status_at(50) == UNKNOWN
    tracker.observe(50, ok=True)
    tracker.accrue(80)
    assert spans.totals() == {UP: 30.0}


def test_maintenance_is_cut_out_and_ends_an_incident() -> None:
    tracker, spans = make(incident_after=2, maintenance=windows((30, 50)))
    tracker.observe(0, ok=True)
    tracker.observe(10, ok=False)
    tracker.observe(15, ok=False)  # incident from 10
    assert tracker.status_at(35) == MAINTENANCE
    # The first news inside the window ends the incident where the window began; the
    # failed probe itself says nothing.
    assert ended(tracker.observe(40, ok=False)) == [30]
    assert tracker.incident is None
    tracker.accrue(45)
    tracker.accrue(60)
    assert spans.totals() == {UP: 10.0, DOWN: 20.0, MAINTENANCE: 20.0}
    assert tracker.status_at(60) == UNKNOWN  # until the first observation after the window
    tracker.observe(60, ok=True)
    tracker.accrue(70)
    assert spans.totals() == {UP: 20.0, DOWN: 20.0, MAINTENANCE: 20.0}


def test_the_incident_ends_where_the_window_starts() -> None:
    tracker, _ = make(incident_after=1, maintenance=windows((30, 50)))
    tracker.observe(0, ok=True)
    (opened,) = tracker.observe(10, ok=False, cause="421 going down")
    assert opened.incident.started_at == 10
    (closed,) = tracker.accrue(35)
    assert closed.ended_at == 30
    assert tracker.incident is None


def test_an_observation_inside_a_window_is_ignored() -> None:
    tracker, spans = make(incident_after=1, maintenance=windows((0, 100)))
    assert tracker.observe(10, ok=False) == []
    assert tracker.incident is None
    assert spans.totals() == {}


def test_a_window_exactly_at_the_last_flush_still_ends_the_incident() -> None:
    tracker, spans = make(incident_after=1, maintenance=windows((30, 50)))
    tracker.observe(0, ok=True)
    tracker.observe(10, ok=False)
    tracker.accrue(30)  # flushed exactly when the window starts
    (closed,) = tracker.accrue(40)
    assert closed.ended_at == 30
    assert spans.totals() == {UP: 10.0, DOWN: 20.0, MAINTENANCE: 10.0}


def test_an_incident_left_open_by_the_last_run_goes_on_or_ends_at_the_first_news() -> None:
    carried = OpenIncident(started_at=5.0, cause="timeout", failures=3, row_id=7)
    tracker, spans = make(open_incident=carried)
    assert tracker.status_at(100) == DOWN
    (change,) = tracker.observe(100, ok=False)
    assert change.incident is carried and carried.failures == 4
    (closed,) = tracker.observe(110, ok=True)
    assert closed.ended_at == 110
    # Only watched time counts: from the first observation of this run.
    assert spans.totals() == {DOWN: 10.0}


@pytest.mark.parametrize("incident_after", [1, 2, 5])
def test_incident_after_n_failures(incident_after: int) -> None:
    tracker, _ = make(incident_after=incident_after)
    tracker.observe(0, ok=True)
    opened = []
    for n in range(1, 7):
        opened += [c for c in tracker.observe(float(n), ok=False) if c.incident.failures == n]
        if opened:
            break
    assert opened[0].incident.failures == incident_after
    assert opened[0].incident.started_at == 1.0
