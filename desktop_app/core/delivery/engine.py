"""The delivery engine: claims due mail from the outbox and sends it through the providers.

One dispatcher task claims as many due messages as the providers have room for; each
message then gets its own task that routes it, sends it, and fails over at once to the
next usable provider when a provider fails. Everything runs on the loop thread
(core/runtime.py); database work goes to one executor thread and is group-committed
(journal.py).

For each message the durable order is the outbox contract (DESIGN.md):
  claim (lease, committed) -> attempt row committed -> MAIL FROM ... "." -> outcome committed
-> only then an event tells anyone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from desktop_app.core.delivery.breaker import CircuitBreaker
from desktop_app.core.delivery.classify import counts_against_provider
from desktop_app.core.delivery.journal import Journal
from desktop_app.core.delivery.limiter import RateLimiter
from desktop_app.core.delivery.pool import AcquireAbandoned, ConnectionPool
from desktop_app.core.delivery.retry import BackoffPolicy
from desktop_app.core.delivery.router import Router
from desktop_app.core.delivery.smtp_connection import SmtpFailure, TransactionResult
from desktop_app.core.events import (
    AttemptRecorded,
    EngineStatusChanged,
    EventSink,
    FailoverHappened,
    MessageStateChanged,
    ProviderStateChanged,
    QuotaExhausted,
)
from desktop_app.core.health.maintenance import active_window, format_local, next_change
from desktop_app.core.models import (
    AmbiguousPolicy,
    AttemptRecord,
    BreakerState,
    MessageState,
    OutboxMessage,
    OutcomeClass,
    ProviderConfig,
    ProviderState,
    SmtpPhase,
)
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

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longer than this, a message waiting for rate quota goes back to the outbox instead
#: of holding a lease and a connection in memory.
MAX_IN_MEMORY_WAIT = 10.0
#: Each provider may have this many messages routed to it per connection, so the next
#: messages' attempt rows are committed while the current one is on the wire. More in hand
#: means bigger group commits: 8 took the loopback benchmark from ~7 to ~10 messages per
#: commit and ~15 % more throughput; 16 was no better (bench_throughput.py).
RESERVATIONS_PER_CONNECTION = 8
#: How often providers and settings are re-read, so CLI edits reach a running engine.
RELOAD_SECONDS = 5.0
LEASE_SECONDS = 300.0


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


class ProviderLane:
    """What the engine keeps about one provider while it runs."""

    def __init__(
        self, config: ProviderConfig, pool: ConnectionPool, options: EngineOptions
    ) -> None:
        self.config = config
        self.pool = pool
        self.breaker = CircuitBreaker(options.breaker_threshold, options.breaker_open_seconds)
        self.limiter = RateLimiter(config.rate_limits)
        self.reserved = 0  # messages routed here and not yet finished with the connection
        self.probing = False
        self.send_gate = asyncio.Lock()  # quota check -> attempt row -> token, one at a time
        self.quota_announced_until = 0.0  # a QuotaExhausted event covers until then
        self.state = ProviderState.UNKNOWN  # what is announced: maintenance over health
        self.health_state = ProviderState.UNKNOWN  # what its attempts said: up, down, unknown
        # Whether a maintenance window covers now, as last checked. The answer holds from
        # _maintenance_checked_at until maintenance_next_change, so the clock is compared
        # per routing decision and the windows (zoneinfo) are evaluated only at boundaries.
        self.in_maintenance = False
        self.maintenance_next_change = -math.inf
        self._maintenance_checked_at = math.inf

    def breaker_opened(self) -> bool:
        return self.breaker.state is BreakerState.OPEN

    @property
    def has_room(self) -> bool:
        return self.reserved < self.config.max_connections * RESERVATIONS_PER_CONNECTION

    def maintenance_changed(self, now: float) -> bool:
        """Bring ``in_maintenance`` up to ``now``; True when it flipped."""
        if self._maintenance_checked_at <= now < self.maintenance_next_change:
            return False
        windows = self.config.maintenance
        active = bool(windows) and active_window(windows, now) is not None
        change = next_change(windows, now) if windows else None
        self._maintenance_checked_at = now
        self.maintenance_next_change = math.inf if change is None else change
        flipped = active is not self.in_maintenance
        self.in_maintenance = active
        return flipped

    def forget_maintenance_check(self) -> None:
        """The windows changed: check them again at the next routing decision."""
        self._maintenance_checked_at = math.inf

    def routable(self) -> bool:
        """Enabled, not in maintenance, breaker lets it try, quota now, room for one more."""
        return (
            self.config.enabled
            and not self.in_maintenance
            and self.breaker.allows_request()
            and self.limiter.delay() == 0.0
            and self.has_room
        )


class _Rerouted(Exception):
    """The chosen provider's breaker opened before it was contacted: choose again."""


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
        self._pending_work: Callable[[], int] = outbox.pending_count
        self._companions_busy: Callable[[], bool] = lambda: False

    # -- control (call on the loop thread) ------------------------------------------------

    def wake(self) -> None:
        """New mail was queued or something changed: look again now."""
        self._wake.set()

    def request_stop(self) -> None:
        self._stop_requested = True
        self._wake.set()

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
            self._outbox, self.owner, self._executor, lease_seconds=LEASE_SECONDS
        )
        self._journal.start()
        self.running = True
        try:
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
        finally:
            await self._shutdown(drain_timeout)

    async def _dispatch(self, until_idle: bool) -> None:
        next_reload = time.monotonic() + RELOAD_SECONDS
        while not self._stop_requested:
            if time.monotonic() >= next_reload:
                await self.reload()
                next_reload = time.monotonic() + RELOAD_SECONDS
            self._check_maintenance()
            await self._housekeeping()
            if self._paused:
                await self._sleep(1.0)
                continue
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

    def _free_capacity(self) -> tuple[int, int]:
        """(messages to claim now, total room): room on usable providers minus work in hand."""
        usable = [
            lane
            for lane in self._lanes.values()
            if lane.config.enabled and lane.breaker.allows_request() and lane.limiter.delay() == 0.0
        ]
        open_lanes = [lane for lane in usable if not lane.in_maintenance]
        if not open_lanes and not any(
            lane.config.enabled and not lane.in_maintenance for lane in self._lanes.values()
        ):
            # Every enabled provider is in maintenance: claim what is due all the same, so
            # that it waits deferred until a window ends, with the reason, not queued without.
            open_lanes = usable
        room = sum(lane.config.max_connections * RESERVATIONS_PER_CONNECTION for lane in open_lanes)
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
        self.running = False
        self._publish_status("stopped")

    # -- providers and settings -----------------------------------------------------------

    async def reload(self) -> None:
        """Re-read providers and settings; keep breakers, limiters and connections that apply."""
        settings = await self._db(self._settings.all)
        self._options = EngineOptions.from_settings(settings)
        configs = await self._db(self._providers.all)
        seen: set[int] = set()
        for config in configs:
            assert config.id is not None
            seen.add(config.id)
            lane = self._lanes.get(config.id)
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
                lane.pool.reconfigure(_connection_settings(config))
                lane.limiter.update(config.rate_limits)
            lane.breaker.configure(
                self._options.breaker_threshold, self._options.breaker_open_seconds
            )
        for gone in set(self._lanes) - seen:
            lane = self._lanes.pop(gone)
            await lane.pool.close_all()
        self._wake.set()

    def _new_lane(self, config: ProviderConfig) -> ProviderLane:
        uid = config.uid

        async def password() -> str | None:
            return await self._db(self._secrets.get_password, uid)

        pool = ConnectionPool(
            _connection_settings(config),
            password,
            timeout=self._options.smtp_timeout,
            helo_name=self._helo_name,
        )
        return ProviderLane(config, pool, self._options)

    async def _housekeeping(self) -> None:
        for lane in list(self._lanes.values()):
            await lane.pool.close_idle()
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
                self._record_breaker(lane, failure.outcome, failure.detail)
                return
            await lane.pool.release(connection)
            self._record_breaker(lane, OutcomeClass.DELIVERED, "probe succeeded")
        finally:
            lane.probing = False

    # -- one message ----------------------------------------------------------------------

    async def _deliver_safely(self, message: OutboxMessage) -> None:
        try:
            await self._deliver(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
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
                    self._deferral(
                        message,
                        number,
                        reason="no_provider",
                        error=(last_failure or "no usable provider") + why,
                        provider_id=None,
                        due_at=back_at,
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
            finished = self._finished_entry(message, number, result)
            self._publish_attempt(message, lane, number, result)
            if result.outcome is OutcomeClass.PROVIDER_FAILURE:
                tried.add(lane.config.id or 0)
                carried = [finished]
                last_failure = f"{lane.config.name}: {result.detail}"
                self.stats.failovers += 1
                self._events.publish(
                    FailoverHappened(message.outbox_id, lane.config.name, result.detail)
                )
                continue
            transition = self._transition_after(message, number, lane, result)
            await self._finish(message, transition, [finished], provider_name=lane.config.name)
            return

    async def _give_back(
        self,
        message: OutboxMessage,
        attempts: int,
        carried: list[AttemptFinished],
        due_at: float,
    ) -> None:
        """Back to the queue untried, due when quota frees up; not counted as a deferral."""
        await self._finish(
            message,
            MessageTransition(
                outbox_id=message.outbox_id,
                state=MessageState.QUEUED,
                remaining_recipients=message.recipients,
                attempt_count=attempts,
                deferral_count=message.deferral_count,
                provider_id=None,
                next_attempt_at=due_at,
                last_error="waiting for provider rate limits",
                defer_reason="rate_limit",
            ),
            carried,
        )

    async def _route(self, message: OutboxMessage, tried: set[int]) -> ProviderLane | None:
        """A lane for this message, waiting briefly when the right ones are only busy."""
        while True:
            self._check_maintenance()
            if message.route == "healthiest":
                chosen = self._healthiest(message, tried)
            else:
                chosen = self._router.choose(
                    [lane.config for lane in self._lanes.values()],
                    message.sender_domain,
                    lambda config: (
                        config.id not in tried and self._lanes[config.id or 0].routable()
                    ),
                )
            if chosen is not None:
                lane = self._lanes[chosen.id or 0]
                lane.reserved += 1
                lane.breaker.acquire()
                return lane
            # Someone authorized and healthy but busy (or waiting for quota)? Then wait for it.
            busy = [
                lane
                for lane in self._lanes.values()
                if lane.config.id not in tried
                and lane.config.enabled
                and not lane.in_maintenance
                and lane.config.authorizes(message.sender_domain)
                and (lane.breaker.allows_request() or lane.breaker.state is BreakerState.HALF_OPEN)
            ]
            if not busy or self._stop_requested:
                return None
            quota_waits = [lane.limiter.delay() for lane in busy]
            if all(wait > MAX_IN_MEMORY_WAIT for wait in quota_waits):
                raise _GiveBack(time.time() + min(quota_waits))
            # Busy lanes free up when a transaction ends (which sets _wake); poll gently.
            await asyncio.sleep(min(0.05, *(w for w in quota_waits if w > 0), 0.05))

    def _healthiest(self, message: OutboxMessage, tried: set[int]) -> ProviderConfig | None:
        """For alert mail: the usable provider in the best health, whatever its priority.

        Up before unknown before anything else, then the fewest recent failures, then the
        configured priority; an alert must not wait behind a tier that is failing.
        """
        usable = [
            lane
            for lane in self._lanes.values()
            if lane.config.id not in tried
            and lane.config.authorizes(message.sender_domain)
            and lane.routable()
        ]
        if not usable:
            return None
        rank = {ProviderState.UP: 0, ProviderState.UNKNOWN: 1}
        best = min(
            usable,
            key=lambda lane: (
                rank.get(lane.state, 2),
                lane.breaker.consecutive_failures,
                lane.config.priority,
            ),
        )
        return best.config

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
        self._events.publish(QuotaExhausted(lane.config.name, now + wait))

    async def _attempt(
        self,
        lane: ProviderLane,
        message: OutboxMessage,
        number: int,
        carried: list[AttemptFinished],
    ) -> TransactionResult:
        """One try through one provider; the lane's reservation is released on the way out."""
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
                        if delay > MAX_IN_MEMORY_WAIT:
                            lane.breaker.release_trial()
                            raise _GiveBack(time.time() + delay)
                        await self._journal_write(started=[started], finished=carried)
                        while not lane.limiter.try_acquire():
                            await asyncio.sleep(max(lane.limiter.delay(), 0.001))
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

    def _record_breaker(self, lane: ProviderLane, outcome: OutcomeClass, detail: str) -> None:
        """Feed an outcome to the provider's breaker and announce state changes."""
        before = (lane.state, lane.breaker.state)
        if counts_against_provider(outcome):
            lane.breaker.record_failure()
            if (
                outcome is OutcomeClass.PROVIDER_FAILURE
                or lane.breaker.state is not BreakerState.CLOSED
            ):
                lane.health_state = ProviderState.DOWN
        else:
            # It answered sensibly (even a refusal of a recipient is a working provider).
            lane.breaker.record_success()
            lane.health_state = ProviderState.UP
        # A transaction that was in flight when a window began still reports its outcome.
        lane.state = ProviderState.MAINTENANCE if lane.in_maintenance else lane.health_state
        if (lane.state, lane.breaker.state) == before:
            return
        self._events.publish(
            ProviderStateChanged(lane.config.name, lane.state, lane.breaker.state, detail)
        )
        if lane.state is ProviderState.UP and before[0] is not ProviderState.UP:
            # Mail that waited only for a provider need not sit out its backoff.
            self._wake_waiting_soon()

    # -- maintenance windows --------------------------------------------------------------

    def _check_maintenance(self) -> None:
        """Enter and leave maintenance windows as the clock passes their boundaries.

        In a window a provider takes no new transactions (routable() says no, and it is not
        "busy" either, so mail goes to the others at once). What it already has finishes:
        transactions on the wire and messages routed to it before the window began that wait
        for one of its connections (at most RESERVATIONS_PER_CONNECTION per connection).
        """
        now = time.time()
        for lane in self._lanes.values():
            if lane.maintenance_changed(now):
                self._announce_maintenance(lane, now)

    def _announce_maintenance(self, lane: ProviderLane, now: float) -> None:
        if lane.in_maintenance:
            lane.state = ProviderState.MAINTENANCE
            window = active_window(lane.config.maintenance, now)
            detail = "maintenance window"
            if math.isfinite(lane.maintenance_next_change):
                detail += f" until {format_local(lane.maintenance_next_change)}"
            if window is not None and window.note:
                detail += f": {window.note}"
        else:
            lane.state = lane.health_state
            detail = "maintenance window ended"
            self._wake_waiting_soon()
        log.info("%s: %s", lane.config.name, detail)
        self._events.publish(
            ProviderStateChanged(lane.config.name, lane.state, lane.breaker.state, detail)
        )

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
        woken = await self._db(self._outbox.wake_waiting_for_provider)
        if woken:
            log.info("a provider is back: %d waiting messages are due now", woken)
            self._wake.set()

    # -- outcomes -> transitions ----------------------------------------------------------

    def _finished_entry(
        self, message: OutboxMessage, number: int, result: TransactionResult
    ) -> AttemptFinished:
        return AttemptFinished(
            outbox_id=message.outbox_id,
            number=number,
            finished_at=time.time(),
            latency_ms=result.latency_ms,
            outcome=result.outcome,
            phase=result.phase.value,
            reply_code=result.reply_code,
            enhanced_status=result.enhanced_status,
            detail=result.detail,
        )

    def _transition_after(
        self,
        message: OutboxMessage,
        number: int,
        lane: ProviderLane,
        result: TransactionResult,
    ) -> MessageTransition:
        provider_id = lane.config.id
        refused = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in result.refused_permanently)
        outcome = result.outcome
        if outcome is OutcomeClass.DELIVERED:
            if result.refused_transiently:
                # Delivered to some; the others said "later": keep only those.
                remaining = tuple(result.refused_transiently)
                return self._deferral(
                    message,
                    number,
                    reason="recipient",
                    error=f"delivered to {len(result.delivered_to)}; waiting for "
                    + ", ".join(remaining)
                    + (f"; refused: {refused}" if refused else ""),
                    provider_id=provider_id,
                    remaining=remaining,
                )
            return MessageTransition(
                outbox_id=message.outbox_id,
                state=MessageState.SENT,
                remaining_recipients=(),
                attempt_count=number,
                deferral_count=message.deferral_count,
                provider_id=provider_id,
                sent_at=time.time(),
                last_error=f"refused: {refused}" if refused else None,
            )
        if outcome is OutcomeClass.RECIPIENT_TRANSIENT:
            # Permanently refused recipients leave the envelope here: name them (as "sent"
            # does), since nothing else records which addresses were refused.
            return self._deferral(
                message,
                number,
                reason="recipient",
                error=f"{result.detail}; refused: {refused}" if refused else result.detail,
                provider_id=provider_id,
                remaining=tuple(result.refused_transiently),
            )
        if outcome is OutcomeClass.TRANSIENT_AFTER_DATA:
            return self._deferral(
                message, number, reason="after_data", error=result.detail, provider_id=provider_id
            )
        if outcome is OutcomeClass.AMBIGUOUS:
            retry = self._options.ambiguous_policy is AmbiguousPolicy.RETRY
            deferrals = message.deferral_count + 1
            return MessageTransition(
                outbox_id=message.outbox_id,
                state=MessageState.UNKNOWN,
                remaining_recipients=message.recipients,
                attempt_count=number,
                deferral_count=deferrals,
                provider_id=provider_id,
                next_attempt_at=(
                    time.time() + self._options.backoff.delay(deferrals) if retry else None
                ),
                last_error=f"{lane.config.name} may have accepted it: {result.detail}",
                possible_duplicate=True,
            )
        # RECIPIENT_PERMANENT and CONTENT_REJECTED: final, never tried elsewhere.
        return MessageTransition(
            outbox_id=message.outbox_id,
            state=MessageState.FAILED,
            remaining_recipients=(),
            attempt_count=number,
            deferral_count=message.deferral_count,
            provider_id=provider_id,
            last_error=refused or result.detail,
        )

    def _deferral(
        self,
        message: OutboxMessage,
        number: int,
        *,
        reason: str,
        error: str,
        provider_id: int | None,
        remaining: tuple[str, ...] | None = None,
        due_at: float | None = None,
    ) -> MessageTransition:
        """Deferred with backoff (or until ``due_at``), or failed once past its lifetime."""
        now = time.time()
        deferrals = message.deferral_count + 1
        remaining = message.recipients if remaining is None else remaining
        if self._options.backoff.expired(message.created_at, now):
            hours = self._options.backoff.max_age_seconds / 3600
            return MessageTransition(
                outbox_id=message.outbox_id,
                state=MessageState.FAILED,
                remaining_recipients=remaining,
                attempt_count=number,
                deferral_count=deferrals,
                provider_id=provider_id,
                last_error=f"expired after {hours:g} h without delivery: {error}",
            )
        return MessageTransition(
            outbox_id=message.outbox_id,
            state=MessageState.DEFERRED,
            remaining_recipients=remaining,
            attempt_count=number,
            deferral_count=deferrals,
            provider_id=provider_id,
            next_attempt_at=due_at or now + self._options.backoff.delay(deferrals),
            last_error=error,
            defer_reason=reason,
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

    def _publish_attempt(
        self, message: OutboxMessage, lane: ProviderLane, number: int, result: TransactionResult
    ) -> None:
        now = time.time()
        self._events.publish(
            AttemptRecorded(
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
        )

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

    async def _db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking storage call on the engine's database thread."""
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))


def _connection_settings(config: ProviderConfig) -> ProviderConfig:
    """What connections depend on: a new maintenance window must not retire them."""
    return dataclasses.replace(config, maintenance=())
