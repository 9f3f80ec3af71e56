"""Raises alerts from what the engine, the health monitor and the campaign runner report,
through every channel.

Runs on the loop thread as an ``EventSink`` (engine and monitor events) with a periodic check
for the rules that are about state over time (down for N seconds, backlog age, 24 h uptime).
A provider in a maintenance window raises nothing: its traffic is drained on purpose.
Each alert goes to the alert log (persisted), to the GUI and tray (an ``AlertRaised`` event),
and, when ``alerts.email_to`` is set, into the outbox itself as urgent mail routed through the
healthiest provider, so it is retried like any mail and survives a crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from desktop_app.core.compose import build_message
from desktop_app.core.disk_space import log_failure
from desktop_app.core.events import (
    AlertRaised,
    AlertResolved,
    CampaignChanged,
    DeliveryProbeLost,
    Event,
    EventSink,
    FailoverHappened,
    ProviderHealthChanged,
    ProviderStateChanged,
    QuotaExhausted,
)
from desktop_app.core.health.alert_rules import (
    SEVERITY,
    Alert,
    AlertOptions,
    AlertPolicy,
    AlertRule,
)
from desktop_app.core.health.maintenance import active_window
from desktop_app.core.health.report import window_totals
from desktop_app.core.health.rollup import DAY
from desktop_app.core.models import BreakerState, MaintenanceWindow
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.alerts import AlertRepository
from desktop_app.core.storage.health import HealthRepository
from desktop_app.core.storage.outbox import OutboxRepository
from desktop_app.core.storage.providers import ProviderRepository

log = logging.getLogger(__name__)

#: Rules whose alert stays "open" until its condition clears (then it is marked resolved).
_CLEARABLE = (
    AlertRule.PROVIDER_DOWN,
    AlertRule.FAILOVER,  # over once the provider is up again
    AlertRule.BREAKER_OPEN,
    AlertRule.BACKLOG_AGE,
    AlertRule.UPTIME_BELOW_TARGET,
    AlertRule.QUOTA_EXHAUSTED,
    AlertRule.CAMPAIGN_PAUSED,  # over once the campaign sends again, completes or is cancelled
)
#: Clearable rules about one provider: they resolve when it is deleted or disabled.
_ABOUT_A_PROVIDER = (
    AlertRule.PROVIDER_DOWN,
    AlertRule.FAILOVER,
    AlertRule.BREAKER_OPEN,
    AlertRule.UPTIME_BELOW_TARGET,
    AlertRule.QUOTA_EXHAUSTED,
)
#: Share of the 24 h window that must have been watched before its uptime can raise an
#: alert: 40 seconds of data with one failed probe are not "a day below target". 1/24 is
#: one hour of the day.
UPTIME_MIN_WATCHED_SHARE = 1 / 24


class Alerter:
    """Turns events and periodic checks into alerts; see the module docstring."""

    def __init__(
        self,
        alerts: AlertRepository,
        outbox: OutboxRepository,
        health: HealthRepository,
        providers: ProviderRepository,
        settings: SettingsStore,
        events: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        check_seconds: float = 5.0,
        on_mail_queued: Callable[[], None] | None = None,
    ) -> None:
        self._alerts = alerts
        self._outbox = outbox
        self._health = health
        self._providers = providers
        self._settings = settings
        self._options = AlertOptions()
        self._options_read = False
        self._has_feed = False
        self._events = events
        self._clock = clock
        self._check_seconds = check_seconds
        self._on_mail_queued = on_mail_queued
        self.policy = AlertPolicy()
        self._down_since: dict[str, float] = {}
        self._quota_until: dict[str, float] = {}
        self._open: dict[tuple[AlertRule, str], int] = {}  # alert ids not yet resolved
        self._restored = False  # the alert log's open alerts and repeat times taken over
        #: Each provider's maintenance windows, as of the last check (or restore).
        self._windows: dict[str, tuple[MaintenanceWindow, ...]] = {}
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- events (loop thread) ----------------------------------------------------------------

    def publish(self, event: Event) -> None:
        now = self._clock()
        about = _raises_about(event)
        if about is not None and self._in_maintenance(about, now):
            return  # a failover, breaker, quota or lost probe during maintenance: expected
        if isinstance(event, FailoverHappened):
            self._raise(
                self.policy.event(
                    AlertRule.FAILOVER,
                    event.from_provider,
                    now,
                    f"Failover: {event.from_provider} failed and mail moved to the next "
                    f"provider ({event.detail})",
                )
            )
        elif isinstance(event, ProviderHealthChanged):
            if event.state == "down":
                self._down_since.setdefault(event.provider_name, now)
            else:
                self._down_since.pop(event.provider_name, None)
                self._clear(AlertRule.PROVIDER_DOWN, event.provider_name, now)
                if event.state == "up":
                    self.policy.rearm(AlertRule.FAILOVER, event.provider_name)
                    self._resolve(AlertRule.FAILOVER, event.provider_name, now)
        elif isinstance(event, ProviderStateChanged):
            if event.breaker is BreakerState.OPEN:
                self._raise(
                    self.policy.event(
                        AlertRule.BREAKER_OPEN,
                        event.provider_name,
                        now,
                        f"Circuit breaker opened for {event.provider_name}: "
                        f"{event.detail or 'repeated failures'}",
                    )
                )
            elif event.breaker is BreakerState.CLOSED:
                self.policy.rearm(AlertRule.BREAKER_OPEN, event.provider_name)
                self._resolve(AlertRule.BREAKER_OPEN, event.provider_name, now)
        elif isinstance(event, CampaignChanged) and not event.auto:
            if event.state != "paused":  # resumed, sending again, completed or cancelled
                self._resolve(AlertRule.CAMPAIGN_PAUSED, event.name, now)
        elif isinstance(event, CampaignChanged):
            # Not through the once-until-rearmed policy: every automatic pause stops a
            # campaign until someone acts, so every one of them is worth telling.
            self._raise(
                Alert(
                    AlertRule.CAMPAIGN_PAUSED,
                    event.name,
                    SEVERITY[AlertRule.CAMPAIGN_PAUSED],
                    f"Campaign {event.name!r} {event.detail}",
                    now,
                )
            )
        elif isinstance(event, DeliveryProbeLost):
            self._raise(
                self.policy.event(
                    AlertRule.DELIVERY_LOST,
                    event.provider_name,
                    now,
                    f"{event.provider_name} accepted a delivery probe that never arrived: "
                    "it may be dropping mail silently",
                )
            )
        elif isinstance(event, QuotaExhausted):
            self._quota_until[event.provider_name] = event.available_at
            self._raise(
                self.policy.event(
                    AlertRule.QUOTA_EXHAUSTED,
                    event.provider_name,
                    now,
                    f"Rate limit of {event.provider_name} is used up; mail waits "
                    f"{max(0.0, event.available_at - now):.0f} s for it or goes elsewhere",
                )
            )

    # -- periodic checks --------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.check()
            except Exception:
                log_failure(log, "alert check failed")
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self._check_seconds)
            except TimeoutError:
                pass
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def request_stop(self) -> None:
        self._stop.set()

    def on_changes(self, topics: frozenset[str]) -> None:
        """The change feed saw settings change (loop thread): read them before next use."""
        if "settings" in topics:
            self._options_read = False

    async def _current_options(self) -> AlertOptions:
        if not self._options_read or not self._has_feed:
            # Without a change feed (an alerter driven alone) settings are read every time.
            self._options = AlertOptions.from_settings(await asyncio.to_thread(self._settings.all))
            self._options_read = True
        return self._options

    def follow_changes(self) -> None:
        """A change feed will call ``on_changes``: settings need not be read every check."""
        self._has_feed = True

    async def restore(self) -> None:
        """Take over the alert log: open alerts stay open (not raised again), and repeats
        count from the last time each alert was raised, whatever restarts came between.
        Done once, before the first check; events that come earlier are held to it too."""
        if self._restored:
            return
        open_alerts, last_raised, providers = await asyncio.to_thread(
            lambda: (self._alerts.open_alerts(), self._alerts.last_raised(), self._providers.all())
        )
        self._restored = True
        self._windows = {p.name: p.maintenance for p in providers}
        for (rule_name, subject), at in last_raised.items():
            rule = _rule(rule_name)
            if rule is not None:
                self.policy.restore(rule, subject, at, open=False)
        for alert in open_alerts:
            rule = _rule(alert.rule)
            if rule in _CLEARABLE:
                assert rule is not None
                self._open.setdefault((rule, alert.subject), alert.id)
                self.policy.restore(rule, alert.subject, alert.raised_at, open=True)

    async def check(self) -> None:
        """Evaluate the rules about state over time (call every few seconds)."""
        await self.restore()
        self.policy.options = options = await self._current_options()
        now = self._clock()
        for name, since in list(self._down_since.items()):
            self._raise(
                self.policy.condition(
                    AlertRule.PROVIDER_DOWN,
                    name,
                    True,
                    now,
                    f"{name} has been down for {now - since:.0f} s",
                    hold_seconds=options.down_after_seconds,
                    since=since,
                )
            )
        for name, until in list(self._quota_until.items()):
            if now >= until:
                del self._quota_until[name]
                self.policy.rearm(AlertRule.QUOTA_EXHAUSTED, name)
                self._resolve(AlertRule.QUOTA_EXHAUSTED, name, now)
        oldest = await asyncio.to_thread(self._outbox.oldest_waiting_created_at)
        age = 0.0 if oldest is None else now - oldest
        self._condition(
            AlertRule.BACKLOG_AGE,
            "",
            age > options.backlog_seconds,
            now,
            f"The oldest waiting message was queued {age / 60:.0f} min ago",
        )
        every_provider = await asyncio.to_thread(self._providers.all)
        self._windows = {p.name: p.maintenance for p in every_provider}
        providers = [p for p in every_provider if p.enabled]
        # What an alert was about is gone (deleted) or out of the route (disabled): over.
        watched = {provider.name for provider in providers}
        for rule, subject in list(self._open):
            if rule in _ABOUT_A_PROVIDER and subject not in watched:
                self._down_since.pop(subject, None)
                self._quota_until.pop(subject, None)
                self._clear(rule, subject, now)
        for provider in providers:
            if self._in_maintenance(provider.name, now):
                continue  # silenced in its window; an open alert stays as it is
            # The figure the table and `health --json` show as uptime_24h at this moment.
            day = await asyncio.to_thread(
                window_totals, self._health, provider.uid, DAY, now, histograms=False
            )
            uptime = day.uptime_percent()
            enough = day.up_seconds + day.down_seconds >= UPTIME_MIN_WATCHED_SHARE * DAY
            self._condition(
                AlertRule.UPTIME_BELOW_TARGET,
                provider.name,
                enough and uptime is not None and uptime < options.uptime_target_percent,
                now,
                f"{provider.name}: 24 h uptime {uptime or 0:.3f}% is below the "
                f"{options.uptime_target_percent:g}% target",
            )

    def _in_maintenance(self, provider_name: str, now: float) -> bool:
        """Inside one of the provider's maintenance windows: its alerts are silenced (the
        engine drains its traffic on purpose; the monitor leaves the time out of uptime)."""
        return active_window(self._windows.get(provider_name, ()), now) is not None

    # -- raising ----------------------------------------------------------------------------

    def _condition(
        self, rule: AlertRule, subject: str, active: bool, now: float, message: str
    ) -> None:
        if active:
            self._raise(self.policy.condition(rule, subject, True, now, message))
        else:
            self._clear(rule, subject, now)

    def _clear(self, rule: AlertRule, subject: str, now: float) -> None:
        self.policy.condition(rule, subject, False, now, "")
        self._resolve(rule, subject, now)

    def _resolve(self, rule: AlertRule, subject: str, now: float) -> None:
        alert_id = self._open.pop((rule, subject), None)
        if alert_id is None:
            return
        self._spawn(self._store_resolution(alert_id, rule, subject, now))

    def _raise(self, alert: Alert | None) -> None:
        if alert is not None:
            # Server replies end up in messages: one line of printable text, whatever the
            # server sent (a NUL would stop the alert's own mail from being built).
            printable = "".join(c if c.isprintable() else " " for c in alert.message)
            alert = dataclasses.replace(alert, message=" ".join(printable.split()))
            self._spawn(self._deliver(alert))

    async def _deliver(self, alert: Alert) -> None:
        # Current as of the last settings change: the team address may have just been set.
        options = await self._current_options()
        email_id: int | None = None
        if options.email_to:
            message = build_message(
                sender=options.email_from or options.email_to,
                recipients=[options.email_to],
                subject=f"[Relaydesk] {alert.severity}: {alert.message}"[:200],
                text=_email_body(alert),
            )
            urgent = dataclasses.replace(message, route="healthiest", urgent=True)
            (email_id,) = await asyncio.to_thread(self._outbox.enqueue, [urgent])
            if self._on_mail_queued is not None:
                self._on_mail_queued()
        alert_id = await asyncio.to_thread(
            lambda: self._alerts.add(
                raised_at=alert.raised_at,
                rule=alert.rule.value,
                subject=alert.subject,
                severity=alert.severity,
                message=alert.message,
                email_outbox_id=email_id,
            )
        )
        if alert.rule in _CLEARABLE:
            self._open[(alert.rule, alert.subject)] = alert_id
        log.warning("alert %s: %s", alert.rule.value, alert.message)
        self._events.publish(
            AlertRaised(
                alert_id,
                alert.rule.value,
                alert.subject,
                alert.severity,
                alert.message,
                alert.raised_at,
                emailed=email_id is not None,
            )
        )

    async def _store_resolution(
        self, alert_id: int, rule: AlertRule, subject: str, now: float
    ) -> None:
        await asyncio.to_thread(self._alerts.resolve, alert_id, now)
        self._events.publish(AlertResolved(alert_id, rule.value, subject, now))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("could not deliver an alert: %s", task.exception())

    def busy(self) -> bool:
        """Whether an alert raised so far is still being stored (and maybe emailed)."""
        return bool(self._tasks)

    async def drain(self) -> None:
        """Wait until every alert raised so far is stored (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _raises_about(event: Event) -> str | None:
    """The provider an event would raise an alert about, if it would raise one about a
    provider (a breaker closing resolves one: that is never silenced)."""
    if isinstance(event, FailoverHappened):
        return event.from_provider
    if isinstance(event, ProviderStateChanged):
        return event.provider_name if event.breaker is BreakerState.OPEN else None
    if isinstance(event, DeliveryProbeLost | QuotaExhausted):
        return event.provider_name
    return None


def _rule(name: str) -> AlertRule | None:
    """The rule an alert-log row names; None for one this version does not know."""
    try:
        return AlertRule(name)
    except ValueError:
        return None


def _email_body(alert: Alert) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(alert.raised_at))
    about = "Campaign" if alert.rule is AlertRule.CAMPAIGN_PAUSED else "Provider"
    subject = f"{about}: {alert.subject}\r\n" if alert.subject else ""
    return (
        f"{alert.message}\r\n\r\n"
        f"Rule: {alert.rule.value}\r\nSeverity: {alert.severity}\r\n{subject}Raised: {when}\r\n\r\n"
        "Sent by Relaydesk through the healthiest provider. The alert log in the app has "
        "the whole history.\r\n"
    )
