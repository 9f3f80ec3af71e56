"""Delivery with its companions: the engine, the campaign runner, the mailbox watcher, the
health monitor and the alerter, wired once.

The GUI's controller and ``relaydesk run`` both run this, under the instance lock (the
runner, the monitor and the alerter write state that must have one writer per data folder):

    engine events   -> sink (GUI bridge / CLI printer), health monitor, alerter
    runner events   -> sink, alerter (a campaign paused by its failure threshold)
    mailbox watcher -> sink (bounces and unsubscribe requests read over IMAP)
    delivery prober -> sink, alerter (a probe the provider accepted never arrived)
    monitor events  -> sink, alerter
    alerter events  -> sink
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from desktop_app.core.bounces.delivery_probes import DeliveryProber
from desktop_app.core.bounces.watcher import MailboxWatcher
from desktop_app.core.campaigns.runner import CampaignRunner
from desktop_app.core.delivery.engine import DeliveryEngine
from desktop_app.core.events import EventHub, EventSink
from desktop_app.core.health.alerter import Alerter
from desktop_app.core.health.monitor import HealthMonitor
from desktop_app.core.storage.alerts import AlertRepository
from desktop_app.core.workspace import Workspace

log = logging.getLogger(__name__)


class DeliveryService:
    """Runs the three together; stop it with ``request_stop()`` (on the loop thread)."""

    def __init__(
        self,
        workspace: Workspace,
        sink: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        probe_on_start: bool = True,
    ) -> None:
        self.alerter = Alerter(
            AlertRepository(workspace.database),
            workspace.outbox,
            workspace.health,
            workspace.providers,
            workspace.settings,
            sink,
            clock=clock,
            on_mail_queued=self._wake_engine,
        )
        watchers = EventHub()
        watchers.subscribe(sink)
        watchers.subscribe(self.alerter)
        self.monitor: HealthMonitor = workspace.create_monitor(
            watchers, clock=clock, probe_on_start=probe_on_start
        )
        everyone = EventHub()
        everyone.subscribe(sink)
        everyone.subscribe(self.monitor)
        everyone.subscribe(self.alerter)
        self.engine: DeliveryEngine = workspace.create_engine(everyone)
        self.campaigns: CampaignRunner = workspace.create_campaign_runner(
            watchers, clock=clock, on_mail_queued=self._wake_engine
        )
        self.mailbox_watcher: MailboxWatcher = workspace.create_mailbox_watcher(watchers)
        self.delivery_prober: DeliveryProber = workspace.create_delivery_prober(
            watchers, clock=clock
        )
        self._workspace = workspace

    async def run(self, *, until_idle: bool = False) -> None:
        """Deliver (until stopped, or idle) while probing and alerting alongside."""
        watching = [
            asyncio.create_task(self.monitor.run(), name="health-monitor"),
            asyncio.create_task(self.alerter.run(), name="alerter"),
            asyncio.create_task(self.campaigns.run(), name="campaign-runner"),
            asyncio.create_task(self.mailbox_watcher.run(), name="mailbox-watcher"),
            asyncio.create_task(self.delivery_prober.run(), name="delivery-prober"),
        ]
        try:
            await self.engine.run(
                until_idle=until_idle,
                pending_work=self._workspace.pending_work,
                # An alert being stored may be about to queue its email: not idle yet.
                companions_busy=self.alerter.busy,
            )
        finally:
            self.monitor.request_stop()
            self.alerter.request_stop()
            self.campaigns.request_stop()
            self.mailbox_watcher.request_stop()
            self.delivery_prober.request_stop()
            for result in await asyncio.gather(*watching, return_exceptions=True):
                if isinstance(result, BaseException):
                    log.error("a companion of the engine failed: %s", result)

    def request_stop(self) -> None:
        self.engine.request_stop()

    def wake_campaigns(self) -> None:
        """A campaign was sent, resumed or cancelled: the runner looks now (loop thread)."""
        self.campaigns.wake()

    def _wake_engine(self) -> None:
        self.engine.wake()  # an alert mail was queued: it should not wait for the next poll
