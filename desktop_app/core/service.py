"""Delivery with its companions: the engine, the campaign runner, the mailbox watcher, the
delivery prober, the health monitor and the alerter, wired once.

The GUI's controller and ``relaydesk run`` both run this, under the instance lock (the
runner, the monitor and the alerter write state that must have one writer per data folder):

    engine events   -> sink (GUI bridge / CLI printer), health monitor, alerter
    runner events   -> sink, alerter (a campaign paused by its failure threshold)
    mailbox watcher -> sink (bounces and unsubscribe requests read over IMAP)
    delivery prober -> sink, alerter (a probe the provider accepted never arrived)
    monitor events  -> sink, alerter
    alerter events  -> sink
    provider states -> sink, monitor (writes them), alerter: the board in provider_state.py,
                       which the engine and the monitor both report to

and the change feed (core/change_feed.py) tells the engine, the monitor and the alerter
when providers, maintenance windows or settings changed in any process.
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
from desktop_app.core.disk_space import log_failure
from desktop_app.core.errors import DiskFullError
from desktop_app.core.events import EventHub, EventSink
from desktop_app.core.health.alerter import Alerter
from desktop_app.core.health.monitor import HealthMonitor
from desktop_app.core.storage.alerts import AlertRepository
from desktop_app.core.workspace import Workspace

log = logging.getLogger(__name__)


class DeliveryService:
    """Runs the six together (engine, health monitor, alerter, campaign runner, mailbox
    watcher, delivery prober); stop it with ``request_stop()`` (on the loop thread)."""

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
        everyone = EventHub()
        everyone.subscribe(sink)
        everyone.subscribe(self.alerter)
        # One home for every provider's live state, shared by the engine and the monitor.
        self.board = workspace.create_provider_board(everyone)
        self.monitor: HealthMonitor = workspace.create_monitor(
            watchers, clock=clock, probe_on_start=probe_on_start, board=self.board
        )
        everyone.subscribe(self.monitor)
        self.engine: DeliveryEngine = workspace.create_engine(everyone, board=self.board)
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
        loop = asyncio.get_running_loop()
        followers = (self.engine, self.monitor, self.alerter)
        for follower in followers:
            follower.follow_changes()

        def on_changes(topics: frozenset[str]) -> None:  # on the feed's thread
            for follower in followers:
                loop.call_soon_threadsafe(follower.on_changes, topics)

        def on_disk_full(problem: DiskFullError) -> None:  # on the thread whose write failed
            # Whoever met the full disk first (the monitor's flush, the alerter, the
            # window's own writes), the engine stops once, cleanly (issue 14).
            try:
                loop.call_soon_threadsafe(self.engine.stop_for_disk_full, problem)
            except RuntimeError:  # the loop is closed: everything has stopped already
                pass

        stop_listening = self._workspace.database.on_disk_full(on_disk_full)
        feed = self._workspace.changes
        unsubscribe = feed.subscribe(on_changes)
        feed.start()
        # The monitor knows the providers before the engine sends: it drops an attempt it
        # cannot place, so a slow start lost a run's first sends from health (a backup that
        # carried every message showed no sends and no latency).
        try:
            await self.monitor.start()
        except Exception:
            log_failure(log, "the health monitor could not start; its run tries again")
        # Before the engine's first event: an alert still open from the last run is not
        # raised again, and repeats count from the last one, whatever the restarts.
        try:
            await self.alerter.restore()
        except Exception:
            log_failure(log, "the alert log could not be read; the alerter's run tries again")
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
            unsubscribe()
            stop_listening()
            self.monitor.request_stop()
            self.alerter.request_stop()
            self.campaigns.request_stop()
            self.mailbox_watcher.request_stop()
            self.delivery_prober.request_stop()
            for result in await asyncio.gather(*watching, return_exceptions=True):
                if isinstance(result, DiskFullError):
                    continue  # the engine said it, once
                if isinstance(result, BaseException):
                    log.error("a companion of the engine failed: %s", result)

    def request_stop(self) -> None:
        self.engine.request_stop()

    def wake_campaigns(self) -> None:
        """A campaign was sent, resumed or cancelled: the runner looks now (loop thread)."""
        self.campaigns.wake()

    def _wake_engine(self) -> None:
        self.engine.wake()  # an alert mail was queued: it should not wait for the next poll
