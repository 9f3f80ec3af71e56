"""Whether the machine is online, from Qt's QNetworkInformation where the platform has it."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QNetworkInformation

log = logging.getLogger(__name__)


class NetworkWatch(QObject):
    """Online/offline as the OS reports it; without a backend we assume online.

    Signals:
        changed(bool): True when the network came back, False when it went away.
    """

    changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._info: QNetworkInformation | None = None
        self._forced: bool | None = None
        try:
            if QNetworkInformation.loadBackendByFeatures(QNetworkInformation.Feature.Reachability):
                self._info = QNetworkInformation.instance()
        except (RuntimeError, AttributeError) as exc:
            log.info("no network information backend: %s", exc)
        if self._info is not None:
            self._info.reachabilityChanged.connect(lambda _r: self.changed.emit(self.online))

    @property
    def online(self) -> bool:
        if self._forced is not None:
            return self._forced
        if self._info is None:
            return True
        return self._info.reachability() not in (QNetworkInformation.Reachability.Disconnected,)

    def force(self, online: bool | None) -> None:
        """Override what the OS says (tests, and the demo's "go offline" switch)."""
        self._forced = online
        self.changed.emit(self.online)
