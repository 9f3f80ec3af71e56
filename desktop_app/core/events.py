"""What the core tells observers: the CLI prints it, the GUI's bridge turns it into Qt signals.

Events are frozen values published on the loop thread. A sink must return quickly and must
not touch the core's state; the bridge, for example, only re-emits a queued Qt signal.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from desktop_app.core.models import AttemptRecord, BreakerState, MessageState, ProviderState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AttemptRecorded:
    """An attempt finished (whatever its outcome) and is in the journal."""

    attempt: AttemptRecord


@dataclass(frozen=True, slots=True)
class MessageStateChanged:
    """A message reached a new state (committed)."""

    outbox_id: int
    message_id: str
    state: MessageState
    provider_name: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FailoverHappened:
    """A provider failed a message and the engine moved it on at once."""

    outbox_id: int
    from_provider: str
    detail: str


@dataclass(frozen=True, slots=True)
class ProviderStateChanged:
    """A provider went up or down, or its breaker moved."""

    provider_name: str
    state: ProviderState
    breaker: BreakerState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class EngineStatusChanged:
    """The engine started, paused, went idle, or stopped."""

    running: bool
    paused: bool
    waiting: int  # messages still to go out
    detail: str = ""


Event = (
    AttemptRecorded
    | MessageStateChanged
    | FailoverHappened
    | ProviderStateChanged
    | EngineStatusChanged
)


class EventSink(Protocol):
    """Anything that wants to hear about delivery."""

    def publish(self, event: Event) -> None: ...


class EventHub:
    """Fans events out to subscribed sinks; a failing sink never stops delivery."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []
        self._lock = threading.Lock()

    def subscribe(self, sink: EventSink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def unsubscribe(self, sink: EventSink) -> None:
        with self._lock:
            if sink in self._sinks:
                self._sinks.remove(sink)

    def publish(self, event: Event) -> None:
        with self._lock:
            sinks = list(self._sinks)
        for sink in sinks:
            try:
                sink.publish(event)
            except Exception:
                log.exception("event sink %r failed on %s", sink, type(event).__name__)
