"""When to raise an alert: the rules, their thresholds, and "once until rearmed" (pure policy).

Each (rule, subject) pair is armed at first. A condition that becomes true fires it once and
disarms it; it is rearmed only when the condition has cleared (the provider is up again, the
breaker closed, the backlog drained...). On top of that, the same pair never fires twice
within ``repeat_seconds``, so a flapping provider does not flood anyone. Both survive a
restart: the alerter restores them from the alert log (``AlertPolicy.restore``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AlertRule(StrEnum):
    PROVIDER_DOWN = "provider_down"
    FAILOVER = "failover"
    BREAKER_OPEN = "breaker_open"
    QUOTA_EXHAUSTED = "quota_exhausted"
    BACKLOG_AGE = "backlog_age"
    UPTIME_BELOW_TARGET = "uptime_below_target"
    CAMPAIGN_PAUSED = "campaign_paused"  # by its permanent-failure threshold
    DELIVERY_LOST = "delivery_lost"  # accepted by SMTP, never reached the seed mailbox


SEVERITY = {
    AlertRule.PROVIDER_DOWN: "critical",
    AlertRule.FAILOVER: "warning",
    AlertRule.BREAKER_OPEN: "warning",
    AlertRule.QUOTA_EXHAUSTED: "warning",
    AlertRule.BACKLOG_AGE: "critical",
    AlertRule.UPTIME_BELOW_TARGET: "warning",
    AlertRule.CAMPAIGN_PAUSED: "critical",
    AlertRule.DELIVERY_LOST: "critical",
}


@dataclass(frozen=True, slots=True)
class AlertOptions:
    down_after_seconds: float = 60.0
    backlog_seconds: float = 1800.0
    repeat_seconds: float = 900.0
    uptime_target_percent: float = 99.9
    email_to: str = ""
    email_from: str = ""

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> AlertOptions:
        return cls(
            down_after_seconds=float(settings["alerts.down_after_seconds"]),
            backlog_seconds=float(settings["alerts.backlog_minutes"]) * 60.0,
            repeat_seconds=float(settings["alerts.repeat_minutes"]) * 60.0,
            uptime_target_percent=float(settings["health.uptime_target_percent"]),
            email_to=str(settings["alerts.email_to"]),
            email_from=str(settings["alerts.email_from"]),
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert to deliver through every channel."""

    rule: AlertRule
    subject: str  # a provider name, or "" for the outbox as a whole
    severity: str
    message: str
    raised_at: float


@dataclass
class _Arming:
    armed: bool = True
    last_fired_at: float | None = None
    active_since: float | None = None  # for rules that must hold for a while (down)


@dataclass
class AlertPolicy:
    """Decides, from conditions and events, which alerts fire now."""

    options: AlertOptions = field(default_factory=AlertOptions)
    _arming: dict[tuple[AlertRule, str], _Arming] = field(default_factory=dict)

    def condition(
        self,
        rule: AlertRule,
        subject: str,
        active: bool,
        now: float,
        message: str,
        *,
        hold_seconds: float = 0.0,
        since: float | None = None,
    ) -> Alert | None:
        """A condition is (still) true or false at ``now``; fires once it held ``hold_seconds``.

        ``since``: when the condition became true, if known better than "first told now".
        """
        arming = self._arming.setdefault((rule, subject), _Arming())
        if not active:
            arming.active_since = None
            arming.armed = True
            return None
        if arming.active_since is None:
            arming.active_since = now if since is None else since
        if now - arming.active_since < hold_seconds:
            return None
        return self._fire(rule, subject, arming, now, message)

    def event(self, rule: AlertRule, subject: str, now: float, message: str) -> Alert | None:
        """Something happened (a failover): fires if armed; ``rearm`` clears it."""
        arming = self._arming.setdefault((rule, subject), _Arming())
        return self._fire(rule, subject, arming, now, message)

    def rearm(self, rule: AlertRule, subject: str) -> None:
        """What an event alert was about is over (the provider works again)."""
        arming = self._arming.setdefault((rule, subject), _Arming())
        arming.armed = True
        arming.active_since = None

    def restore(self, rule: AlertRule, subject: str, last_fired_at: float, *, open: bool) -> None:
        """Take over what an earlier run raised: repeats count from ``last_fired_at``, and an
        alert still ``open`` (its condition not seen clearing) does not fire again."""
        arming = self._arming.setdefault((rule, subject), _Arming())
        arming.last_fired_at = max(arming.last_fired_at or last_fired_at, last_fired_at)
        if open:
            arming.armed = False

    def is_armed(self, rule: AlertRule, subject: str) -> bool:
        return self._arming.get((rule, subject), _Arming()).armed

    def _fire(
        self, rule: AlertRule, subject: str, arming: _Arming, now: float, message: str
    ) -> Alert | None:
        if not arming.armed:
            return None
        if (
            arming.last_fired_at is not None
            and now - arming.last_fired_at < self.options.repeat_seconds
        ):
            return None  # rearmed, but too soon after the last one: a flapping provider
        arming.armed = False
        arming.last_fired_at = now
        return Alert(rule, subject, SEVERITY[rule], message, now)
