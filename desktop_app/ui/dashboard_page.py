"""The Dashboard page: outbox counts, provider states and the current send rate.

Health charts (uptime, latency, error rate) come with the health issue; this page shows
what the core already measures.
"""

from __future__ import annotations

import collections
import time

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from desktop_app.core.events import AttemptRecorded, ProviderStateChanged
from desktop_app.core.models import MessageState, OutboxCounts, OutcomeClass
from desktop_app.ui.bridge import CoreBridge

RATE_WINDOW_SECONDS = 60.0


class DashboardPage(QWidget):
    """Numbers at a glance; refreshed by the main window's once-a-second timer."""

    def __init__(self, bridge: CoreBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._sent_times: collections.deque[float] = collections.deque()
        self._provider_states: dict[str, ProviderStateChanged] = {}
        bridge.attempts_recorded.connect(self._on_bridge_attempts_recorded)
        bridge.provider_state_changed.connect(self._on_bridge_provider_state_changed)

        self.count_labels: dict[MessageState, QLabel] = {}
        counts_box = QGroupBox("Outbox")
        counts_form = QFormLayout(counts_box)
        for state in MessageState:
            label = QLabel("0")
            label.setAccessibleName(state.value.capitalize())
            label.setObjectName(f"count_{state.value}")
            self.count_labels[state] = label
            counts_form.addRow(state.value.capitalize(), label)

        rate_box = QGroupBox("Sending")
        rate_form = QFormLayout(rate_box)
        self.rate_label = QLabel("0 messages/min")
        self.rate_label.setAccessibleName("Send rate")
        self.rate_label.setObjectName("send_rate")
        rate_form.addRow("Send rate", self.rate_label)

        self.providers_box = QGroupBox("Providers")
        self.providers_form = QFormLayout(self.providers_box)
        self._provider_labels: dict[str, QLabel] = {}

        layout = QVBoxLayout(self)
        layout.addWidget(counts_box)
        layout.addWidget(rate_box)
        layout.addWidget(self.providers_box)
        layout.addStretch(1)

    def show_counts(self, counts: OutboxCounts) -> None:
        values = counts.as_dict()
        for state, label in self.count_labels.items():
            label.setText(f"{values[state.value]:,}")
        now = time.monotonic()
        while self._sent_times and now - self._sent_times[0] > RATE_WINDOW_SECONDS:
            self._sent_times.popleft()
        self.rate_label.setText(f"{len(self._sent_times)} messages/min")

    def show_providers(self, names: list[str]) -> None:
        for name in names:
            if name not in self._provider_labels:
                label = QLabel("not tried yet")
                label.setAccessibleName(name)
                self._provider_labels[name] = label
                self.providers_form.addRow(name, label)
            event = self._provider_states.get(name)
            if event is not None:
                self._provider_labels[name].setText(
                    f"{event.state.value} (breaker {event.breaker.value})"
                )

    @Slot(list)
    def _on_bridge_attempts_recorded(self, events: list[AttemptRecorded]) -> None:
        now = time.monotonic()
        for event in events:
            if event.attempt.outcome is OutcomeClass.DELIVERED:
                self._sent_times.append(now)

    @Slot(object)
    def _on_bridge_provider_state_changed(self, event: ProviderStateChanged) -> None:
        self._provider_states[event.provider_name] = event
        self.show_providers(list(self._provider_labels) or [event.provider_name])
