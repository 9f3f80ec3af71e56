"""Response time over time, one line per provider: of probes, or of real sends.

One kind at a time (``set_kind``): both at once, five providers made ten noisy lines that
nobody could tell apart. The hover text always gives both.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QColor

from desktop_app.core.health.series import HealthSeries, ProviderSeries
from desktop_app.ui.charts.plot import HealthPlot, finite_points, make_curve, number

KINDS = {"probe": "probes", "send": "sends"}


class LatencyPlot(HealthPlot):
    """Mean probe or send latency per bucket, in ms, one colour per provider."""

    name = "Response time"
    title = "Response time of probes (ms, mean)"

    def __init__(self, foreground: QColor) -> None:
        super().__init__(foreground)
        #: (provider uid, "probe" | "send") -> curve, made once.
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self.kind = "probe"
        self.item.enableAutoRange(y=True)

    def add_provider(self, uid: str, colour: QColor) -> None:
        if (uid, "probe") in self.curves:
            return
        for kind in KINDS:
            # Width 1: a wider pen goes through Qt's stroker, several times slower.
            curve = make_curve(pen=pg.mkPen(colour, width=1))
            self.curves[uid, kind] = curve
            self.item.addItem(curve)

    def set_kind(self, kind: str) -> None:
        """Show the latency of "probe"s or of "send"s (takes effect on the next update)."""
        if kind not in KINDS:
            raise ValueError(kind)
        self.kind = kind
        self.set_title(f"Response time of {KINDS[kind]} (ms, mean)")

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

    def describe(self, series: HealthSeries, shown: list[ProviderSeries], index: int) -> str:
        return "; ".join(
            f"{p.name}: probe {number(p.probe_latency_ms[index], ' ms')}, "
            f"send {number(p.send_latency_ms[index], ' ms')}"
            for p in shown
        )
