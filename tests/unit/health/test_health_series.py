"""The Dashboard's time series, read from rollup rows written into a real SQLite file."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, insert

from desktop_app.core.health import series
from desktop_app.core.health.series import DAY, HOUR, MINUTE, Grid
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow, ProviderConfig, Security
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.maintenance import MaintenanceRepository
from desktop_app.core.storage.providers import ProviderRepository
from desktop_app.core.storage.schema import HealthHourRow, HealthMinuteRow

#: A minute boundary plus 30 s: "now" is half-way through the current minute.
NOW = 1_750_000_020.0 + 30.0
CURRENT = math.floor(NOW / MINUTE) * MINUTE


def put(database: Database, uid: str, name: str, bucket: float, **values: Any) -> None:
    """Write (or re-write, as the monitor does for the current minute) one rollup row."""
    table = values.pop("table", HealthMinuteRow)
    with database.write() as connection:
        connection.execute(
            delete(table).where(table.provider_uid == uid, table.bucket_start == bucket)
        )
        connection.execute(
            insert(table).values(
                provider_uid=uid, provider_name=name, bucket_start=bucket, **values
            )
        )


def test_grid_covers_the_range_up_to_the_current_bucket() -> None:
    hour = Grid.ending_at(NOW, HOUR)
    assert (hour.bucket, hour.count, hour.last) == (MINUTE, 60, CURRENT)
    assert hour.start == CURRENT - 59 * MINUTE
    month = Grid.ending_at(NOW, series.RANGES["30d"])
    assert (month.bucket, month.count) == (MINUTE, 30 * 24 * 60)  # minutes, not capped at 7 d
    longer = Grid.ending_at(NOW, 90 * DAY)
    assert (longer.bucket, longer.count) == (HOUR, 90 * 24)
    assert longer.last == math.floor(NOW / HOUR) * HOUR


def test_rows_become_means_fractions_and_counts_per_bucket(database: Database) -> None:
    minute = CURRENT - 10 * MINUTE
    put(
        database,
        "u-a",
        "Alpha",
        minute,
        up_seconds=45.0,
        down_seconds=10.0,
        maintenance_seconds=5.0,
        probe_latency_count=2,
        probe_latency_sum_ms=247.0,
        send_latency_count=4,
        send_latency_sum_ms=1000.0,
        sent=6,
        provider_failure=1,
        recipient_permanent=3,
    )
    result = series.load(database, HOUR, NOW)
    [alpha] = result.providers
    at = 49
    assert result.times[at] == minute
    assert alpha.present.tolist() == [i == at for i in range(60)]
    assert alpha.probe_latency_ms[at] == 123.5
    assert alpha.send_latency_ms[at] == 250.0
    assert np.isnan(alpha.probe_latency_ms[at - 1])  # no measurement is not 0 ms
    assert (alpha.up_fraction[at], alpha.down_fraction[at]) == (0.75, 10 / 60)
    assert alpha.maintenance_fraction[at] == 5 / 60
    assert alpha.attempts[at] == 10
    assert alpha.errors("recipient_permanent")[at] == 3
    rates = result.error_rates()
    assert rates["provider_failure"][at] == 10.0
    assert rates["recipient_permanent"][at] == 30.0
    assert rates["ambiguous"][at] == 0.0
    assert rates["provider_failure"][at - 1] == 0.0  # no attempts: no error rate
    with pytest.raises(ValueError):
        alpha.present[0] = True  # read-only: safe to hand to another thread


def test_running_uptime_excludes_maintenance_and_ends_at_the_range_uptime(
    database: Database,
) -> None:
    start = CURRENT - 59 * MINUTE
    put(database, "u-a", "Alpha", start, up_seconds=60.0)
    put(database, "u-a", "Alpha", start + MINUTE, up_seconds=30.0, down_seconds=30.0)
    put(database, "u-a", "Alpha", start + 2 * MINUTE, maintenance_seconds=60.0)
    put(database, "u-a", "Alpha", start + 3 * MINUTE, up_seconds=60.0)
    [alpha] = series.load(database, HOUR, NOW).providers
    assert alpha.uptime_percent[:4].tolist() == pytest.approx([100.0, 75.0, 75.0, 150 / 180 * 100])
    assert alpha.uptime_percent[-1] == pytest.approx(150 / 180 * 100)
    assert alpha.uptime() == pytest.approx(83.333, abs=1e-3)


def test_uptime_is_unknown_until_watched(database: Database) -> None:
    put(database, "u-a", "Alpha", CURRENT - MINUTE, sent=3)  # sends, but no status time
    [alpha] = series.load(database, HOUR, NOW).providers
    assert np.isnan(alpha.uptime_percent).all()
    assert alpha.uptime() is None


def test_thirty_days_read_minute_rows_from_four_weeks_ago(database: Database) -> None:
    old = CURRENT - 29 * DAY
    put(database, "u-a", "Alpha", old, down_seconds=60.0)
    put(database, "u-a", "Alpha", CURRENT - 31 * DAY, down_seconds=60.0)  # out of range
    month = series.load(database, series.RANGES["30d"], NOW)
    [alpha] = month.providers
    assert month.times[np.flatnonzero(alpha.present)].tolist() == [old]
    week = series.load(database, series.RANGES["7d"], NOW)
    assert week.providers == ()  # not configured, nothing in the last week: not listed


def test_longer_ranges_read_hour_rows(database: Database) -> None:
    hour = math.floor(NOW / HOUR) * HOUR - 40 * DAY
    put(database, "u-a", "Alpha", hour, table=HealthHourRow, up_seconds=3600.0)
    put(database, "u-a", "Alpha", CURRENT - MINUTE, down_seconds=60.0)  # minute row: not used
    result = series.load(database, 60 * DAY, NOW)
    [alpha] = result.providers
    assert result.grid.bucket == HOUR
    assert result.times[np.flatnonzero(alpha.present)].tolist() == [hour]
    assert alpha.up_fraction[alpha.present].tolist() == [1.0]


def test_providers_in_priority_order_with_current_names_and_old_history(
    database: Database,
) -> None:
    providers = ProviderRepository(database)
    for name, priority in (("Beta", 1), ("Alpha", 0), ("Idle", 2)):
        providers.add(
            ProviderConfig(
                name=name,
                host="127.0.0.1",
                port=2525,
                security=Security.NONE,
                priority=priority,
                uid=f"u-{name.lower()}",
            )
        )
    put(database, "u-beta", "Beta (old name)", CURRENT - 5 * MINUTE, up_seconds=60.0)
    put(database, "u-alpha", "Alpha", CURRENT - 5 * MINUTE, up_seconds=60.0)
    put(database, "u-gone", "Removed", CURRENT - 7 * MINUTE, up_seconds=60.0)
    put(database, "u-gone", "Removed later", CURRENT - 6 * MINUTE, up_seconds=60.0)
    result = series.load(database, HOUR, NOW)
    # Configured ones by priority (renamed: the name it has now; no data yet: still listed),
    # then history of removed providers under their newest name.
    assert result.names() == ["Alpha", "Beta", "Idle", "Removed later"]
    assert not result.provider("Idle").present.any()


def test_target_comes_from_the_settings(database: Database) -> None:
    before = series.load(database, HOUR, NOW)
    assert before.target_percent == 99.9
    SettingsStore(database).set("health.uptime_target_percent", 99.5)
    assert series.load(database, HOUR, NOW).target_percent == 99.5
    assert series.load_since(database, before, NOW + 1).target_percent == 99.5  # live too


def assert_same_series(a: series.HealthSeries, b: series.HealthSeries) -> None:
    assert a.grid == b.grid
    assert a.names() == b.names()
    for pa, pb in zip(a.providers, b.providers, strict=True):
        assert pa.present.tolist() == pb.present.tolist()
        for column in series.COLUMNS:
            assert pa.raw[column].tolist() == pb.raw[column].tolist(), column
        np.testing.assert_array_equal(pa.uptime_percent, pb.uptime_percent)


def test_load_since_equals_a_full_reload(database: Database) -> None:
    for minutes_ago in (59, 30, 2, 1):
        put(database, "u-a", "Alpha", CURRENT - minutes_ago * MINUTE, up_seconds=60.0)
    before = series.load(database, HOUR, NOW)

    # The current minute is re-written with more in it; a new provider appears.
    put(database, "u-a", "Alpha", CURRENT, up_seconds=20.0, down_seconds=5.0, sent=2)
    put(database, "u-b", "Beta", CURRENT, up_seconds=25.0)
    same_minute = series.load_since(database, before, NOW + 5)
    assert same_minute.grid == before.grid
    assert_same_series(same_minute, series.load(database, HOUR, NOW + 5))
    assert same_minute.provider("Alpha").raw["down_seconds"][-1] == 5.0

    # Three minutes later: the grid slides, the oldest minutes leave the range.
    put(database, "u-a", "Alpha", CURRENT + 2 * MINUTE, down_seconds=60.0)
    later = NOW + 3 * MINUTE
    slid = series.load_since(database, same_minute, later)
    assert slid.grid.start == before.grid.start + 3 * MINUTE
    assert_same_series(slid, series.load(database, HOUR, later))
    assert CURRENT - 59 * MINUTE not in slid.times[slid.provider("Alpha").present]

    # A recent row that is gone (history deleted) is gone from the series too.
    with database.write() as connection:
        connection.execute(delete(HealthMinuteRow).where(HealthMinuteRow.provider_uid == "u-b"))
    cleared = series.load_since(database, slid, later + 1)
    assert_same_series(cleared, series.load(database, HOUR, later + 1))
    assert cleared.names() == ["Alpha"]  # not configured, no history left: not listed


def test_load_since_returns_the_same_object_when_nothing_changed(database: Database) -> None:
    put(database, "u-a", "Alpha", CURRENT, up_seconds=10.0)
    before = series.load(database, HOUR, NOW)
    assert series.load_since(database, before, NOW + 1) is before
    put(database, "u-a", "Alpha", CURRENT, up_seconds=15.0)
    latest = series.load_since(database, before, NOW + 2)
    assert latest is not before
    # A row with nothing in it yet is news too: the bucket is now watched.
    put(database, "u-a", "Alpha", CURRENT - MINUTE)
    newer = series.load_since(database, latest, NOW + 3)
    assert newer is not latest and newer.provider("Alpha").present[-2]


def test_csv_round_trips_the_series(database: Database) -> None:
    put(
        database,
        "u-a",
        "Alpha",
        CURRENT - 3 * MINUTE,
        up_seconds=59.5,
        down_seconds=0.5,
        probe_latency_count=3,
        probe_latency_sum_ms=100.0,  # 33.333... ms: must come back exactly
        sent=7,
        ambiguous=1,
    )
    put(database, "u-b", "Beta", CURRENT - 2 * MINUTE, maintenance_seconds=60.0)
    result = series.load(database, HOUR, NOW)
    out = io.StringIO()
    assert series.write_csv(result, out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["provider"] for row in rows] == ["Alpha", "Beta"]
    alpha, beta = rows
    assert float(alpha["bucket_start"]) == CURRENT - 3 * MINUTE
    assert alpha["time_utc"].endswith("Z")
    assert float(alpha["probe_latency_ms"]) == result.provider("Alpha").probe_latency_ms[56]
    assert alpha["send_latency_ms"] == ""  # no measurement
    assert float(alpha["uptime_percent"]) == result.provider("Alpha").uptime_percent[56]
    assert (alpha["sent"], alpha["ambiguous"], alpha["up_seconds"]) == ("7", "1", "59.5")
    assert beta["uptime_percent"] == ""  # only maintenance: no uptime to tell
    only_beta = io.StringIO()
    assert series.write_csv(result, only_beta, ["Beta"]) == 1


def test_csv_escapes_a_provider_name_a_spreadsheet_would_run(database: Database) -> None:
    put(database, "u-p", "+relay", CURRENT - MINUTE, sent=1, up_seconds=60.0)
    out = io.StringIO()
    assert series.write_csv(series.load(database, HOUR, NOW), out) == 1
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert (row["provider"], row["sent"]) == ("'+relay", "1")


def test_configured_maintenance_windows_mark_their_buckets(database: Database) -> None:
    providers = ProviderRepository(database)
    providers.add(
        ProviderConfig(name="Alpha", host="127.0.0.1", port=2525, security=Security.NONE, uid="u-a")
    )
    # 10 minutes 30 s, starting half-way through a minute: the minutes it touches are marked.
    start = CURRENT - 20 * MINUTE + 30
    MaintenanceRepository(database).add(
        "Alpha", MaintenanceWindow(MaintenanceKind.ONCE, starts_at=start, ends_at=start + 630)
    )
    [alpha] = series.load(database, HOUR, NOW).providers
    marked = np.flatnonzero(alpha.scheduled_maintenance).tolist()
    assert marked == list(range(39, 50))  # minute 39 holds `start`, minute 49 its end
