"""When to try a deferred message again, and when to give up on it."""

from __future__ import annotations

import random
from dataclasses import dataclass

# 2.0 ** 1024 overflows; the cap is reached long before this many deferrals.
_MAX_DOUBLINGS = 1000

# Jitter only spreads retries out so they do not arrive in lockstep; it needs no secrecy.
_default_rng = random.Random()  # noqa: S311


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with equal jitter, and a maximum age for a message."""

    min_seconds: float = 30.0
    max_seconds: float = 3600.0
    max_age_seconds: float = 72 * 3600.0

    def __post_init__(self) -> None:
        if not self.min_seconds > 0:
            raise ValueError(f"min seconds must be more than 0, not {self.min_seconds}")
        if self.max_seconds < self.min_seconds:
            raise ValueError(
                f"max seconds ({self.max_seconds}) must not be below min seconds "
                f"({self.min_seconds})"
            )
        if not self.max_age_seconds > 0:
            raise ValueError(f"max age must be more than 0, not {self.max_age_seconds}")

    def delay(self, deferral_count: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``deferral_count``-th deferral (1 for the first)."""
        if deferral_count < 1:
            raise ValueError(f"deferral count must be at least 1, not {deferral_count}")
        doublings = min(deferral_count - 1, _MAX_DOUBLINGS)
        base = min(self.min_seconds * 2.0**doublings, self.max_seconds)
        # Equal jitter: half the wait is guaranteed (the backoff still backs off), the other
        # half is random so messages deferred together by one outage do not retry together.
        jittered = (rng or _default_rng).uniform(base / 2, base)
        # uniform() may round a hair past its end points.
        return min(max(jittered, base / 2), base)

    def expired(self, created_at: float, now: float) -> bool:
        """Whether a message created at ``created_at`` is too old to retry at ``now``."""
        return now - created_at >= self.max_age_seconds
