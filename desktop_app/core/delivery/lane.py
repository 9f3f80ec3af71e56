"""What the engine keeps about one provider while it runs, and the questions routing asks.

A lane holds the provider's breaker, rate limiter, connection pool and its maintenance
check; ``usable()`` and ``has_room`` are the engine's answers to the router's two questions
(router.py: busy is not unusable).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math

from desktop_app.core.delivery.breaker import CircuitBreaker
from desktop_app.core.delivery.limiter import RateLimiter
from desktop_app.core.delivery.pool import ConnectionPool
from desktop_app.core.health.maintenance import active_window, next_change
from desktop_app.core.models import BreakerState, ProviderConfig

#: Each provider may have this many messages routed to it per connection, so the next
#: messages' attempt rows are committed while the current one is on the wire. More in hand
#: means bigger group commits: 8 took the loopback benchmark from ~7 to ~10 messages per
#: commit and ~15 % more throughput; 16 was no better (bench_throughput.py).
RESERVATIONS_PER_CONNECTION = 8
#: A rate limit that frees up within this long is pacing, not "used up": mail waits for it
#: (a per-second limit holds each message back for under a second). Longer, and the
#: provider is unusable for now: mail goes to the next tier, or back to the outbox.
QUOTA_MOMENT_SECONDS = 2.0


class ProviderLane:
    """What the engine keeps about one provider while it runs."""

    def __init__(
        self,
        config: ProviderConfig,
        pool: ConnectionPool,
        *,
        breaker_threshold: int,
        breaker_open_seconds: float,
    ) -> None:
        self.config = config
        self.pool = pool
        self.breaker = CircuitBreaker(breaker_threshold, breaker_open_seconds)
        self.limiter = RateLimiter(config.rate_limits)
        self.reserved = 0  # messages routed here and not yet finished with the connection
        self.probing = False
        self.send_gate = asyncio.Lock()  # quota check -> attempt row -> token, one at a time
        self.quota_announced_until = 0.0  # a QuotaExhausted event covers until then
        # Whether a maintenance window covers now, as last checked. The answer holds from
        # _maintenance_checked_at until maintenance_next_change, so the clock is compared
        # per routing decision and the windows (zoneinfo) are evaluated only at boundaries.
        self.in_maintenance = False
        self.maintenance_next_change = -math.inf
        self._maintenance_checked_at = math.inf

    def breaker_opened(self) -> bool:
        return self.breaker.state is BreakerState.OPEN

    @property
    def has_room(self) -> bool:
        return self.reserved < self.config.max_connections * RESERVATIONS_PER_CONNECTION

    def maintenance_changed(self, now: float) -> bool:
        """Bring ``in_maintenance`` up to ``now``; True when it flipped."""
        if self._maintenance_checked_at <= now < self.maintenance_next_change:
            return False
        windows = self.config.maintenance
        active = bool(windows) and active_window(windows, now) is not None
        change = next_change(windows, now) if windows else None
        self._maintenance_checked_at = now
        self.maintenance_next_change = math.inf if change is None else change
        flipped = active is not self.in_maintenance
        self.in_maintenance = active
        return flipped

    def forget_maintenance_check(self) -> None:
        """The windows changed: check them again at the next routing decision."""
        self._maintenance_checked_at = math.inf

    def usable(self) -> bool:
        """Enabled, not in maintenance, breaker lets it try, quota within a moment.

        Whether it has a free connection is a separate question (``has_room``): busy is
        not unusable (router.py).
        """
        return (
            self.config.enabled
            and not self.in_maintenance
            and self.breaker.allows_request()
            and self.limiter.delay() <= QUOTA_MOMENT_SECONDS
        )


def connection_settings(config: ProviderConfig) -> ProviderConfig:
    """What connections depend on: a new maintenance window must not retire them."""
    return dataclasses.replace(config, maintenance=())


def first_tiers(lanes: list[ProviderLane]) -> list[ProviderLane]:
    """The lanes mail may be routed to now: the best tier, and later tiers only while a
    better one is limited to some sender domains (mail from the others needs a later one).
    Counting a backup's connections as room would only claim mail that then waits."""
    chosen: list[ProviderLane] = []
    for priority in sorted({lane.config.priority for lane in lanes}):
        tier = [lane for lane in lanes if lane.config.priority == priority]
        chosen.extend(tier)
        if any(not lane.config.sender_domains for lane in tier):
            break
    return chosen
