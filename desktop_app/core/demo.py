"""Demo mode: three local SMTP servers stand in for real providers, in a throwaway folder.

A first-time user sees the outbox drain, a provider fail and traffic fail over, and the
provider states move, within a minute, without an account anywhere and without a single
byte leaving the machine (every server listens on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import random
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from desktop_app.core.compose import build_message
from desktop_app.core.models import ProviderConfig, RateLimits, Security
from desktop_app.core.storage.campaigns import CampaignDraft
from desktop_app.core.workspace import Workspace

#: The flaky provider is down for this many seconds out of every cycle.
OUTAGE_SECONDS = 15.0
OUTAGE_CYCLE_SECONDS = 45.0
SAMPLE_MESSAGES = 150


class _Healthy:
    received = 0

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        self.received += 1
        return "250 2.0.0 Ok: queued"


class _Slow(_Healthy):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(1.5)
        return await super().handle_DATA(server, session, envelope)


class _Flaky(_Healthy):
    """Down (421) for part of every cycle; now and then a soft refusal after DATA."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._random = random.Random(7)  # noqa: S311 - demo behaviour, not security

    def in_outage(self) -> bool:
        return (time.monotonic() - self._started) % OUTAGE_CYCLE_SECONDS < OUTAGE_SECONDS

    async def handle_MAIL(
        self, _server: Any, _session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.in_outage():
            return "421 4.3.2 Demo outage: service not available"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._random.random() < 0.05:
            return "451 4.3.0 Demo: temporary problem, try later"
        return await super().handle_DATA(server, session, envelope)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class DemoProviders:
    """The three demo servers and the throwaway data folder they come with."""

    data_dir: Path
    controllers: list[tuple[str, Controller]]

    @classmethod
    def start(cls) -> DemoProviders:
        data_dir = Path(tempfile.mkdtemp(prefix="relaydesk-demo-"))
        controllers = []
        for name, handler in (
            ("Flaky Mail (demo)", _Flaky()),
            ("Steady Mail (demo)", _Healthy()),
            ("Slow Mail (demo)", _Slow()),
        ):
            controller = Controller(
                handler,
                hostname="127.0.0.1",
                port=_free_port(),
                server_hostname="demo.localhost",
                ready_timeout=5.0,
            )
            controller.start()
            controllers.append((name, controller))
        return cls(data_dir, controllers)

    def populate(self, workspace: Workspace) -> None:
        """Add the demo providers, fast-moving settings and sample mail."""
        workspace.set_setting("breaker.open_seconds", "5")
        workspace.set_setting("retry.min_backoff_seconds", "5")
        workspace.set_setting("retry.max_backoff_seconds", "30")
        layout = {
            "Flaky Mail (demo)": (0, 1, RateLimits(per_second=5)),
            "Steady Mail (demo)": (1, 2, RateLimits(per_second=3)),
            "Slow Mail (demo)": (1, 1, RateLimits()),
        }
        for name, controller in self.controllers:
            priority, weight, limits = layout[name]
            workspace.add_provider(
                ProviderConfig(
                    name=name,
                    host="127.0.0.1",
                    port=int(controller.port),
                    security=Security.NONE,
                    priority=priority,
                    weight=weight,
                    max_connections=2,
                    rate_limits=limits,
                )
            )
        workspace.queue(
            [
                build_message(
                    sender="news@relaydesk-demo.example",
                    recipients=[f"reader{n:03d}@example.test"],
                    subject=f"Relaydesk demo newsletter #{n}",
                    text=f"Hello reader {n},\n\nThis message never leaves your computer.\n",
                )
                for n in range(1, SAMPLE_MESSAGES + 1)
            ]
        )
        self._populate_campaigns(workspace)

    def _populate_campaigns(self, workspace: Workspace) -> None:
        """A subscriber list, a campaign that goes out during the demo, and a draft."""
        cities = ("Oslo", "Lisbon", "Kraków", "Montréal", "Osaka")
        rows = ["email,name,city,plan"] + [
            f"reader{n:03d}@example.org,Reader {n},{cities[n % 5]},{('free', 'pro')[n % 2]}"
            for n in range(1, 121)
        ]
        source = self.data_dir / "demo-readers.csv"
        source.write_text("\n".join(rows) + "\n", encoding="utf-8")
        workspace.create_list("Demo readers")
        workspace.import_list("Demo readers", source)
        workspace.suppress("reader007@example.org", detail="asked by phone")
        html = (
            "<h1>Hello {{ name }}</h1>\n<p>The weather in {{ city }} is lovely this week.</p>\n"
            "<p>You are on the <b>{{ plan }}</b> plan.</p>\n"
            "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>\n"
        )
        for name, subject in (
            ("Spring newsletter", "{{ name }}, spring is here in {{ city }}"),
            ("Summer offers (draft)", "Summer offers for {{ plan }} readers"),
        ):
            workspace.campaigns.create(
                CampaignDraft(
                    name=name,
                    list_name="Demo readers",
                    from_address="news@relaydesk-demo.example",
                    from_name="Relaydesk demo",
                    subject=subject,
                    html=html,
                    unsubscribe_mailto="unsubscribe@relaydesk-demo.example",
                )
            )
        workspace.campaigns.send("Spring newsletter")

    def stop(self) -> None:
        for _name, controller in self.controllers:
            controller.stop()
