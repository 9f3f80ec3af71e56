"""Frozen values that cross thread boundaries (loop thread <-> GUI thread <-> CLI).

Widgets, SQLAlchemy sessions and SMTP clients never cross; these do. All times are
epoch seconds (UTC) as floats: cheap to compare, the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Security(StrEnum):
    """How the SMTP connection is protected."""

    TLS = "tls"  # implicit TLS from the first byte (usually port 465)
    STARTTLS = "starttls"  # plaintext greeting, then STARTTLS is *required*
    NONE = "none"  # loopback relays, or an explicit --allow-insecure


class MessageState(StrEnum):
    """Where an outbox message is in its life (desktop_app/ARCHITECTURE.md, "The outbox")."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    BOUNCED = "bounced"
    # A paused campaign's mail: never claimed until the campaign is resumed (or cancelled).
    HELD = "held"


class OutcomeClass(StrEnum):
    """What one SMTP attempt meant, decided from phase and reply code (classify.py)."""

    DELIVERED = "delivered"
    PROVIDER_FAILURE = "provider_failure"
    RECIPIENT_PERMANENT = "recipient_permanent"
    RECIPIENT_TRANSIENT = "recipient_transient"
    CONTENT_REJECTED = "content_rejected"
    TRANSIENT_AFTER_DATA = "transient_after_data"
    AMBIGUOUS = "ambiguous"


class SmtpPhase(StrEnum):
    """The step of an SMTP conversation an outcome happened in."""

    CONNECT = "connect"
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA_COMMAND = "data_command"  # the DATA verb, before any content was sent
    DATA_END = "data_end"  # the reply to the final "." (the ambiguous window)
    RSET = "rset"
    QUIT = "quit"


class BreakerState(StrEnum):
    """Circuit breaker state of one provider."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class ProviderState(StrEnum):
    """The one word for a provider's live state that every view and decision uses.

    Decided in one place (``core/provider_state.py``, ``state_word``), in this order of
    precedence: a switched-off provider is ``disabled`` whatever else is true; then
    ``maintenance``; then ``no_password`` (it needs one this computer's keyring lacks);
    then the breaker (open: ``down``; half-open: ``recovering``); then what the last sends
    and probes said (``up`` / ``down``). ``unknown`` only for a provider never probed and
    never used.
    """

    UP = "up"  # its last sends and probes worked, breaker closed
    DOWN = "down"  # its last sends or probes failed, or its breaker is open
    RECOVERING = "recovering"  # breaker half-open: one trial is allowed
    DISABLED = "disabled"  # switched off by a person
    MAINTENANCE = "maintenance"  # inside a maintenance window: drained, not counted
    NO_PASSWORD = "no_password"  # noqa: S105 (a state word: the keyring lacks its password)
    UNKNOWN = "unknown"  # never probed and never used


class AmbiguousPolicy(StrEnum):
    """What to do with a message the provider may or may not have taken."""

    RETRY = "retry"  # at-least-once: send again later, counted as a possible duplicate
    HOLD = "hold"  # at-most-once: wait for a person to retry or cancel it


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Most messages a provider may be sent per window; ``None`` means no limit."""

    per_second: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None

    def windows(self) -> tuple[tuple[float, int], ...]:
        """(window length in seconds, limit) for every configured window."""
        pairs = (
            (1.0, self.per_second),
            (60.0, self.per_minute),
            (3600.0, self.per_hour),
            (86400.0, self.per_day),
        )
        return tuple((seconds, limit) for seconds, limit in pairs if limit is not None)


class MaintenanceKind(StrEnum):
    """A one-off window (start, end) or one that comes back every week."""

    ONCE = "once"
    WEEKLY = "weekly"


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A time a provider takes no new transactions (in-flight ones finish).

    ``once``: ``starts_at`` .. ``ends_at`` (epoch seconds).
    ``weekly``: every ``weekday`` (0 = Monday) at ``start_minute`` after midnight in
    ``timezone`` (an IANA name, so daylight saving time moves the window with the clock),
    lasting ``duration_minutes``. When it is active: core/health/maintenance.py.
    """

    kind: MaintenanceKind
    starts_at: float | None = None
    ends_at: float | None = None
    weekday: int | None = None
    start_minute: int | None = None
    duration_minutes: int | None = None
    timezone: str | None = None
    note: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One SMTP provider as configured by the user. The password is never here."""

    name: str
    host: str
    port: int
    security: Security
    username: str | None = None
    priority: int = 0  # lower is preferred
    weight: int = 1  # share of traffic within its priority tier
    max_connections: int = 2
    rate_limits: RateLimits = field(default_factory=RateLimits)
    sender_domains: tuple[str, ...] = ()  # empty: any From domain
    enabled: bool = True
    allow_insecure: bool = False
    id: int | None = None
    uid: str = ""  # stable key of the keyring entry and of health history; survives renames
    maintenance: tuple[MaintenanceWindow, ...] = ()  # stored in their own table

    def authorizes(self, sender_domain: str) -> bool:
        """Whether this provider may send mail whose From is in ``sender_domain``."""
        if not self.sender_domains:
            return True
        domain = sender_domain.lower()
        allowed = (d.lower() for d in self.sender_domains)
        return any(domain == d or domain.endswith("." + d) for d in allowed)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message claimed for delivery: everything needed to send it, nothing more."""

    outbox_id: int
    message_id: str
    envelope_from: str
    recipients: tuple[str, ...]  # still to deliver (permanently refused ones are dropped)
    raw: bytes
    attempt_count: int
    deferral_count: int
    created_at: float
    route: str | None = None  # "healthiest" for alert mail (see storage/outbox.NewMessage)

    @property
    def sender_domain(self) -> str:
        return self.envelope_from.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One try of one message through one provider."""

    outbox_id: int
    message_id: str
    number: int
    provider_id: int | None
    provider_name: str
    started_at: float
    finished_at: float
    latency_ms: float
    outcome: OutcomeClass
    phase: SmtpPhase | None = None
    reply_code: int | None = None
    enhanced_status: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """How many messages are in each state."""

    queued: int = 0
    sending: int = 0
    deferred: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    bounced: int = 0
    held: int = 0

    def as_dict(self) -> dict[str, int]:
        return {state.value: getattr(self, state.value) for state in MessageState}

    @property
    def waiting(self) -> int:
        """Messages that still have to go out."""
        return self.queued + self.sending + self.deferred


@dataclass(frozen=True, slots=True)
class ProviderLiveState:
    """Everything live about one provider, as its state home (``ProviderStateBoard``) has it.

    Written by the delivery engine (breaker, sends, quota, maintenance, password) and the
    health monitor (probes, observed health); persisted in ``provider_status`` so that other
    processes (``relaydesk health``, a watching window) read the same record.
    """

    provider_uid: str
    provider_name: str
    state: ProviderState = ProviderState.UNKNOWN
    health: str = "unknown"  # "up" | "down" | "unknown": what sends and probes observed
    breaker: BreakerState = BreakerState.CLOSED
    breaker_retry_at: float | None = None  # epoch seconds the cool-down ends (breaker open)
    last_probe_at: float | None = None
    last_probe_ok: bool | None = None
    last_send_at: float | None = None
    last_send_outcome: str | None = None  # an OutcomeClass value
    quota_free_at: float | None = None  # the rate limit holds mail back until then
    in_maintenance: bool = False
    password_missing: bool = False
    enabled: bool = True
    since: float = 0.0  # when ``state`` last changed
    updated_at: float = 0.0  # when this record was last written
    detail: str = ""

    @property
    def observed(self) -> bool:
        """Probed or used at least once (else its state can only be ``unknown``)."""
        return self.last_probe_at is not None or self.last_send_at is not None
