"""User settings, declared once with their type, default, bounds and title (the Picard way).

Values are stored as JSON in the ``settings`` table; an unset key reads as its default, so
adding a setting never needs a data migration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from desktop_app.core.errors import UnknownSettingError, UserInputError
from desktop_app.core.models import AmbiguousPolicy
from desktop_app.core.storage.changes import Topic, bump
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import SettingRow
from desktop_app.core.validation import check_no_line_breaks, validate_address


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """One setting: how to parse it from text, its default and its allowed range."""

    key: str
    title: str
    kind: type  # int, float or str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    # For free text: checks and normalizes a value, or raises UserInputError.
    check: Callable[[str], str] | None = None

    def parse(self, text: str) -> Any:
        """Turn what a user typed into a value, or raise a one-line ``UserInputError``."""
        text = text.strip()
        if self.check is not None:
            return self.check(text)
        if self.choices:
            if text not in self.choices:
                raise UserInputError(f"{self.key} must be one of: {', '.join(self.choices)}")
            return text
        try:
            value = self.kind(text)
        except ValueError:
            raise UserInputError(f"{self.key} must be a number, not {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            # float() accepts "nan" and "inf"; NaN would slip through both bounds below.
            raise UserInputError(f"{self.key} must be a finite number, not {text!r}")
        if self.minimum is not None and value < self.minimum:
            raise UserInputError(f"{self.key} must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise UserInputError(f"{self.key} must be at most {self.maximum:g}")
        return value


def _optional_address(key: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        return validate_address(key, text) if text else ""

    return check


def _single_line(key: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        # It becomes a From header's display name: a line break would inject headers.
        return check_no_line_breaks(key, text)

    return check


SPECS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec("retry.min_backoff_seconds", "First retry delay (s)", float, 30.0, 0.1, 86400),
        SettingSpec(
            "retry.max_backoff_seconds", "Longest retry delay (s)", float, 3600.0, 1, 86400
        ),
        SettingSpec(
            "retry.max_age_hours", "Give up on a message after (h)", float, 72.0, 0.01, 720
        ),
        SettingSpec("breaker.failure_threshold", "Failures that open a breaker", int, 3, 1, 1000),
        SettingSpec("breaker.open_seconds", "Breaker cool-down (s)", float, 30.0, 0.1, 86400),
        SettingSpec(
            "ambiguous.policy",
            "When a provider may have a message",
            str,
            AmbiguousPolicy.RETRY.value,
            choices=tuple(p.value for p in AmbiguousPolicy),
        ),
        SettingSpec("smtp.timeout_seconds", "SMTP command timeout (s)", float, 30.0, 1, 600),
        SettingSpec(
            "health.probe_interval_seconds",
            "Probe each provider every (s)",
            float,
            60.0,
            0.1,
            86400,
        ),
        SettingSpec(
            "health.probe_interval_down_seconds",
            "Probe a provider that is down every (s)",
            float,
            5.0,
            0.1,
            86400,
        ),
        SettingSpec(
            "health.incident_after_failures",
            "Consecutive failures that make an incident",
            int,
            2,
            1,
            1000,
        ),
        SettingSpec("health.uptime_target_percent", "Uptime target (%)", float, 99.9, 0, 100),
        SettingSpec(
            "alerts.down_after_seconds",
            "Alert when a provider is down for (s)",
            float,
            60.0,
            0,
            86400,
        ),
        SettingSpec(
            "alerts.backlog_minutes",
            "Alert when the oldest waiting message is older than (min)",
            float,
            30.0,
            1,
            10080,
        ),
        SettingSpec(
            "alerts.repeat_minutes",
            "Do not repeat the same alert within (min)",
            float,
            15.0,
            0,
            10080,
        ),
        SettingSpec(
            "alerts.email_to",
            "Email alerts to (empty: no email)",
            str,
            "",
            check=_optional_address("alerts.email_to"),
        ),
        SettingSpec(
            "alerts.email_from",
            "Alert emails come from",
            str,
            "",
            check=_optional_address("alerts.email_from"),
        ),
        SettingSpec(
            "campaigns.auto_pause_failure_percent",
            "Pause a campaign when permanent failures pass (%)",
            float,
            10.0,
            0.1,
            100,
        ),
        SettingSpec(
            # Below this many finished messages a share means little (2 of 3 is not 66 %).
            "campaigns.auto_pause_min_messages",
            "...once at least this many of its messages are finished",
            int,
            50,
            1,
            1_000_000,
        ),
        SettingSpec(
            "bounces.soft_limit",
            "Suppress an address after this many soft bounces",
            int,
            3,
            1,
            100,
        ),
        SettingSpec(
            "bounces.poll_seconds",
            "Check mailboxes without IMAP IDLE every (seconds)",
            float,
            60.0,
            5,
            3600,
        ),
        SettingSpec(
            "delivery_probes.interval_minutes",
            "Send an end-to-end delivery probe through each provider every (minutes; 0: off)",
            float,
            0.0,
            0,
            1440,
        ),
        SettingSpec(
            "delivery_probes.timeout_minutes",
            "A probe not in the seed mailbox after this long is lost (minutes)",
            float,
            15.0,
            0.1,
            1440,
        ),
        SettingSpec(
            "delivery_probes.seed_address",
            "Delivery probes go to (the seed mailbox's address)",
            str,
            "",
            check=_optional_address("delivery_probes.seed_address"),
        ),
        SettingSpec(
            "delivery_probes.from_address",
            "Delivery probes come from",
            str,
            "",
            check=_optional_address("delivery_probes.from_address"),
        ),
        SettingSpec(
            "identity.from_name",
            "Your name on new campaigns (the From display name)",
            str,
            "",
            check=_single_line("identity.from_name"),
        ),
        SettingSpec(
            "identity.from_address",
            "Your address on new messages and campaigns (From)",
            str,
            "",
            check=_optional_address("identity.from_address"),
        ),
    )
}


def spec_for(key: str) -> SettingSpec:
    try:
        return SPECS[key]
    except KeyError:
        raise UnknownSettingError(
            f"unknown setting {key!r}; known: {', '.join(sorted(SPECS))}"
        ) from None


class SettingsStore:
    """Reads and writes settings in the database."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def get(self, key: str) -> Any:
        spec = spec_for(key)
        with self._database.read() as connection:
            stored = connection.execute(
                select(SettingRow.value).where(SettingRow.key == key)
            ).scalar_one_or_none()
        return spec.default if stored is None else json.loads(stored)

    def all(self) -> dict[str, Any]:
        """Every known setting with its effective value."""
        with self._database.read() as connection:
            stored = dict(connection.execute(select(SettingRow.key, SettingRow.value)).all())
        return {
            key: json.loads(stored[key]) if key in stored else spec.default
            for key, spec in SPECS.items()
        }

    def set_text(self, key: str, text: str) -> Any:
        """Validate ``text`` for ``key`` and store it; returns the parsed value."""
        value = spec_for(key).parse(text)
        self.set(key, value)
        return value

    def set(self, key: str, value: Any) -> None:
        spec_for(key)
        encoded = json.dumps(value)
        with self._database.write() as connection:
            # Delete-then-insert in one transaction: portable, no dialect-specific upsert.
            connection.execute(delete(SettingRow).where(SettingRow.key == key))
            connection.execute(insert(SettingRow).values(key=key, value=encoded))
            bump(connection, Topic.SETTINGS)
