"""Uptime against the target: per provider, the uptime from the start of the range so far.

The last point of each line is the provider's uptime over the whole range (maintenance
excluded), the figure ``relaydesk health`` prints for that range; the dashed line is the
target (setting ``health.uptime_target_percent``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from desktop_app.core.health.series import HealthSeries, ProviderSeries
from desktop_app.ui.charts.plot import HealthPlot, finite_points, make_curve, number
from desktop_app.ui.charts.theme import TARGET_COLOUR

#: The start of a running uptime is noisy (one bad minute of the first two is 50 %): this
#: first share of the range does not widen the y scale (its values may run off the bottom).
SETTLING_SHARE = 0.05


class UptimePlot(HealthPlot):
    """Running uptime per provider and the target line."""

    name = "Uptime"
    title = "Uptime so far in the range (%), target dashed"

    def __init__(self, foreground: QColor) -> None:
        super().__init__(foreground)
        #: provider uid -> curve, made once.
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.target = pg.InfiniteLine(
            angle=0,
            movable=False,
            pen=pg.mkPen(TARGET_COLOUR, width=1.5, style=Qt.PenStyle.DashLine),
            label="target {value:g} %",
            # Hanging below the line: above it, at 99.9 of a 100 % scale, it was cut off.
            labelOpts={"position": 0.03, "color": TARGET_COLOUR, "anchors": [(0, 0), (0, 0)]},
        )
        self.item.addItem(self.target, ignoreBounds=True)
        self.item.enableAutoRange(y=False)

    def add_provider(self, uid: str, colour: QColor) -> None:
        if uid not in self.curves:
            curve = make_curve(pen=pg.mkPen(colour, width=1))
            self.curves[uid] = curve
            self.item.addItem(curve)

    def show_series(self, series: HealthSeries, shown: list[ProviderSeries]) -> None:
        visible = {provider.uid for provider in shown}
        for uid, curve in self.curves.items():
            curve.setVisible(uid in visible)
        target = series.target_percent
        self.target.setValue(target)
        settled = int(series.grid.count * SETTLING_SHARE)
        lowest = target
        for provider in shown:
            x, y, connect = finite_points(series.times, provider.uptime_percent, series.grid.bucket)
            self.curves[provider.uid].setData(x, y, connect=connect, skipFiniteCheck=True)
            later = provider.uptime_percent[settled:]
            if np.isfinite(later).any():
                lowest = min(lowest, float(np.nanmin(later)))
        # Room below the lowest line and the target, so 99.9 and 100 do not merge.
        margin = max(0.05, (100.0 - lowest) * 0.25)
        self.item.setYRange(max(0.0, lowest - margin), 100.0 + margin / 2, padding=0)

    def describe(self, series: HealthSeries, shown: list[ProviderSeries], index: int) -> str:
        parts = []
        for p in shown:
            up, down = p.raw["up_seconds"][index], p.raw["down_seconds"][index]
            this_bucket = 100.0 * up / (up + down) if up + down else float("nan")
            parts.append(
                f"{p.name}: {number(p.uptime_percent[index], ' %', 3)} so far"
                f" (this bucket {number(this_bucket, ' %', 1)})"
            )
        return "; ".join(parts) + f"; target {series.target_percent:g} %"
