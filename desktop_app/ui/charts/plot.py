"""What every health chart shares: a date axis, fixed interaction, curves made once.

A chart never re-creates its curves: each provider (or error class) gets its
``PlotDataItem`` the first time it is seen, and every update after that is ``setData``.
Curves are downsampled ('peak': a one-minute outage in 30 days stays visible) and clipped
to the view, so 30 days of minutes cost about as much to draw as one hour.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSizeF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem

from desktop_app.core.health.series import FloatArray, HealthSeries, ProviderSeries

#: Lines are broken where more than this many buckets in a row have no measurement (the
#: app was closed, the provider was down); shorter holes are bridged.
GAP_BUCKETS = 15
TITLE_SIZE = "9pt"


def make_curve(**options: Any) -> pg.PlotDataItem:
    """A curve as all health charts want it: downsampled, clipped to the view.

    (The PlotItem it is added to applies its own settings again: see ``HealthPlot``.)
    """
    curve = pg.PlotDataItem(**options)
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    # 'peak' keeps the max and the min of each group: with one group per pixel column the
    # picture is the same as with all points. pyqtgraph's default makes groups five times
    # smaller (ten points per pixel), which cost 70 ms per update at 30 days. No setter
    # exists for this option; it is read on every redraw.
    curve.opts["autoDownsampleFactor"] = 1.0
    return curve


def finite_points(
    times: FloatArray, values: FloatArray, bucket: float
) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """The buckets that have a value, and where the line between them may be drawn.

    NaN cannot go to the curve: 'peak' downsampling takes the max of a group, and one NaN
    in a group blanks the whole group, so at 30 days a few missing minutes erased the line.
    """
    keep = np.isfinite(values)
    x, y = times[keep], values[keep]
    # connect[i]: draw the line from point i to point i + 1.
    connect = np.ones(len(x), dtype=np.int32)
    if len(x) > 1:
        connect[:-1] = np.diff(x) <= GAP_BUCKETS * bucket
    return x, y, connect


class ChartTitle(pg.LabelItem):
    """A chart title that is cut short in a narrow window instead of widening its chart.

    pyqtgraph's LabelItem claims its text's full width as its minimum; two long titles
    pushed the right-hand charts out of the window.
    """

    def updateMin(self) -> None:
        super().updateMin()
        self.setMinimumWidth(0)

    def sizeHint(self, hint: Qt.SizeHint, constraint: Any) -> QSizeF:
        size: QSizeF = super().sizeHint(hint, constraint)
        if hint == Qt.SizeHint.MinimumSize:
            size.setWidth(0)
        return size


class HealthPlot:
    """One chart: a ``PlotItem`` with a date axis and a hover cursor; subclasses add curves."""

    name = ""  # what the hover text calls it
    title = ""

    def __init__(self, foreground: QColor) -> None:
        self.foreground = foreground
        self.item = pg.PlotItem(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        # The PlotItem's own title label, swapped for one that may be cut short.
        self.item.layout.removeItem(self.item.titleLabel)
        self.item.titleLabel.setParentItem(None)
        self.item.titleLabel = ChartTitle(justify="center")
        self.item.titleLabel.setParentItem(self.item)
        self.item.layout.addItem(self.item.titleLabel, 0, 1)
        self.set_title(self.title)
        self.item.setMenuEnabled(False)
        self.item.setMouseEnabled(x=False, y=False)
        self.item.hideButtons()
        # addItem() hands the PlotItem's settings to every curve, overriding the curve's own.
        self.item.setDownsampling(auto=True, mode="peak")
        self.item.setClipToView(True)
        self.item.showGrid(x=True, y=True, alpha=0.15)
        for name in ("left", "bottom"):
            axis = self.item.getAxis(name)
            axis.setPen(foreground)
            axis.setTextPen(foreground)
            # Axes change only when the range moves on, yet were redrawn (text and all)
            # on every update: a quarter of an update's time. Cached as pixmaps instead.
            axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.item.titleLabel.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.item.getAxis("left").setWidth(52)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(foreground, width=1))
        self.cursor.setVisible(False)
        self.item.addItem(self.cursor, ignoreBounds=True)

    def set_title(self, title: str) -> None:
        self.title = title
        self.item.setTitle(title, color=self.foreground.name(), size=TITLE_SIZE)

    @property
    def view(self) -> pg.ViewBox:
        return self.item.getViewBox()

    def show_series(self, series: HealthSeries, shown: list[ProviderSeries]) -> None:
        """Put ``shown`` (providers of ``series``) on the chart with ``setData``."""
        raise NotImplementedError

    def describe(self, series: HealthSeries, shown: list[ProviderSeries], index: int) -> str:
        """The exact values of bucket ``index`` (hover text, without the time)."""
        raise NotImplementedError


def number(value: float, unit: str = "", digits: int = 1) -> str:
    """``value`` for a person; "no data" for NaN."""
    if not np.isfinite(value):
        return "no data"
    return f"{value:,.{digits}f}{unit}"
