"""``relaydesk settings get|set|list``."""

from __future__ import annotations

import pytest

from tests.cli.cli_harness import Relaydesk

KEYS = [
    "retry.min_backoff_seconds",
    "retry.max_backoff_seconds",
    "retry.max_age_hours",
    "breaker.failure_threshold",
    "breaker.open_seconds",
    "ambiguous.policy",
    "smtp.timeout_seconds",
    "health.probe_interval_seconds",
    "health.probe_interval_down_seconds",
    "health.incident_after_failures",
    "health.uptime_target_percent",
    "alerts.down_after_seconds",
    "alerts.backlog_minutes",
    "alerts.repeat_minutes",
    "alerts.email_to",
    "alerts.email_from",
    "campaigns.auto_pause_failure_percent",
    "campaigns.auto_pause_min_messages",
    "bounces.soft_limit",
    "bounces.poll_seconds",
    "delivery_probes.interval_minutes",
    "delivery_probes.timeout_minutes",
    "delivery_probes.seed_address",
    "delivery_probes.from_address",
    "identity.from_name",
    "identity.from_address",
]


def test_list_shows_every_setting_with_its_default_and_title(relaydesk: Relaydesk) -> None:
    lines = relaydesk.ok("settings", "list").out.splitlines()

    assert [line.split(" = ")[0] for line in lines] == KEYS
    assert lines[0].startswith("retry.min_backoff_seconds = 30    # ")
    assert lines[5] == "ambiguous.policy = retry    # When a provider may have a message"


def test_set_then_get_and_list(relaydesk: Relaydesk) -> None:
    assert relaydesk.ok("settings", "get", "breaker.failure_threshold").out == "3\n"

    assert relaydesk.ok("settings", "set", "breaker.failure_threshold", "5").out == (
        "breaker.failure_threshold = 5\n"
    )
    assert relaydesk.ok("settings", "set", "retry.min_backoff_seconds", "2.5").out == (
        "retry.min_backoff_seconds = 2.5\n"
    )
    relaydesk.ok("settings", "set", "ambiguous.policy", "hold")

    assert relaydesk.ok("settings", "get", "breaker.failure_threshold").out == "5\n"
    assert relaydesk.ok("settings", "get", "ambiguous.policy").out == "hold\n"
    listing = relaydesk.ok("settings", "list").out
    assert "retry.min_backoff_seconds = 2.5    #" in listing
    assert "ambiguous.policy = hold    #" in listing
    assert relaydesk.stored_settings() == {
        "breaker.failure_threshold": 5,
        "retry.min_backoff_seconds": 2.5,
        "ambiguous.policy": "hold",
    }


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("breaker.failure_threshold", "many", "must be a number"),
        ("breaker.failure_threshold", "0", "at least 1"),
        ("retry.max_backoff_seconds", "1e9", "at most"),
        ("retry.min_backoff_seconds", "nan", "finite"),
        ("ambiguous.policy", "sometimes", "one of: retry, hold"),
    ],
)
def test_bad_values_are_refused_and_not_stored(
    relaydesk: Relaydesk, key: str, value: str, fragment: str
) -> None:
    error = relaydesk.fails("settings", "set", key, value)

    assert error.startswith(key)
    assert fragment in error
    assert relaydesk.stored_settings() == {}


@pytest.mark.parametrize(
    "command", [("settings", "get", "retry.sometimes"), ("settings", "set", "retry.sometimes", "1")]
)
def test_an_unknown_key_lists_the_known_ones(
    relaydesk: Relaydesk, command: tuple[str, ...]
) -> None:
    error = relaydesk.fails(*command)

    assert "retry.sometimes" in error
    for key in KEYS:
        assert key in error


def test_a_missing_value_is_one_line(relaydesk: Relaydesk) -> None:
    relaydesk.fails("settings", "set", "retry.max_age_hours")
    relaydesk.fails("settings")
