"""The tray icon: its colour is the overall health; it says when something important happens."""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QMenu, QSystemTrayIcon, QWidget

from desktop_app.core.events import AlertRaised, AlertResolved
from desktop_app.core.models import ProviderState
from desktop_app.ui.provider_states import state_label

#: The tray icon for each alert severity (and "info" for everything else).
_MESSAGE_ICONS = {
    "critical": QSystemTrayIcon.MessageIcon.Critical,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
}


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


#: Not counted for the colour: switched off, or drained for planned maintenance.
_NOT_COUNTED = frozenset({ProviderState.DISABLED, ProviderState.MAINTENANCE})
#: Counted as not up: cannot take mail now (down, no password), or only a trial (recovering).
_NOT_UP = frozenset({ProviderState.DOWN, ProviderState.NO_PASSWORD, ProviderState.RECOVERING})
#: Cannot take any mail now (for the "all providers are unreachable" banner).
_UNUSABLE = frozenset({ProviderState.DOWN, ProviderState.NO_PASSWORD, *_NOT_COUNTED})


def overall_health(states: dict[str, ProviderState], *, paused: bool, offline: bool) -> Health:
    """One colour from many providers' words: all up is good, none up is down.

    Disabled and maintenance do not count; down, no password and recovering count as not
    up; unknown (never tried) counts as neither.
    """
    if offline:
        return Health.DOWN
    if paused or not states:
        return Health.IDLE
    active = [s for s in states.values() if s not in _NOT_COUNTED]
    if not active:
        return Health.IDLE
    up = sum(1 for s in active if s is ProviderState.UP)
    not_up = sum(1 for s in active if s in _NOT_UP)
    if not_up and not up:
        return Health.DOWN
    if not_up:
        return Health.DEGRADED
    return Health.GOOD


def all_unusable(states: dict[str, ProviderState]) -> bool:
    """Whether providers exist and none of them can take mail now."""
    return bool(states) and all(s in _UNUSABLE for s in states.values())


def drained_notice(health: Health, failed_meanwhile: int) -> tuple[str, str, str] | None:
    """What to say (title, text, severity) once the outbox has stayed empty a while, or None.

    No cheer while a provider is down or sending is paused or offline: "every queued message
    has been handled" then hides the part that matters. Messages that failed permanently
    since the backlog began are said instead, as a warning.
    """
    if health is not Health.GOOD:
        return None
    if failed_meanwhile > 0:
        failed = f"{failed_meanwhile:,} message{'s' if failed_meanwhile != 1 else ''}"
        return ("Outbox empty", f"{failed} failed; the Outbox page has the reasons", "warning")
    return ("Outbox empty", "Every queued message has been sent", "info")


def health_detail(health: Health, waiting: int, states: dict[str, ProviderState]) -> str:
    """The tooltip's text: the overall health, then each provider's word, one a line."""
    lines = [f"{health.value}, {waiting:,} waiting"]
    lines += [f"{name}: {state_label(word)}" for name, word in states.items()]
    return "\n".join(lines)


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
        self.severities: list[str] = []  # and how loudly, one per notification

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

    def notify(self, title: str, text: str, severity: str = "info") -> None:
        """One balloon, with the icon of its severity ("critical", "warning" or "info")."""
        self.notifications.append((title, text))
        self.severities.append(severity)
        if self.isVisible() and QSystemTrayIcon.supportsMessages():
            icon = _MESSAGE_ICONS.get(severity, QSystemTrayIcon.MessageIcon.Information)
            self.showMessage(title, text, icon, 8000)

    def on_alert(self, event: AlertRaised) -> None:
        title = f"{event.severity.capitalize()}: {event.rule.replace('_', ' ')}"
        self.notify(title, event.message, event.severity)

    def on_alert_resolved(self, event: AlertResolved) -> None:
        if event.rule == "provider_down":
            self.notify("Provider back up", f"{event.subject} is working again")

    def on_drained(self, health: Health, failed_meanwhile: int) -> None:
        """The outbox stayed empty after a backlog (main_window waits for a quiet spell)."""
        notice = drained_notice(health, failed_meanwhile)
        if notice is not None:
            self.notify(*notice)
