"""The health monitor: probes every provider on a schedule and keeps its health history.

Runs on the loop thread next to the delivery engine and hears the engine's events (it is an
``EventSink``): every real send counts, as does every probe (connect, EHLO, STARTTLS, AUTH,
NOOP, QUIT; every 60 s, every 5 s while a provider is down or suspect). Status and incidents
are decided by ``tracker.ProviderTracker``; what happened per minute is summed in memory and
added to the rollup rows every few seconds on the monitor's own database thread (never the
engine's), which also rolls minutes into hours and prunes old history in small batches.

Only one monitor writes per data folder: the app runs it under the instance lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from desktop_app.core.delivery.smtp_connection import NO_PASSWORD_DETAIL
from desktop_app.core.disk_space import log_failure
from desktop_app.core.errors import KeyringUnavailableError
from desktop_app.core.events import (
    AttemptRecorded,
    Event,
    EventSink,
    IncidentChanged,
    ProbeRecorded,
    ProviderHealthChanged,
    ProviderStateChanged,
)
from desktop_app.core.health import maintenance
from desktop_app.core.health.probe import ProbeResult, probe_provider
from desktop_app.core.health.rollup import (
    HOUR,
    OUTCOME_COLUMNS,
    RollupDelta,
    bucket_start,
    split_by_bucket,
)
from desktop_app.core.health.tracker import (
    DOWN,
    MAINTENANCE,
    IncidentChange,
    OpenIncident,
    ProviderTracker,
)
from desktop_app.core.models import OutcomeClass, ProviderConfig, ProviderLiveState
from desktop_app.core.provider_state import ProviderStateBoard
from desktop_app.core.secrets import SecretStore
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.health import HealthRepository, ProbeRecord
from desktop_app.core.storage.provider_states import ProviderStateRepository
from desktop_app.core.storage.providers import ProviderRepository

log = logging.getLogger(__name__)

T = TypeVar("T")
ProbeFunction = Callable[..., Awaitable[ProbeResult]]

#: Outcomes that show the provider working (it answered sensibly) or not working.
_WORKING = frozenset(
    {
        OutcomeClass.DELIVERED,
        OutcomeClass.RECIPIENT_PERMANENT,
        OutcomeClass.RECIPIENT_TRANSIENT,
        OutcomeClass.CONTENT_REJECTED,
    }
)
RELOAD_SECONDS = 5.0
ROLLUP_SECONDS = 300.0
PRUNE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    probe_interval: float = 60.0
    probe_interval_down: float = 5.0
    incident_after: int = 2
    probe_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> MonitorOptions:
        return cls(
            probe_interval=float(settings["health.probe_interval_seconds"]),
            probe_interval_down=float(settings["health.probe_interval_down_seconds"]),
            incident_after=int(settings["health.incident_after_failures"]),
            probe_timeout=float(settings["smtp.timeout_seconds"]),
        )


class _WindowCache:
    """Maintenance intervals of one provider, computed for two days at a time.

    The tracker asks several times per observation and the engine's events come by the
    thousand per second; weekly windows are evaluated with zoneinfo, so the merged intervals
    are computed once around "now" and only clipped per question.
    """

    HORIZON = 86400.0

    def __init__(self) -> None:
        self._windows: object = None
        self._start = self._end = 0.0
        self._merged: list[tuple[float, float]] = []

    def intervals(
        self, windows: Sequence[Any], start: float, end: float
    ) -> list[tuple[float, float]]:
        if not windows:
            return []
        if windows is not self._windows or start < self._start or end > self._end:
            self._windows = windows
            self._start, self._end = start - self.HORIZON, max(start, end) + self.HORIZON
            self._merged = maintenance.intervals(windows, self._start, self._end)
        if start == end:  # "is this instant covered?" (see maintenance.intervals)
            return [(start, start)] if any(a <= start < b for a, b in self._merged) else []
        return [
            (max(a, start), min(b, end))
            for a, b in self._merged
            if a < end and b > start and min(b, end) > max(a, start)
        ]


@dataclass
class _Watch:
    """What the monitor keeps about one provider."""

    config: ProviderConfig
    tracker: ProviderTracker
    state: str = "unknown"
    state_since: float = 0.0
    detail: str = ""
    next_probe_at: float = 0.0
    probing: bool = False


@dataclass
class _Pending:
    """Everything not yet written, handed to the database thread in one go."""

    probes: list[ProbeRecord] = field(default_factory=list)
    deltas: dict[tuple[str, float], RollupDelta] = field(default_factory=dict)
    incidents: list[tuple[str, IncidentChange]] = field(default_factory=list)  # (uid, change)


class HealthMonitor:
    """Probes providers and records their health; also an EventSink for engine events."""

    def __init__(
        self,
        health: HealthRepository,
        providers: ProviderRepository,
        settings: SettingsStore,
        secrets: SecretStore,
        events: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        probe: ProbeFunction = probe_provider,
        flush_seconds: float = 5.0,
        helo_name: str | None = None,
        probe_on_start: bool = True,
        board: ProviderStateBoard | None = None,
        states: ProviderStateRepository | None = None,
    ) -> None:
        self._health = health
        # The provider-state home: probes and observed health are reported to it, and it
        # is what the monitor persists (``states``) for other processes to read.
        self.board = board or ProviderStateBoard(events, clock=clock)
        self._states = states
        self._providers = providers
        self._settings = settings
        self._secrets = secrets
        self._events = events
        self._clock = clock
        self._probe = probe
        self._flush_seconds = flush_seconds
        self._probe_on_start = probe_on_start
        self._helo_name = helo_name or socket.gethostname() or "localhost"
        self._options = MonitorOptions()
        self._watches: dict[str, _Watch] = {}  # by provider uid
        self._uid_by_id: dict[int, str] = {}
        self._open_incidents: dict[str, OpenIncident] = {}  # left open by the last run
        self._pending = _Pending()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._flush_soon = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._reload_requested = False
        self._has_feed = False
        self.started = False

    # -- life -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load providers, settings and incidents left open (call on the loop thread)."""
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="health-db")
        self._open_incidents = await self._db(self._health.open_incidents)
        await self.reload()
        self.started = True

    async def run(self) -> None:
        """Probe, flush, roll up and prune until ``request_stop()``."""
        if not self.started:
            await self.start()
        next_reload = next_flush = time.monotonic()
        next_rollup = next_prune = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._reload_requested or (not self._has_feed and now >= next_reload):
                    self._reload_requested = False
                    await self.reload()
                    next_reload = now + RELOAD_SECONDS
                self._start_due_probes()
                if now >= next_flush or self._flush_soon.is_set():
                    self._flush_soon.clear()
                    await self.flush()
                    next_flush = now + self._flush_seconds
                if now >= next_rollup:
                    self._spawn(self._roll_up(), "health-rollup")
                    next_rollup = now + ROLLUP_SECONDS
                if now >= next_prune:
                    self._spawn(self._prune(), "health-prune")
                    next_prune = now + PRUNE_SECONDS
                try:
                    await asyncio.wait_for(self._flush_soon.wait(), timeout=0.25)
                except TimeoutError:
                    pass
        finally:
            await self.close()

    def request_stop(self) -> None:
        self._stop.set()

    def follow_changes(self) -> None:
        """A change feed will call ``on_changes``: no re-reads of providers on a timer."""
        self._has_feed = True

    def on_changes(self, topics: frozenset[str]) -> None:
        """The change feed saw providers, maintenance or settings change (loop thread)."""
        if topics & {"providers", "maintenance", "settings"}:
            self._reload_requested = True
            self._flush_soon.set()  # wakes the loop

    async def close(self) -> None:
        """Drop probes in flight, write everything, stop the database thread."""
        for task in list(self._tasks):
            if task.get_name().startswith("probe-"):
                task.cancel()  # a probe can take a whole timeout; its answer is not needed
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._executor is None:
            return
        await self.flush()
        self._executor.shutdown(wait=True)
        self._executor = None

    async def reload(self) -> None:
        """Re-read providers and settings (CLI and GUI edits reach a running monitor)."""
        settings = await self._db(self._settings.all)
        self._options = MonitorOptions.from_settings(settings)
        configs = await self._db(self._providers.all)
        seen = set()
        now = self._clock()
        for config in configs:
            seen.add(config.uid)
            watch = self._watches.get(config.uid)
            if watch is None:
                watch = self._new_watch(config, now)
                self._watches[config.uid] = watch
            watch.config = config
            watch.tracker.incident_after = max(1, self._options.incident_after)
            if config.id is not None:
                self._uid_by_id[config.id] = config.uid
        for gone in set(self._watches) - seen:
            del self._watches[gone]
        self.board.sync_providers(configs)

    def _new_watch(self, config: ProviderConfig, now: float) -> _Watch:
        uid = config.uid
        open_incident = self._open_incidents.pop(uid, None)
        watch: _Watch

        cache = _WindowCache()

        def windows(start: float, end: float) -> list[tuple[float, float]]:
            return cache.intervals(watch.config.maintenance, start, end)

        def spans(start: float, end: float, status: str) -> None:
            for bucket, seconds in split_by_bucket(start, end):
                self._delta(uid, bucket).add_seconds(status, seconds)

        tracker = ProviderTracker(
            incident_after=self._options.incident_after,
            maintenance=windows,
            spans=spans,
            open_incident=open_incident,
        )
        watch = _Watch(config=config, tracker=tracker, state_since=now)
        watch.state = tracker.status_at(now)
        if not self._probe_on_start:
            watch.next_probe_at = now + self._options.probe_interval
        return watch

    # -- engine events (loop thread) ----------------------------------------------------------

    def publish(self, event: Event) -> None:
        """EventSink: real sends count as observations; state moves are written soon."""
        if isinstance(event, AttemptRecorded):
            self._on_attempt(event)
        elif isinstance(event, ProviderStateChanged):
            self._flush_soon.set()

    def _on_attempt(self, event: AttemptRecorded) -> None:
        attempt = event.attempt
        uid = self._uid_by_id.get(attempt.provider_id or -1)
        watch = self._watches.get(uid or "")
        if watch is None:
            return
        at = self._clock()
        delta = self._delta(watch.config.uid, at)
        delta.count(OUTCOME_COLUMNS[attempt.outcome])
        if attempt.outcome in _WORKING:
            delta.send_latency.add(attempt.latency_ms)
            changes = watch.tracker.observe(at, ok=True)
        elif attempt.outcome is OutcomeClass.PROVIDER_FAILURE:
            phase = attempt.phase.value if attempt.phase else "send"
            changes = watch.tracker.observe(at, ok=False, cause=f"{phase}: {attempt.detail}")
        else:
            return  # ambiguous or 4xx after DATA: counted, but says nothing about up/down
        self._after_observation(watch, changes, at)

    # -- probes -----------------------------------------------------------------------------

    def _start_due_probes(self) -> None:
        now = self._clock()
        for watch in self._watches.values():
            if watch.config.enabled and not watch.probing and watch.next_probe_at <= now:
                watch.probing = True
                self._spawn(self._probe_one(watch), f"probe-{watch.config.name}")

    async def probe_all(self, names: Sequence[str] | None = None) -> list[ProbeResult]:
        """Probe now (every enabled provider, or those named) and wait for the results."""
        watches = [
            w
            for w in self._watches.values()
            if (names is None and w.config.enabled)
            or (names is not None and w.config.name in names)
        ]
        for watch in watches:
            watch.probing = True
        return list(await asyncio.gather(*(self._probe_one(w) for w in watches)))

    async def _probe_one(self, watch: _Watch) -> ProbeResult:
        config = watch.config
        started = self._clock()
        try:
            try:
                password = (
                    await self._db(self._secrets.get_password, config.uid)
                    if config.username
                    else None
                )
            except KeyringUnavailableError as exc:
                result = ProbeResult(config.name, ok=False, latency_ms=0.0, detail=str(exc))
            else:
                result = await self._probe(
                    config,
                    password,
                    timeout=min(self._options.probe_timeout, 30.0),
                    helo_name=self._helo_name,
                )
            self._record_probe(watch, result, started)
            return result
        finally:
            watch.probing = False
            interval = (
                self._options.probe_interval_down
                if watch.tracker.status_at(started) == DOWN or watch.tracker.consecutive_failures
                else self._options.probe_interval
            )
            watch.next_probe_at = started + interval

    def _record_probe(self, watch: _Watch, result: ProbeResult, at: float) -> None:
        uid = watch.config.uid
        in_window = watch.tracker.status_at(at) == MAINTENANCE
        status = MAINTENANCE if in_window else ("up" if result.ok else "down")
        self._pending.probes.append(
            ProbeRecord(
                provider_uid=uid,
                provider_name=watch.config.name,
                started_at=at,
                status=status,
                latency_ms=result.latency_ms,
                phases_ms=result.phases_ms,
                failed_phase=result.failed_phase.value if result.failed_phase else None,
                reply_code=result.reply_code,
                detail=result.detail,
            )
        )
        if not in_window:
            delta = self._delta(uid, at)
            delta.count("probes_up" if result.ok else "probes_down")
            if result.ok:
                delta.probe_latency.add(result.latency_ms)
        cause = "" if result.ok else result.summary().split(": ", 1)[-1]
        self.board.report_password(uid, result.detail == NO_PASSWORD_DETAIL)
        if not in_window:
            self.board.report_probe(uid, result.ok, at, "" if result.ok else result.detail)
        changes = watch.tracker.observe(at, ok=result.ok, cause=f"probe {cause}".strip())
        self._after_observation(watch, changes, at)
        self._events.publish(
            ProbeRecorded(watch.config.name, status, result.latency_ms, result.detail)
        )

    # -- bookkeeping ----------------------------------------------------------------------------

    def _after_observation(self, watch: _Watch, changes: list[IncidentChange], at: float) -> None:
        for change in changes:
            self._pending.incidents.append((watch.config.uid, change))
            if not change.opened and change.ended_at is None:
                continue  # one more failure of an incident already announced
            incident = change.incident
            self._events.publish(
                IncidentChanged(
                    watch.config.name,
                    incident.started_at,
                    change.ended_at,
                    incident.cause,
                    incident.failures,
                )
            )
        if changes:
            self._flush_soon.set()
        self._update_state(watch, at)

    def _update_state(self, watch: _Watch, at: float) -> None:
        state = watch.tracker.status_at(at)
        if state == watch.state:
            return
        watch.state = state
        watch.state_since = at
        self._flush_soon.set()
        # Maintenance is the engine's news too (it drains the provider); both read the same
        # windows. Health itself stays what sends and probes said before the window.
        self.board.report_maintenance(watch.config.uid, state == MAINTENANCE)
        if state != MAINTENANCE:
            self.board.report_health(watch.config.uid, state)
        self._events.publish(ProviderHealthChanged(watch.config.name, state, watch.detail))

    def _delta(self, uid: str, at: float) -> RollupDelta:
        key = (uid, bucket_start(at))
        delta = self._pending.deltas.get(key)
        if delta is None:
            delta = self._pending.deltas[key] = RollupDelta(self._watches[uid].config.name)
        return delta

    async def flush(self) -> None:
        """Count watched time up to now and write everything pending."""
        async with self._write_lock:
            now = self._clock()
            for watch in self._watches.values():
                self._after_observation(watch, watch.tracker.accrue(now), now)
            pending, self._pending = self._pending, _Pending()
            # The heartbeat: every flush says "the sending app is watching, as of now".
            self.board.take_dirty()
            statuses = [dataclasses.replace(live, updated_at=now) for live in self.board.snapshot()]
            try:
                await self._db(self._write, pending, statuses)
            except Exception:
                log_failure(log, "could not write health history; keeping it for the next try")
                self._pending.probes[:0] = pending.probes
                self._pending.incidents[:0] = pending.incidents
                for key, delta in pending.deltas.items():
                    current = self._pending.deltas.get(key)
                    if current is None:
                        self._pending.deltas[key] = delta
                    else:
                        current.merge(delta)

    def _write(self, pending: _Pending, statuses: list[ProviderLiveState]) -> None:
        """On the monitor's database thread."""
        self._health.record_probes(pending.probes)
        self._health.add_minute_deltas(pending.deltas)
        for uid, change in pending.incidents:
            incident = change.incident
            if incident.row_id is None:
                name = self._watches[uid].config.name if uid in self._watches else ""
                # Only this thread reads or sets row_id after the incident was handed over.
                incident.row_id = self._health.open_incident(
                    uid, name, incident.started_at, incident.cause, incident.failures
                )
            self._health.update_incident(
                incident.row_id, failures=incident.failures, ended_at=change.ended_at
            )
        if self._states is not None:
            self._states.save(statuses, keep=[live.provider_uid for live in statuses])

    async def _roll_up(self) -> None:
        now = self._clock()
        hour = bucket_start(now, HOUR)
        try:
            await self._db(self._health.roll_up_hours, hour - 2 * HOUR, hour + HOUR)
        except Exception:
            log_failure(log, "hourly health rollup failed")

    async def _prune(self) -> None:
        try:
            report = await self._db(self._health.prune, self._clock())
        except Exception:
            log_failure(log, "pruning health history failed")
            return
        if any(report.deleted.values()):
            log.info("pruned health history: %s", report.deleted)

    # -- reading ---------------------------------------------------------------------------------

    def live_states(self) -> dict[str, ProviderLiveState]:
        """provider uid -> its live state as the provider-state home has it now."""
        return {live.provider_uid: live for live in self.board.snapshot()}

    # -- plumbing ------------------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _db(self, function: Callable[..., T], *args: Any) -> T:
        assert self._executor is not None, "start() the monitor first"
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args))
