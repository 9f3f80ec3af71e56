"""The tray icon: its colour is the overall health; it says when something important happens."""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from desktop_app.core.events import AlertRaised, AlertResolved
from desktop_app.core.models import ProviderState

#: Failovers come in bursts (every message of a dead provider); one note per this many seconds.


class Health(StrEnum):
    """Overall health, as the tray colour shows it."""

    GOOD = "good"  # sending, every provider up
    DEGRADED = "degraded"  # some provider down, mail still flows
    DOWN = "down"  # no provider usable, or offline
    IDLE = "idle"  # paused, or nothing configured

    @property
    def colour(self) -> QColor:
        return {
            Health.GOOD: QColor("#2e9d4f"),
            Health.DEGRADED: QColor("#e0a100"),
            Health.DOWN: QColor("#d64541"),
            Health.IDLE: QColor("#8a8f98"),
        }[self]


def health_icon(health: Health, size: int = 64) -> QIcon:
    """A filled circle in the health colour (drawn, so it is crisp at any DPI)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(health.colour)
    painter.setPen(Qt.PenStyle.NoPen)
    margin = size // 8
    painter.drawEllipse(margin, margin, size - 2 * margin, size - 2 * margin)
    painter.end()
    return QIcon(pixmap)


def overall_health(states: dict[str, ProviderState], *, paused: bool, offline: bool) -> Health:
    """One colour from many providers: all up is good, none up is down."""
    if offline:
        return Health.DOWN
    if paused or not states:
        return Health.IDLE
    active = [s for s in states.values() if s not in (ProviderState.DISABLED,)]
    if not active:
        return Health.IDLE
    up = sum(1 for s in active if s is ProviderState.UP)
    down = sum(1 for s in active if s is ProviderState.DOWN)
    if down and not up:
        return Health.DOWN
    if down:
        return Health.DEGRADED
    return Health.GOOD


class Tray(QSystemTrayIcon):
    """Tray icon plus notifications; does nothing visible where there is no tray."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(health_icon(Health.IDLE), window)
        self.health = Health.IDLE
        self.setToolTip("Relaydesk")
        menu = QMenu(window)
        menu.addAction("Show Relaydesk", window.showNormal)
        menu.addAction("Quit", window.close)
        self.setContextMenu(menu)
        self.activated.connect(lambda _reason: self._show_window(window))
        self.notifications: list[tuple[str, str]] = []  # what was said, newest last

    @staticmethod
    def _show_window(window: QWidget) -> None:
        window.showNormal()
        window.raise_()
        window.activateWindow()

    def set_health(self, health: Health, detail: str) -> None:
        if health is not self.health:
            self.health = health
            self.setIcon(health_icon(health))
        self.setToolTip(f"Relaydesk: {detail}")

    def notify(self, title: str, text: str) -> None:
        self.notifications.append((title, text))
        if self.isVisible() and QSystemTrayIcon.supportsMessages():
            self.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, 8000)

    def on_alert(self, event: AlertRaised) -> None:
        title = f"{event.severity.capitalize()}: {event.rule.replace('_', ' ')}"
        self.notify(title, event.message)

    def on_alert_resolved(self, event: AlertResolved) -> None:
        if event.rule == "provider_down":
            self.notify("Provider back up", f"{event.subject} is working again")

    def on_drained(self) -> None:
        self.notify("Outbox empty", "Every queued message has been handled")
