"""Backoff delays and message expiry."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.core.delivery.retry import BackoffPolicy


class _EdgeRandom(random.Random):
    """Always returns one end of the range, to pin the jitter bounds."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self._high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self._high else a


def test_defaults() -> None:
    policy = BackoffPolicy()
    assert (policy.min_seconds, policy.max_seconds, policy.max_age_seconds) == (
        30.0,
        3600.0,
        72 * 3600.0,
    )


@pytest.mark.parametrize(
    ("count", "base"),
    [(1, 30.0), (2, 60.0), (3, 120.0), (4, 240.0), (7, 1920.0), (8, 3600.0), (50, 3600.0)],
)
def test_base_doubles_up_to_cap_and_jitter_keeps_upper_half(count: int, base: float) -> None:
    policy = BackoffPolicy()
    assert policy.delay(count, _EdgeRandom(high=True)) == base
    assert policy.delay(count, _EdgeRandom(high=False)) == base / 2


def test_huge_deferral_count_does_not_overflow() -> None:
    assert BackoffPolicy().delay(10**6, random.Random(1)) <= 3600.0


@given(count=st.integers(min_value=1, max_value=200), seed=st.integers(0, 2**32))
def test_bounds(count: int, seed: int) -> None:
    policy = BackoffPolicy(min_seconds=5.0, max_seconds=300.0)
    delay = policy.delay(count, random.Random(seed))
    assert policy.min_seconds / 2 <= delay <= policy.max_seconds
    base = min(5.0 * 2 ** (count - 1), 300.0)
    assert base / 2 <= delay <= base


def test_seeded_rng_is_deterministic() -> None:
    policy = BackoffPolicy()
    first = [policy.delay(n, random.Random(42)) for n in range(1, 10)]
    again = [policy.delay(n, random.Random(42)) for n in range(1, 10)]
    assert first == again


def test_jitter_spreads_delays() -> None:
    rng = random.Random(7)
    delays = {BackoffPolicy().delay(5, rng) for _ in range(20)}
    assert len(delays) > 1


def test_default_rng_is_used_when_none_given() -> None:
    delay = BackoffPolicy().delay(1)
    assert 15.0 <= delay <= 30.0


@pytest.mark.parametrize("count", [0, -1])
def test_deferral_count_below_one_is_rejected(count: int) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy().delay(count)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_seconds": 0.0},
        {"min_seconds": -1.0},
        {"min_seconds": 100.0, "max_seconds": 50.0},
        {"max_age_seconds": 0.0},
    ],
)
def test_invalid_policy_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(**kwargs)


def test_policy_is_frozen() -> None:
    policy = BackoffPolicy()
    with pytest.raises(AttributeError):
        policy.min_seconds = 1.0  # type: ignore[misc]


def test_expired() -> None:
    policy = BackoffPolicy(max_age_seconds=100.0)
    assert not policy.expired(created_at=1000.0, now=1000.0)
    assert not policy.expired(created_at=1000.0, now=1099.9)
    assert policy.expired(created_at=1000.0, now=1100.0)
    assert policy.expired(created_at=1000.0, now=5000.0)
