"""Error rate stacked by class: percent of real sends per bucket, of the providers shown.

With several providers shown, their attempts are added up: the stack is the error rate of
all the mail they sent. One filled curve per class, drawn from the top of the stack down.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from desktop_app.core.health.series import ERROR_CLASSES, HealthSeries, ProviderSeries
from desktop_app.ui.charts.plot import HealthPlot, make_curve
from desktop_app.ui.charts.theme import ERROR_COLOURS, ERROR_LABELS


class ErrorRatePlot(HealthPlot):
    """Share of attempts that failed, by outcome class, stacked."""

    name = "Error rate"
    title = "Error rate by class (% of sends)"

    def __init__(self, foreground: QColor) -> None:
        super().__init__(foreground)
        #: error class -> curve (the top of its layer of the stack), made once.
        self.curves: dict[str, pg.PlotDataItem] = {}
        # Drawn from the top of the stack down, so each lower layer paints over the upper.
        for error_class in reversed(ERROR_CLASSES):
            colour = QColor(ERROR_COLOURS[error_class])
            curve = make_curve(
                pen=pg.mkPen(colour, width=1),
                fillLevel=0.0,
                brush=pg.mkBrush(colour),
                name=ERROR_LABELS[error_class],
            )
            self.curves[error_class] = curve
            self.item.addItem(curve)
        self.item.enableAutoRange(y=True)
        self.item.setLimits(yMin=0)

    def show_series(self, series: HealthSeries, shown: list[ProviderSeries]) -> None:
        rates = series.error_rates(p.name for p in shown)
        top = np.zeros(series.grid.count)
        for error_class in ERROR_CLASSES:
            top = top + rates[error_class]
            self.curves[error_class].setData(series.times, top, skipFiniteCheck=True)

    def describe(self, series: HealthSeries, shown: list[ProviderSeries], index: int) -> str:
        attempts = int(sum(p.attempts[index] for p in shown))
        if not attempts:
            return "no sends"
        errors = []
        for error_class in ERROR_CLASSES:
            count = int(sum(p.errors(error_class)[index] for p in shown))
            if count:
                rate = 100.0 * count / attempts  # as error_rates() has it, for one bucket
                errors.append(f"{ERROR_LABELS[error_class]} {count} ({rate:.1f} %)")
        failed = ", ".join(errors) if errors else "no errors"
        return f"{attempts} sends: {failed}"
