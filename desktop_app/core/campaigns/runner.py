"""Moves campaigns along on the delivery loop: starts scheduled ones when their time comes,
renders recipients into the outbox a batch at a time just ahead of the engine (in a child
process: campaigns/render_pool.py), pauses a
campaign whose permanent failures pass the threshold, and marks finished ones completed.

Every step is a database transaction, so the runner itself holds nothing that a crash could
lose: after a restart it reads where each campaign is and carries on. Its database work
and rendering run on its own thread (``campaign-db``), never on the loop or the engine's
database thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from desktop_app.core.campaigns.lifecycle import CampaignState
from desktop_app.core.campaigns.message import CampaignSettings
from desktop_app.core.campaigns.render_pool import RenderPool
from desktop_app.core.campaigns.rendering import campaign_settings
from desktop_app.core.disk_space import log_failure
from desktop_app.core.events import BouncesRecorded, CampaignChanged, Event, EventSink
from desktop_app.core.models import MessageState
from desktop_app.core.secrets import SecretStore
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.bounces import BounceRepository
from desktop_app.core.storage.campaigns import Campaign, CampaignRepository, RecipientState
from desktop_app.core.wording import count_of

log = logging.getLogger(__name__)

#: Recipients rendered per transaction.
BATCH_SIZE = 500
#: Render more once fewer than this many of a campaign's messages wait in the outbox: the
#: engine never runs dry, and a pause or cancel has little already rendered to hold back.
LOW_WATER = 1000


@dataclass(frozen=True, slots=True)
class AutoPause:
    """The failure threshold from settings."""

    percent: float
    min_messages: int

    def reason(self, counts: dict[str, int]) -> str | None:
        """Why to pause, or None. Permanent failures are refused recipients and messages
        that could not be built; deferred ones are still being retried."""
        failed = counts.get(MessageState.FAILED.value, 0)
        finished = failed + counts.get(MessageState.SENT.value, 0)
        if finished < self.min_messages or failed * 100.0 <= self.percent * finished:
            return None
        return (
            f"paused automatically: {failed:,} of {count_of(finished, 'message')} failed "
            "permanently "
            f"({failed * 100.0 / finished:.1f} % > {self.percent:g} %)"
        )


class CampaignRunner:
    """See the module docstring. Run ``run()`` on the loop thread; stop with request_stop()."""

    def __init__(
        self,
        campaigns: CampaignRepository,
        bounces: BounceRepository,
        settings: SettingsStore,
        secrets: SecretStore,
        events: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        tick_seconds: float = 1.0,
        batch_size: int = BATCH_SIZE,
        low_water: int = LOW_WATER,
        on_mail_queued: Callable[[], None] | None = None,
    ) -> None:
        self._campaigns = campaigns
        self._bounces = bounces
        self._settings = settings
        self._secrets = secrets
        self._events = events
        self._clock = clock
        self._tick_seconds = tick_seconds
        self._batch_size = batch_size
        self._low_water = low_water
        self._on_mail_queued = on_mail_queued
        self._message_settings: dict[int, CampaignSettings] = {}
        self._renderer = RenderPool()
        self._wake = asyncio.Event()
        self._stop = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def run(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="campaign-db")
        try:
            while not self._stop:
                try:
                    busy = await self.tick()
                except Exception:  # a bad tick must not end campaigns for this session
                    log_failure(log, "campaign runner tick failed")
                    busy = False
                if busy:
                    await asyncio.sleep(0)  # more to render: go on, letting others run
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._tick_seconds)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None
            await asyncio.to_thread(self._renderer.close)

    def wake(self) -> None:
        """A campaign was sent, resumed or cancelled: look now (loop thread)."""
        self._wake.set()

    def request_stop(self) -> None:
        self._stop = True
        self._wake.set()

    async def tick(self) -> bool:
        """One pass over every campaign; True when a batch was queued and more may follow."""
        loop = asyncio.get_running_loop()
        events, queued = await loop.run_in_executor(self._executor, self._pass)
        for event in events:
            self._events.publish(event)
        if queued and self._on_mail_queued is not None:
            self._on_mail_queued()
        return queued > 0

    # -- one pass (on the campaign-db thread) -------------------------------------------------

    def _pass(self) -> tuple[list[Event], int]:
        now = self._clock()
        events: list[Event] = []
        for campaign in self._campaigns.in_state(CampaignState.SCHEDULED):
            if campaign.scheduled_at is not None and campaign.scheduled_at <= now:
                events.append(self._start(campaign, now))
        self._campaigns.hold_paused()
        threshold = AutoPause(
            percent=float(self._settings.get("campaigns.auto_pause_failure_percent")),
            min_messages=int(self._settings.get("campaigns.auto_pause_min_messages")),
        )
        queued_total = 0
        sending = self._campaigns.in_state(CampaignState.SENDING)
        for campaign in sending:
            event, queued = self._advance(campaign, threshold, now)
            queued_total += queued
            if event is not None:
                events.append(event)
        # After advancing, for the same campaigns: one that completed just now is not
        # "sending" at the next pass, and a refusal the engine recorded after this pass
        # began would otherwise never count as a bounce.
        refused = self._bounces.record_refusals([c.id for c in sending])
        if refused.hard:
            events.append(
                BouncesRecorded(
                    "refused at RCPT TO", len(refused.hard), 0, 0, len(refused.suppressed)
                )
            )
        return events, queued_total

    def _start(self, campaign: Campaign, now: float) -> CampaignChanged:
        try:
            total = self._campaigns.start(campaign.id, now=now)
        except Exception as error:  # the list was deleted, the database refused...
            reason = f"could not start: {error}"
            self._campaigns.pause(campaign.id, reason)
            return CampaignChanged(campaign.id, campaign.name, "paused", reason, auto=True)
        log.info("campaign %r started: %d recipients", campaign.name, total)
        return CampaignChanged(
            campaign.id, campaign.name, CampaignState.SENDING.value, count_of(total, "recipient")
        )

    def _advance(
        self, campaign: Campaign, threshold: AutoPause, now: float
    ) -> tuple[CampaignChanged | None, int]:
        counts = self._campaigns.counts(campaign.id)
        reason = threshold.reason(counts)
        if reason is not None:
            self._campaigns.pause(campaign.id, reason)
            log.warning("campaign %r %s", campaign.name, reason)
            return CampaignChanged(campaign.id, campaign.name, "paused", reason, auto=True), 0
        if counts.get(RecipientState.PENDING, 0) == 0:
            if self._campaigns.complete(campaign.id, now=now):
                self._message_settings.pop(campaign.id, None)
                log.info("campaign %r completed", campaign.name)
                return CampaignChanged(campaign.id, campaign.name, "completed"), 0
            return None, 0
        if self._campaigns.backlog(campaign.id) >= self._low_water:
            return None, 0
        try:
            settings = self._settings_for(campaign)
        except Exception as error:  # no keyring for the unsubscribe key, and the like
            reason = f"paused: {error}"
            self._campaigns.pause(campaign.id, reason)
            return CampaignChanged(campaign.id, campaign.name, "paused", reason, auto=True), 0
        pending = self._campaigns.pending_batch(campaign.id, self._batch_size)
        batch = self._renderer.render(settings, campaign.id, pending)
        if not self._campaigns.store_batch(campaign.id, batch):
            return None, 0  # paused or cancelled while rendering: nothing was queued
        queued = len(batch.queued)
        return (
            CampaignChanged(campaign.id, campaign.name, "sending", queued=queued),
            queued + len(batch.failed) + len(batch.skipped),
        )

    def _settings_for(self, campaign: Campaign) -> CampaignSettings:
        # Content cannot change once a campaign has started, so this is built once.
        settings = self._message_settings.get(campaign.id)
        if settings is None:
            key = self._secrets.signing_key() if campaign.unsubscribe_url else None
            settings = campaign_settings(campaign, self._campaigns.attachments(campaign.id), key)
            self._message_settings[campaign.id] = settings
        return settings
