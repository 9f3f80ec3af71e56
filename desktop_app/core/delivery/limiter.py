"""Per-provider send quotas that hold in every sliding window, not just on average.

The product promise is "a provider is never sent more than its limits" in *any* window of the
configured length. A token bucket of capacity R refilling at R per window lets a full bucket go
out at once and then the refill follow, which is up to ~2R inside one sliding window; providers
that count sliding windows (many do, for hour and day quotas) would throttle or suspend us.

So this is an exact sliding-window log: a send at ``now`` is allowed only if, for every window
of length L and limit N, the N-th most recent send happened at least L seconds ago. Only the
most recent ``max(N)`` send times can ever matter, so one deque capped at that length serves all
windows (memory O(limit)); entries older than the longest window are pruned lazily.
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from collections.abc import Callable

from desktop_app.core.models import RateLimits


def _checked_windows(limits: RateLimits) -> tuple[tuple[float, int], ...]:
    windows = limits.windows()
    for seconds, limit in windows:
        if limit < 1:
            # Validation of ProviderConfig rejects this; a 0 here would block a provider for
            # ever without saying why, so refuse loudly.
            raise ValueError(f"rate limit per {seconds:g} s must be at least 1, not {limit}")
    return windows


class RateLimiter:
    """Sliding-window send limiter for one provider."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.time) -> None:
        # Wall-clock time by default: record() seeds sends from the attempts table, which
        # stores epoch seconds.
        self._clock = clock
        self._limits = limits
        self._windows = _checked_windows(limits)
        self._sends: deque[float] = deque(maxlen=self._capacity())

    @property
    def limits(self) -> RateLimits:
        """The limits in force."""
        return self._limits

    @property
    def unlimited(self) -> bool:
        """True when no window is configured: every send is allowed."""
        return not self._windows

    def delay(self) -> float:
        """Seconds until one more send is allowed (0.0 if allowed now)."""
        return self._delay_at(self._clock())

    def try_acquire(self) -> bool:
        """Record a send at ``clock()`` and return True if one is allowed now; else False."""
        now = self._clock()  # read once: the send recorded is the one that was checked
        if self._delay_at(now) > 0.0:
            return False
        if self._windows:
            self._insert(now)
        return True

    def record(self, at: float) -> None:
        """Count a send that already happened at ``at`` (start-up seeding from attempts)."""
        if not self._windows:
            return
        if at <= self._clock() - self._longest():
            return  # outside every window: cannot matter
        self._insert(at)

    def update(self, limits: RateLimits) -> None:
        """Apply new limits, keeping the send history.

        Only the sends the old limits needed were kept, so a newly added or raised limit sees
        at most that many past sends (none after a spell without limits); re-seed with
        ``record()`` if that matters.
        """
        windows = _checked_windows(limits)
        self._limits = limits
        self._windows = windows
        # deque(iterable, maxlen) keeps the most recent entries, which are the ones that count.
        self._sends = deque(self._sends, maxlen=self._capacity())

    def _delay_at(self, now: float) -> float:
        if not self._windows:
            return 0.0
        self._prune(now)
        wait = 0.0
        for seconds, limit in self._windows:
            if len(self._sends) >= limit:
                # Computed as L - (now - t) so that "0.0" is exactly "now - t >= L".
                wait = max(wait, seconds - (now - self._sends[-limit]))
        return wait

    def _capacity(self) -> int:
        return max((limit for _, limit in self._windows), default=0)

    def _longest(self) -> float:
        return max((seconds for seconds, _ in self._windows), default=0.0)

    def _prune(self, now: float) -> None:
        horizon = now - self._longest()
        while self._sends and self._sends[0] <= horizon:
            self._sends.popleft()

    def _insert(self, at: float) -> None:
        # Kept sorted: seeded sends may come in any order, and a wall clock can step back.
        sends = self._sends
        if not sends or at >= sends[-1]:
            sends.append(at)  # the usual case; maxlen drops the oldest
            return
        if len(sends) == sends.maxlen:
            if at <= sends[0]:
                return  # older than everything kept: it cannot be among the most recent
            sends.popleft()
        sends.insert(bisect.bisect_right(sends, at), at)
