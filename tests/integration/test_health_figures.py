"""Health figures of real sends through a real loopback server, as ``health --json`` shows
them: a provider that carried mail has its sends counted and a latency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from desktop_app.core.health.monitor import HealthMonitor
from desktop_app.core.service import DeliveryService
from tests.integration.conftest import Delivery
from tests.support.scripted_smtp import ScriptedSMTPServer


@pytest.mark.asyncio
async def test_sends_made_while_the_monitor_is_still_starting_are_counted(
    delivery: Delivery,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = scripted_smtp()
    delivery.add_provider("backup", server.port)
    delivery.queue(25)
    start = HealthMonitor.start

    async def slow_start(self: HealthMonitor) -> None:
        await asyncio.sleep(0.5)  # a busy machine: the monitor's first reads take a while
        await start(self)

    monkeypatch.setattr(HealthMonitor, "start", slow_start)
    service = DeliveryService(delivery.ws, delivery.events, probe_on_start=False)
    await asyncio.wait_for(service.run(until_idle=True), 30)

    assert len(server.messages) == 25
    (shown,) = [f.as_json(0.0) for f in delivery.ws.health_figures()]
    assert shown["sent_24h"] == 25
    assert shown["latency_samples_24h"] == {"probes": 0, "sends": 25}
    assert 0 < shown["latency_p50_ms"] <= shown["latency_p95_ms"] <= shown["latency_max_ms"]
