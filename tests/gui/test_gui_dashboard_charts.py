"""The Dashboard's health charts over real rollup rows: render, range, filter, hover, export,
live update.

Rows go into ``health_minute`` of a real workspace (temp dir) the way the health monitor
writes them (one row per provider and minute, the current minute re-written); the window
reads them on its loop thread like in the app.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot
from sqlalchemy import delete, insert

from desktop_app.core.health import series as health_series
from desktop_app.core.health.series import DAY, HOUR, MINUTE
from desktop_app.core.storage.schema import HealthMinuteRow
from desktop_app.core.workspace import Workspace
from desktop_app.ui.charts import theme
from desktop_app.ui.charts.health_charts import HealthCharts
from desktop_app.ui.charts.timeline import DOWN, MAINTENANCE
from desktop_app.ui.dashboard_page import DashboardPage

LOAD_TIMEOUT_MS = 20_000


def minute_now() -> float:
    return math.floor(time.time() / MINUTE) * MINUTE


def write_minute(workspace: Workspace, name: str, bucket: float, **values: Any) -> None:
    """Write (or re-write, as the monitor does with the current minute) one rollup row."""
    uid = workspace.get_provider(name).uid
    with workspace.database.write() as connection:
        connection.execute(
            delete(HealthMinuteRow).where(
                HealthMinuteRow.provider_uid == uid, HealthMinuteRow.bucket_start == bucket
            )
        )
        connection.execute(
            insert(HealthMinuteRow).values(
                provider_uid=uid, provider_name=name, bucket_start=bucket, **values
            )
        )


def healthy(latency_ms: float, sent: int = 10) -> dict[str, Any]:
    return {
        "up_seconds": 60.0,
        "probes_up": 1,
        "probe_latency_count": 1,
        "probe_latency_sum_ms": latency_ms,
        "sent": sent,
        "send_latency_count": sent,
        "send_latency_sum_ms": 2 * latency_ms * sent,
    }


@pytest.fixture
def history(workspace: Workspace, gui_helpers: Any) -> dict[str, float]:
    """Alpha and Beta: two hours of minutes, Beta down for 5 minutes with failed sends,
    Alpha in maintenance for 10, one exact minute to hover, and a row 29 days old."""
    for name in ("Alpha", "Beta"):
        workspace.add_provider(gui_helpers.loopback_provider(name, 2525))
    now = minute_now()
    marks = {"now": now, "outage": now - 30 * MINUTE, "maintenance": now - 60 * MINUTE}
    marks["exact"] = now - 20 * MINUTE
    marks["old"] = now - 29 * DAY
    rows = []
    for minutes_ago in range(120, 0, -1):
        bucket = now - minutes_ago * MINUTE
        alpha = healthy(80.0 + minutes_ago % 7)
        beta = healthy(150.0 + minutes_ago % 5, sent=4)
        if marks["outage"] <= bucket < marks["outage"] + 5 * MINUTE:
            beta = {"down_seconds": 60.0, "probes_down": 4, "sent": 0, "provider_failure": 8}
        if marks["maintenance"] <= bucket < marks["maintenance"] + 10 * MINUTE:
            alpha = {"maintenance_seconds": 60.0}
        if bucket == marks["exact"]:
            alpha = healthy(0) | {
                "probe_latency_count": 2,
                "probe_latency_sum_ms": 247.0,  # mean 123.5 ms
                "send_latency_count": 4,
                "send_latency_sum_ms": 1000.0,  # mean 250 ms
                "sent": 3,
                "recipient_permanent": 1,
            }
        rows.append(("Alpha", bucket, alpha))
        rows.append(("Beta", bucket, beta))
    rows.append(("Alpha", marks["old"], {"down_seconds": 60.0}))
    for name, bucket, values in rows:
        write_minute(workspace, name, bucket, **values)
    return marks


def dashboard_of(make_stack: Any, qtbot: QtBot) -> DashboardPage:
    stack = make_stack()
    page: DashboardPage = stack.window.dashboard
    assert stack.window.pages.currentWidget() is page
    qtbot.waitUntil(lambda: page.charts.series is not None, timeout=LOAD_TIMEOUT_MS)
    return page


def wait_for_range(qtbot: QtBot, page: DashboardPage, key: str, span: float) -> None:
    page.set_range(key)
    qtbot.waitUntil(
        lambda: page.charts.series is not None and page.charts.series.span == span,
        timeout=LOAD_TIMEOUT_MS,
    )


def x_range(page: DashboardPage) -> tuple[float, float]:
    (left, right), _y = page.charts.latency.view.viewRange()
    return left, right


def image_colours(image: QImage) -> set[str]:
    """The colours of a coarse grid of pixels of ``image``."""
    return {
        image.pixelColor(x, y).name()
        for x in range(0, image.width(), 2)
        for y in range(0, image.height(), 2)
    }


def test_dashboard_renders_real_health_data(
    history: dict[str, float], make_stack: Any, qtbot: QtBot, tmp_path: Path
) -> None:
    page = dashboard_of(make_stack, qtbot)
    series = page.charts.series
    assert series is not None and series.span == DAY  # the default range
    assert series.names() == ["Alpha", "Beta"]
    alpha, beta = series.providers
    charts = page.charts

    # Latency: one point per minute with a probe, at its exact mean.
    curve = charts.latency.curves[alpha.uid, "probe"]
    x, y = curve.xData, curve.yData
    assert len(x) == 110  # 120 minutes, 10 of them in maintenance (no probes)
    assert dict(zip(x.tolist(), y.tolist(), strict=True))[history["exact"]] == 123.5
    # Timeline: Beta's outage is red, Alpha's maintenance shaded, in their own lanes.
    assert DOWN in charts.timeline.image.image[1:5].tolist()[0]  # Beta: the bottom lane
    assert MAINTENANCE in charts.timeline.image.image[6:10].tolist()[0]  # Alpha: on top
    ticks = charts.timeline.item.getAxis("left")._tickLevels[0]
    assert [name for _y, name in sorted(ticks, reverse=True)] == ["Alpha", "Beta"]
    # Error rate: during Beta's outage all of both providers' sends failed but Alpha's 10.
    errors = charts.errors.curves["provider_failure"]
    at = int((history["outage"] - series.grid.start) // MINUTE)
    assert errors.yData[at] == pytest.approx(100 * 8 / 18)
    # Uptime against the target: Beta lost 5 of its 120 minutes (the old row is > 24 h).
    uptime = charts.uptime.curves[beta.uid]
    assert uptime.yData[-1] == pytest.approx(100 * 115 / 120)
    assert charts.uptime.target.value() == pytest.approx(99.9)

    # What a person sees: both provider colours, red for the outage, the target line.
    qtbot.waitUntil(lambda: bool(charts.viewport().rect().width()))
    shot = charts.grab().toImage()
    shot.save(str(tmp_path / "dashboard-charts.png"))
    seen = image_colours(shot)
    for colour in (theme.PROVIDER_COLOURS[0], theme.PROVIDER_COLOURS[1], theme.DOWN_COLOUR):
        assert QColor(colour).name() in seen, colour


def test_range_switch_changes_the_x_range_up_to_thirty_days(
    history: dict[str, float], make_stack: Any, qtbot: QtBot
) -> None:
    page = dashboard_of(make_stack, qtbot)
    for key, span in (("1h", HOUR), ("7d", 7 * DAY), ("30d", 30 * DAY), ("24h", DAY)):
        qtbot.mouseClick(page.range_buttons[key], _left())
        qtbot.waitUntil(
            lambda span=span: page.charts.series is not None and page.charts.series.span == span,
            timeout=LOAD_TIMEOUT_MS,
        )
        left, right = x_range(page)
        assert right - left == pytest.approx(span, abs=MINUTE), key
        assert right >= history["now"]
        assert page.range_buttons[key].isChecked()
        # The same time axis on all four charts.
        for plot in page.charts.plots:
            assert plot.view.viewRange()[0] == pytest.approx([left, right])
        old_row = (
            history["old"] in page.charts.series.times[page.charts.series.providers[0].present]
        )
        assert old_row == (key == "30d"), key  # 29 days back: only the 30-day range has it


def _left() -> Any:
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_provider_filter_shows_one_provider_or_all(
    history: dict[str, float], make_stack: Any, qtbot: QtBot
) -> None:
    page = dashboard_of(make_stack, qtbot)
    charts = page.charts
    series = charts.series
    assert series is not None
    alpha, beta = series.providers
    assert [page.provider_combo.itemText(i) for i in range(page.provider_combo.count())] == [
        "All providers",
        "Alpha",
        "Beta",
    ]
    page.provider_combo.setCurrentText("Beta")
    assert [p.name for p in charts.shown] == ["Beta"]
    assert charts.latency.curves[beta.uid, "probe"].isVisible()
    assert not charts.latency.curves[alpha.uid, "probe"].isVisible()
    assert not charts.uptime.curves[alpha.uid].isVisible()
    assert charts.timeline.image.image.shape[0] == 5  # one lane
    # The error rate is Beta's alone now: all of its sends failed during the outage.
    at = int((history["outage"] - series.grid.start) // MINUTE)
    assert charts.errors.curves["provider_failure"].yData[at] == 100.0
    assert [label.text for _sample, label in charts.provider_legend.items] == ["Beta"]

    page.set_provider(None)
    assert [p.name for p in charts.shown] == ["Alpha", "Beta"]
    assert charts.latency.curves[alpha.uid, "probe"].isVisible()
    assert charts.timeline.image.image.shape[0] == 10


def test_hover_shows_the_exact_values(
    history: dict[str, float], make_stack: Any, qtbot: QtBot
) -> None:
    page = dashboard_of(make_stack, qtbot)
    charts = page.charts
    page.set_range("1h")
    qtbot.waitUntil(lambda: charts.series is not None and charts.series.span == HOUR)
    qtbot.waitUntil(lambda: charts.latency.view.width() > 100)

    def hover(plot: Any, at: float) -> str:
        # Into the middle of the minute, half-way up the chart, as the pointer would.
        _x, (bottom, top) = plot.view.viewRange()
        scene = plot.view.mapViewToScene(QPointF(at + MINUTE / 2, (bottom + top) / 2))
        # Let the previous move land first: moves sent back to back were lost now and then.
        qtbot.wait(50)
        qtbot.mouseMove(charts.viewport(), charts.mapFromScene(scene))
        qtbot.waitUntil(lambda: page.readout.text().startswith(f"{plot.name} at "))
        return page.readout.text()

    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(history["exact"]))
    text = hover(charts.latency, history["exact"])
    assert text.startswith(f"Response time at {when}")
    assert "Alpha: probe 123.5 ms, send 250.0 ms" in text
    assert "Beta: probe 1" in text  # every provider shown, with its own value
    text = hover(charts.errors, history["exact"])
    assert "Error rate at" in text and "8 sends: recipient 5xx 1 (12.5 %)" in text
    text = hover(charts.timeline, history["outage"])
    assert "Beta: up 0 s, down 60 s, maintenance 0 s" in text
    assert all(plot.cursor.isVisible() for plot in charts.plots)


def test_png_export_writes_the_charts_at_the_size_asked(
    history: dict[str, float], make_stack: Any, qtbot: QtBot, tmp_path: Path
) -> None:
    page = dashboard_of(make_stack, qtbot)
    shown = page.charts.rect()  # what the exporter renders: the charts as on screen
    path = tmp_path / "charts.png"
    page.export_png(path, width=1600)
    image = QImage(str(path))
    assert not image.isNull()
    assert image.width() == 1600
    assert image.height() == pytest.approx(1600 * shown.height() / shown.width(), abs=1)
    seen = image_colours(image)
    assert len(seen) > 10  # not a blank canvas
    assert QColor(theme.DOWN_COLOUR).name() in seen
    assert page.chart_status.text().startswith(f"Saved 1600×{image.height()} image")

    page.export_png(tmp_path / "as-shown")  # a save dialog may leave the suffix off
    assert QImage(str(tmp_path / "as-shown")).size() == shown.size()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as source:
        return list(csv.DictReader(source))


def test_csv_export_round_trips_the_series_shown(
    history: dict[str, float], make_stack: Any, qtbot: QtBot, tmp_path: Path
) -> None:
    page = dashboard_of(make_stack, qtbot)
    series = page.charts.series
    assert series is not None
    path = tmp_path / "all.csv"
    page.export_csv(path)
    qtbot.waitUntil(lambda: page.chart_status.text().startswith("Saved 240 rows"))
    rows = read_csv(path)
    for provider in series.providers:
        mine = [row for row in rows if row["provider"] == provider.name]
        times = series.times[provider.present]
        assert [float(row["bucket_start"]) for row in mine] == times.tolist()
        for column, values in (
            ("probe_latency_ms", provider.probe_latency_ms),
            ("send_latency_ms", provider.send_latency_ms),
            ("uptime_percent", provider.uptime_percent),
            ("sent", provider.sent),
            ("provider_failure", provider.errors("provider_failure")),
            ("down_seconds", provider.raw["down_seconds"]),
        ):
            expected = values[provider.present]
            read = np.array([float(row[column]) if row[column] else np.nan for row in mine])
            np.testing.assert_array_equal(read, expected, err_msg=column)

    page.set_provider("Beta")
    page.export_csv(tmp_path / "beta.csv")
    qtbot.waitUntil(lambda: page.chart_status.text().startswith("Saved 120 rows"))
    assert {row["provider"] for row in read_csv(tmp_path / "beta.csv")} == {"Beta"}


def test_live_update_adds_points_to_the_same_curves(
    history: dict[str, float], workspace: Workspace, make_stack: Any, qtbot: QtBot
) -> None:
    page = dashboard_of(make_stack, qtbot)
    charts = page.charts
    series = charts.series
    assert series is not None
    alpha = series.providers[0]
    curves = {
        "latency": charts.latency.curves[alpha.uid, "probe"],
        "uptime": charts.uptime.curves[alpha.uid],
        "errors": charts.errors.curves["provider_failure"],
    }
    items = {plot.name: list(plot.item.items) for plot in charts.plots}
    points = len(curves["latency"].xData)

    # The monitor writes the current minute, then re-writes it a few seconds later.
    now = minute_now()
    write_minute(workspace, "Alpha", now, **healthy(300.0))
    qtbot.waitUntil(
        lambda: (
            curves["latency"].xData is not None
            and curves["latency"].xData[-1] == now
            and curves["latency"].yData[-1] == 300.0
        ),
        timeout=LOAD_TIMEOUT_MS,
    )
    assert len(curves["latency"].xData) >= points + 1
    write_minute(workspace, "Alpha", now, **(healthy(300.0) | {"probe_latency_count": 2}))
    qtbot.waitUntil(lambda: curves["latency"].yData[-1] == 150.0, timeout=LOAD_TIMEOUT_MS)

    # The same PlotDataItems, updated in place; nothing added to or removed from the plots.
    assert charts.latency.curves[alpha.uid, "probe"] is curves["latency"]
    assert charts.uptime.curves[alpha.uid] is curves["uptime"]
    assert charts.errors.curves["provider_failure"] is curves["errors"]
    assert {plot.name: list(plot.item.items) for plot in charts.plots} == items


def test_charts_close_cleanly_after_showing_data(
    history: dict[str, float], workspace: Workspace, qtbot: QtBot
) -> None:
    """pyqtgraph's close() deletes the scene's items, then resizes: the charts' resize
    handler laid out deleted legends and crashed the process."""
    charts = HealthCharts()
    qtbot.addWidget(charts)
    charts.resize(900, 500)
    with qtbot.waitExposed(charts):
        charts.show()
    charts.show_series(health_series.load(workspace.database, DAY, time.time()))
    charts.close()
    assert charts.closed
