"""Per-provider time series for the Dashboard charts, read from the health rollup tables.

A ``HealthSeries`` covers one range (1 h .. 30 d, or longer) ending ``now`` on a regular grid of
buckets: minute rows (``health_minute``) for ranges up to 30 days, hour rows (``health_hour``)
beyond. Every provider gets one value per bucket in every array, so all providers share one
time axis and a bucket nobody watched is simply empty (``present`` is False there).

Arrays are numpy, not ``array('d')``: 30 days of minutes for five providers is 216,000
buckets, and the fractions, means and running uptime are a few vectorised operations on
them (milliseconds) where a Python loop takes a large part of a second; the charts hand the
arrays to pyqtgraph, which works on numpy anyway, without a copy. numpy has no Qt in it, so
the core stays importable without a GUI. The arrays are read-only: a ``HealthSeries`` is
made on the loop thread and read on the GUI thread.

``load`` reads a whole range; ``load_since`` brings an earlier series up to date by reading
only the last few buckets (the monitor re-writes the current minute every few seconds) and
sliding the grid, which is what the live Dashboard does about once a second.

A series also carries the end-to-end delivery probes sent within its range
(``DeliveryPoints``), read from ``delivery_probes`` in the same two ways.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from typing import IO, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from desktop_app.core.csv_cells import escape_cell
from desktop_app.core.health import maintenance
from desktop_app.core.health.rollup import DAY, HOUR, MINUTE
from desktop_app.core.health.rollup import RANGES as RANGES  # the Dashboard reads them here
from desktop_app.core.models import MaintenanceWindow, OutcomeClass
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.delivery_probes import (
    DeliveryProbeRepository,
    ProbePoint,
    ProbeStatus,
)
from desktop_app.core.storage.maintenance import windows_by_provider
from desktop_app.core.storage.schema import HealthHourRow, HealthMinuteRow, ProviderRow

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int32]
#: A provider's newest name and its rows as [bucket_start, *COLUMNS].
_Rows = tuple[str, FloatArray]

#: Minute rows are kept 30 days: up to that, charts use them; beyond, hour rows.
MINUTE_ROWS_UP_TO = 30 * DAY
#: ``load_since`` re-reads this many buckets before the newest one it already has: the
#: current minute is re-written every few seconds, and a minute can be completed late.
REREAD_BUCKETS = 3

#: Outcome classes other than "delivered", in the order the error chart stacks them
#: (provider problems at the bottom, recipients' at the top). Each is a rollup column.
ERROR_CLASSES: tuple[str, ...] = (
    OutcomeClass.PROVIDER_FAILURE.value,
    OutcomeClass.TRANSIENT_AFTER_DATA.value,
    OutcomeClass.AMBIGUOUS.value,
    OutcomeClass.CONTENT_REJECTED.value,
    OutcomeClass.RECIPIENT_TRANSIENT.value,
    OutcomeClass.RECIPIENT_PERMANENT.value,
)
#: The additive rollup columns a series is built from (histograms and maxima are not charted).
COLUMNS: tuple[str, ...] = (
    "up_seconds",
    "down_seconds",
    "maintenance_seconds",
    "probes_up",
    "probes_down",
    "sent",
    *ERROR_CLASSES,
    "probe_latency_count",
    "probe_latency_sum_ms",
    "send_latency_count",
    "send_latency_sum_ms",
)


def bucket_seconds_for(span: float) -> float:
    """Minute buckets for ranges up to 30 days, hour buckets beyond."""
    return MINUTE if span <= MINUTE_ROWS_UP_TO else HOUR


@dataclass(frozen=True, slots=True)
class Grid:
    """``count`` buckets of ``bucket`` seconds; the last one holds ``now`` (still filling)."""

    start: float
    bucket: float
    count: int

    @classmethod
    def ending_at(cls, now: float, span: float) -> Grid:
        bucket = bucket_seconds_for(span)
        count = max(1, math.ceil(span / bucket))
        last = math.floor(now / bucket) * bucket
        return cls(start=last - (count - 1) * bucket, bucket=bucket, count=count)

    @property
    def last(self) -> float:
        """Start of the newest bucket."""
        return self.start + (self.count - 1) * self.bucket

    @property
    def end(self) -> float:
        """End of the newest bucket."""
        return self.start + self.count * self.bucket

    def times(self) -> FloatArray:
        """Bucket starts, epoch seconds."""
        return _frozen(self.start + self.bucket * np.arange(self.count, dtype=np.float64))

    def index_of(self, bucket_start: float) -> int:
        return math.floor((bucket_start - self.start) / self.bucket + 1e-9)


@dataclass(frozen=True, slots=True, eq=False)
class ProviderSeries:
    """One provider's health over a grid; every array has one value per bucket.

    Status fractions are shares of the bucket (what is left of 1 is time nobody watched);
    latencies are the mean of the bucket's measurements in ms (NaN: none); ``uptime_percent``
    is the uptime from the start of the range up to and including each bucket,
    up / (up + down) with maintenance excluded (NaN until something was watched), so its last
    value is the uptime of the whole range.
    """

    uid: str
    name: str
    raw: Mapping[str, FloatArray]  # COLUMNS -> sums per bucket (0 where no row)
    present: BoolArray  # a rollup row exists for the bucket
    probe_latency_ms: FloatArray
    send_latency_ms: FloatArray
    up_fraction: FloatArray
    down_fraction: FloatArray
    maintenance_fraction: FloatArray
    attempts: FloatArray  # real sends, any outcome
    uptime_percent: FloatArray
    scheduled_maintenance: BoolArray  # the bucket overlaps a configured maintenance window

    @classmethod
    def from_raw(
        cls,
        uid: str,
        name: str,
        raw: Mapping[str, FloatArray],
        present: BoolArray,
        bucket: float,
        scheduled_maintenance: BoolArray,
    ) -> ProviderSeries:
        for array in raw.values():
            array.flags.writeable = False
        up, down = raw["up_seconds"], raw["down_seconds"]
        attempts = raw["sent"] + sum((raw[column] for column in ERROR_CLASSES), np.zeros_like(up))
        return cls(
            uid=uid,
            name=name,
            raw=dict(raw),
            present=_frozen(present),
            probe_latency_ms=_mean(raw["probe_latency_sum_ms"], raw["probe_latency_count"]),
            send_latency_ms=_mean(raw["send_latency_sum_ms"], raw["send_latency_count"]),
            up_fraction=_frozen(up / bucket),
            down_fraction=_frozen(down / bucket),
            maintenance_fraction=_frozen(raw["maintenance_seconds"] / bucket),
            attempts=_frozen(attempts),
            uptime_percent=_running_uptime(up, down),
            scheduled_maintenance=_frozen(scheduled_maintenance),
        )

    def errors(self, error_class: str) -> FloatArray:
        """Attempts per bucket that ended in ``error_class`` (one of ERROR_CLASSES)."""
        return self.raw[error_class]

    @property
    def sent(self) -> FloatArray:
        return self.raw["sent"]

    def uptime(self) -> float | None:
        """Uptime of the whole range in percent (maintenance excluded); None: never watched."""
        watched = self.uptime_percent[np.isfinite(self.uptime_percent)]
        return float(watched[-1]) if watched.size else None


#: Probe statuses a series holds, by code: delivered and lost are charted; pending ones are
#: held so that ``load_since`` notices when they turn delivered or lost. (A probe SMTP
#: refused is an error of the provider, already charted as such.)
PROBE_STATUSES: tuple[str, ...] = (ProbeStatus.PENDING, ProbeStatus.DELIVERED, ProbeStatus.LOST)
PENDING, DELIVERED, LOST = range(len(PROBE_STATUSES))
#: Statuses that can still change (a lost probe that turns up late becomes delivered).
_CHANGING: tuple[str, ...] = (ProbeStatus.PENDING, ProbeStatus.LOST)


@dataclass(frozen=True, slots=True, eq=False)
class DeliveryPoints:
    """End-to-end delivery probes sent within a range, oldest first, one array entry each.

    ``provider`` indexes ``uids``; ``status`` is a code (``PENDING``, ``DELIVERED``,
    ``LOST``); ``latency_ms`` is send -> seen in the seed mailbox (NaN unless delivered).
    """

    uids: tuple[str, ...] = ()
    provider: IntArray = field(default_factory=lambda: _frozen(np.zeros(0, dtype=np.int32)))
    sent_at: FloatArray = field(default_factory=lambda: _frozen(np.zeros(0)))
    status: IntArray = field(default_factory=lambda: _frozen(np.zeros(0, dtype=np.int32)))
    latency_ms: FloatArray = field(default_factory=lambda: _frozen(np.zeros(0)))

    @classmethod
    def of(cls, points: Sequence[ProbePoint]) -> DeliveryPoints:
        codes = {status: code for code, status in enumerate(PROBE_STATUSES)}
        uids = tuple(sorted({point.provider_uid for point in points}))
        index = {uid: n for n, uid in enumerate(uids)}
        latency = [point.delivery_latency_ms for point in points]
        return cls(
            uids=uids,
            provider=_frozen(
                np.fromiter((index[p.provider_uid] for p in points), np.int32, len(points))
            ),
            sent_at=_frozen(np.fromiter((p.sent_at for p in points), np.float64, len(points))),
            status=_frozen(np.fromiter((codes[p.status] for p in points), np.int32, len(points))),
            latency_ms=_frozen(np.array([np.nan if v is None else v for v in latency], np.float64)),
        )

    def __len__(self) -> int:
        return len(self.sent_at)

    def of_provider(self, uid: str) -> BoolArray:
        """Which entries are ``uid``'s."""
        if uid not in self.uids:
            return np.zeros(len(self), dtype=np.bool_)
        return self.provider == self.uids.index(uid)

    def delivered(self, uid: str) -> tuple[FloatArray, FloatArray]:
        """(sent_at, delivery latency in ms) of ``uid``'s delivered probes."""
        chosen = self.of_provider(uid) & (self.status == DELIVERED)
        return self.sent_at[chosen], self.latency_ms[chosen]

    def lost(self, uid: str) -> FloatArray:
        """sent_at of ``uid``'s lost probes."""
        return self.sent_at[self.of_provider(uid) & (self.status == LOST)]

    def between(self, start: float, end: float) -> DeliveryPoints:
        """The probes sent in [start, end)."""
        first, last = np.searchsorted(self.sent_at, (start, end), side="left")
        if first == 0 and last == len(self):
            return self
        window = slice(int(first), int(last))
        return DeliveryPoints(
            self.uids,
            _frozen(self.provider[window]),
            _frozen(self.sent_at[window]),
            _frozen(self.status[window]),
            _frozen(self.latency_ms[window]),
        )

    def changing_counts(self) -> dict[str, int]:
        """How many are pending and lost (what ``status_counts`` answers for ``_CHANGING``)."""
        return {
            status: int(np.count_nonzero(self.status == code))
            for code, status in enumerate(PROBE_STATUSES)
            if status in _CHANGING
        }

    def same_as(self, other: DeliveryPoints) -> bool:
        if len(self) != len(other):
            return False
        mine = np.array(self.uids, dtype=object)[self.provider] if len(self) else self.provider
        theirs = np.array(other.uids, dtype=object)[other.provider] if len(other) else mine
        return (
            np.array_equal(mine, theirs)
            and np.array_equal(self.sent_at, other.sent_at)
            and np.array_equal(self.status, other.status)
            and np.array_equal(self.latency_ms, other.latency_ms, equal_nan=True)
        )

    def followed_by(self, later: DeliveryPoints) -> DeliveryPoints:
        """These probes, then ``later`` ones (all sent after these)."""
        if not len(later):
            return self
        if not len(self):
            return later
        uids = tuple(sorted({*self.uids, *later.uids}))
        index = np.array([uids.index(uid) for uid in self.uids], dtype=np.int32)
        index_later = np.array([uids.index(uid) for uid in later.uids], dtype=np.int32)
        return DeliveryPoints(
            uids,
            _frozen(np.concatenate((index[self.provider], index_later[later.provider]))),
            _frozen(np.concatenate((self.sent_at, later.sent_at))),
            _frozen(np.concatenate((self.status, later.status))),
            _frozen(np.concatenate((self.latency_ms, later.latency_ms))),
        )


@dataclass(frozen=True, slots=True, eq=False)
class HealthSeries:
    """Every provider's series over one range ending ``now``."""

    span: float
    now: float
    grid: Grid
    times: FloatArray
    target_percent: float
    providers: tuple[ProviderSeries, ...] = field(default=())
    #: What besides the rows shaped the series (providers, their windows, the target):
    #: ``load_since`` starts over from the rows only while this stays the same.
    setup: tuple[Any, ...] = ()
    deliveries: DeliveryPoints = field(default_factory=DeliveryPoints)

    @property
    def setup_uids(self) -> set[str]:
        return {entry[0] for entry in self.setup[1:]}

    def names(self) -> list[str]:
        return [provider.name for provider in self.providers]

    def provider(self, name: str) -> ProviderSeries:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)

    def error_rates(self, names: Iterable[str] | None = None) -> dict[str, FloatArray]:
        """Percent of attempts per bucket that ended in each error class, of ``names``
        (all providers when None) together; 0 where there were no attempts."""
        chosen = self.select(names)
        attempts = sum((p.attempts for p in chosen), np.zeros(self.grid.count))
        safe = np.where(attempts > 0, attempts, 1.0)
        return {
            error_class: 100.0
            * sum((p.errors(error_class) for p in chosen), np.zeros(self.grid.count))
            / safe
            for error_class in ERROR_CLASSES
        }

    def select(self, names: Iterable[str] | None) -> list[ProviderSeries]:
        if names is None:
            return list(self.providers)
        wanted = set(names)
        return [p for p in self.providers if p.name in wanted]


# -- reading ----------------------------------------------------------------------------------


def load(
    database: Database,
    span: float,
    now: float,
    *,
    target_percent: float | None = None,
) -> HealthSeries:
    """Every provider's series over the ``span`` seconds up to ``now``."""
    grid = Grid.ending_at(now, span)
    with database.read() as connection:
        rows = _read_rows(connection, grid, since=grid.start)
        configured = _configured(connection)
    if target_percent is None:
        target_percent = float(SettingsStore(database).get("health.uptime_target_percent"))
    deliveries = _read_deliveries(database, grid, since=grid.start, previous=None)
    return _assemble(span, now, grid, target_percent, {}, rows, configured, deliveries)


def load_since(database: Database, previous: HealthSeries, now: float) -> HealthSeries:
    """``previous`` brought up to ``now``: only the newest buckets are read again.

    Returns ``previous`` itself when nothing changed (same grid, rows, providers, windows
    and target), so a caller can skip redrawing by comparing identities; that check runs
    before anything is copied, and it is the usual answer to a once-a-second poll.
    """
    grid = Grid.ending_at(now, previous.span)
    shift = round((grid.start - previous.grid.start) / grid.bucket)
    if shift < 0 or grid.bucket != previous.grid.bucket:
        return load(database, previous.span, now)
    since = max(grid.start, previous.grid.last - REREAD_BUCKETS * grid.bucket)
    with database.read() as connection:
        rows = _read_rows(connection, grid, since=since)
        configured = _configured(connection)
    target_percent = float(SettingsStore(database).get("health.uptime_target_percent"))
    setup = _setup(configured, target_percent)
    first_reread = grid.index_of(since)
    deliveries = _read_deliveries(database, grid, since=since, previous=previous.deliveries)
    if (
        shift == 0
        and setup == previous.setup
        and deliveries is previous.deliveries
        and _rows_match(previous, rows, first_reread)
    ):
        return previous
    kept: dict[str, tuple[str, dict[str, FloatArray], BoolArray]] = {}
    for provider in previous.providers:
        raw = {name: _shifted(values, shift, first_reread) for name, values in provider.raw.items()}
        present = _shifted(provider.present, shift, first_reread)
        kept[provider.uid] = (provider.name, raw, present)
    return _assemble(previous.span, now, grid, target_percent, kept, rows, configured, deliveries)


def _rows_match(previous: HealthSeries, found: Mapping[str, _Rows], first: int) -> bool:
    """Whether the rows read from bucket ``first`` on are what ``previous`` holds there."""
    held = {provider.uid: provider for provider in previous.providers}
    for uid, (name, values) in found.items():
        provider = held.get(uid)
        if provider is None or (provider.name != name and uid not in previous.setup_uids):
            return False
        at = np.floor((values[:, 0] - previous.grid.start) / previous.grid.bucket + 1e-9)
        at = at.astype(np.int64) - first
        present = np.zeros(previous.grid.count - first, dtype=np.bool_)
        present[at] = True
        if not np.array_equal(provider.present[first:], present):
            return False
        for column, name in enumerate(COLUMNS, start=1):
            if not np.array_equal(provider.raw[name][first:][at], values[:, column]):
                return False
    return all(
        provider.uid in found or not provider.present[first:].any()
        for provider in previous.providers
    )


def _read_deliveries(
    database: Database, grid: Grid, *, since: float, previous: DeliveryPoints | None
) -> DeliveryPoints:
    """The probes sent within ``grid``: those from ``since`` on read again, the older ones
    kept from ``previous`` unless one of them changed (returns ``previous`` itself when
    nothing did). Only pending and lost probes can change, and every change of theirs
    changes how many are pending or lost: one count over the (status, sent_at) index, which
    holds few of them, tells whether the older ones have to be read again."""
    repository = DeliveryProbeRepository(database)
    if previous is not None:
        held = previous.between(grid.start, since)
        if held.changing_counts() == repository.status_counts(grid.start, since, _CHANGING):
            fresh = DeliveryPoints.of(repository.points(since, grid.end, PROBE_STATUSES))
            if len(held) + len(fresh) == len(previous) and fresh.same_as(
                previous.between(since, grid.end)
            ):
                return previous
            return held.followed_by(fresh)
    return DeliveryPoints.of(repository.points(grid.start, grid.end, PROBE_STATUSES))


def _read_rows(connection: Connection, grid: Grid, *, since: float) -> dict[str, _Rows]:
    """uid -> (its newest name, rows of [bucket_start, *COLUMNS]) for the buckets from
    ``since`` to the end of the grid; one query per provider, along the primary key."""
    table = HealthMinuteRow if grid.bucket == MINUTE else HealthHourRow
    in_range = (table.bucket_start >= since, table.bucket_start < grid.end)
    newest_names = connection.execute(
        select(table.provider_uid, table.provider_name, func.max(table.bucket_start))
        .where(*in_range)
        .group_by(table.provider_uid, table.provider_name)
    ).all()
    names: dict[str, tuple[float, str]] = {}
    for uid, name, newest in newest_names:
        if uid not in names or newest > names[uid][0]:
            names[uid] = (newest, name)
    columns = [getattr(table, name) for name in COLUMNS]
    found: dict[str, _Rows] = {}
    for uid, (_newest, name) in names.items():
        rows = connection.execute(
            select(table.bucket_start, *columns)
            .where(table.provider_uid == uid, *in_range)
            .order_by(table.bucket_start)
        ).all()
        width = len(COLUMNS) + 1
        # All numeric: flattened in C, no per-row Python work (np.array on Row objects
        # spent seconds probing each row for array attributes).
        flat = np.fromiter(
            itertools.chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width
        )
        found[uid] = (name, flat.reshape(len(rows), width))
    return found


@dataclass(frozen=True, slots=True)
class _Configured:
    """A provider as configured now: where it sorts, its name, its maintenance windows."""

    priority: int
    name: str
    maintenance: tuple[MaintenanceWindow, ...] = ()


def _configured(connection: Connection) -> dict[str, _Configured]:
    """uid -> the configured providers (with their maintenance windows)."""
    providers = connection.execute(
        select(ProviderRow.id, ProviderRow.uid, ProviderRow.priority, ProviderRow.name)
    ).all()
    with Session(bind=connection) as session:
        windows = windows_by_provider(session)
    return {
        uid: _Configured(priority, name, windows.get(provider_id, ()))
        for provider_id, uid, priority, name in providers
    }


def _scheduled(windows: Sequence[MaintenanceWindow], grid: Grid) -> BoolArray:
    """Buckets that overlap a maintenance window (drawn as maintenance when unwatched)."""
    marked = np.zeros(grid.count, dtype=np.bool_)
    for start, end in maintenance.intervals(windows, grid.start, grid.end):
        first = max(0, grid.index_of(start))
        last = min(grid.count - 1, math.ceil((end - grid.start) / grid.bucket) - 1)
        marked[first : last + 1] = True
    return marked


def _assemble(
    span: float,
    now: float,
    grid: Grid,
    target_percent: float,
    kept: dict[str, tuple[str, dict[str, FloatArray], BoolArray]],
    found: Mapping[str, _Rows],
    configured: Mapping[str, _Configured],
    deliveries: DeliveryPoints,
) -> HealthSeries:
    """Place the rows ``found`` on the grid over what was ``kept``; providers in priority
    order, then the ones no longer configured (their history stays) by name."""
    names = {uid: name for uid, (name, _raw, _present) in kept.items()}
    raws = {uid: raw for uid, (_name, raw, _present) in kept.items()}
    presents = {uid: present for uid, (_name, _raw, present) in kept.items()}
    for uid in (*found, *configured):
        if uid not in raws:
            raws[uid] = {column: np.zeros(grid.count) for column in COLUMNS}
            presents[uid] = np.zeros(grid.count, dtype=np.bool_)
    for uid, (name, values) in found.items():
        names[uid] = name  # the newest row's name: providers can be renamed
        if not len(values):
            continue
        at = np.floor((values[:, 0] - grid.start) / grid.bucket + 1e-9).astype(np.int64)
        inside = (at >= 0) & (at < grid.count)
        at, values = at[inside], np.nan_to_num(values[inside])
        for column, name in enumerate(COLUMNS, start=1):
            raws[uid][name][at] = values[:, column]
        presents[uid][at] = True
    for uid in [uid for uid in raws if uid not in configured and not presents[uid].any()]:
        del raws[uid]  # removed, and its history has left the range: as a full load would
    for uid, provider in configured.items():
        names[uid] = provider.name  # the name it has now, when it is still configured
    unconfigured = _Configured(len(configured), "")

    def rank(uid: str) -> tuple[int, str, str]:
        return configured.get(uid, unconfigured).priority, names[uid].casefold(), uid

    providers = tuple(
        ProviderSeries.from_raw(
            uid,
            names[uid],
            raws[uid],
            presents[uid],
            grid.bucket,
            _scheduled(configured.get(uid, unconfigured).maintenance, grid),
        )
        for uid in sorted(raws, key=rank)
    )
    return HealthSeries(
        span=span,
        now=now,
        grid=grid,
        times=grid.times(),
        target_percent=target_percent,
        providers=providers,
        setup=_setup(configured, target_percent),
        deliveries=deliveries,
    )


def _setup(configured: Mapping[str, _Configured], target_percent: float) -> tuple[Any, ...]:
    return (target_percent, *sorted((uid, *astuple(c)) for uid, c in configured.items()))


def _shifted(values: npt.NDArray[Any], shift: int, clear_from: int) -> npt.NDArray[Any]:
    """``values`` moved ``shift`` buckets to the left, with the buckets from ``clear_from``
    on (about to be read again) emptied."""
    moved = np.zeros_like(values)
    if shift < len(values):
        moved[: len(values) - shift] = values[shift:]
    moved[max(0, clear_from) :] = 0
    return moved


def _frozen(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    values.flags.writeable = False
    return values


def _mean(sums: FloatArray, counts: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return _frozen(np.where(counts > 0, sums / counts, np.nan))


def _running_uptime(up: FloatArray, down: FloatArray) -> FloatArray:
    total_up = np.cumsum(up)
    watched = total_up + np.cumsum(down)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _frozen(np.where(watched > 0, 100.0 * total_up / watched, np.nan))


# -- CSV --------------------------------------------------------------------------------------

CSV_FIELDS: tuple[str, ...] = (
    "bucket_start",
    "time_utc",
    "provider",
    "probe_latency_ms",
    "send_latency_ms",
    "up_seconds",
    "down_seconds",
    "maintenance_seconds",
    "uptime_percent",
    "sent",
    *ERROR_CLASSES,
)


def write_csv(series: HealthSeries, out: IO[str], names: Iterable[str] | None = None) -> int:
    """The series of ``names`` (all providers when None) as CSV, one row per provider and
    bucket that has data; returns the number of rows. Empty cells are "no measurement".
    A provider name a spreadsheet would read as a formula gets a leading ``'``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    written = 0
    for provider in series.select(names):
        at = np.flatnonzero(provider.present)
        when = series.times[at]
        columns = (
            provider.probe_latency_ms,
            provider.send_latency_ms,
            provider.raw["up_seconds"],
            provider.raw["down_seconds"],
            provider.raw["maintenance_seconds"],
            provider.uptime_percent,
            provider.sent,
            *(provider.errors(name) for name in ERROR_CLASSES),
        )
        # Column by column, then one writerows: a row-by-row loop took seconds for 30 days
        # of minutes.
        utc = np.datetime_as_string(when.astype("datetime64[s]"), unit="s")
        writer.writerows(
            zip(
                _cells(when),
                [f"{text}Z" for text in utc.tolist()],
                # The one text cell; names may start with + - @ (csv_cells).
                itertools.repeat(escape_cell(provider.name)),
                *(_cells(column[at]) for column in columns),
                strict=False,
            )
        )
        written += len(at)
    return written


def _cells(values: FloatArray) -> list[str]:
    """Each value as the shortest text that reads back as the same float; "" for NaN."""
    finite = np.isfinite(values)
    if finite.all() and np.array_equal(values, np.trunc(values)):
        return list(map(str, values.astype(np.int64).tolist()))
    cells = list(map(repr, values.tolist()))
    for index in np.flatnonzero(~finite).tolist():
        cells[index] = ""
    return cells
