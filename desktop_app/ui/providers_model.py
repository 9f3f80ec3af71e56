"""The providers table: priority order, live state, drag and drop to reorder."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from desktop_app.core.events import ProviderStateChanged
from desktop_app.core.models import ProviderConfig, ProviderLiveState, ProviderState
from desktop_app.ui.provider_states import STATE_WORD_ROLE, state_label, state_tip
from desktop_app.ui.table_model import FlatTableModel

_MIME = "application/x-relaydesk-provider-row"
_Index = QModelIndex | QPersistentModelIndex

COLUMNS = (
    "Name",
    "State",
    "Host",
    "Port",
    "Security",
    "Priority",
    "Weight",
    "Connections",
    "Limits",
)
STATE_COLUMN = COLUMNS.index("State")


def limits_label(provider: ProviderConfig) -> str:
    limits = provider.rate_limits
    parts = [
        f"{value}/{unit}"
        for value, unit in (
            (limits.per_second, "s"),
            (limits.per_minute, "min"),
            (limits.per_hour, "h"),
            (limits.per_day, "day"),
        )
        if value is not None
    ]
    return ", ".join(parts) or "none"


class ProvidersModel(FlatTableModel):
    """Providers, most preferred first.

    Signals:
        order_changed(list[str]): the user dragged a row; names in the new order.
    """

    columns = COLUMNS

    order_changed = Signal(list)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._providers: list[ProviderConfig] = []
        self._live: dict[str, ProviderLiveState] = {}  # by provider uid

    # -- data ------------------------------------------------------------------------------

    def set_providers(self, providers: list[ProviderConfig]) -> None:
        self.beginResetModel()
        self._providers = sorted(providers, key=lambda p: (p.priority, p.name))
        self.endResetModel()

    def shows(self, providers: list[ProviderConfig]) -> bool:
        """Whether the table shows exactly ``providers`` (in their order) already."""
        return sorted(providers, key=lambda p: (p.priority, p.name)) == self._providers

    def provider_at(self, row: int) -> ProviderConfig:
        return self._providers[row]

    def names(self) -> list[str]:
        return [p.name for p in self._providers]

    def row_of(self, name: str) -> int:
        return self.names().index(name)

    def set_live(self, live: dict[str, ProviderLiveState]) -> None:
        """Every provider's live record (by uid), as ``ProviderStates`` has them."""
        if live == self._live:
            return
        self._live = dict(live)
        if self._providers:
            last = len(self._providers) - 1
            self.dataChanged.emit(self.index(0, STATE_COLUMN), self.index(last, STATE_COLUMN))

    def apply_state(self, event: ProviderStateChanged) -> None:
        """One provider's new record (``event.live``; a bare word from older code)."""
        provider = next((p for p in self._providers if p.name == event.provider_name), None)
        if provider is None:
            return
        live = event.live or ProviderLiveState(
            provider.uid,
            provider.name,
            state=event.state,
            breaker=event.breaker,
            enabled=provider.enabled,
            detail=event.detail,
        )
        self._live[provider.uid] = live
        row = self.row_of(provider.name)
        self.dataChanged.emit(self.index(row, STATE_COLUMN), self.index(row, STATE_COLUMN))

    def state_of(self, name: str) -> ProviderLiveState | None:
        provider = next((p for p in self._providers if p.name == name), None)
        return None if provider is None else self._live.get(provider.uid)

    def word_of(self, provider: ProviderConfig) -> ProviderState:
        """The core's state word for ``provider`` (``unknown`` until its record is read)."""
        live = self._live.get(provider.uid)
        return ProviderState.UNKNOWN if live is None else live.state

    def row_total(self) -> int:
        return len(self._providers)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._providers):
            return None
        provider = self._providers[index.row()]
        if role == STATE_WORD_ROLE and index.column() == STATE_COLUMN:
            return self.word_of(provider).value
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            column = index.column()
            values = (
                provider.name,
                state_label(self.word_of(provider)),
                provider.host,
                provider.port,
                provider.security.value,
                provider.priority,
                provider.weight,
                provider.max_connections,
                limits_label(provider),
            )
            return values[column]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == STATE_COLUMN:
            return state_tip(self._live.get(provider.uid))
        return None

    # -- drag and drop ---------------------------------------------------------------------

    def flags(self, index: _Index) -> Qt.ItemFlag:
        base = super().flags(index)
        if index.isValid():
            return base | Qt.ItemFlag.ItemIsDragEnabled
        return base | Qt.ItemFlag.ItemIsDropEnabled

    def supportedDropActions(self) -> Qt.DropAction:
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:
        return [_MIME]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:  # type: ignore[override]
        mime = QMimeData()
        rows = sorted({index.row() for index in indexes if index.isValid()})
        if rows:
            mime.setData(_MIME, QByteArray(str(rows[0]).encode()))
        return mime

    def dropMimeData(
        self,
        data: QMimeData,
        action: Qt.DropAction,
        row: int,
        _column: int,
        parent: _Index,
    ) -> bool:
        if action != Qt.DropAction.MoveAction or not data.hasFormat(_MIME):
            return False
        source = int(bytes(data.data(_MIME).data()).decode())
        target = row if row != -1 else (parent.row() if parent.isValid() else self.rowCount())
        return self.move(source, target)

    def move(self, source: int, target: int) -> bool:
        """Move row ``source`` to sit before row ``target``; announces the new order."""
        if not 0 <= source < len(self._providers) or target in (source, source + 1):
            return False
        target = max(0, min(target, len(self._providers)))
        if not self.beginMoveRows(QModelIndex(), source, source, QModelIndex(), target):
            return False
        provider = self._providers.pop(source)
        self._providers.insert(target - 1 if target > source else target, provider)
        self.endMoveRows()
        self.order_changed.emit(self.names())
        return True
