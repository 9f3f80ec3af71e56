"""What the core tells observers: the CLI prints it, the GUI's bridge turns it into Qt signals.

Events are frozen values published on the loop thread. A sink must return quickly and must
not touch the core's state; the bridge, for example, only re-emits a queued Qt signal.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from desktop_app.core.models import (
    AttemptRecord,
    BreakerState,
    MessageState,
    ProviderLiveState,
    ProviderState,
)

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
    """A provider's state word or breaker moved (published by ``ProviderStateBoard`` only).

    ``live`` is the whole record after the change, as ``provider_status`` will store it.
    """

    provider_name: str
    state: ProviderState
    breaker: BreakerState
    detail: str = ""
    live: ProviderLiveState | None = None


@dataclass(frozen=True, slots=True)
class EngineStatusChanged:
    """The engine started, paused, went idle, or stopped."""

    running: bool
    paused: bool
    waiting: int  # messages still to go out
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProbeRecorded:
    """A scheduled health probe ended (stored in probe_results)."""

    provider_name: str
    status: str  # "up" | "down" | "maintenance"
    latency_ms: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProviderHealthChanged:
    """A provider's health state changed: up, down, maintenance or unknown."""

    provider_name: str
    state: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class IncidentChanged:
    """An incident opened, or ended (``ended_at`` set)."""

    provider_name: str
    started_at: float
    ended_at: float | None
    cause: str
    failures: int


@dataclass(frozen=True, slots=True)
class QuotaExhausted:
    """A provider's rate limit is used up while mail waits for it."""

    provider_name: str
    available_at: float  # when the next message may go


@dataclass(frozen=True, slots=True)
class AlertRaised:
    """An alert fired (it is in the alert log; ``emailed``: its mail is queued)."""

    alert_id: int
    rule: str
    subject: str
    severity: str
    message: str
    raised_at: float
    emailed: bool


@dataclass(frozen=True, slots=True)
class AlertResolved:
    """What an alert was about is over."""

    alert_id: int
    rule: str
    subject: str
    resolved_at: float


@dataclass(frozen=True, slots=True)
class CampaignChanged:
    """A campaign started, was paused (``auto``: by the failure threshold), resumed,
    completed or was cancelled; or its runner queued another batch (``queued``)."""

    campaign_id: int
    name: str
    state: str
    detail: str = ""
    auto: bool = False
    queued: int = 0


@dataclass(frozen=True, slots=True)
class BouncesRecorded:
    """A mailbox pass (or the engine's refusals) found new bounces or unsubscribe requests."""

    mailbox: str
    hard: int
    soft: int
    unsubscribed: int
    suppressed: int


@dataclass(frozen=True, slots=True)
class MailboxStatusChanged:
    """A watched mailbox connected, or failed (``error``), or is idle-waiting."""

    mailbox: str
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryProbeLost:
    """A provider accepted a delivery probe that never reached the seed mailbox."""

    provider_name: str
    sent_at: float


Event = (
    AttemptRecorded
    | MessageStateChanged
    | FailoverHappened
    | ProviderStateChanged
    | EngineStatusChanged
    | ProbeRecorded
    | ProviderHealthChanged
    | IncidentChanged
    | QuotaExhausted
    | AlertRaised
    | AlertResolved
    | CampaignChanged
    | BouncesRecorded
    | MailboxStatusChanged
    | DeliveryProbeLost
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
