"""End-to-end delivery probes: through each provider, into a real Dovecot seed mailbox.

One provider delivers what it accepts into the mailbox (an aiosmtpd server that APPENDs to
Dovecot); the other accepts and drops it, the failure this feature exists to catch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.events import AlertRaised, Event
from desktop_app.core.models import (
    MaintenanceKind,
    MaintenanceWindow,
    ProviderConfig,
    Security,
)
from desktop_app.core.service import DeliveryService
from desktop_app.core.workspace import Workspace
from tests.support.delivering_smtp import DeliveringSMTPServer
from tests.support.dovecot import DovecotServer
from tests.support.tls import TestCA

PASSWORD = "seed-box-31415"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def workspace(data_dir: Path, secret_service: dict[str, str]) -> Iterator[Workspace]:
    ws = Workspace.open(data_dir)
    yield ws
    ws.close()


def test_a_round_trip_records_delivery_latency_and_a_dropping_provider_is_caught(
    workspace: Workspace,
    dovecot: Callable[..., DovecotServer],
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_ca.trust(monkeypatch)
    ws = workspace
    imap = dovecot(users={"seed": PASSWORD})
    with (
        DeliveringSMTPServer(imap, "seed") as good,
        DeliveringSMTPServer(imap, "seed", drop=True) as dropper,
        DeliveringSMTPServer(imap, "seed") as resting,
    ):
        for name, server in (("good", good), ("dropper", dropper), ("resting", resting)):
            ws.add_provider(
                ProviderConfig(
                    name=name, host="127.0.0.1", port=server.port, security=Security.NONE
                )
            )
        # In maintenance: it takes no mail, probes included.
        ws.add_maintenance(
            "resting",
            MaintenanceWindow(
                kind=MaintenanceKind.ONCE, starts_at=time.time() - 60, ends_at=time.time() + 3600
            ),
        )
        ws.configure_mailbox(
            MailboxConfig(
                name="seed",
                role=MailboxRole.SEED,
                host="127.0.0.1",
                port=imap.tls_port,
                security=Security.TLS,
                username="seed",
                processed_folder="Probes",
            ),
            PASSWORD,
        )
        for key, value in {
            "delivery_probes.interval_minutes": "60",
            "delivery_probes.timeout_minutes": "0.1",  # 6 s
            "delivery_probes.seed_address": "seed@example.org",
            "delivery_probes.from_address": "probe@example.com",
        }.items():
            ws.set_setting(key, value)

        sink = Sink()

        async def scenario() -> None:
            service = DeliveryService(ws, sink, probe_on_start=False)
            task = asyncio.create_task(service.run())
            try:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    figures = {f.provider: f for f in await asyncio.to_thread(ws.health_figures)}
                    if figures["dropper"].delivery_failures_24h and (
                        figures["good"].delivery_latency_p50_ms is not None
                    ):
                        return
                    await asyncio.sleep(0.2)
                raise AssertionError("the probes were not all accounted for in time")
            finally:
                service.request_stop()
                await asyncio.wait_for(task, 30)

        asyncio.run(scenario())
        assert good.accepted == 1 and dropper.accepted == 1
        assert resting.accepted == 0

    figures = {f.provider: f.as_json(time.time()) for f in ws.health_figures()}
    assert figures["good"]["delivery_failures_24h"] == 0
    assert 0 <= figures["good"]["delivery_latency_p50_ms"] < 6000
    assert figures["dropper"]["delivery_failures_24h"] == 1
    assert figures["dropper"]["delivery_latency_p50_ms"] is None
    alerts = [e for e in sink.events if isinstance(e, AlertRaised)]
    assert [(a.rule, a.subject) for a in alerts] == [("delivery_lost", "dropper")]
    assert imap.fetch_all("seed", "INBOX") == []  # the probe was filed, not deleted
    assert len(imap.fetch_all("seed", "Probes")) == 1
