"""Colours and names of the health charts: one colour per provider, per error class, per status.

Provider and error colours come from the Okabe-Ito palette (distinguishable with the common
kinds of colour blindness); yellow is left out, it vanishes on a light background. Status
colours differ in lightness as well as hue: a red "down" stands out of a pale "up" in grey too.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette

from desktop_app.core.health.series import ERROR_CLASSES

PROVIDER_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#555555")

UP_COLOUR = "#9BD3A6"
DOWN_COLOUR = "#D62728"
MAINTENANCE_COLOUR = "#9C9CC9"
TARGET_COLOUR = "#D62728"

ERROR_COLOURS: dict[str, str] = dict(
    zip(
        ERROR_CLASSES,
        ("#D55E00", "#E69F00", "#CC79A7", "#0072B2", "#56B4E9", "#999999"),
        strict=True,
    )
)
ERROR_LABELS: dict[str, str] = {
    "provider_failure": "provider failure",
    "transient_after_data": "4xx after DATA",
    "ambiguous": "ambiguous",
    "content_rejected": "content rejected",
    "recipient_transient": "recipient 4xx",
    "recipient_permanent": "recipient 5xx",
}


def provider_colour(index: int) -> QColor:
    return QColor(PROVIDER_COLOURS[index % len(PROVIDER_COLOURS)])


def chart_colours(palette: QPalette) -> tuple[QColor, QColor]:
    """(background, foreground) of the charts: the window's own, so dark themes work."""
    return palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
