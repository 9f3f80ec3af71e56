"""The delivery engine: claims due mail from the outbox and sends it through the providers.

One dispatcher task claims as many due messages as the providers have room for; each
message then gets its own task that routes it, sends it, and fails over at once to the
next usable provider when a provider fails. Everything runs on the loop thread
(core/runtime.py); database work goes to one executor thread and is group-committed
(journal.py).

For each message the durable order is the outbox contract (desktop_app/ARCHITECTURE.md,
"The outbox"):
  claim (lease, committed) -> attempt row committed -> MAIL FROM ... "." -> outcome committed
-> only then an event tells anyone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from desktop_app.core.delivery.classify import counts_against_provider
from desktop_app.core.delivery.journal import Journal
from desktop_app.core.delivery.lane import (
    QUOTA_MOMENT_SECONDS,
    RESERVATIONS_PER_CONNECTION,
    ProviderLane,
    connection_settings,
    first_tiers,
)
from desktop_app.core.delivery.outcome_rules import (
    OutcomePolicy,
    deferral,
    finished_entry,
    rate_limit_give_back,
    transition_after,
)
from desktop_app.core.delivery.pool import AcquireAbandoned, ConnectionPool
from desktop_app.core.delivery.retry import BackoffPolicy
from desktop_app.core.delivery.router import NOBODY, WAIT, Route, Router
from desktop_app.core.delivery.smtp_connection import (
    NO_PASSWORD_DETAIL,
    SmtpFailure,
    TransactionResult,
)
from desktop_app.core.disk_space import DiskReserve
from desktop_app.core.errors import DiskFullError
from desktop_app.core.events import (
    AttemptRecorded,
    EngineStatusChanged,
    Event,
    EventSink,
    FailoverHappened,
    MessageStateChanged,
    QuotaExhausted,
)
from desktop_app.core.health.maintenance import active_window, format_local
from desktop_app.core.models import (
    AmbiguousPolicy,
    AttemptRecord,
    BreakerState,
    MessageState,
    OutboxMessage,
    OutcomeClass,
    ProviderConfig,
    ProviderLiveState,
    ProviderState,
    SmtpPhase,
)
from desktop_app.core.provider_state import ProviderStateBoard
from desktop_app.core.secrets import SecretStore
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.outbox import (
    AttemptFinished,
    AttemptStarted,
    AttemptWithdrawn,
    MessageTransition,
    OutboxRepository,
)
from desktop_app.core.storage.providers import ProviderRepository
from desktop_app.core.wording import count_of, waits

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longer than this, a message waiting for rate quota goes back to the outbox instead
#: of holding a lease and a connection in memory.
MAX_IN_MEMORY_WAIT = 10.0
#: Without a change feed (tests that drive the engine alone), providers and settings are
#: re-read this often; with one, a change reaches the engine when it happens.
RELOAD_SECONDS = 5.0
LEASE_SECONDS = 300.0
#: Change-feed topics after which the engine re-reads providers and settings.
_RELOAD_TOPICS = frozenset({"providers", "maintenance", "settings"})


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Tuning read from settings when the engine starts (and on reload)."""

    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    breaker_threshold: int = 3
    breaker_open_seconds: float = 30.0
    ambiguous_policy: AmbiguousPolicy = AmbiguousPolicy.RETRY
    smtp_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> EngineOptions:
        minimum = float(settings["retry.min_backoff_seconds"])
        maximum = max(minimum, float(settings["retry.max_backoff_seconds"]))
        return cls(
            backoff=BackoffPolicy(
                min_seconds=minimum,
                max_seconds=maximum,
                max_age_seconds=float(settings["retry.max_age_hours"]) * 3600.0,
            ),
            breaker_threshold=int(settings["breaker.failure_threshold"]),
            breaker_open_seconds=float(settings["breaker.open_seconds"]),
            ambiguous_policy=AmbiguousPolicy(settings["ambiguous.policy"]),
            smtp_timeout=float(settings["smtp.timeout_seconds"]),
        )


@dataclass
class EngineStats:
    """Counters since the engine started (for the CLI summary and benchmarks)."""

    attempts: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    unknown: int = 0
    failovers: int = 0


class _Rerouted(Exception):
    """The chosen provider's breaker opened before it was contacted: choose again."""


class _Stopped(Exception):
    """The disk is full: this message goes no further (its lease is recovered next start)."""


class _GiveBack(Exception):
    """A message goes back to the outbox untried (rate quota far away)."""

    def __init__(self, due_at: float) -> None:
        self.due_at = due_at


class DeliveryEngine:
    """Sends the outbox through the providers until stopped (or idle, if asked)."""

    def __init__(
        self,
        outbox: OutboxRepository,
        providers: ProviderRepository,
        settings: SettingsStore,
        secrets: SecretStore,
        events: EventSink,
        *,
        owner: str | None = None,
        exclusive: bool = True,
        helo_name: str | None = None,
        board: ProviderStateBoard | None = None,
        reserve: DiskReserve | None = None,
    ) -> None:
        self._outbox = outbox
        self._providers = providers
        self._settings = settings
        self._secrets = secrets
        self._events = events
        self.owner = owner or f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"
        self._exclusive = exclusive
        self._helo_name = helo_name or socket.gethostname() or "localhost"
        self._router = Router()
        self._lanes: dict[int, ProviderLane] = {}
        self._options = EngineOptions()
        self._tasks: set[asyncio.Task[None]] = set()  # one per message in hand
        self._background: set[asyncio.Task[None]] = set()  # probes and wake-ups
        self._wake = asyncio.Event()
        self._stop_requested = False
        self._paused = False
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._journal: Journal | None = None
        self.stats = EngineStats()
        self.running = False
        #: Why an ``until_idle`` run ended with mail still waiting (None: it did not).
        self.stuck: str | None = None
        #: The full disk that stopped this engine (``run`` raises it once stopped cleanly).
        self.disk_full: DiskFullError | None = None
        # Room kept while running for the outcomes in flight when the disk fills up.
        self._reserve = reserve
        self._pending_work: Callable[[], int] = outbox.pending_count
        self._companions_busy: Callable[[], bool] = lambda: False
        # The provider-state home: this engine reports breakers, sends, quota and
        # maintenance to it and hears the monitor's probes through it.
        self._board = board or ProviderStateBoard(events)
        self._board.add_listener(self._on_provider_state)
        self._reload_requested = False
        self._has_change_feed = False
        self._lanes_loaded = False  # the first reload only sets up; later ones are changes
        # Events waiting for the commit of their message's attempt entries, by outbox id.
        self._after_commit: dict[int, list[Event]] = {}

    # -- control (call on the loop thread) ------------------------------------------------

    def wake(self) -> None:
        """New mail was queued or something changed: look again now."""
        self._wake.set()

    def request_stop(self) -> None:
        self._stop_requested = True
        self._wake.set()

    def stop_for_disk_full(self, problem: DiskFullError) -> None:
        """The disk is full (seen by any writer, loop thread): stop once, cleanly.

        Every delivery task, the journal and the companions meet the same full disk within
        moments; one warning is logged and one status published, not a traceback each
        (issue 14). Nothing new goes on the wire; transactions already there finish, and
        their outcomes go into the room the disk reserve leaves.
        """
        if self.disk_full is not None:
            return
        self.disk_full = problem
        log.warning("sending stops: %s", problem)
        self._publish_status(f"stopping: {problem}")
        self.request_stop()

    def follow_changes(self) -> None:
        """A change feed will call ``on_changes``: no re-reads of providers on a timer."""
        self._has_change_feed = True

    def on_changes(self, topics: frozenset[str]) -> None:
        """The change feed says providers, maintenance or settings changed (loop thread)."""
        if topics & _RELOAD_TOPICS:
            self._reload_requested = True
        self._wake.set()  # and new mail ("outbox") is claimed at once

    def pause(self) -> None:
        self._paused = True
        self._publish_status("paused")

    def resume(self) -> None:
        self._paused = False
        self._wake.set()
        self._publish_status("resumed")

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def lanes(self) -> list[ProviderLane]:
        return sorted(self._lanes.values(), key=lambda lane: lane.config.priority)

    # -- the main loop --------------------------------------------------------------------

    async def run(
        self,
        *,
        until_idle: bool = False,
        drain_timeout: float = 30.0,
        pending_work: Callable[[], int] | None = None,
        companions_busy: Callable[[], bool] | None = None,
    ) -> None:
        """Deliver until ``request_stop()`` (or, with ``until_idle``, until nothing is pending:
        ``pending_work`` counts it when more than the outbox feeds the engine, on the database
        thread; ``companions_busy``, on the loop, says when one may still queue mail)."""
        self._pending_work = pending_work or self._outbox.pending_count
        if companions_busy is not None:
            self._companions_busy = companions_busy
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox-db")
        self._journal = Journal(
            self._outbox,
            self.owner,
            self._executor,
            lease_seconds=LEASE_SECONDS,
            on_full=self._make_room,
        )
        self._journal.start()
        self.running = True
        try:
            try:
                if self._reserve is not None:
                    await self._db(self._reserve.ensure)
                await self.reload()
                report = await self._db(
                    self._outbox.recover_stale_leases,
                    self.owner,
                    self._options.ambiguous_policy,
                    exclusive=self._exclusive,
                )
                if report.requeued or report.unknown:
                    log.warning(
                        "recovered %d interrupted messages (%d queued again, %d possibly sent)",
                        report.requeued + report.unknown,
                        report.requeued,
                        report.unknown,
                    )
                self._publish_status("started")
                await self._dispatch(until_idle)
            except DiskFullError as problem:  # a claim, a reload, recovery at start...
                self.stop_for_disk_full(problem)
        finally:
            await self._shutdown(drain_timeout)
        if self.disk_full is not None:
            # Stopped cleanly; the caller (``relaydesk run``, the window) says why, once.
            raise self.disk_full

    async def _dispatch(self, until_idle: bool) -> None:
        next_reload = time.monotonic() + RELOAD_SECONDS
        while not self._stop_requested:
            if self._reload_requested or (
                not self._has_change_feed and time.monotonic() >= next_reload
            ):
                self._reload_requested = False
                await self.reload()
                next_reload = time.monotonic() + RELOAD_SECONDS
            self._check_maintenance()
            await self._housekeeping()
            if self._paused:
                await self._sleep(1.0)
                continue
            if (
                until_idle
                and not self._tasks
                and not self._companions_busy()
                and await self._nothing_can_change()
            ):
                return
            capacity, room = self._free_capacity()
            # Claim in batches (at least half the room, or whatever is left when nothing is
            # in flight): one claim per message would mean one transaction per message.
            if capacity > 0 and (capacity * 2 >= room or not self._tasks):
                assert self._journal is not None
                batch = await self._journal.claim(capacity)
                for message in batch:
                    self._spawn(message)
                if batch:
                    await asyncio.sleep(0)
                    continue
                if (
                    until_idle
                    and not self._tasks
                    and not self._companions_busy()
                    and await self._db(self._pending_work) == 0
                ):
                    self._publish_status("idle")
                    return
                await self._sleep(await self._idle_wait())
            else:
                # Busy: a finishing delivery wakes us (no database work meanwhile).
                await self._sleep(1.0)

    async def _nothing_can_change(self) -> bool:
        """For ``until_idle``: True (after saying why) when waiting longer is pointless.

        Nothing pending: idle. Mail pending but no provider enabled at all: nothing in this
        run can send it (``stuck`` says so). Anything else (breakers, maintenance, backoff)
        ends by itself, so the run goes on.
        """
        if any(lane.config.enabled for lane in self._lanes.values()):
            if self._free_capacity()[0] > 0:
                return False  # the claim below looks, and checks for idle when it finds none
            pending = await self._db(self._pending_work)
        else:
            pending = await self._db(self._pending_work)
            if pending:
                self.stuck = (
                    f"{count_of(pending, 'message')} {waits(pending)}: no provider is enabled"
                )
                log.warning("%s", self.stuck)
                self._publish_status("stuck")
                return True
        if pending == 0:
            self._publish_status("idle")
            return True
        return False

    def _free_capacity(self) -> tuple[int, int]:
        """(messages to claim now, total room): room on usable providers minus work in hand."""
        usable = [
            lane
            for lane in self._lanes.values()
            if lane.config.enabled
            and lane.breaker.allows_request()
            and lane.limiter.delay() <= QUOTA_MOMENT_SECONDS
        ]
        open_lanes = [lane for lane in usable if not lane.in_maintenance]
        if not open_lanes and not any(
            lane.config.enabled and not lane.in_maintenance for lane in self._lanes.values()
        ):
            # Every enabled provider is in maintenance: claim what is due all the same, so
            # that it waits deferred until a window ends, with the reason, not queued without.
            open_lanes = usable
        room = sum(
            lane.config.max_connections * RESERVATIONS_PER_CONNECTION
            for lane in first_tiers(open_lanes)
        )
        return room - len(self._tasks), room

    async def _idle_wait(self) -> float:
        """How long to sleep when nothing was claimed: until the next due message, at most 1 s."""
        next_due = await self._db(self._outbox.next_due_at)
        if next_due is None:
            return 1.0
        return min(1.0, max(0.01, next_due - time.time()))

    async def _sleep(self, seconds: float) -> None:
        # Wake for the next maintenance boundary too: it is announced on time even when idle.
        boundary = min((lane.maintenance_next_change for lane in self._lanes.values()), default=0)
        if boundary > 0:
            seconds = min(seconds, max(0.001, boundary - time.time()))
        # asyncio.timeout, not wait_for: this runs once per finished delivery, and
        # wait_for wraps the wait in a new task each time.
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    def _spawn(self, message: OutboxMessage) -> None:
        task = asyncio.create_task(
            self._deliver_safely(message), name=f"deliver-{message.outbox_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _shutdown(self, drain_timeout: float) -> None:
        """Let in-flight transactions finish (bounded), then close everything cleanly."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=drain_timeout)
            for task in pending:
                task.cancel()  # stays 'sending'; recovered as unknown/queued on next start
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*(lane.pool.close_all() for lane in self._lanes.values()))
        if self._journal is not None:
            await self._journal.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._reserve is not None:
            self._reserve.discard()  # made again at the next start: no file left behind
        self.running = False
        self._publish_status("stopped")

    # -- providers and settings -----------------------------------------------------------

    async def reload(self) -> None:
        """Re-read providers and settings; keep breakers, limiters and connections that apply."""
        settings = await self._db(self._settings.all)
        self._options = EngineOptions.from_settings(settings)
        configs = await self._db(self._providers.all)
        seen: set[int] = set()
        newly_enabled = False  # a provider added, or switched on: mail waiting may go now
        for config in configs:
            assert config.id is not None
            seen.add(config.id)
            lane = self._lanes.get(config.id)
            known = self._lanes_loaded and (lane is not None and lane.config.enabled)
            newly_enabled = newly_enabled or (config.enabled and not known)
            if lane is None:
                lane = self._new_lane(config)
                since = time.time() - max((w for w, _ in config.rate_limits.windows()), default=0)
                if config.rate_limits.windows():
                    for started in await self._db(
                        self._outbox.recent_attempt_times, config.id, since
                    ):
                        lane.limiter.record(started)
                self._lanes[config.id] = lane
            elif lane.config != config:
                if lane.config.maintenance != config.maintenance:
                    lane.forget_maintenance_check()
                lane.config = config
                lane.pool.reconfigure(connection_settings(config))
                lane.limiter.update(config.rate_limits)
            lane.breaker.configure(
                self._options.breaker_threshold, self._options.breaker_open_seconds
            )
        for gone in set(self._lanes) - seen:
            lane = self._lanes.pop(gone)
            await lane.pool.close_all()
        self._board.sync_providers(configs)
        if newly_enabled and self._lanes_loaded and self.running:
            self._wake_waiting_soon()
        self._lanes_loaded = True
        self._wake.set()

    def _new_lane(self, config: ProviderConfig) -> ProviderLane:
        uid = config.uid

        async def password() -> str | None:
            return await self._db(self._secrets.get_password, uid)

        pool = ConnectionPool(
            connection_settings(config),
            password,
            timeout=self._options.smtp_timeout,
            helo_name=self._helo_name,
        )
        return ProviderLane(
            config,
            pool,
            breaker_threshold=self._options.breaker_threshold,
            breaker_open_seconds=self._options.breaker_open_seconds,
        )

    async def _housekeeping(self) -> None:
        for lane in list(self._lanes.values()):
            await lane.pool.close_idle()
            self._report_breaker(lane, "")  # OPEN -> HALF_OPEN happens by the clock
            if lane.config.enabled and not lane.limiter.unlimited:
                self._announce_quota(lane)
            if (
                lane.config.enabled
                and not lane.probing
                and not lane.in_maintenance
                and lane.breaker.state is BreakerState.HALF_OPEN
                and lane.breaker.allows_request()
            ):
                lane.probing = True
                task = asyncio.create_task(
                    self._trial_probe(lane), name=f"trial-{lane.config.name}"
                )
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _trial_probe(self, lane: ProviderLane) -> None:
        """A half-open breaker's trial without a message: can we log in again?"""
        try:
            if not lane.breaker.acquire():
                return
            try:
                connection = await lane.pool.acquire()
            except SmtpFailure as failure:
                self._record_breaker(lane, failure.outcome, failure.detail, sent=False)
                return
            await lane.pool.release(connection)
            self._record_breaker(lane, OutcomeClass.DELIVERED, "trial succeeded", sent=False)
        finally:
            lane.probing = False

    # -- one message ----------------------------------------------------------------------

    async def _deliver_safely(self, message: OutboxMessage) -> None:
        try:
            await self._deliver(message)
        except asyncio.CancelledError:
            self._after_commit.pop(message.outbox_id, None)
            raise
        except (DiskFullError, _Stopped) as exc:
            # No traceback and no give-back (that write would fail the same way): the
            # lease is recovered at the next start by the crash-recovery rules.
            self._after_commit.pop(message.outbox_id, None)
            if isinstance(exc, DiskFullError):
                self.stop_for_disk_full(exc)
        except Exception as exc:
            self._after_commit.pop(message.outbox_id, None)  # what they announce never committed
            log.exception("delivery of outbox message %d failed unexpectedly", message.outbox_id)
            # Not left in "sending" until the next start: given back now by the crash-recovery
            # rules (possibly sent -> unknown, else queued), after a backoff so that a message
            # that trips a bug cannot spin the engine. If even that write fails, the lease
            # stays and startup recovery handles it as before.
            try:
                await self._db(
                    self._outbox.release,
                    [message.outbox_id],
                    self.owner,
                    self._options.ambiguous_policy,
                    due_at=time.time() + self._options.backoff.delay(message.deferral_count + 1),
                    detail=f"internal error: {type(exc).__name__}: {exc}"[:300],
                )
            except Exception:
                log.exception("could not give outbox message %d back", message.outbox_id)

    async def _deliver(self, message: OutboxMessage) -> None:
        tried: set[int] = set()
        number = message.attempt_count
        carried: list[AttemptFinished] = []  # a failed attempt, written with the next entry
        last_failure = ""
        while True:
            try:
                lane = await self._route(message, tried)
            except _GiveBack as give_back:
                await self._give_back(message, number, carried, give_back.due_at)
                return
            if lane is None:
                back_at, why = self._back_from_maintenance(message, tried)
                await self._finish(
                    message,
                    deferral(
                        message,
                        number,
                        reason="no_provider",
                        error=(last_failure or "no usable provider") + why,
                        provider_id=None,
                        due_at=back_at,
                        policy=self._outcome_policy(),
                        now=time.time(),
                    ),
                    carried,
                )
                return
            number += 1
            try:
                result = await self._attempt(lane, message, number, carried)
            except _Rerouted:
                # Not an attempt: its number is used again and nothing counts against the
                # provider. Entries carried from a failed attempt went out with the row
                # (without a quota) or are still carried (with one).
                number -= 1
                if lane.limiter.unlimited:
                    carried = []
                continue
            except _GiveBack as give_back:
                await self._give_back(message, number - 1, carried, give_back.due_at)
                return
            carried = []
            finished = finished_entry(message, number, result, time.time())
            # Told once the entry is committed (_journal_write), never before.
            self._announce_after_commit(message, self._attempt_event(message, lane, number, result))
            if result.outcome is OutcomeClass.PROVIDER_FAILURE:
                tried.add(lane.config.id or 0)
                carried = [finished]  # committed with this message's next journal entry
                last_failure = f"{lane.config.name}: {result.detail}"
                self.stats.failovers += 1
                self._announce_after_commit(
                    message, FailoverHappened(message.outbox_id, lane.config.name, result.detail)
                )
                continue
            transition = transition_after(
                message,
                number,
                lane.config.id,
                lane.config.name,
                result,
                self._outcome_policy(),
                time.time(),
            )
            await self._finish(message, transition, [finished], provider_name=lane.config.name)
            return

    async def _withdraw_unsent(self, message: OutboxMessage, number: int) -> None:
        """Take back the attempt row of a message the disk-full stop kept off the wire.

        If even that does not fit, the row stays open: the next start takes the message for
        possibly sent (``unknown``) and, under the ``retry`` policy, sends it then.
        """
        try:
            await self._journal_write(withdrawn=[AttemptWithdrawn(message.outbox_id, number)])
        except DiskFullError:
            pass

    async def _make_room(self, problem: DiskFullError) -> bool:
        """The journal's commit failed for want of space: stop, and free the reserve."""
        self.stop_for_disk_full(problem)
        if self._reserve is None:
            return False
        return await self._db(self._reserve.release)

    async def _give_back(
        self,
        message: OutboxMessage,
        attempts: int,
        carried: list[AttemptFinished],
        due_at: float,
    ) -> None:
        """Back to the queue untried, due when quota frees up; not counted as a deferral."""
        await self._finish(message, rate_limit_give_back(message, attempts, due_at), carried)

    async def _route(self, message: OutboxMessage, tried: set[int]) -> ProviderLane | None:
        """A lane for this message by the routing rules (router.py); None when nobody can
        take it. Waits while the best usable tier is only busy."""
        while True:
            self._check_maintenance()
            if message.route == "healthiest":
                route = self._healthiest(message, tried)
            else:
                route = self._router.route(
                    [lane.config for lane in self._lanes.values()],
                    message.sender_domain,
                    lambda config: config.id not in tried and self._lanes[config.id or 0].usable(),
                    lambda config: self._lanes[config.id or 0].has_room,
                )
            if route.provider is not None:
                lane = self._lanes[route.provider.id or 0]
                lane.reserved += 1
                lane.breaker.acquire()
                return lane
            if self._stop_requested:
                return None
            if route.wait:
                # Busy: a connection of the best usable tier frees up when a transaction
                # ends. Later tiers are not an overflow; poll gently.
                await asyncio.sleep(0.05)
                continue
            # Nobody usable now. Someone who soon will be (a trial in flight, a quota that
            # frees up in a while) is worth waiting for in memory, briefly.
            soon = [
                lane
                for lane in self._lanes.values()
                if lane.config.id not in tried
                and lane.config.enabled
                and not lane.in_maintenance
                and lane.config.authorizes(message.sender_domain)
                and (lane.breaker.allows_request() or lane.breaker.state is BreakerState.HALF_OPEN)
            ]
            if not soon:
                return None
            quota_waits = [lane.limiter.delay() for lane in soon]
            if all(wait > MAX_IN_MEMORY_WAIT for wait in quota_waits):
                raise _GiveBack(time.time() + min(quota_waits))
            await asyncio.sleep(min(0.05, *(w for w in quota_waits if w > 0), 0.05))

    def _healthiest(self, message: OutboxMessage, tried: set[int]) -> Route:
        """For alert mail: the usable provider in the best health, whatever its priority.

        Up before unknown before anything else, then the fewest recent failures, then the
        configured priority; an alert must not wait behind a tier that is failing. Busy
        providers are passed over while another usable one has room.
        """
        usable = [
            lane
            for lane in self._lanes.values()
            if lane.config.id not in tried
            and lane.config.authorizes(message.sender_domain)
            and lane.usable()
        ]
        if not usable:
            return NOBODY
        free = [lane for lane in usable if lane.has_room]
        if not free:
            return WAIT
        rank = {ProviderState.UP: 0, ProviderState.UNKNOWN: 1}

        def health(lane: ProviderLane) -> ProviderState:
            live = self._board.get(lane.config.uid)
            return live.state if live is not None else ProviderState.UNKNOWN

        best = min(
            free,
            key=lambda lane: (
                rank.get(health(lane), 2),
                lane.breaker.consecutive_failures,
                lane.config.priority,
            ),
        )
        return Route(best.config)

    def _announce_quota(self, lane: ProviderLane) -> None:
        """Tell observers (alerts) once per exhaustion that a quota is used up for a while.

        Only waits longer than MAX_IN_MEMORY_WAIT count: a per-second limit holding the next
        message back for a moment is throttling working as configured, not an exhausted quota.
        """
        wait = lane.limiter.delay()
        now = time.time()
        if wait <= MAX_IN_MEMORY_WAIT or now < lane.quota_announced_until:
            return
        lane.quota_announced_until = now + wait
        self._board.report_quota(lane.config.uid, now + wait)
        self._events.publish(QuotaExhausted(lane.config.name, now + wait))

    async def _attempt(
        self,
        lane: ProviderLane,
        message: OutboxMessage,
        number: int,
        carried: list[AttemptFinished],
    ) -> TransactionResult:
        """One try through one provider; the lane's reservation is released on the way out."""
        if self.disk_full is not None:
            lane.reserved -= 1
            self._wake.set()
            raise _Stopped  # nothing written, nothing sent: queued again at the next start
        started_at = time.time()
        started = AttemptStarted(
            outbox_id=message.outbox_id,
            number=number,
            provider_id=lane.config.id,
            provider_name=lane.config.name,
            started_at=started_at,
        )
        # Without a quota the attempt row is committed while we wait for a connection,
        # so no connection idles through a commit. With a quota the token must be taken
        # right before MAIL FROM (after the connection), or sends could bunch up.
        row_first = lane.limiter.unlimited
        try:
            if row_first:
                # The attempt row is durable BEFORE MAIL FROM (the crash-recovery contract).
                await self._journal_write(started=[started], finished=carried)
            try:
                # Waiting for a connection behind failing attempts: when those open the
                # breaker, this message goes elsewhere at once instead of trying too.
                connection = await lane.pool.acquire(abandon=lane.breaker_opened)
            except AcquireAbandoned:
                if row_first:
                    # The provider was never contacted: the attempt row goes again.
                    await self._journal_write(
                        withdrawn=[AttemptWithdrawn(message.outbox_id, number)]
                    )
                raise _Rerouted from None
            except SmtpFailure as failure:
                if not row_first:
                    # No MAIL FROM was sent: the attempt row can be written with its outcome.
                    await self._journal_write(started=[started], finished=carried)
                result = TransactionResult(
                    outcome=failure.outcome,
                    phase=failure.phase,
                    reply_code=failure.reply_code,
                    enhanced_status=failure.enhanced_status,
                    detail=failure.detail,
                    latency_ms=(time.time() - started_at) * 1000,
                )
                self._record_breaker(lane, result.outcome, result.detail)
                if result.phase is SmtpPhase.AUTH:
                    lane.pool.forget_password()
                return result
            try:
                if not row_first:
                    # The quota check, the attempt row's commit and the token must not
                    # interleave with another message's: two could pass the check for the
                    # last token, and the loser would wait out a whole window (an hour, a
                    # day) in memory, holding its lease, a connection and an open attempt row.
                    async with lane.send_gate:
                        delay = lane.limiter.delay()
                        if delay > QUOTA_MOMENT_SECONDS:
                            # Used up while this message waited: routed again, it goes to
                            # the next usable tier, or back to the outbox if there is none.
                            lane.breaker.release_trial()
                            raise _Rerouted
                        await self._journal_write(started=[started], finished=carried)
                        while not lane.limiter.try_acquire():
                            await asyncio.sleep(max(lane.limiter.delay(), 0.001))
                if self.disk_full is not None:
                    # The disk filled up while this one waited: its outcome might not fit,
                    # so it does not go on the wire (the next run sends it, once).
                    await self._withdraw_unsent(message, number)
                    raise _Stopped
                result = await connection.send(
                    message.envelope_from, message.recipients, message.raw
                )
            finally:
                await lane.pool.release(connection)
        finally:
            lane.reserved -= 1
            self._wake.set()
        self.stats.attempts += 1
        self._record_breaker(lane, result.outcome, result.detail)
        return result

    def _record_breaker(
        self, lane: ProviderLane, outcome: OutcomeClass, detail: str, *, sent: bool = True
    ) -> None:
        """Feed an outcome to the provider's breaker; tell the provider-state home."""
        if counts_against_provider(outcome):
            lane.breaker.record_failure()
        else:
            # It answered sensibly (even a refusal of a recipient is a working provider).
            lane.breaker.record_success()
        uid = lane.config.uid
        if sent:
            self._board.report_send(uid, outcome, detail)
        missing = detail == NO_PASSWORD_DETAIL
        live = self._board.get(uid)
        if missing or (live is not None and live.password_missing):
            self._board.report_password(uid, missing)
        self._report_breaker(lane, detail)

    def _report_breaker(self, lane: ProviderLane, detail: str) -> None:
        live = self._board.get(lane.config.uid)
        state = lane.breaker.state
        if live is not None and live.breaker is state:
            return
        retry_at = lane.breaker.retry_at
        if retry_at is not None:
            retry_at += time.time() - time.monotonic()  # the breaker's clock is monotonic
        self._board.report_breaker(lane.config.uid, state, retry_at, detail)

    def _on_provider_state(self, before: ProviderLiveState, after: ProviderLiveState) -> None:
        """The provider-state home changed (an engine or monitor report; loop thread)."""
        lane = next(
            (lane for lane in self._lanes.values() if lane.config.uid == after.provider_uid),
            None,
        )
        if lane is None:
            return
        probed_ok = after.last_probe_ok and after.last_probe_at != before.last_probe_at
        if probed_ok and lane.breaker.state is BreakerState.OPEN:
            # The monitor reached it: its trial starts now, not when the cool-down (which
            # grew during the outage) runs out.
            lane.breaker.allow_trial_now()
            self._report_breaker(lane, "a probe succeeded; trying again")
            self._wake.set()
        usable_again = (
            before.breaker is not BreakerState.CLOSED and after.breaker is BreakerState.CLOSED
        ) or (after.state is ProviderState.UP and before.state is not ProviderState.UP)
        if usable_again and self.running:
            # Mail that waited only for a provider need not sit out its backoff.
            self._wake_waiting_soon()

    # -- maintenance windows --------------------------------------------------------------

    def _check_maintenance(self) -> None:
        """Enter and leave maintenance windows as the clock passes their boundaries.

        In a window a provider takes no new transactions (usable() says no: it is not
        "busy", so mail goes to the others at once). What it already has finishes:
        transactions on the wire and messages routed to it before the window began that wait
        for one of its connections (at most RESERVATIONS_PER_CONNECTION per connection).
        """
        now = time.time()
        for lane in self._lanes.values():
            if lane.maintenance_changed(now):
                self._announce_maintenance(lane, now)

    def _announce_maintenance(self, lane: ProviderLane, now: float) -> None:
        if lane.in_maintenance:
            window = active_window(lane.config.maintenance, now)
            detail = "maintenance window"
            if math.isfinite(lane.maintenance_next_change):
                detail += f" until {format_local(lane.maintenance_next_change)}"
            if window is not None and window.note:
                detail += f": {window.note}"
        else:
            detail = "maintenance window ended"
            if self.running:
                self._wake_waiting_soon()
        log.info("%s: %s", lane.config.name, detail)
        self._board.report_maintenance(lane.config.uid, lane.in_maintenance, detail)

    def _back_from_maintenance(
        self, message: OutboxMessage, tried: set[int]
    ) -> tuple[float | None, str]:
        """When the first provider that could take ``message`` leaves maintenance, and why.

        (None, "") when no such provider is in maintenance: the usual backoff applies.
        """
        waiting = [
            lane
            for lane in self._lanes.values()
            if lane.in_maintenance
            and lane.config.enabled
            and lane.config.id not in tried
            and lane.config.authorizes(message.sender_domain)
        ]
        if not waiting:
            return None, ""
        first = min(waiting, key=lambda lane: lane.maintenance_next_change)
        back_at = first.maintenance_next_change
        if not math.isfinite(back_at):
            return None, f" ({first.config.name} is in maintenance)"
        # Due when the window ends (a provider that recovers sooner wakes it anyway), but
        # looked at again within the longest backoff, so its lifetime is still checked.
        due_at = min(back_at, time.time() + self._options.backoff.max_seconds)
        return due_at, f" ({first.config.name} is in maintenance until {format_local(back_at)})"

    def _wake_waiting_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self._wake_waiting())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _wake_waiting(self) -> None:
        try:
            woken = await self._db(self._outbox.wake_waiting_for_provider)
        except DiskFullError as problem:  # a background task: nobody else would see it
            self.stop_for_disk_full(problem)
            return
        if woken:
            log.info("a provider is back: %d waiting messages are due now", woken)
            self._wake.set()

    # -- outcomes -> transitions (the rules are in outcome_rules.py) ---------------------

    def _outcome_policy(self) -> OutcomePolicy:
        return OutcomePolicy(
            backoff=self._options.backoff, ambiguous_policy=self._options.ambiguous_policy
        )

    async def _finish(
        self,
        message: OutboxMessage,
        transition: MessageTransition,
        finished: list[AttemptFinished],
        *,
        provider_name: str | None = None,
    ) -> None:
        await self._journal_write(finished=finished, transitions=[transition])
        state = transition.state
        if state is MessageState.SENT:
            self.stats.sent += 1
        elif state is MessageState.FAILED:
            self.stats.failed += 1
        elif state is MessageState.DEFERRED:
            self.stats.deferred += 1
        elif state is MessageState.UNKNOWN:
            self.stats.unknown += 1
        self._events.publish(
            MessageStateChanged(
                outbox_id=message.outbox_id,
                message_id=message.message_id,
                state=state,
                provider_name=provider_name,
                detail=transition.last_error or "",
            )
        )

    # -- plumbing -------------------------------------------------------------------------

    def _attempt_event(
        self, message: OutboxMessage, lane: ProviderLane, number: int, result: TransactionResult
    ) -> AttemptRecorded:
        now = time.time()
        return AttemptRecorded(
            AttemptRecord(
                outbox_id=message.outbox_id,
                message_id=message.message_id,
                number=number,
                provider_id=lane.config.id,
                provider_name=lane.config.name,
                started_at=now - result.latency_ms / 1000,
                finished_at=now,
                latency_ms=result.latency_ms,
                outcome=result.outcome,
                phase=result.phase,
                reply_code=result.reply_code,
                enhanced_status=result.enhanced_status,
                detail=result.detail,
            )
        )

    def _announce_after_commit(self, message: OutboxMessage, event: Event) -> None:
        """Publish ``event`` after the next journal write of this message's attempt entries."""
        self._after_commit.setdefault(message.outbox_id, []).append(event)

    def _publish_status(self, detail: str) -> None:
        self._events.publish(
            EngineStatusChanged(
                running=self.running, paused=self._paused, waiting=len(self._tasks), detail=detail
            )
        )

    async def _journal_write(
        self,
        *,
        withdrawn: list[AttemptWithdrawn] | None = None,
        started: list[AttemptStarted] | None = None,
        finished: list[AttemptFinished] | None = None,
        transitions: list[MessageTransition] | None = None,
    ) -> None:
        assert self._journal is not None
        await self._journal.write(
            withdrawn=withdrawn or (),
            started=started or (),
            finished=finished or (),
            transitions=transitions or (),
        )
        # What these entries make true may be told now (events.py: only after the commit).
        for entry in finished or ():
            for event in self._after_commit.pop(entry.outbox_id, ()):
                self._events.publish(event)

    async def _db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking storage call on the engine's database thread."""
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))
