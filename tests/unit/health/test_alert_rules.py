"""Alerts fire once per rule and subject, not again until rearmed, and not in a flood."""

from __future__ import annotations

from desktop_app.core.health.alert_rules import AlertOptions, AlertPolicy, AlertRule

DOWN = AlertRule.PROVIDER_DOWN
FAILOVER = AlertRule.FAILOVER


def policy(repeat_seconds: float = 0.0) -> AlertPolicy:
    return AlertPolicy(AlertOptions(repeat_seconds=repeat_seconds))


def test_a_condition_fires_once_after_holding_and_again_only_after_clearing() -> None:
    p = policy()
    assert p.condition(DOWN, "alpha", True, 0, "down", hold_seconds=60) is None
    assert p.condition(DOWN, "alpha", True, 59, "down", hold_seconds=60) is None
    alert = p.condition(DOWN, "alpha", True, 60, "alpha down 60 s", hold_seconds=60)
    assert alert is not None
    assert (alert.rule, alert.subject, alert.severity, alert.raised_at) == (
        DOWN,
        "alpha",
        "critical",
        60,
    )
    assert p.condition(DOWN, "alpha", True, 500, "down", hold_seconds=60) is None
    assert p.condition(DOWN, "alpha", False, 501, "") is None  # cleared: rearmed
    assert p.condition(DOWN, "alpha", True, 502, "down", hold_seconds=60) is None  # holds again
    assert p.condition(DOWN, "alpha", True, 562, "down", hold_seconds=60) is not None


def test_subjects_are_independent() -> None:
    p = policy()
    assert p.event(FAILOVER, "alpha", 0, "x") is not None
    assert p.event(FAILOVER, "beta", 0, "x") is not None
    assert p.event(FAILOVER, "alpha", 1, "x") is None


def test_an_event_alert_waits_for_its_rearm() -> None:
    p = policy()
    assert p.event(FAILOVER, "alpha", 0, "x") is not None
    for second in range(1, 100):
        assert p.event(FAILOVER, "alpha", second, "x") is None
    p.rearm(FAILOVER, "alpha")
    assert p.event(FAILOVER, "alpha", 100, "x") is not None


def test_a_flapping_provider_is_rate_limited_by_repeat_seconds() -> None:
    p = policy(repeat_seconds=900)
    assert p.event(FAILOVER, "alpha", 0, "x") is not None
    p.rearm(FAILOVER, "alpha")
    assert p.event(FAILOVER, "alpha", 10, "x") is None  # rearmed, but too soon
    assert p.is_armed(FAILOVER, "alpha")
    assert p.event(FAILOVER, "alpha", 900, "x") is not None
