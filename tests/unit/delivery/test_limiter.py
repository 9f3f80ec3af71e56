"""Sliding-window rate limiter: never over the limit in any window, and not under it either."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.core.delivery.limiter import RateLimiter
from desktop_app.core.models import RateLimits

EPOCH = 1_700_000_000.0  # realistic epoch seconds: float rounding must not break the promise


class FakeClock:
    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def max_in_any_window(times: list[float], seconds: float) -> int:
    """Most sends inside any half-open window [s, s + seconds)."""
    times = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(times):
        while t - times[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_greedy(limiter: RateLimiter, clock: FakeClock, until: float) -> list[float]:
    """A sender that always wants one more: waits exactly delay() and sends."""
    sent: list[float] = []
    for _ in range(100_000):  # a guard, so a stalled limiter fails instead of hanging
        if clock.now >= until:
            return sent
        wait = limiter.delay()
        if wait > 0.0:
            clock.now += wait
            continue
        assert limiter.try_acquire()
        sent.append(clock.now)
    raise AssertionError("greedy sender made no progress")


limits_strategy = st.builds(
    RateLimits,
    per_second=st.none() | st.integers(1, 5),
    per_minute=st.none() | st.integers(1, 30),
    per_hour=st.none() | st.integers(1, 60),
)
gap_strategy = st.one_of(
    st.floats(0.0, 2.0, allow_nan=False),
    st.sampled_from([0.0, 0.5, 1.0, 59.0, 60.0, 600.0, 3600.0]),
    st.floats(0.0, 900.0, allow_nan=False),
)


@settings(max_examples=300, deadline=None)
@given(limits=limits_strategy, gaps=st.lists(gap_strategy, max_size=300))
def test_no_sliding_window_exceeds_its_limit(limits: RateLimits, gaps: list[float]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits, clock=clock)
    sent: list[float] = []
    for gap in gaps:
        clock.now += gap
        allowed_now = limiter.delay() == 0.0
        acquired = limiter.try_acquire()
        assert acquired is allowed_now  # delay() and try_acquire() agree
        if acquired:
            sent.append(clock.now)
    for seconds, limit in limits.windows():
        assert max_in_any_window(sent, seconds) <= limit


@settings(max_examples=100, deadline=None)
@given(
    window=st.sampled_from(["per_second", "per_minute", "per_hour"]),
    limit=st.integers(1, 40),
    windows_elapsed=st.integers(1, 4),
    start=st.floats(0.0, 10.0, allow_nan=False),
)
def test_greedy_sender_gets_the_full_limit(
    window: str, limit: int, windows_elapsed: int, start: float
) -> None:
    limits = RateLimits(**{window: limit})
    ((seconds, _),) = limits.windows()
    clock = FakeClock(EPOCH + start)
    limiter = RateLimiter(limits, clock=clock)
    sent = run_greedy(limiter, clock, until=clock.now + windows_elapsed * seconds)
    # The full limit in every window, not half of it (and not double, see above).
    assert len(sent) == windows_elapsed * limit
    assert max_in_any_window(sent, seconds) == limit


@settings(max_examples=100, deadline=None)
@given(limits=limits_strategy)
def test_greedy_sender_never_exceeds_combined_limits(limits: RateLimits) -> None:
    clock = FakeClock()
    limiter = RateLimiter(limits, clock=clock)
    if limiter.unlimited:
        return
    longest = max(seconds for seconds, _ in limits.windows())
    sent = run_greedy(limiter, clock, until=clock.now + 2 * longest)
    windows = limits.windows()
    for seconds, limit in windows:
        # A longer window with a smaller limit caps this one too. (The strategy's ranges keep
        # shorter windows from binding: even 1 per second allows 60 per minute.)
        reachable = min(other for length, other in windows if length >= seconds)
        assert max_in_any_window(sent, seconds) == min(limit, reachable)


def test_nested_windows_greedy_schedule() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_second=2, per_minute=5), clock=clock)
    sent = run_greedy(limiter, clock, until=120.0)
    assert sent == [0.0, 0.0, 1.0, 1.0, 2.0, 60.0, 60.0, 61.0, 61.0, 62.0]


def test_burst_is_not_followed_by_a_refill_within_the_window() -> None:
    # A token bucket (capacity 10, 10 per minute) would allow 5 more at t=30.
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_minute=10), clock=clock)
    assert all(limiter.try_acquire() for _ in range(10))
    assert not limiter.try_acquire()
    clock.now = 30.0
    assert limiter.delay() == 30.0
    assert not limiter.try_acquire()
    clock.now = 60.0
    assert limiter.delay() == 0.0
    assert all(limiter.try_acquire() for _ in range(10))
    assert not limiter.try_acquire()


def test_delay_is_the_max_over_windows() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_second=1, per_minute=2), clock=clock)
    assert limiter.try_acquire()
    assert limiter.delay() == 1.0
    clock.now = 1.0
    assert limiter.try_acquire()
    clock.now = 2.0
    assert limiter.delay() == 58.0  # the minute window binds, not the second one


def test_unlimited() -> None:
    limiter = RateLimiter(RateLimits(), clock=FakeClock())
    assert limiter.unlimited
    assert all(limiter.try_acquire() for _ in range(1000))
    assert limiter.delay() == 0.0
    assert not RateLimiter(RateLimits(per_day=1)).unlimited


@pytest.mark.parametrize(
    "limits",
    [RateLimits(per_second=0), RateLimits(per_minute=-1), RateLimits(per_hour=5, per_day=0)],
)
def test_limits_below_one_are_rejected(limits: RateLimits) -> None:
    with pytest.raises(ValueError):
        RateLimiter(limits)
    limiter = RateLimiter(RateLimits(per_minute=5))
    with pytest.raises(ValueError):
        limiter.update(limits)
    assert limiter.limits == RateLimits(per_minute=5)  # a rejected update changes nothing


def test_record_seeds_quota_after_restart() -> None:
    clock = FakeClock(EPOCH)
    limiter = RateLimiter(RateLimits(per_hour=3), clock=clock)
    for minutes_ago in (50, 10, 30):  # out of order, as a query might return them
        limiter.record(EPOCH - minutes_ago * 60)
    assert limiter.delay() == 600.0  # the send 50 minutes ago leaves the hour in 10
    assert not limiter.try_acquire()
    clock.now += 600.0
    assert limiter.try_acquire()


def test_record_ignores_sends_older_than_the_longest_window() -> None:
    clock = FakeClock(EPOCH)
    limiter = RateLimiter(RateLimits(per_second=1, per_minute=1), clock=clock)
    limiter.record(EPOCH - 60.0)
    limiter.record(EPOCH - 3600.0)
    assert limiter.delay() == 0.0


def test_record_keeps_only_the_most_recent_when_full() -> None:
    clock = FakeClock(EPOCH)
    limiter = RateLimiter(RateLimits(per_minute=2), clock=clock)
    limiter.record(EPOCH - 10.0)
    limiter.record(EPOCH - 20.0)
    limiter.record(EPOCH - 50.0)  # older than both kept sends: cannot matter
    assert limiter.delay() == 40.0
    limiter.record(EPOCH - 5.0)  # newer than the oldest kept: replaces it
    assert limiter.delay() == 50.0


def test_record_while_unlimited_is_a_no_op() -> None:
    limiter = RateLimiter(RateLimits(), clock=FakeClock())
    limiter.record(EPOCH)
    assert limiter.delay() == 0.0


def test_update_keeps_history() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_minute=10), clock=clock)
    for _ in range(5):
        assert limiter.try_acquire()
    limiter.update(RateLimits(per_minute=5))
    assert limiter.limits == RateLimits(per_minute=5)
    assert not limiter.try_acquire()
    assert limiter.delay() == 60.0
    limiter.update(RateLimits(per_minute=6))
    assert limiter.try_acquire()
    assert not limiter.try_acquire()


def test_update_adding_a_window_sees_kept_sends() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_minute=3), clock=clock)
    for t in (0.0, 10.0, 20.0):
        clock.now = t
        assert limiter.try_acquire()
    clock.now = 70.0
    limiter.update(RateLimits(per_minute=3, per_hour=3))
    assert limiter.delay() == 3600.0 - 70.0


def test_update_to_unlimited_and_back() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_minute=1), clock=clock)
    assert limiter.try_acquire()
    limiter.update(RateLimits())
    assert limiter.unlimited
    assert limiter.try_acquire()
    limiter.update(RateLimits(per_minute=1))
    assert limiter.try_acquire()


def test_wall_clock_stepping_back_stays_conservative() -> None:
    clock = FakeClock(100.0)
    limiter = RateLimiter(RateLimits(per_second=1), clock=clock)
    assert limiter.try_acquire()
    clock.now = 90.0
    assert limiter.delay() == 11.0  # waits for the real send to age out, never less
    assert not limiter.try_acquire()


def test_memory_is_bounded_by_the_largest_limit() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_second=3, per_minute=50), clock=clock)
    for _ in range(5000):
        clock.now += 0.7
        limiter.try_acquire()
        limiter.record(clock.now - 0.1)
    assert len(limiter._sends) <= 50  # the log is O(limit), whatever the traffic


def test_old_sends_are_pruned_lazily() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(RateLimits(per_minute=50), clock=clock)
    for _ in range(10):
        limiter.try_acquire()
    clock.now = 61.0
    assert limiter.delay() == 0.0
    assert len(limiter._sends) == 0
