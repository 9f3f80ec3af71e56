"""Response time over time, one line per provider: of probes, or of real sends.

One kind at a time (``set_kind``): both at once, five providers made ten noisy lines that
nobody could tell apart. The hover text always gives both.

End-to-end delivery probes are dots on the same chart, in the provider's colour, against an
axis of their own on the right, in seconds: they take seconds to minutes where a probe takes
a hundred milliseconds, and on one axis they flattened the lines. A delivered probe is a dot
at its sending time and height its delivery latency; a lost one (accepted, never arrived) a
cross along the top.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem

from desktop_app.core.health.series import DeliveryPoints, HealthSeries, ProviderSeries
from desktop_app.ui.charts.plot import HealthPlot, finite_points, make_curve, number

KINDS = {"probe": "probes", "send": "sends"}
#: Where the lost probes' crosses sit: this much above the slowest delivery shown (or at
#: ``LOST_HEIGHT_S`` when none was delivered), so that they run along the top of the chart.
LOST_ABOVE = 1.15
LOST_HEIGHT_S = 60.0
#: Width of the delivery probes' axis (the timeline below keeps an empty one as wide).
RIGHT_AXIS_WIDTH = 36
DOT_SIZE = 7
#: Pixels per downsampling group of the probes' dots (the lines use one).
DOT_SPACING = 4
CROSS_SIZE = 9


class LatencyPlot(HealthPlot):
    """Mean probe or send latency per bucket, in ms, one colour per provider."""

    name = "Response time"
    title = "Response time of probes (ms, mean) · ● delivery probes (s) · ✕ lost"

    def __init__(self, foreground: QColor, background: QColor | None = None) -> None:
        super().__init__(foreground)
        self.background = background if background is not None else QColor("white")
        #: (provider uid, "probe" | "send") -> curve, made once.
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        #: (provider uid, "delivered" | "lost") -> scatter of delivery probes, made once.
        self.probes: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.kind = "probe"
        self.item.enableAutoRange(y=True)
        self._probes_shown: tuple[DeliveryPoints, frozenset[str]] | None = None
        # The delivery probes' own view box and axis (seconds), over the same time axis.
        self.delivery_view = pg.ViewBox(enableMouse=False, enableMenu=False)
        self.delivery_view.setParentItem(self.item)
        self.delivery_view.setZValue(self.view.zValue() + 1)
        self.delivery_view.setXLink(self.view)
        # x comes from the link alone: its own x autorange moved all four charts' range.
        self.delivery_view.disableAutoRange(pg.ViewBox.XAxis)
        self.delivery_view.enableAutoRange(y=True)
        self.view.sigResized.connect(self._on_view_resized)
        self.item.showAxis("right")
        right = self.item.getAxis("right")
        right.linkToView(self.delivery_view)
        right.setPen(foreground)
        right.setTextPen(foreground)
        right.setWidth(RIGHT_AXIS_WIDTH)
        right.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.set_kind(self.kind)

    def add_provider(self, uid: str, colour: QColor) -> None:
        if (uid, "probe") in self.curves:
            return
        for kind in KINDS:
            # Width 1: a wider pen goes through Qt's stroker, several times slower.
            curve = make_curve(pen=pg.mkPen(colour, width=1))
            self.curves[uid, kind] = curve
            self.item.addItem(curve)
        # Ringed in the background colour: a dot in the provider's colour vanished into
        # the provider's own line.
        delivered = make_curve(
            pen=None,
            symbol="o",
            symbolSize=DOT_SIZE,
            symbolBrush=colour,
            symbolPen=pg.mkPen(self.background, width=1),
        )
        lost = make_curve(
            pen=None,
            symbol="x",
            symbolSize=CROSS_SIZE,
            symbolBrush=colour,
            symbolPen=pg.mkPen(colour.darker(150), width=1),
        )
        for status, scatter in (("delivered", delivered), ("lost", lost)):
            # A group of 'peak' downsampling per few pixels, not per pixel: a dot is wider
            # than that anyway, and pyqtgraph lays out each dot in Python (30 days of
            # probes for five providers took 20 ms per update at one group per pixel).
            scatter.opts["autoDownsampleFactor"] = 1 / DOT_SPACING
            self.probes[uid, status] = scatter
            self.delivery_view.addItem(scatter)
        self._probes_shown = None

    def set_kind(self, kind: str) -> None:
        """Show the latency of "probe"s or of "send"s (takes effect on the next update)."""
        if kind not in KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.set_title(
            f"Response time of {KINDS[kind]} (ms, mean) · ● delivery probes (s) · ✕ lost"
        )

    def show_series(self, series: HealthSeries, shown: list[ProviderSeries]) -> None:
        visible = {provider.uid for provider in shown}
        for (uid, kind), curve in self.curves.items():
            curve.setVisible(uid in visible and kind == self.kind)
        for provider in shown:
            values = provider.probe_latency_ms if self.kind == "probe" else provider.send_latency_ms
            x, y, connect = finite_points(series.times, values, series.grid.bucket)
            self.curves[provider.uid, self.kind].setData(
                x, y, connect=connect, skipFiniteCheck=True
            )
        self._show_probes(series.deliveries, visible)

    def _show_probes(self, deliveries: DeliveryPoints, visible: set[str]) -> None:
        """The probes of the providers ``visible``; only when they or the choice changed
        (they change every few minutes, the series every second)."""
        key = (deliveries, frozenset(visible))
        if self._probes_shown is not None and (
            self._probes_shown[0] is deliveries and self._probes_shown[1] == key[1]
        ):
            return
        self._probes_shown = key
        delivered = {uid: deliveries.delivered(uid) for uid in visible}
        slowest = max((float(ms.max()) for _x, ms in delivered.values() if len(ms)), default=0.0)
        top = LOST_ABOVE * slowest / 1000 if slowest > 0 else LOST_HEIGHT_S
        for (uid, status), scatter in self.probes.items():
            shown = uid in visible
            scatter.setVisible(shown)
            if not shown:
                continue
            if status == "delivered":
                x, y = delivered[uid][0], delivered[uid][1] / 1000
            else:
                x = deliveries.lost(uid)
                y = np.full(len(x), top)
            if len(x):
                scatter.setData(x, y)
            else:
                scatter.clear()  # setData with no points leaves the old ones drawn

    def _on_view_resized(self) -> None:
        self.delivery_view.setGeometry(self.view.geometry())

    def describe(self, series: HealthSeries, shown: list[ProviderSeries], index: int) -> str:
        start = float(series.times[index])
        probes = series.deliveries.between(start, start + series.grid.bucket)
        return "; ".join(
            f"{p.name}: probe {number(p.probe_latency_ms[index], ' ms')}, "
            f"send {number(p.send_latency_ms[index], ' ms')}{_delivery_text(probes, p.uid)}"
            for p in shown
        )


def _delivery_text(probes: DeliveryPoints, uid: str) -> str:
    """ ", delivered in 12.3 s" / ", delivery probe lost" for ``uid``'s probes in ``probes``."""
    _x, latencies = probes.delivered(uid)
    parts = [f", delivered in {ms / 1000:,.1f} s" for ms in latencies.tolist()]
    parts += [", delivery probe lost"] * len(probes.lost(uid))
    return "".join(parts)
