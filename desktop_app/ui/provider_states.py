"""Each provider's live state as the window's views show it: one record, one word, one label.

The word is the core's (``ProviderLiveState.state``, decided by ``core/provider_state.py``);
nothing here derives a state. ``ProviderStates`` holds the records for the Providers page,
the Dashboard and the tray, so they cannot disagree:

* read from the stored records (``Workspace.provider_live_states``) when the window opens,
  and again when the change feed says the providers, their maintenance windows or a stored
  state word changed (another process: ``relaydesk provider add``, the sending Relaydesk
  while this window only watches);
* followed from this process's ``ProviderStateChanged`` events while it sends (they are
  newer than what the monitor last stored).

Feed-driven reads run off the GUI thread (``CoreBridge.call``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from desktop_app.core.events import ProviderStateChanged
from desktop_app.core.models import (
    BreakerState,
    ProviderConfig,
    ProviderLiveState,
    ProviderState,
)
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error

log = logging.getLogger(__name__)

#: Item-data role holding the raw state word (a ``ProviderState`` value) in the views' models.
STATE_WORD_ROLE = int(Qt.ItemDataRole.UserRole) + 1

#: Feed topics after which the provider list itself is re-read (with the states).
PROVIDER_TOPICS = frozenset({"providers", "maintenance"})
#: Feed topics after which only the stored state words are re-read.
STATE_TOPICS = frozenset({"provider_state"})


def state_label(word: ProviderState | str) -> str:
    """What a person reads for a state word: ``no_password`` -> ``no password``."""
    return str(word).replace("_", " ")


def state_tip(live: ProviderLiveState | None) -> str:
    """The tooltip of a state: what lies behind the word (breaker, last detail)."""
    if live is None or live.state is ProviderState.UNKNOWN:
        return "Never probed or used yet"
    parts = [state_label(live.state)]
    if live.breaker is not BreakerState.CLOSED:
        retry = ""
        if live.breaker_retry_at is not None:
            retry = f", next try {datetime.fromtimestamp(live.breaker_retry_at):%H:%M:%S}"
        parts.append(f"breaker {live.breaker.value}{retry}")
    if live.since:
        parts.append(f"since {datetime.fromtimestamp(live.since):%Y-%m-%d %H:%M:%S}")
    text = ", ".join(parts)
    return f"{text}: {live.detail}" if live.detail else text


class ProviderStates(QObject):
    """The window's copy of every provider's ``ProviderLiveState``, by provider uid.

    Signals:
        changed(): a record (or the set of providers) changed; views re-read ``get``.
        providers_read(list[ProviderConfig]): the provider list was re-read because the
            feed said it changed (most preferred first, as ``Workspace.list_providers``).
    """

    changed = Signal()
    providers_read = Signal(list)

    def __init__(
        self, workspace: Workspace, bridge: CoreBridge, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._live: dict[str, ProviderLiveState] = {}
        self._reading = False
        self._again: set[str] = set()  # topics heard while a read was running
        self._generation = 0  # moves with every load: older reads are dropped
        bridge.provider_state_changed.connect(self._on_bridge_provider_state_changed)
        bridge.changes_seen.connect(self._on_bridge_changes_seen)

    # -- reading ---------------------------------------------------------------------------

    def get(self, uid: str) -> ProviderLiveState | None:
        return self._live.get(uid)

    def by_name(self, name: str) -> ProviderLiveState | None:
        return next((s for s in self._live.values() if s.provider_name == name), None)

    def snapshot(self) -> dict[str, ProviderLiveState]:
        return dict(self._live)

    def word_for(self, provider: ProviderConfig) -> ProviderState:
        """The state word of ``provider`` (``unknown`` until its record was read)."""
        live = self._live.get(provider.uid)
        return ProviderState.UNKNOWN if live is None else live.state

    # -- writing ---------------------------------------------------------------------------

    def load(self, stored: Mapping[str, ProviderLiveState]) -> None:
        """Take the stored records (``Workspace.provider_live_states``, read just now).

        A record this process's engine reported after the monitor last stored it stays,
        unless the configuration moved under it (enabled, maintenance, name): those come
        from the providers as they are now.
        """
        self._generation += 1
        merged: dict[str, ProviderLiveState] = {}
        for uid, record in stored.items():
            current = self._live.get(uid)
            if (
                current is not None
                and current.updated_at > record.updated_at
                and (current.enabled, current.in_maintenance, current.provider_name)
                == (record.enabled, record.in_maintenance, record.provider_name)
            ):
                merged[uid] = current
            else:
                merged[uid] = record
        if merged != self._live:
            self._live = merged
            self.changed.emit()

    def apply(self, event: ProviderStateChanged) -> None:
        """This process's board announced a new record (or, from older code, a word)."""
        live = event.live
        if live is None:
            current = self.by_name(event.provider_name)
            if current is None:
                return
            live = ProviderLiveState(
                current.provider_uid,
                event.provider_name,
                state=event.state,
                breaker=event.breaker,
                enabled=current.enabled,
                detail=event.detail,
            )
        if self._live.get(live.provider_uid) != live:
            self._live[live.provider_uid] = live
            self.changed.emit()

    def reload(self, *, providers: bool = False) -> None:
        """Re-read the stored records off the GUI thread (and the provider list too)."""
        if self._reading:
            self._again.update(PROVIDER_TOPICS if providers else STATE_TOPICS)
            return
        self._reading = True
        generation = self._generation
        workspace = self._workspace

        def read() -> tuple[list[ProviderConfig] | None, dict[str, ProviderLiveState]]:
            configs = workspace.list_providers() if providers else None
            return configs, workspace.provider_live_states()

        def on_success(result: Any) -> None:
            self._reading = False
            configs, stored = result
            if generation == self._generation:  # else a newer load came meanwhile
                self.load(stored)
                if configs is not None:
                    self.providers_read.emit(configs)
            self._read_again()

        def on_error(error: BaseException) -> None:
            self._reading = False
            if not is_shutdown_error(error):
                log.warning("could not read the providers' states: %s", error)
                self._read_again()

        self._bridge.call(read, on_success=on_success, on_error=on_error)

    def _read_again(self) -> None:
        again, self._again = self._again, set()
        if again:
            self.reload(providers=bool(again & PROVIDER_TOPICS))

    @Slot(object)
    def _on_bridge_provider_state_changed(self, event: ProviderStateChanged) -> None:
        self.apply(event)

    @Slot(object)
    def _on_bridge_changes_seen(self, topics: frozenset[str]) -> None:
        if topics & PROVIDER_TOPICS:
            self.reload(providers=True)
        elif topics & STATE_TOPICS:
            self.reload()
