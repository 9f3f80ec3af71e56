"""The health monitor against real servers switched off and on under test control.

Probes are real SMTP conversations (aiosmtpd and Postfix's smtp-sink on loopback); only the
monitor's clock is the test's, so "down from minute 10 to minute 25" is exact and the
figures can be checked to the second instead of within a probe interval.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from desktop_app.core.events import IncidentChanged, ProbeRecorded, ProviderHealthChanged
from desktop_app.core.health.monitor import HealthMonitor
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow, ProviderConfig, Security
from desktop_app.core.storage.health import HealthRepository
from desktop_app.core.workspace import Workspace
from tests.integration.conftest import Delivery, EventLog
from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.smtp_sink import SmtpSink


class Clock:
    """The monitor's time: starts at an hour boundary an hour ago, moves when told."""

    def __init__(self) -> None:
        self.start = math.floor(time.time() / 3600) * 3600 - 3600
        self.now = self.start

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> float:
        self.now = self.start + offset
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def monitor_factory(
    workspace: Workspace, engine_events: EventLog, clock: Clock
) -> AsyncIterator[Callable[[], HealthMonitor]]:
    started: list[HealthMonitor] = []

    def make() -> HealthMonitor:
        monitor = workspace.create_monitor(engine_events, clock=clock)
        started.append(monitor)
        return monitor

    yield make
    for monitor in started:
        await monitor.close()


def add(workspace: Workspace, name: str, port: int, **fields: object) -> ProviderConfig:
    return workspace.add_provider(
        ProviderConfig(name=name, host="127.0.0.1", port=port, security=Security.NONE, **fields)  # type: ignore[arg-type]
    )


def figures_of(workspace: Workspace, monitor: HealthMonitor, now: float) -> dict[str, dict]:  # type: ignore[type-arg]
    return {
        f.provider: f.as_json(now)
        for f in workspace.health_figures(now=now, live=monitor.live_states())
    }


@pytest.mark.asyncio
async def test_down_for_a_known_share_of_the_hour_gives_exactly_that_uptime(
    workspace: Workspace,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    smtp_sink: Callable[..., SmtpSink],
    monitor_factory: Callable[[], HealthMonitor],
    engine_events: EventLog,
    clock: Clock,
) -> None:
    aiosmtpd = scripted_smtp()
    sink = smtp_sink()
    add(workspace, "alpha", aiosmtpd.port)
    add(workspace, "beta", sink.port)
    monitor = monitor_factory()
    await monitor.start()

    clock.at(0)
    results = await monitor.probe_all()
    assert all(r.ok for r in results), results
    # alpha (aiosmtpd) is off from minute 10 to minute 25; beta (smtp-sink) from 20 to 40.
    for offset, action in (
        (600, aiosmtpd.stop),
        (1200, sink.stop),
        (1500, aiosmtpd.start),
        (2400, sink.start),
    ):
        clock.at(offset)
        action()
        await monitor.probe_all()
        clock.at(offset + 15)  # the second failure confirms an incident (the default: 2)
        await monitor.probe_all()
    clock.at(3000)
    await monitor.probe_all()
    clock.at(3600)
    await monitor.flush()

    figures = figures_of(workspace, monitor, clock.now)
    alpha, beta = figures["alpha"], figures["beta"]
    # JSON percentages carry three decimals.
    assert alpha["uptime_1h"] == round(100 * (3600 - 900) / 3600, 3)  # 75 %
    assert beta["uptime_1h"] == round(100 * (3600 - 1200) / 3600, 3)  # 66.667 %
    assert alpha["uptime_24h"] == alpha["uptime_30d"] == alpha["uptime_1h"]
    assert alpha["state"] == beta["state"] == "up"
    assert alpha["breaker"] == "closed"

    (incident,) = alpha["incidents"]
    assert incident["started_at"] == clock.start + 600
    assert incident["ended_at"] == clock.start + 1500
    assert incident["duration_seconds"] == 900
    assert "refused" in incident["cause"].lower() or "connect" in incident["cause"].lower()
    (incident,) = beta["incidents"]
    assert (incident["started_at"], incident["ended_at"]) == (
        clock.start + 1200,
        clock.start + 2400,
    )
    # Probe latency was measured on the successful probes.
    assert alpha["latency_p50_ms"] is not None and alpha["latency_p95_ms"] is not None
    assert alpha["latency_p50_ms"] <= alpha["latency_p95_ms"]
    # The incidents were announced as they opened and ended.
    changes = [(e.provider_name, e.ended_at is None) for e in engine_events.of(IncidentChanged)]
    assert changes.count(("alpha", True)) == 1 and changes.count(("alpha", False)) == 1
    states = [(e.provider_name, e.state) for e in engine_events.of(ProviderHealthChanged)]
    assert sorted(states[:2]) == [("alpha", "up"), ("beta", "up")]
    assert ("alpha", "down") in states
    stored = HealthRepository(workspace.database)
    assert len(engine_events.of(ProbeRecorded)) == sum(
        len(stored.probe_results(workspace.get_provider(name).uid, clock.start))
        for name in ("alpha", "beta")
    )


@pytest.mark.asyncio
async def test_maintenance_is_excluded_from_uptime_and_probes_are_marked(
    workspace: Workspace,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    monitor_factory: Callable[[], HealthMonitor],
    clock: Clock,
) -> None:
    server = scripted_smtp()
    provider = add(workspace, "alpha", server.port)
    workspace.add_maintenance(
        "alpha",
        MaintenanceWindow(
            kind=MaintenanceKind.ONCE, starts_at=clock.start + 1800, ends_at=clock.start + 2400
        ),
    )
    monitor = monitor_factory()
    await monitor.start()
    clock.at(0)
    await monitor.probe_all()
    # Down only inside the window: uptime does not suffer, and no incident is opened.
    clock.at(1900)
    server.stop()
    await monitor.probe_all()
    clock.at(1915)
    await monitor.probe_all()
    assert monitor.live_states()[provider.uid].state == "maintenance"
    clock.at(2300)
    server.start()
    clock.at(2400)
    await monitor.probe_all()
    clock.at(3600)
    await monitor.flush()

    (alpha,) = workspace.health_figures(now=clock.now, live=monitor.live_states())
    assert alpha.uptime_1h == 100.0
    assert alpha.incidents == ()
    totals = workspace.health.totals(provider.uid, clock.start, clock.now)
    assert totals.maintenance_seconds == 600
    assert totals.up_seconds == 3000
    statuses = [p.status for p in workspace.health.probe_results(provider.uid, clock.start)]
    assert statuses == ["up", "maintenance", "maintenance", "up"]


@pytest.mark.asyncio
async def test_an_incident_open_at_shutdown_goes_on_in_the_next_run(
    workspace: Workspace,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    monitor_factory: Callable[[], HealthMonitor],
    clock: Clock,
) -> None:
    server = scripted_smtp()
    provider = add(workspace, "alpha", server.port)
    first = monitor_factory()
    await first.start()
    clock.at(0)
    await first.probe_all()
    server.stop()
    clock.at(60)
    await first.probe_all()
    clock.at(75)
    await first.probe_all()
    await first.close()

    second = monitor_factory()
    await second.start()
    assert second.live_states()[provider.uid].state == "down"
    clock.at(300)
    server.start()
    await second.probe_all()
    await second.flush()
    (incident,) = workspace.health.incidents(provider.uid, clock.start)
    assert (incident.started_at, incident.ended_at) == (clock.start + 60, clock.start + 300)
    assert incident.failures == 2


@pytest.mark.asyncio
async def test_real_sends_count_by_outcome_with_their_latency(
    delivery: Delivery,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    monitor_factory: Callable[[], HealthMonitor],
    clock: Clock,
    engine_events: EventLog,
) -> None:
    server = scripted_smtp(rcpt_replies={"bad@example.net": "550 5.1.1 no such user"})
    delivery.add_provider("alpha", server.port)
    monitor = monitor_factory()
    await monitor.start()
    clock.at(100)
    delivery.queue(5)
    delivery.queue(1, recipient="bad@example.net")
    # The engine's events reach the monitor (as in the app, through one sink).
    engine_events.publish = _tee(engine_events.publish, monitor.publish)  # type: ignore[method-assign]
    await delivery.run_until_idle()
    clock.at(200)
    await monitor.flush()
    (alpha,) = delivery.ws.health_figures(now=clock.now, live=monitor.live_states())
    assert alpha.sent_24h == 5
    assert alpha.errors_24h == {"recipient_permanent": 1}
    assert alpha.error_rate_24h == pytest.approx(100 / 6)
    assert alpha.send_latency_p50_ms is not None
    assert alpha.state == "up"  # a refused recipient is a working provider


def _tee(*sinks: Callable[[object], None]) -> Callable[[object], None]:
    def publish(event: object) -> None:
        for sink in sinks:
            sink(event)

    return publish


@pytest.mark.asyncio
async def test_minutes_roll_into_hours_and_old_history_is_pruned_in_small_batches(
    workspace: Workspace,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    monitor_factory: Callable[[], HealthMonitor],
    clock: Clock,
) -> None:
    server = scripted_smtp()
    provider = add(workspace, "alpha", server.port)
    monitor = monitor_factory()
    await monitor.start()
    # 40 days ago: 50 probes a minute apart.
    clock.start -= 40 * 86400
    for minute in range(50):
        clock.at(minute * 60)
        await monitor.probe_all()
    await monitor.flush()
    old = clock.start
    hours = workspace.health.roll_up_hours(old - old % 3600, old + 2 * 3600)
    assert hours >= 1
    report = workspace.health.prune(old + 40 * 86400, batch=7)
    assert report.deleted["probe_results"] == 50
    assert report.deleted["health_minute"] == 50
    assert report.deleted["health_hour"] == 0  # kept a year
    assert report.deleted["alerts"] == 0
    assert report.transactions >= 50 // 7 + 2
    with workspace.database.read() as connection:
        (probes_up,) = connection.exec_driver_sql(
            "SELECT SUM(probes_up) FROM health_hour WHERE provider_uid = ?", (provider.uid,)
        ).one()
    assert probes_up == 50


@pytest.mark.asyncio
async def test_the_monitor_runs_by_itself_and_probes_on_its_schedule(
    workspace: Workspace,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    engine_events: EventLog,
) -> None:
    server = scripted_smtp()
    add(workspace, "alpha", server.port)
    workspace.set_setting("health.probe_interval_seconds", "0.2")
    monitor = workspace.create_monitor(engine_events, flush_seconds=0.2)
    task = asyncio.create_task(monitor.run())
    try:
        deadline = time.monotonic() + 10
        while len(engine_events.of(ProbeRecorded)) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        monitor.request_stop()
        await asyncio.wait_for(task, 10)
    assert len(engine_events.of(ProbeRecorded)) >= 3
    assert server.command_count("NOOP") >= 3
    assert server.command_count("MAIL") == 0  # a probe never sends mail
    (status,) = workspace.provider_states.load().values()
    assert status.state == "up"
