"""The four health charts in one pyqtgraph scene, sharing one time axis.

Latency and error rate on top, the up/down timeline and uptime below; all four x axes are
linked and cover the selected range. Hovering over any chart puts a cursor on all four and
tells the exact values of that chart at that time (``hovered``). ``export_png`` renders the
whole scene, legend included, through pyqtgraph's ImageExporter.

Signals:
    hovered(str): the hover text, "" when the pointer left the charts.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pyqtgraph as pg
import pyqtgraph.exporters
from pyqtgraph.graphicsItems.LegendItem import ItemSample
from PySide6.QtCore import QByteArray, QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QImageWriter, QPainter
from PySide6.QtWidgets import QWidget

from desktop_app.core.health.series import ERROR_CLASSES, HealthSeries, ProviderSeries
from desktop_app.ui.charts.errors import ErrorRatePlot
from desktop_app.ui.charts.latency import RIGHT_AXIS_WIDTH, LatencyPlot
from desktop_app.ui.charts.plot import HealthPlot
from desktop_app.ui.charts.theme import (
    ERROR_COLOURS,
    ERROR_LABELS,
    chart_colours,
    provider_colour,
)
from desktop_app.ui.charts.timeline import TimelinePlot
from desktop_app.ui.charts.uptime import UptimePlot

MIN_AXIS_WIDTH = 52
MAX_AXIS_WIDTH = 160
LEGEND_ROW_HEIGHT = 20
#: A legend entry is its label plus the sample and the spacing.
LEGEND_ENTRY_EXTRA = 20 + 10 + 12
LEGEND_POINT_SIZE = 8


def legend_style(foreground: QColor) -> dict[str, Any]:
    return {
        "labelTextColor": foreground,
        "labelTextSize": f"{LEGEND_POINT_SIZE}pt",
        "horSpacing": 10,
    }


class Swatch(ItemSample):
    """A legend sample: a short line (a provider) or a filled square (a colour of the
    timeline or of an error class). Clicking it does nothing: pyqtgraph's sample would hide
    the curve, behind the back of the provider selector."""

    def __init__(self, colour: QColor, *, line: bool = False) -> None:
        super().__init__(None)
        self._colour = colour
        self._line = line

    def paint(self, painter: QPainter, *args: Any) -> None:
        if self._line:
            painter.setPen(pg.mkPen(self._colour, width=3))
            painter.drawLine(2, 11, 18, 11)
        else:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(self._colour)
            painter.drawRect(QRectF(4, 4, 13, 13))

    def mouseClickEvent(self, event: Any) -> None:
        event.ignore()


class HealthCharts(pg.GraphicsLayoutWidget):
    """Latency, error rate, up/down timeline and uptime of the providers shown."""

    hovered = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, show=False, size=None, title=None)
        background, foreground = chart_colours(self.palette())
        self.setBackground(background)
        self.setAccessibleName("Health charts")
        self._foreground = foreground
        self.latency = LatencyPlot(foreground, background)
        self.errors = ErrorRatePlot(foreground)
        self.timeline = TimelinePlot(foreground)
        self.uptime = UptimePlot(foreground)
        self.plots: tuple[HealthPlot, ...] = (self.latency, self.errors, self.timeline, self.uptime)

        # Legends in the scene (so the exported PNG has them): the providers above the
        # latency chart, the error classes above the error chart; the timeline's colours
        # are in its title.
        self.provider_legend = pg.LegendItem(colCount=3, **legend_style(foreground))
        self.error_legend = pg.LegendItem(colCount=3, **legend_style(foreground))
        for error_class in ERROR_CLASSES:
            self.error_legend.addItem(
                Swatch(QColor(ERROR_COLOURS[error_class])), ERROR_LABELS[error_class]
            )
        self.ci.addItem(self.provider_legend, row=0, col=0)
        self.ci.addItem(self.error_legend, row=0, col=1)
        self.ci.addItem(self.latency.item, row=1, col=0)
        self.ci.addItem(self.errors.item, row=1, col=1)
        self.ci.addItem(self.timeline.item, row=2, col=0)
        self.ci.addItem(self.uptime.item, row=2, col=1)
        for row in (1, 2):
            self.ci.layout.setRowStretchFactor(row, 1)
        self.ci.setContentsMargins(4, 4, 8, 4)
        self.ci.layout.setVerticalSpacing(2)
        # The latency chart has an axis on the right (delivery probes); the timeline below
        # it gets an empty one as wide: linked time axes line up by pixel, and a wider
        # timeline showed a longer range than the chart above it.
        self.timeline.item.showAxis("right")
        spacer = self.timeline.item.getAxis("right")
        spacer.setStyle(showValues=False)
        spacer.setPen(pg.mkPen(None))
        spacer.setWidth(RIGHT_AXIS_WIDTH)
        for plot in self.plots[1:]:
            plot.item.setXLink(self.latency.item)

        self.series: HealthSeries | None = None
        self.provider: str | None = None  # None: all providers
        self.shown: list[ProviderSeries] = []
        self.hover_text = ""
        self._colours: dict[str, QColor] = {}
        self._legend_key: tuple[tuple[str, str], ...] | None = None
        self._x_range: tuple[float, float] | None = None
        self.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    # -- data ------------------------------------------------------------------------------

    def show_series(self, series: HealthSeries, provider: str | None = None) -> None:
        """Show ``series`` for one provider (by name) or all (None); curves are updated with
        ``setData``, never made again."""
        self.series = series
        self.provider = provider if provider in series.names() else None
        for p in series.providers:
            if p.uid not in self._colours:
                # A provider keeps its colour for the session, whatever comes and goes.
                colour = provider_colour(len(self._colours))
                self._colours[p.uid] = colour
                self.latency.add_provider(p.uid, colour)
                self.uptime.add_provider(p.uid, colour)
        self.shown = series.select(None if self.provider is None else [self.provider])
        x_range = (series.grid.start, series.grid.end)
        if x_range != self._x_range:
            self._x_range = x_range
            self.latency.item.setXRange(*x_range, padding=0)
        self._update_legend()
        for plot in self.plots:
            plot.show_series(series, self.shown)

    def _update_legend(self) -> None:
        key = tuple((p.uid, p.name) for p in self.shown)
        if key == self._legend_key:
            return
        self._legend_key = key
        self.provider_legend.clear()
        for provider in self.shown:
            self.provider_legend.addItem(
                Swatch(self._colours[provider.uid], line=True), provider.name
            )
        self._fit_legends()
        self._fit_left_axes()

    def _fit_legends(self) -> None:
        """As many legend columns as fit above each chart, the row as tall as the legends:
        a legend wider than its chart pushed the right-hand charts out of the window."""
        font = QFont(self.font())
        font.setPointSize(LEGEND_POINT_SIZE)
        metrics = QFontMetrics(font)
        column = max(1, self.width() // 2 - 24)
        tallest = 1
        for legend in (self.provider_legend, self.error_legend):
            widest = max(
                (metrics.horizontalAdvance(label.text) for _s, label in legend.items), default=0
            )
            columns = max(1, min(len(legend.items), column // (widest + LEGEND_ENTRY_EXTRA)))
            legend.setColumnCount(columns)
            tallest = max(tallest, math.ceil(len(legend.items) / columns))
        self.ci.layout.setRowFixedHeight(0, LEGEND_ROW_HEIGHT * tallest + 4)

    def _fit_left_axes(self) -> None:
        """The left column's axes wide enough for the timeline's provider names (the
        longest elided), the same for the latency chart above it so the two line up."""
        metrics = QFontMetrics(self.timeline.item.getAxis("left").font())
        widest = max((metrics.horizontalAdvance(p.name) for p in self.shown), default=0)
        width = min(MAX_AXIS_WIDTH, max(MIN_AXIS_WIDTH, widest + 16))
        for left_column in (self.latency.item, self.timeline.item):
            left_column.getAxis("left").setWidth(width)
        for right_column in (self.errors.item, self.uptime.item):
            right_column.getAxis("left").setWidth(MIN_AXIS_WIDTH)
        self.timeline.elide_width = MAX_AXIS_WIDTH - 16

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        # Not during pyqtgraph's own __init__, nor from close(), which has deleted the
        # scene's items by then (touching the legends crashed the process).
        if hasattr(self, "error_legend") and not self.closed:
            self._fit_legends()

    def colour_of(self, uid: str) -> QColor:
        return self._colours[uid]

    # -- hover -----------------------------------------------------------------------------

    def describe_at(self, plot: HealthPlot, x: float) -> str:
        """The exact values ``plot`` shows at time ``x``: "when — values"."""
        series = self.series
        if series is None or not series.grid.start <= x < series.grid.end:
            return ""
        index = min(series.grid.count - 1, int((x - series.grid.start) // series.grid.bucket))
        when = datetime.fromtimestamp(float(series.times[index]))
        stamp = when.strftime("%Y-%m-%d %H:%M" if series.grid.bucket < 3600 else "%Y-%m-%d %H:00")
        return f"{plot.name} at {stamp} — {plot.describe(series, self.shown, index)}"

    @Slot(object)
    def _on_scene_mouse_moved(self, position: QPointF) -> None:
        text = ""
        x = float("nan")
        for plot in self.plots:
            if plot.view.sceneBoundingRect().contains(position):
                x = plot.view.mapSceneToView(position).x()
                text = self.describe_at(plot, x)
                break
        for plot in self.plots:
            plot.cursor.setVisible(bool(text))
            if text:
                plot.cursor.setValue(x)
        if text != self.hover_text:
            self.hover_text = text
            self.hovered.emit(text)

    def leaveEvent(self, event: object) -> None:
        for plot in self.plots:
            plot.cursor.setVisible(False)
        if self.hover_text:
            self.hover_text = ""
            self.hovered.emit("")
        super().leaveEvent(event)

    # -- export ----------------------------------------------------------------------------

    def export_png(self, path: str | Path, width: int | None = None) -> QImage:
        """Render the charts (legend included) to a PNG file; ``width`` in pixels, the
        height follows the charts' shape. Returns the image written."""
        exporter = pyqtgraph.exporters.ImageExporter(self.scene())
        if width is not None:
            exporter.parameters()["width"] = int(width)
        exporter.parameters()["background"] = self.backgroundBrush().color()
        image = exporter.export(toBytes=True)
        if not isinstance(image, QImage) or image.isNull():
            raise OSError(f"could not render the charts for {path}")
        # PNG whatever the file is called (a save dialog does not always add ".png").
        writer = QImageWriter(str(path), QByteArray(b"png"))
        if not writer.write(image):
            raise OSError(f"could not write the image {path}: {writer.errorString()}")
        return image
