"""Circuit breaker transitions, growing cool-down and the single half-open trial."""

from __future__ import annotations

import pytest

from desktop_app.core.delivery.breaker import CircuitBreaker
from desktop_app.core.models import BreakerState


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, threshold: int = 3, open_seconds: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(threshold, open_seconds, max_open_seconds=60.0, clock=clock, jitter=0.0)


def trip(breaker: CircuitBreaker) -> None:
    while breaker.state is BreakerState.CLOSED:
        breaker.record_failure()


def test_starts_closed(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allows_request()
    assert breaker.acquire()
    assert breaker.acquire()  # closed: no limit on permissions
    assert breaker.retry_at is None
    assert (breaker.consecutive_failures, breaker.consecutive_opens) == (0, 0)


def test_opens_at_threshold(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.consecutive_failures == 2
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.consecutive_opens == 1
    assert breaker.retry_at == 1010.0
    assert not breaker.allows_request()
    assert not breaker.acquire()


def test_success_resets_failure_count_while_closed(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    assert breaker.consecutive_failures == 0
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_threshold_one_opens_on_first_failure(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_half_opens_after_cool_down(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(9.999)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.001)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allows_request()
    assert breaker.retry_at == 1010.0  # when it half-opened


def test_single_trial_in_half_open(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    assert breaker.acquire()
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allows_request()
    assert not breaker.acquire()


def test_allows_request_is_a_pure_query(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    assert breaker.allows_request()
    assert breaker.allows_request()
    assert breaker.acquire()


def test_released_trial_can_be_taken_again(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    assert breaker.acquire()
    breaker.release_trial()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allows_request()
    assert breaker.acquire()


def test_trial_success_closes(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    assert breaker.acquire()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert (breaker.consecutive_failures, breaker.consecutive_opens) == (0, 0)
    assert breaker.retry_at is None
    assert breaker.acquire()
    assert breaker.acquire()


def test_trial_failure_reopens_with_doubled_cool_down(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    assert breaker.acquire()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.consecutive_opens == 2
    assert breaker.retry_at == clock.now + 20.0
    assert not breaker.allows_request()
    clock.advance(19.0)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1.0)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire()  # a fresh trial after reopening


def test_cool_down_grows_and_is_capped(clock: FakeClock) -> None:
    breaker = make(clock, open_seconds=10.0)  # cap 60
    trip(breaker)
    cool_downs = []
    for _ in range(6):
        assert breaker.retry_at is not None
        cool_downs.append(breaker.retry_at - clock.now)
        clock.now = breaker.retry_at
        assert breaker.acquire()
        breaker.record_failure()
    assert cool_downs == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]


def test_many_opens_do_not_overflow(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 1.0, max_open_seconds=5.0, clock=clock, jitter=0.0)
    breaker.record_failure()
    for _ in range(1100):
        assert breaker.retry_at is not None
        clock.now = breaker.retry_at
        breaker.record_failure()
    assert breaker.consecutive_opens == 1101
    assert breaker.retry_at == clock.now + 5.0


def test_growth_resets_after_a_successful_trial(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    clock.advance(10.0)
    breaker.acquire()
    breaker.record_failure()  # second opening: 20 s
    clock.advance(20.0)
    breaker.acquire()
    breaker.record_success()
    trip(breaker)
    assert breaker.consecutive_opens == 1
    assert breaker.retry_at == clock.now + 10.0


def test_results_while_open_are_stragglers_and_ignored(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    retry_at = breaker.retry_at
    failures = breaker.consecutive_failures
    clock.advance(5.0)
    breaker.record_failure()
    breaker.record_success()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_at == retry_at
    assert breaker.consecutive_failures == failures
    assert breaker.consecutive_opens == 1


def test_configure_changes_threshold_and_running_cool_down(clock: FakeClock) -> None:
    breaker = make(clock, threshold=3, open_seconds=10.0)
    breaker.record_failure()
    breaker.configure(failure_threshold=2, open_seconds=30.0)
    assert breaker.state is BreakerState.CLOSED  # not retroactive
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.retry_at == clock.now + 30.0
    breaker.configure(failure_threshold=2, open_seconds=5.0)
    assert breaker.retry_at == clock.now + 5.0
    assert (breaker.failure_threshold, breaker.open_seconds) == (2, 5.0)


def test_configure_base_above_cap_wins(clock: FakeClock) -> None:
    breaker = make(clock, threshold=1)  # cap 60
    breaker.configure(failure_threshold=1, open_seconds=120.0)
    breaker.record_failure()
    assert breaker.retry_at == clock.now + 120.0


@pytest.mark.parametrize(
    ("threshold", "open_seconds", "max_open"),
    [(0, 10.0, 60.0), (3, 0.0, 60.0), (3, -1.0, 60.0), (3, 10.0, 5.0)],
)
def test_invalid_settings_are_rejected(
    threshold: int, open_seconds: float, max_open: float
) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(threshold, open_seconds, max_open)


def test_configure_rejects_invalid_settings(clock: FakeClock) -> None:
    breaker = make(clock)
    with pytest.raises(ValueError):
        breaker.configure(0, 10.0)
    with pytest.raises(ValueError):
        breaker.configure(3, 0.0)


def test_default_clock_is_monotonic() -> None:
    breaker = CircuitBreaker(1, 3600.0)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


def test_cool_downs_carry_jitter_fixed_per_opening() -> None:
    clock = FakeClock()
    fractions = iter([0.0, 0.5, 1.0])
    breaker = CircuitBreaker(
        1, 10.0, max_open_seconds=60.0, clock=clock, random_fraction=lambda: next(fractions)
    )
    opened = clock()
    breaker.record_failure()
    assert breaker.retry_at == opened + 10.0  # fraction 0: no stretch
    assert breaker.retry_at == opened + 10.0  # asked again: the same cool-down
    clock.advance(10.0)
    assert breaker.acquire()
    opened = clock()
    breaker.record_failure()  # the trial failed: 20 s, stretched by 10 %
    assert breaker.retry_at == pytest.approx(opened + 22.0)
    clock.advance(22.0)
    assert breaker.acquire()
    opened = clock()
    breaker.record_failure()  # 40 s, stretched by 20 %
    assert breaker.retry_at == pytest.approx(opened + 48.0)


def test_a_trial_can_start_before_the_cool_down_ends() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 600.0, clock=clock, jitter=0.0)
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    breaker.allow_trial_now()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire()
    assert not breaker.acquire()  # still a single trial
    breaker.record_failure()  # it failed: open again, for the full (doubled) cool-down
    assert breaker.state is BreakerState.OPEN
    clock.advance(1199.0)
    assert breaker.state is BreakerState.OPEN
    clock.advance(1.0)
    assert breaker.state is BreakerState.HALF_OPEN


def test_allow_trial_now_does_nothing_to_a_closed_breaker() -> None:
    breaker = CircuitBreaker(2, 10.0, jitter=0.0)
    breaker.allow_trial_now()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
