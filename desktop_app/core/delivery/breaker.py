"""A circuit breaker per provider: stop sending to a provider that keeps failing.

CLOSED counts consecutive provider-level failures; at the threshold the breaker OPENs for a
cool-down, after which it is reported HALF_OPEN and lets exactly one trial message through.
The trial's success closes it; its failure opens it again for twice as long (capped), so a
provider that stays down is probed less and less often instead of eating a message a minute.

State is computed from the clock when asked, so nothing has to wake up to move OPEN to
HALF_OPEN.

Each cool-down is stretched by a random factor (``jitter``, up to +20 % by default), fixed when
the breaker opens, so that trials of several providers, or of one provider whose outage
repeats on a schedule, do not lock onto the same rhythm. ``allow_trial_now`` ends a cool-down
early: a health probe just reached the provider, so waiting out a cool-down that grew during
the outage would only hold mail back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from desktop_app.core.models import BreakerState

# 2.0 ** 1024 overflows; any exponent this large already exceeds every sane cap.
_MAX_DOUBLINGS = 1000


def _check_settings(failure_threshold: int, open_seconds: float) -> None:
    if failure_threshold < 1:
        raise ValueError(f"failure threshold must be at least 1, not {failure_threshold}")
    if not open_seconds > 0:
        raise ValueError(f"open seconds must be more than 0, not {open_seconds}")


class CircuitBreaker:
    """Consecutive-failure circuit breaker with a single half-open trial and growing cool-down."""

    def __init__(
        self,
        failure_threshold: int,
        open_seconds: float,
        max_open_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: float = 0.2,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        _check_settings(failure_threshold, open_seconds)
        if max_open_seconds < open_seconds:
            raise ValueError(
                f"max open seconds ({max_open_seconds}) must not be below open seconds "
                f"({open_seconds})"
            )
        self._failure_threshold = failure_threshold
        self._open_seconds = open_seconds
        self._max_open_seconds = max_open_seconds
        self._clock = clock
        self._consecutive_failures = 0
        self._consecutive_opens = 0
        self._opened_at: float | None = None  # None: closed
        self._trial_in_flight = False
        self._jitter = jitter
        self._random_fraction = random_fraction
        self._stretch = 1.0  # this opening's jitter factor
        self._trial_early = False  # allow_trial_now() ended this cool-down

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that open a closed breaker."""
        return self._failure_threshold

    @property
    def open_seconds(self) -> float:
        """Cool-down after the first opening; later ones double up to ``max_open_seconds``."""
        return self._open_seconds

    @property
    def consecutive_failures(self) -> int:
        """Provider-level failures since the last success."""
        return self._consecutive_failures

    @property
    def consecutive_opens(self) -> int:
        """Openings since the breaker was last closed by a successful trial."""
        return self._consecutive_opens

    @property
    def state(self) -> BreakerState:
        """CLOSED, OPEN, or HALF_OPEN once the current cool-down has elapsed."""
        return self._state_at(self._clock())

    @property
    def retry_at(self) -> float | None:
        """Clock time at which the current cool-down ends (or ended); None when closed."""
        if self._opened_at is None:
            return None
        return self._opened_at + self._cool_down()

    def allows_request(self) -> bool:
        """Whether ``acquire()`` would succeed now. A pure query."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        return state is BreakerState.HALF_OPEN and not self._trial_in_flight

    def acquire(self) -> bool:
        """Take permission to send; in HALF_OPEN this claims the single trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def allow_trial_now(self) -> None:
        """End the current cool-down: the next request is the half-open trial."""
        if self._opened_at is not None:
            self._trial_early = True

    def release_trial(self) -> None:
        """Give back a granted trial that was not used (the message went elsewhere)."""
        self._trial_in_flight = False

    def record_success(self) -> None:
        """The provider took a message (or passed a probe)."""
        state = self.state
        if state is BreakerState.OPEN:
            # Only a request started before the breaker opened can finish now; it says
            # nothing about the provider after the failures that opened it.
            return
        self._consecutive_failures = 0
        if state is BreakerState.HALF_OPEN:
            self._opened_at = None
            self._consecutive_opens = 0
            self._trial_in_flight = False

    def record_failure(self) -> None:
        """The provider failed in a way that counts against it (see classify.py)."""
        now = self._clock()
        state = self._state_at(now)
        if state is BreakerState.OPEN:
            # A straggler from before the opening: the cool-down already accounts for it,
            # and letting it lengthen the cool-down would punish concurrency.
            return
        self._consecutive_failures += 1
        if state is BreakerState.HALF_OPEN or (
            self._consecutive_failures >= self._failure_threshold
        ):
            self._open(now)

    def configure(self, failure_threshold: int, open_seconds: float) -> None:
        """Apply changed settings; a running cool-down is recomputed with the new length.

        A lowered threshold takes effect at the next failure, not retroactively.
        """
        _check_settings(failure_threshold, open_seconds)
        self._failure_threshold = failure_threshold
        self._open_seconds = open_seconds

    def _state_at(self, now: float) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if not self._trial_early and now < self._opened_at + self._cool_down():
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def _cool_down(self) -> float:
        doublings = min(max(self._consecutive_opens - 1, 0), _MAX_DOUBLINGS)
        # configure() may have raised the base past the cap; the base then wins.
        cap = max(self._max_open_seconds, self._open_seconds)
        return min(self._open_seconds * 2.0**doublings, cap) * self._stretch

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._consecutive_opens += 1
        self._trial_in_flight = False
        self._trial_early = False
        self._stretch = 1.0 + self._jitter * self._random_fraction()
