"""Up/down timeline: one lane per provider, maintenance shaded, unwatched time left blank.

The lanes are one image, a pixel column per group of buckets, coloured by the worst thing
that happened in the group: down over maintenance over up over "not watched" (the 'peak'
way of downsampling: a one-minute outage in 30 days keeps its red pixel). An image with a
colour table costs the same at 30 days as at one hour; 15 filled curves (three per
provider) took most of an update's time.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFontMetrics

from desktop_app.core.health.series import HealthSeries, ProviderSeries
from desktop_app.ui.charts.plot import HealthPlot
from desktop_app.ui.charts.theme import DOWN_COLOUR, MAINTENANCE_COLOUR, UP_COLOUR

NOT_WATCHED, UP, MAINTENANCE, DOWN = 0, 1, 2, 3
#: Image rows per lane: the last one stays blank and separates the lanes.
ROWS_PER_LANE = 5


def status_codes(provider: ProviderSeries) -> np.ndarray:
    """The worst status of each bucket: DOWN if it was down at all, and so on. Where
    nobody watched, a configured maintenance window still shows as maintenance."""
    raw = provider.raw
    codes = np.full(len(provider.present), NOT_WATCHED, dtype=np.uint8)
    codes[raw["up_seconds"] > 0] = UP
    codes[raw["maintenance_seconds"] > 0] = MAINTENANCE
    codes[raw["down_seconds"] > 0] = DOWN
    codes[provider.scheduled_maintenance & (codes == NOT_WATCHED)] = MAINTENANCE
    return codes


def worst_per_pixel(codes: np.ndarray, pixels: int) -> np.ndarray:
    """``codes`` reduced to at most ``pixels`` columns, keeping the worst of each group."""
    group = max(1, -(-len(codes) // max(1, pixels)))  # ceiling division
    if group == 1:
        return codes
    padded = np.zeros(-(-len(codes) // group) * group, dtype=codes.dtype)
    padded[: len(codes)] = codes
    reduced: np.ndarray = padded.reshape(-1, group).max(axis=1)
    return reduced


class TimelinePlot(HealthPlot):
    """Status per bucket and provider: up, down, maintenance, or not watched."""

    name = "Up/down"
    title = (
        f"Status: <span style='color:{UP_COLOUR}'>&#9632;</span> up "
        f"<span style='color:{DOWN_COLOUR}'>&#9632;</span> down "
        f"<span style='color:{MAINTENANCE_COLOUR}'>&#9632;</span> maintenance (blank: not watched)"
    )

    def __init__(self, foreground: QColor) -> None:
        super().__init__(foreground)
        self.image = pg.ImageItem(axisOrder="row-major")
        colours = [QColor(0, 0, 0, 0), QColor(UP_COLOUR), QColor(MAINTENANCE_COLOUR)]
        colours.append(QColor(DOWN_COLOUR))
        self.image.setLookupTable(np.array([c.getRgb() for c in colours], dtype=np.uint8))
        self.image.setLevels([0, 3])
        self.item.addItem(self.image)
        self.item.showGrid(x=True, y=False)
        self.item.enableAutoRange(x=False, y=False)
        self._last: tuple[HealthSeries, list[ProviderSeries]] | None = None
        #: Provider names longer than this (pixels) are elided in the lane labels; 0: never.
        self.elide_width = 0
        self.view.sigResized.connect(self._on_view_resized)

    def show_series(self, series: HealthSeries, shown: list[ProviderSeries]) -> None:
        self._last = (series, shown)
        lanes = max(1, len(shown))
        pixels = max(1, int(self.view.width())) if self.view.width() > 1 else series.grid.count
        columns = len(worst_per_pixel(np.zeros(series.grid.count, dtype=np.uint8), pixels))
        image = np.zeros((lanes * ROWS_PER_LANE, columns), dtype=np.uint8)
        ticks = []
        for position, provider in enumerate(shown):
            lane = lanes - 1 - position  # the first provider on top (y grows upwards)
            row = lane * ROWS_PER_LANE + 1
            image[row : row + ROWS_PER_LANE - 1] = worst_per_pixel(status_codes(provider), pixels)
            ticks.append((lane + 0.6, self._label(provider.name)))  # mid coloured rows
        self.image.setImage(image, autoLevels=False)
        self.image.setRect(
            QRectF(series.grid.start, 0.0, series.grid.end - series.grid.start, lanes)
        )
        self.item.getAxis("left").setTicks([ticks])
        self.item.setYRange(0, lanes, padding=0.02)

    def _label(self, name: str) -> str:
        if not self.elide_width:
            return name
        metrics = QFontMetrics(self.item.getAxis("left").font())
        return metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, self.elide_width)

    def _on_view_resized(self) -> None:
        if self._last is not None:
            self.show_series(*self._last)

    def describe(self, series: HealthSeries, shown: list[ProviderSeries], index: int) -> str:
        parts = []
        for p in shown:
            if not p.present[index]:
                scheduled = " (maintenance window)" if p.scheduled_maintenance[index] else ""
                parts.append(f"{p.name}: not watched{scheduled}")
                continue
            up, down = p.raw["up_seconds"][index], p.raw["down_seconds"][index]
            parts.append(
                f"{p.name}: up {up:g} s, down {down:g} s"
                f", maintenance {p.raw['maintenance_seconds'][index]:g} s"
            )
        return "; ".join(parts)
