"""End-to-end delivery probes on the real Dashboard: the table's delivery p50 and lost count,
the response-time chart's dots (delivered) and crosses (lost).

Probe rows go in through the real ``DeliveryProbeRepository`` of a real workspace, as the
prober writes them: ``add`` before sending, ``record_send`` after SMTP's reply, ``mark_seen``
when the seed mailbox shows the message, ``expire`` when it never does.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from desktop_app.core.health.series import MINUTE
from desktop_app.core.workspace import Workspace
from desktop_app.ui.charts.theme import DOWN_COLOUR
from desktop_app.ui.dashboard_page import DashboardPage
from desktop_app.ui.health_table import DELIVERY_P50_COLUMN, LOST_COLUMN

LOAD_TIMEOUT_MS = 20_000
TIMEOUT_SECONDS = 15 * MINUTE


def send_probe(
    workspace: Workspace, name: str, sent_at: float, *, seen_after: float | None = None
) -> str:
    """One probe through provider ``name``, accepted by SMTP; seen ``seen_after`` seconds
    later, or never (None)."""
    token = f"probe-{name}-{sent_at:.0f}"
    probes = workspace.delivery_probes
    probes.add(
        token=token,
        provider_uid=workspace.get_provider(name).uid,
        provider_name=name,
        sent_at=sent_at,
    )
    probes.record_send(token, smtp_latency_ms=120.0, accepted=True)
    if seen_after is not None:
        assert probes.mark_seen(token, sent_at + seen_after)
    return token


@pytest.fixture
def probes(workspace: Workspace, gui_helpers: Any) -> dict[str, float]:
    """Alpha: three delivered (8 s, 12 s, 30 s), one lost. Beta: two delivered (2 s, 4 s),
    one refused by SMTP, one still pending. All within the last two hours."""
    for name in ("Alpha", "Beta"):
        workspace.add_provider(gui_helpers.loopback_provider(name, 2525))
    now = math.floor(time.time() / MINUTE) * MINUTE
    marks = {"now": now, "lost": now - 90 * MINUTE}
    for minutes_ago, seconds in ((100, 8.0), (70, 12.0), (40, 30.0)):
        send_probe(workspace, "Alpha", now - minutes_ago * MINUTE, seen_after=seconds)
    send_probe(workspace, "Alpha", marks["lost"])
    for minutes_ago, seconds in ((95, 2.0), (65, 4.0)):
        send_probe(workspace, "Beta", now - minutes_ago * MINUTE, seen_after=seconds)
    refused = "probe-Beta-refused"
    workspace.delivery_probes.add(
        token=refused,
        provider_uid=workspace.get_provider("Beta").uid,
        provider_name="Beta",
        sent_at=now - 50 * MINUTE,
    )
    workspace.delivery_probes.record_send(
        refused, smtp_latency_ms=None, accepted=False, detail="554 5.7.1 rejected"
    )
    send_probe(workspace, "Beta", now - 2 * MINUTE)  # pending: not timed out yet
    lost = workspace.delivery_probes.expire(time.time(), TIMEOUT_SECONDS)
    assert [probe.provider_name for probe in lost] == ["Alpha"]
    return marks


def dashboard_of(make_stack: Any, qtbot: QtBot) -> DashboardPage:
    page: DashboardPage = make_stack().window.dashboard
    qtbot.waitUntil(lambda: page.charts.series is not None, timeout=LOAD_TIMEOUT_MS)
    return page


def points(item: Any) -> list[tuple[float, float]]:
    """The points a scatter item draws."""
    x, y = item.scatter.getData()
    return list(zip(x.tolist(), y.tolist(), strict=True))


def test_table_shows_delivery_p50_and_lost_count(
    probes: dict[str, float], make_stack: Any, qtbot: QtBot
) -> None:
    page = dashboard_of(make_stack, qtbot)
    table = page.providers_table
    page.refresh_figures()
    qtbot.waitUntil(
        lambda: table.text(table.row_of("Alpha"), DELIVERY_P50_COLUMN) != "—",
        timeout=LOAD_TIMEOUT_MS,
    )
    alpha, beta = table.row_of("Alpha"), table.row_of("Beta")
    assert table.text(alpha, DELIVERY_P50_COLUMN) == "12.0 s"  # median of 8, 12, 30 s
    assert table.text(beta, DELIVERY_P50_COLUMN) == "3.0 s"
    assert table.text(alpha, LOST_COLUMN) == "1"
    assert table.text(beta, LOST_COLUMN) == "0"  # refused and pending ones are not lost
    red = QColor(DOWN_COLOUR)
    assert table.item(alpha, LOST_COLUMN).foreground().color() == red
    assert table.item(beta, LOST_COLUMN).foreground().color() != red
    assert "never arrived" in table.item(alpha, LOST_COLUMN).toolTip()
    header = table.horizontalHeaderItem
    assert "send → visible in the seed mailbox" in header(DELIVERY_P50_COLUMN).toolTip()
    assert "accepted by SMTP but never arrived" in header(LOST_COLUMN).toolTip()


def test_chart_shows_delivered_dots_and_lost_crosses(
    probes: dict[str, float], workspace: Workspace, make_stack: Any, qtbot: QtBot
) -> None:
    page = dashboard_of(make_stack, qtbot)
    charts = page.charts
    series = charts.series
    assert series is not None
    alpha, beta = series.providers
    latency = charts.latency
    assert sorted(y for _x, y in points(latency.probes[alpha.uid, "delivered"])) == [8, 12, 30]
    assert sorted(y for _x, y in points(latency.probes[beta.uid, "delivered"])) == [2, 4]
    lost = points(latency.probes[alpha.uid, "lost"])
    assert [x for x, _y in lost] == [probes["lost"]]
    assert lost[0][1] > 30  # above the slowest delivery: along the top
    assert points(latency.probes[beta.uid, "lost"]) == []

    # The provider filter: Beta alone.
    page.set_provider("Beta")
    assert not latency.probes[alpha.uid, "delivered"].isVisible()
    assert latency.probes[beta.uid, "delivered"].isVisible()
    assert not latency.probes[alpha.uid, "lost"].isVisible()
    page.set_provider(None)
    assert latency.probes[alpha.uid, "lost"].isVisible()

    # The range: 1 h holds only the 30 s delivery of Alpha's (40 minutes ago).
    page.set_range("1h")
    qtbot.waitUntil(lambda: charts.series is not None and charts.series.span == 3600)
    assert [y for _x, y in points(latency.probes[alpha.uid, "delivered"])] == [30]
    assert points(latency.probes[alpha.uid, "lost"]) == []
    # The hover text of that minute tells the delivery too.
    one_hour = charts.series
    assert one_hour is not None
    at = one_hour.grid.index_of(probes["now"] - 40 * MINUTE)
    assert "Alpha: probe no data, send no data, delivered in 30.0 s" in latency.describe(
        one_hour, charts.shown, at
    )

    # Live: the pending probe of Beta arrives; the next poll puts it on the chart.
    token = f"probe-Beta-{probes['now'] - 2 * MINUTE:.0f}"
    assert workspace.delivery_probes.mark_seen(token, probes["now"] - 2 * MINUTE + 5)
    qtbot.waitUntil(
        lambda: [y for _x, y in points(latency.probes[beta.uid, "delivered"])] == [5],
        timeout=LOAD_TIMEOUT_MS,
    )
