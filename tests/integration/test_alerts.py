"""Alerts from real failures of real servers: once per rule, rearmed, logged, emailed.

Alert mail goes through the outbox like any mail, ahead of the backlog and through the
healthiest provider, so a failed first try is retried and nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from desktop_app.core.delivery.engine import RESERVATIONS_PER_CONNECTION
from desktop_app.core.events import (
    AlertRaised,
    AlertResolved,
    CampaignChanged,
    DeliveryProbeLost,
    FailoverHappened,
    ProviderHealthChanged,
    QuotaExhausted,
)
from desktop_app.core.health.alert_rules import AlertRule
from desktop_app.core.health.alerter import UPTIME_MIN_WATCHED_SHARE, Alerter
from desktop_app.core.health.maintenance import once_window
from desktop_app.core.models import RateLimits
from desktop_app.core.service import DeliveryService
from desktop_app.core.storage.alerts import AlertRepository
from tests.integration.conftest import Delivery, EventLog
from tests.support.scripted_smtp import ScriptedSMTPServer


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def alerter_for(delivery: Delivery, clock: Callable[[], float] = time.time) -> Alerter:
    ws = delivery.ws
    return Alerter(
        AlertRepository(ws.database),
        ws.outbox,
        ws.health,
        ws.providers,
        ws.settings,
        delivery.events,
        clock=clock,
    )


def raised(events: EventLog, rule: str) -> list[AlertRaised]:
    return [e for e in events.of(AlertRaised) if e.rule == rule]


@pytest.mark.asyncio
async def test_provider_down_alerts_once_after_the_threshold_and_clears_when_back(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    delivery.add_provider("alpha", server.port)
    delivery.settings(alerts__down_after_seconds="60", alerts__repeat_minutes="0")
    clock = Clock()
    alerter = alerter_for(delivery, clock)
    monitor = delivery.ws.create_monitor(_Both(delivery.events, alerter), clock=clock)
    await monitor.start()
    try:
        server.stop()
        await monitor.probe_all()
        assert delivery.events.of(ProviderHealthChanged)[-1].state == "down"
        clock.now += 30
        await alerter.check()
        await alerter.drain()
        assert raised(delivery.events, "provider_down") == []  # not down long enough
        clock.now += 31
        await alerter.check()
        clock.now += 60
        await monitor.probe_all()  # still down: no second alert
        await alerter.check()
        await alerter.drain()
        (alert,) = raised(delivery.events, "provider_down")
        assert alert.subject == "alpha" and alert.severity == "critical"
        assert "down for 61 s" in alert.message

        server.start()
        clock.now += 15
        await monitor.probe_all()
        await alerter.drain()
        (resolved,) = delivery.events.of(AlertResolved)
        assert resolved.alert_id == alert.alert_id
        # Rearmed: the next outage alerts again.
        server.stop()
        await monitor.probe_all()
        clock.now += 61
        await alerter.check()
        await alerter.drain()
        assert len(raised(delivery.events, "provider_down")) == 2
    finally:
        await monitor.close()
    log = AlertRepository(delivery.ws.database).recent()
    assert [a.rule for a in log] == ["provider_down", "provider_down"]
    assert log[1].resolved_at is not None and log[0].resolved_at is None


class _Both:
    def __init__(self, *sinks: object) -> None:
        self.sinks = sinks

    def publish(self, event: object) -> None:
        for sink in self.sinks:
            sink.publish(event)  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_many_failovers_make_one_alert_and_an_alert_mail_through_the_healthiest(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    failing = scripted_smtp(mail_reply="421 4.3.2 shutting down")
    healthy = scripted_smtp()
    delivery.add_provider("primary", failing.port, priority=0)
    delivery.add_provider("backup", healthy.port, priority=1)
    delivery.settings(
        alerts__email_to="team@example.org",
        alerts__email_from="relaydesk@example.com",
        breaker__failure_threshold="1000",  # keep the primary in the rotation
    )
    delivery.queue(20)
    service = DeliveryService(delivery.ws, delivery.events, probe_on_start=False)
    task = asyncio.create_task(service.run(until_idle=True))
    await asyncio.wait_for(task, 30)
    await service.alerter.drain()

    (alert,) = raised(delivery.events, "failover")
    assert alert.subject == "primary" and alert.emailed
    # The alert mail went out through the healthy backup, not the failing primary. (The
    # primary's 24 h uptime may also have been checked meanwhile, with its own alert.)
    alert_mails = [
        m for m in healthy.messages if m.rcpt_tos == ("team@example.org",) and b"Failover" in m.data
    ]
    assert len(alert_mails) == 1
    assert b"[Relaydesk] warning: Failover" in alert_mails[0].data
    assert failing.command_count("DATA") == 0
    (logged,) = [a for a in AlertRepository(delivery.ws.database).recent() if a.rule == "failover"]
    assert logged.email_outbox_id is not None
    # Every alert mail queued while running went out before run(until_idle) returned.
    alert_count = len(delivery.events.of(AlertRaised))
    assert delivery.ws.outbox.counts().sent == 20 + alert_count


def _alert_index(server: ScriptedSMTPServer) -> int:
    recipients = [m.rcpt_tos for m in server.messages]
    return recipients.index(("team@example.org",))


@pytest.mark.asyncio
async def test_an_alert_mail_jumps_the_backlog(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    delivery.add_provider("only", server.port, max_connections=1)
    delivery.settings(alerts__email_to="team@example.org")
    delivery.queue(200)  # a campaign queued first
    alerter = alerter_for(delivery)
    alerter.publish(FailoverHappened(outbox_id=0, from_provider="only", detail="421 test"))
    await alerter.drain()
    await delivery.run_until_idle()
    assert len(server.messages) == 201
    assert _alert_index(server) == 0


@pytest.mark.asyncio
async def test_an_alert_mail_survives_a_failed_first_try(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    delivery.add_provider("only", server.port, max_connections=1)
    delivery.settings(
        alerts__email_to="team@example.org",
        retry__min_backoff_seconds="0.2",
        retry__max_backoff_seconds="1",
        breaker__open_seconds="0.3",
    )
    delivery.queue(50)
    alerter = alerter_for(delivery)
    server.stop()
    alerter.publish(FailoverHappened(outbox_id=0, from_provider="only", detail="421 test"))
    await alerter.drain()

    def alert_mail_state() -> str:
        (row,) = delivery.sql("SELECT state FROM outbox WHERE route = 'healthiest'")
        return str(row["state"])

    async with delivery.running():
        # The provider is down: the alert mail is deferred, not lost.
        await delivery.wait(lambda: alert_mail_state() == "deferred", what="alert deferred")
        server.start()
        await delivery.wait(lambda: len(server.messages) == 51, timeout=20, what="all mail")
    assert alert_mail_state() == "sent"
    # When the provider came back, waiting alert mail went to the front again (the first
    # batch after the breaker's trial: one connection's reservations), not behind the 50
    # queued earlier.
    assert _alert_index(server) <= RESERVATIONS_PER_CONNECTION


@pytest.mark.asyncio
async def test_a_backlog_older_than_the_threshold_alerts_and_clears_when_drained(
    delivery: Delivery,
) -> None:
    delivery.settings(alerts__backlog_minutes="30")
    (message_id,) = delivery.queue(1)
    alerter = alerter_for(delivery)
    await alerter.check()
    await alerter.drain()
    assert raised(delivery.events, "backlog_age") == []
    with delivery.ws.database.write() as connection:
        connection.exec_driver_sql(
            "UPDATE outbox SET created_at = created_at - 3600 WHERE message_id = ?", (message_id,)
        )
    await alerter.check()
    await alerter.check()
    await alerter.drain()
    (alert,) = raised(delivery.events, "backlog_age")
    assert "60 min ago" in alert.message
    (row,) = delivery.outbox()
    delivery.ws.outbox.cancel([row["id"]])
    await alerter.check()
    await alerter.drain()
    (resolved,) = delivery.events.of(AlertResolved)
    assert resolved.rule == "backlog_age"


@pytest.mark.asyncio
async def test_an_hourly_quota_used_up_alerts_once(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    delivery.add_provider("limited", server.port, rate_limits=RateLimits(per_hour=2))
    delivery.queue(5)
    service = DeliveryService(delivery.ws, delivery.events, probe_on_start=False)
    task = asyncio.create_task(service.run())
    try:
        await delivery.wait(lambda: len(server.messages) == 2, what="two sent")
        await delivery.wait(
            lambda: raised(delivery.events, "quota_exhausted"), what="the quota alert"
        )
        await asyncio.sleep(1.5)  # more dispatch rounds: still one alert
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 20)
    (alert,) = raised(delivery.events, "quota_exhausted")
    assert alert.subject == "limited"
    assert len(server.messages) == 2


@pytest.mark.asyncio
async def test_a_breaker_opening_alerts_once_until_it_closes(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp(mail_reply="421 4.3.2 try later")
    delivery.add_provider("flaky", server.port)
    delivery.settings(
        breaker__failure_threshold="2",
        breaker__open_seconds="0.2",
        retry__min_backoff_seconds="0.1",
        retry__max_backoff_seconds="1",
    )
    delivery.queue(10)
    service = DeliveryService(delivery.ws, delivery.events, probe_on_start=False)
    task = asyncio.create_task(service.run())
    try:
        await delivery.wait(
            lambda: raised(delivery.events, "breaker_open"), what="the breaker alert"
        )
        await asyncio.sleep(1.0)  # the breaker re-opens after failed trials: no new alert
        assert len(raised(delivery.events, "breaker_open")) == 1
        server.configure(mail_reply=None)  # the provider recovers: the breaker closes
        await delivery.wait(lambda: delivery.settled(10, sent=10), timeout=20, what="all sent")
        await service.alerter.drain()
    finally:
        service.request_stop()
        await asyncio.wait_for(task, 20)
    (resolved,) = [e for e in delivery.events.of(AlertResolved) if e.rule == "breaker_open"]
    assert resolved.subject == "flaky"
    assert service.alerter.policy.is_armed(AlertRule.BREAKER_OPEN, "flaky")


async def watch_an_hour_with_an_outage(
    delivery: Delivery, server: ScriptedSMTPServer, clock: Clock, *, watched: float = 3600
) -> None:
    """``watched`` seconds of probes ending now, 75 s of them down (97.9 % over an hour)."""
    clock.now = time.time() - watched
    monitor = delivery.ws.create_monitor(delivery.events, clock=clock)
    await monitor.start()
    try:
        await monitor.probe_all()
        clock.now += watched / 6
        server.stop()
        await monitor.probe_all()
        clock.now += 15
        await monitor.probe_all()
        clock.now += 60
        server.start()
        await monitor.probe_all()
        clock.now = time.time()
        await monitor.flush()
    finally:
        await monitor.close()


@pytest.mark.asyncio
async def test_a_day_under_the_uptime_target_alerts(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    delivery.add_provider("alpha", server.port)
    delivery.settings(health__uptime_target_percent="99.9")
    clock = Clock()
    await watch_an_hour_with_an_outage(delivery, server, clock, watched=3700)
    alerter = alerter_for(delivery, clock)
    await alerter.check()
    await alerter.check()
    await alerter.drain()
    (alert,) = raised(delivery.events, "uptime_below_target")
    assert alert.subject == "alpha"
    assert "below the 99.9% target" in alert.message


@pytest.mark.asyncio
async def test_uptime_waits_until_enough_of_the_day_was_watched(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    # Issue 16: "24 h uptime 0.000%" came 40 s after a provider was added. Under an hour
    # watched (UPTIME_MIN_WATCHED_SHARE of the day), a low figure is no alert yet.
    server = scripted_smtp()
    delivery.add_provider("alpha", server.port)
    clock = Clock()
    await watch_an_hour_with_an_outage(delivery, server, clock, watched=0.9 * 3600)
    alerter = alerter_for(delivery, clock)
    await alerter.check()
    await alerter.drain()
    assert UPTIME_MIN_WATCHED_SHARE * 86400 == 3600
    assert raised(delivery.events, "uptime_below_target") == []


@pytest.mark.asyncio
async def test_an_open_alert_is_raised_once_whatever_the_restarts(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    # Issue 16: the same provider got "uptime below target" 6 times in 15 minutes, once at
    # every engine start. Four alerters in turn (a start and three restarts), one alert.
    server = scripted_smtp()
    delivery.add_provider("alpha", server.port)
    clock = Clock()
    await watch_an_hour_with_an_outage(delivery, server, clock, watched=3700)
    for _start in range(4):
        alerter = alerter_for(delivery, clock)
        await alerter.check()
        clock.now += 60
        await alerter.check()
        await alerter.drain()
    assert len(raised(delivery.events, "uptime_below_target")) == 1
    [logged] = AlertRepository(delivery.ws.database).recent()
    assert logged.rule == "uptime_below_target" and logged.resolved_at is None


@pytest.mark.asyncio
async def test_repeats_wait_their_minutes_across_restarts(delivery: Delivery) -> None:
    delivery.settings(alerts__repeat_minutes="15")
    clock = Clock()
    failover = FailoverHappened(outbox_id=1, from_provider="alpha", detail="421 busy")
    first = alerter_for(delivery, clock)
    await first.check()
    first.publish(failover)
    await first.drain()
    assert len(raised(delivery.events, "failover")) == 1

    clock.now += 5 * 60  # restarted five minutes later: the same failover is no news
    second = alerter_for(delivery, clock)
    await second.restore()
    second.publish(failover)
    await second.drain()
    assert len(raised(delivery.events, "failover")) == 1

    clock.now += 11 * 60  # 16 minutes after the first: a repeat is due
    third = alerter_for(delivery, clock)
    await third.check()
    third.publish(failover)
    await third.drain()
    assert len(raised(delivery.events, "failover")) == 2


@pytest.mark.asyncio
async def test_alerts_about_a_deleted_or_disabled_provider_resolve(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    # Issue 16: alerts for a deleted provider never cleared.
    alpha, bravo = scripted_smtp(), scripted_smtp()
    delivery.add_provider("alpha", alpha.port)
    delivery.add_provider("bravo", bravo.port)
    clock = Clock()
    await watch_an_hour_with_an_outage(delivery, alpha, clock, watched=3700)
    bravo.stop()
    alerter = alerter_for(delivery, clock)
    alerter.publish(ProviderHealthChanged("bravo", "down", "connection refused"))
    clock.now += 120
    await alerter.check()
    await alerter.drain()
    assert {a.subject for a in delivery.events.of(AlertRaised)} == {"alpha", "bravo"}

    delivery.ws.remove_provider("bravo")
    delivery.ws.update_provider("alpha", {"enabled": False})
    restarted = alerter_for(delivery, clock)  # a restart in between changes nothing
    await restarted.check()
    await restarted.drain()
    assert {e.subject for e in delivery.events.of(AlertResolved)} == {"alpha", "bravo"}
    assert all(a.resolved_at is not None for a in AlertRepository(delivery.ws.database).recent())


@pytest.mark.asyncio
async def test_the_uptime_an_alert_quotes_is_the_24h_figure_health_shows_at_that_moment(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    delivery.add_provider("alpha", server.port)
    delivery.settings(health__uptime_target_percent="99.9")
    clock = Clock()
    end = clock.now
    clock.now = end - 9 * 3600 - 675
    alerter = alerter_for(delivery, clock)
    monitor = delivery.ws.create_monitor(delivery.events, clock=clock)
    await monitor.start()
    try:
        await monitor.probe_all()
        clock.now += 9 * 3600  # nine hours up, then down for 75 s near the end
        await monitor.flush()
        server.stop()
        await monitor.probe_all()
        clock.now += 15
        await monitor.probe_all()
        clock.now += 60
        server.start()
        await monitor.probe_all()
        clock.now = end
        await monitor.flush()
    finally:
        await monitor.close()
    await alerter.check()
    await alerter.drain()

    (alert,) = raised(delivery.events, "uptime_below_target")
    (shown,) = [f.as_json(end) for f in delivery.ws.health_figures(now=end)]
    quoted = float(alert.message.split("24 h uptime ")[1].split("%")[0])
    assert quoted == shown["uptime_24h"] == round(100 * (33075 - 75) / 33075, 3)
    assert shown["uptime_1h"] < shown["uptime_24h"]  # a different window, a different figure


@pytest.mark.asyncio
async def test_a_server_reply_with_control_bytes_still_makes_one_clean_alert_and_its_mail(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    delivery.add_provider("only", server.port)
    delivery.settings(alerts__email_to="team@example.org")
    alerter = alerter_for(delivery)
    alerter.publish(
        FailoverHappened(outbox_id=0, from_provider="only", detail="421 busy\x00\x1b[2J\r\nnow")
    )
    await alerter.drain()
    (alert,) = raised(delivery.events, "failover")
    assert alert.emailed
    assert "\x00" not in alert.message and "\x1b" not in alert.message
    assert alert.message.endswith("(421 busy [2J now)")
    await delivery.run_until_idle()
    (mail,) = server.messages
    assert b"\x00" not in mail.data


@pytest.mark.asyncio
async def test_a_provider_in_maintenance_raises_no_alerts(
    delivery: Delivery, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    # Issue 16: maintenance drains a provider's traffic on purpose; alerts about it then
    # are noise. The monitor says "maintenance" from the window the user saved.
    server = scripted_smtp()
    delivery.add_provider("alpha", server.port)
    delivery.settings(alerts__repeat_minutes="0")
    now = time.time()
    delivery.ws.add_maintenance("alpha", once_window(now - 60, now + 3600, note="upgrade"))
    clock = Clock()
    alerter = alerter_for(delivery, clock)
    monitor = delivery.ws.create_monitor(_Both(delivery.events, alerter), clock=clock)
    await monitor.start()
    try:
        server.stop()
        await monitor.probe_all()
        await alerter.check()  # a check (or the restore at start) reads the windows
        alerter.publish(FailoverHappened(outbox_id=1, from_provider="alpha", detail="down"))
        alerter.publish(QuotaExhausted("alpha", clock.now + 60))
        alerter.publish(DeliveryProbeLost("alpha", clock.now - 600))
        clock.now += 120
        await alerter.check()
        await alerter.drain()
        assert delivery.events.of(AlertRaised) == []

        # After the window the same failover is news again.
        clock.now += 3600
        alerter.publish(FailoverHappened(outbox_id=2, from_provider="alpha", detail="down"))
        await alerter.drain()
        assert [a.rule for a in delivery.events.of(AlertRaised)] == ["failover"]
    finally:
        await monitor.close()


@pytest.mark.asyncio
async def test_a_campaign_paused_alert_clears_when_the_campaign_goes_on(delivery: Delivery) -> None:
    alerter = alerter_for(delivery)
    await alerter.restore()
    alerter.publish(CampaignChanged(1, "spring", "paused", "paused: 12% failed", auto=True))
    await alerter.drain()
    (alert,) = raised(delivery.events, "campaign_paused")
    alerter.publish(CampaignChanged(1, "spring", "paused"))  # paused by hand: still open
    await alerter.drain()
    assert delivery.events.of(AlertResolved) == []
    alerter.publish(CampaignChanged(1, "spring", "sending"))  # resumed
    await alerter.drain()
    (resolved,) = delivery.events.of(AlertResolved)
    assert (resolved.alert_id, resolved.subject) == (alert.alert_id, "spring")
    assert AlertRepository(delivery.ws.database).recent(open_only=True) == []
