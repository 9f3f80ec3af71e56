"""How long does one live update of the Dashboard's health charts take with 30 days of minutes?

Builds a fresh temp data directory, writes 30 days of per-minute rollup rows for 5 providers
(216,000 rows, with outages, maintenance and errors; ``core/health/sample_history.py``) into
the real ``health_minute`` table, reads them with ``core/health/series.py`` and shows them
in the real ``HealthCharts`` widget (offscreen, Dashboard size, all providers overlaid).

One update is what the Dashboard does once a second when a new minute arrived: ``setData``
on every curve and the timeline image (``HealthCharts.show_series``), then a synchronous
repaint of the charts (``viewport().repaint()``: downsampling, clipping, paths, painting).
Updates alternate between two series that differ in the newest minute, as live ones do.
The baseline, measured in the same run, is the same update with 1 hour of data
(300 points): the ratio says what 30 days cost on top of the fixed cost of painting.

    python tests/benchmarks/bench_chart_update.py [--days 30] [--providers 5] [--rounds 40]
        [--size 1000x560]

Prints the median, p95 and worst update in ms for both and their ratio; the target is a
median under 50 ms at 30 days. Also the off-GUI-thread reads (whole range, incremental).
Nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from PySide6.QtWidgets import QApplication  # noqa: E402
from sqlalchemy import update  # noqa: E402

from desktop_app.core.health import series as health_series  # noqa: E402
from desktop_app.core.health.sample_history import (  # noqa: E402
    Event,
    SampleProvider,
    write_minutes,
)
from desktop_app.core.health.series import DAY, HOUR, MINUTE, HealthSeries  # noqa: E402
from desktop_app.core.storage.database import DATABASE_FILENAME, Database  # noqa: E402
from desktop_app.core.storage.schema import HealthMinuteRow  # noqa: E402
from desktop_app.ui.charts.health_charts import HealthCharts  # noqa: E402

TARGET_MS = 50.0


def sample_providers(count: int, now: float) -> list[SampleProvider]:
    """Providers with different latencies, send rates and errors; one outage and one
    maintenance window each, at different times."""
    providers = []
    for n in range(count):
        outage = now - (3 + 5 * n) * DAY
        providers.append(
            SampleProvider(
                uid=f"bench-{n}",
                name=f"Provider {n + 1}",
                latency_ms=80.0 + 60 * n,
                sends_per_minute=30.0 / (n + 1),
                error_shares={"recipient_permanent": 0.01, "recipient_transient": 0.004},
                events=(
                    Event("outage", outage, outage + (10 + 15 * n) * MINUTE),
                    Event("maintenance", outage - 2 * DAY, outage - 2 * DAY + 2 * HOUR),
                ),
            )
        )
    return providers


def time_updates(
    app: QApplication, charts: HealthCharts, versions: list[HealthSeries], rounds: int
) -> list[float]:
    """ms per update: setData of everything plus a synchronous repaint."""
    charts.show_series(versions[0])  # first show: curves made, axes laid out
    app.processEvents()
    timings = []
    for n in range(rounds):
        started = time.perf_counter()
        charts.show_series(versions[n % len(versions)])
        charts.viewport().repaint()
        timings.append((time.perf_counter() - started) * 1000)
        app.processEvents()
    return timings


def two_versions(
    database: Database, span: float, now: float, touch: Callable[[], None]
) -> list[HealthSeries]:
    """The series at ``now`` and after the monitor re-wrote the current minute."""
    first = health_series.load(database, span, now)
    touch()
    second = health_series.load_since(database, first, now + 5)
    assert second is not first
    return [first, second]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(args: argparse.Namespace) -> int:
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    width, height = (int(part) for part in args.size.split("x"))
    scratch = Path(tempfile.mkdtemp(prefix="relaydesk-bench-charts-"))
    try:
        database = Database.open_file(scratch / DATABASE_FILENAME)
        now = time.time()
        providers = sample_providers(args.providers, now)
        print(
            f"writing {args.days:g} days of minutes for {args.providers} providers...", flush=True
        )
        started = time.perf_counter()
        rows = write_minutes(database, providers, start=now - args.days * DAY, end=now)
        print(f"  {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)

        current = health_series.Grid.ending_at(now, HOUR).last
        bump = iter(range(1, 1_000_000))

        def touch() -> None:
            # What the monitor does every few seconds: re-write the current minute.
            with database.write() as connection:
                connection.execute(
                    update(HealthMinuteRow)
                    .where(HealthMinuteRow.bucket_start == current)
                    .values(sent=HealthMinuteRow.sent + next(bump))
                )

        started = time.perf_counter()
        big = two_versions(database, args.days * DAY, now, touch)
        read_all = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(5):
            health_series.load_since(database, big[1], now + 6)
        read_unchanged = (time.perf_counter() - started) / 5
        read_changed = 0.0
        for _ in range(5):
            touch()
            started = time.perf_counter()
            health_series.load_since(database, big[1], now + 6)
            read_changed += (time.perf_counter() - started) / 5
        small = two_versions(database, HOUR, now, touch)
        points = sum(p.present.sum() for p in big[0].providers)

        charts = HealthCharts()
        charts.resize(width, height)
        charts.show()
        app.processEvents()
        baseline = time_updates(app, charts, small, args.rounds)
        large = time_updates(app, charts, big, args.rounds)
        charts.close()
        charts.deleteLater()
        app.processEvents()
        database.dispose()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print()
    print(
        f"HealthCharts {width}x{height} offscreen, all {args.providers} providers overlaid, "
        f"{args.rounds} updates each (setData + repaint)"
    )
    print(f"{'':28}{'median ms':>11}{'p95 ms':>9}{'worst ms':>10}")
    for label, timings in (
        (f"1 h ({sum(p.present.sum() for p in small[0].providers):,} points)", baseline),
        (f"{args.days:g} d ({points:,} points)", large),
    ):
        print(
            f"  {label:26}{statistics.median(timings):11.1f}"
            f"{percentile(timings, 0.95):9.1f}{max(timings):10.1f}"
        )
    ratio = statistics.median(large) / statistics.median(baseline)
    print(f"  {args.days:g} d / 1 h (median): {ratio:.2f}x")
    print(
        f"  reads on the loop thread: whole {args.days:g} d range {read_all * 1000:,.0f} ms "
        f"(two reads); a poll: {read_unchanged * 1000:.1f} ms if nothing changed, "
        f"{read_changed * 1000:.1f} ms after the current minute was re-written"
    )
    median = statistics.median(large)
    verdict = "OK" if median < TARGET_MS else "OVER TARGET"
    print(f"  target: median update < {TARGET_MS:.0f} ms at {args.days:g} d -> {verdict}")
    return 0 if median < TARGET_MS else 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--providers", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--size", default="1000x560", help="chart area in pixels, WxH")
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
