"""The ORM schema. Alembic migrations under ``migrations/versions`` must produce exactly this.

Times are epoch seconds (UTC) stored as floats: comparisons in claims stay cheap and
behave the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Root of the ORM classes."""


class ProviderRow(Base):
    """One configured SMTP provider. The password lives in the OS keyring, keyed by ``uid``."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10))
    username: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    max_connections: Mapped[int] = mapped_column(Integer, default=2)
    rate_per_second: Mapped[int | None] = mapped_column(Integer)
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    rate_per_hour: Mapped[int | None] = mapped_column(Integer)
    rate_per_day: Mapped[int | None] = mapped_column(Integer)
    sender_domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allow_insecure: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class OutboxRow(Base):
    """One message waiting for, in, or done with delivery."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The claim query: due messages of a state, oldest first.
        Index("ix_outbox_claim", "state", "next_attempt_at", "id"),
        Index("ix_outbox_message_id", "message_id"),
        # Campaign progress, pause and cancel: one campaign's rows by state.
        Index("ix_outbox_campaign_state", "campaign_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255))  # made once at enqueue, never changes
    state: Mapped[str] = mapped_column(String(16))
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[str]] = mapped_column(JSON)  # the whole envelope as queued
    # Still to deliver: permanently refused recipients leave it, accepted ones too.
    remaining_recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(Text, default="")  # for lists and search only
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # exact RFC 5322 bytes, CRLF line ends
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    deferral_count: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Why a deferred message waits ("no_provider", "recipient", "after_data"): mail that
    # waits only for a provider is woken as soon as one comes back.
    defer_reason: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[float | None] = mapped_column(Float)
    possible_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    # How to pick a provider: None = priority and weight; "healthiest" = the healthiest
    # usable provider whatever its priority (alert mail must get out through the best one).
    route: Mapped[str | None] = mapped_column(String(16))
    # No foreign key: the outbox is the delivery record and outlives a deleted campaign.
    campaign_id: Mapped[int | None] = mapped_column(Integer)


class AttemptRow(Base):
    """One try of one message through one provider. Committed before MAIL FROM."""

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("outbox_id", "number", name="uq_attempts_outbox_number"),
        Index("ix_attempts_provider_started", "provider_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    provider_name: Mapped[str] = mapped_column(String(100))  # history outlives the provider
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str | None] = mapped_column(String(32))  # None while in flight
    phase: Mapped[str | None] = mapped_column(String(16))
    reply_code: Mapped[int | None] = mapped_column(Integer)
    enhanced_status: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(300))


class SettingRow(Base):
    """One user setting, stored as JSON text; declared with defaults in core/settings.py."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MaintenanceWindowRow(Base):
    """A time a provider takes no new mail: one-off (start, end) or weekly in a time zone."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))  # "once" | "weekly"
    starts_at: Mapped[float | None] = mapped_column(Float)  # once: epoch seconds
    ends_at: Mapped[float | None] = mapped_column(Float)
    weekday: Mapped[int | None] = mapped_column(Integer)  # weekly: 0 = Monday
    start_minute: Mapped[int | None] = mapped_column(Integer)  # minutes after local midnight
    duration_minutes: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name the weekly time is in
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Float)


class ChangeCounterRow(Base):
    """How often one kind of thing changed (storage/changes.py): the change feed's source.

    Bumped in the same transaction as the write it announces, so a reader that sees the
    new version also sees the change.
    """

    __tablename__ = "change_counters"

    topic: Mapped[str] = mapped_column(String(32), primary_key=True)  # changes.Topic
    version: Mapped[int] = mapped_column(Integer)


class ProbeResultRow(Base):
    """One scheduled health probe (raw; kept 7 days)."""

    __tablename__ = "probe_results"
    __table_args__ = (
        Index("ix_probe_results_provider_started", "provider_uid", "started_at"),
        Index("ix_probe_results_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_uid: Mapped[str] = mapped_column(String(36))  # history outlives renames
    provider_name: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # "up" | "down" | "maintenance"
    latency_ms: Mapped[float] = mapped_column(Float)
    phases_ms: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    failed_phase: Mapped[str | None] = mapped_column(String(16))
    reply_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(String(300), default="")


class _HealthRollup:
    """Columns shared by the per-minute and per-hour rollups (one row per provider and bucket).

    Status time is time-weighted (seconds up / down / in maintenance while the app watched),
    so a probe every 5 s while down and every 60 s while up does not skew uptime.
    Latency histograms are sparse {bucket index: count} maps (health/histogram.py).
    """

    provider_uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    bucket_start: Mapped[float] = mapped_column(Float, primary_key=True)
    provider_name: Mapped[str] = mapped_column(String(100))
    up_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    down_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    maintenance_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    probes_up: Mapped[int] = mapped_column(Integer, default=0)
    probes_down: Mapped[int] = mapped_column(Integer, default=0)
    # Real sends, by outcome class (models.OutcomeClass); "sent" is DELIVERED.
    sent: Mapped[int] = mapped_column(Integer, default=0)
    provider_failure: Mapped[int] = mapped_column(Integer, default=0)
    recipient_permanent: Mapped[int] = mapped_column(Integer, default=0)
    recipient_transient: Mapped[int] = mapped_column(Integer, default=0)
    content_rejected: Mapped[int] = mapped_column(Integer, default=0)
    transient_after_data: Mapped[int] = mapped_column(Integer, default=0)
    ambiguous: Mapped[int] = mapped_column(Integer, default=0)
    # Response time of successful probes (connect .. QUIT) and of sends (MAIL .. final reply).
    probe_latency_count: Mapped[int] = mapped_column(Integer, default=0)
    probe_latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    probe_latency_max_ms: Mapped[float | None] = mapped_column(Float)
    probe_latency_hist: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    send_latency_count: Mapped[int] = mapped_column(Integer, default=0)
    send_latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    send_latency_max_ms: Mapped[float | None] = mapped_column(Float)
    send_latency_hist: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class HealthMinuteRow(_HealthRollup, Base):
    """Per-minute rollup (kept 30 days)."""

    __tablename__ = "health_minute"
    __table_args__ = (Index("ix_health_minute_bucket", "bucket_start"),)


class HealthHourRow(_HealthRollup, Base):
    """Per-hour rollup (kept 1 year)."""

    __tablename__ = "health_hour"
    __table_args__ = (Index("ix_health_hour_bucket", "bucket_start"),)


class IncidentRow(Base):
    """A stretch of consecutive failures of one provider (kept 1 year)."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_provider_started", "provider_uid", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider_uid: Mapped[str] = mapped_column(String(36))
    provider_name: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)  # None while it lasts
    cause: Mapped[str] = mapped_column(String(300))
    failures: Mapped[int] = mapped_column(Integer, default=0)


class ProviderStatusRow(Base):
    """Each provider's live state (models.ProviderLiveState), the provider-state home's copy.

    Written by the sending app's health monitor from its ``ProviderStateBoard`` when
    something changes (and as a heartbeat), so that ``relaydesk health``, ``provider list``
    and a watching window in another process say the same as the sending one.
    """

    __tablename__ = "provider_status"

    provider_uid: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider_name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))  # models.ProviderState
    breaker: Mapped[str] = mapped_column(String(10))  # models.BreakerState
    since: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # heartbeat of the watching app
    detail: Mapped[str] = mapped_column(String(300), default="")
    health: Mapped[str] = mapped_column(String(16), server_default=text("'unknown'"))
    breaker_retry_at: Mapped[float | None] = mapped_column(Float)
    last_probe_at: Mapped[float | None] = mapped_column(Float)
    last_probe_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_send_at: Mapped[float | None] = mapped_column(Float)
    last_send_outcome: Mapped[str | None] = mapped_column(String(32))
    quota_free_at: Mapped[float | None] = mapped_column(Float)
    in_maintenance: Mapped[bool] = mapped_column(Boolean, server_default=false())
    password_missing: Mapped[bool] = mapped_column(Boolean, server_default=false())
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())


class AlertRow(Base):
    """One alert raised (the in-app alert log)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_raised", "raised_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    raised_at: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(100))  # provider name, or "" for the outbox
    severity: Mapped[str] = mapped_column(String(10))  # "warning" | "critical" | "info"
    message: Mapped[str] = mapped_column(String(500))
    resolved_at: Mapped[float | None] = mapped_column(Float)
    email_outbox_id: Mapped[int | None] = mapped_column(Integer)  # the alert mail, if any
    acknowledged_at: Mapped[float | None] = mapped_column(Float)  # someone is on it


class ListRow(Base):
    """A subscriber list (campaigns are sent to one)."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[float] = mapped_column(Float)


class SubscriberRow(Base):
    """One address on one list, with its name, custom fields and status."""

    __tablename__ = "subscribers"
    __table_args__ = (
        UniqueConstraint("list_id", "email_key", name="uq_subscribers_list_email"),
        Index("ix_subscribers_list_status", "list_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))  # as imported (normalized by email-validator)
    email_key: Mapped[str] = mapped_column(String(320))  # lower-cased: duplicates and suppression
    name: Mapped[str] = mapped_column(String(200), default="")
    fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # custom columns
    status: Mapped[str] = mapped_column(String(16))  # active|unsubscribed|bounced|complained
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class SuppressionRow(Base):
    """An address no campaign ever sends to, whatever list it is on."""

    __tablename__ = "suppressions"

    email_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))  # unsubscribed|bounced|complained|manual
    detail: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[float] = mapped_column(Float)


class CampaignRow(Base):
    """A campaign: who it goes to, what it says, and where it is in its life."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # Message-IDs and tokens use it
    name: Mapped[str] = mapped_column(String(100), unique=True)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    list_name: Mapped[str] = mapped_column(String(100))  # the report outlives the list
    from_address: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str | None] = mapped_column(String(200))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)  # Jinja2 sources, as the user wrote them
    html_body: Mapped[str | None] = mapped_column(Text)
    text_body: Mapped[str | None] = mapped_column(Text)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(700))
    unsubscribe_mailto: Mapped[str | None] = mapped_column(String(320))
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))  # campaigns/lifecycle.py CampaignState
    scheduled_at: Mapped[float | None] = mapped_column(Float)
    pause_reason: Mapped[str | None] = mapped_column(String(300))
    recipients_total: Mapped[int | None] = mapped_column(Integer)  # None until sending starts
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)


class CampaignAttachmentRow(Base):
    """A file attached to every message of a campaign."""

    __tablename__ = "campaign_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class CampaignRecipientRow(Base):
    """One address of a campaign, copied from the list when sending starts.

    ``pending`` until its message is rendered and queued (then the outbox row, ``outbox_id``,
    is the truth), or ``skipped`` (suppressed since), ``failed`` (its template did not
    render) or ``cancelled`` (the campaign was cancelled before it was queued).
    """

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "email_key", name="uq_campaign_recipients_email"),
        Index("ix_campaign_recipients_state", "campaign_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(Integer)  # the list may be edited later
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    outbox_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(String(300))


class MailboxRow(Base):
    """An IMAP mailbox Relaydesk reads. Its password is in the keyring (``imap:<uid>``)."""

    __tablename__ = "imap_mailboxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # bounces/mailboxes.py MailboxRole
    provider_uid: Mapped[str | None] = mapped_column(String(36))  # one per provider, or global
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    security: Mapped[str] = mapped_column(String(10))
    username: Mapped[str] = mapped_column(String(255))
    folder: Mapped[str] = mapped_column(String(200))
    processed_folder: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where reading got to: UIDs are only comparable under one UIDVALIDITY (RFC 3501 2.3.1.1).
    # Both are unsigned 32-bit: BigInteger, since PostgreSQL's INTEGER stops at 2**31 - 1.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    last_checked_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[float] = mapped_column(Float)


class BounceEventRow(Base):
    """One address a bounce or an unsubscribe request was about; each is stored once."""

    __tablename__ = "bounce_events"
    __table_args__ = (
        UniqueConstraint("bounce_key", "address", "kind", name="uq_bounce_events_once"),
        Index("ix_bounce_events_address", "address", "kind"),
        Index("ix_bounce_events_campaign", "campaign_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # hard | soft | unsubscribe
    address: Mapped[str] = mapped_column(String(320))
    # The bounce's own Message-ID (or mailbox/UIDVALIDITY/UID): the same bounce read twice,
    # or delivered twice, counts once.
    bounce_key: Mapped[str] = mapped_column(String(300))
    outbox_id: Mapped[int | None] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(255))  # of the mail that bounced
    status: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(300), default="")
    received_at: Mapped[float] = mapped_column(Float)


class UnrecognisedMessageRow(Base):
    """A message in a bounce mailbox no detector could read: left in place for a person."""

    __tablename__ = "unrecognised_messages"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "uidvalidity", "uid", name="uq_unrecognised_once"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(Integer)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)  # unsigned 32-bit, as above
    uid: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[float] = mapped_column(Float)


class DeliveryProbeRow(Base):
    """One end-to-end delivery probe: SMTP said what it said; did the mail arrive?"""

    __tablename__ = "delivery_probes"
    __table_args__ = (
        Index("ix_delivery_probes_provider_sent", "provider_uid", "sent_at"),
        Index("ix_delivery_probes_status", "status", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)  # in the X-Relaydesk-Probe header
    provider_uid: Mapped[str] = mapped_column(String(36))
    provider_name: Mapped[str] = mapped_column(String(100))
    sent_at: Mapped[float] = mapped_column(Float)
    smtp_latency_ms: Mapped[float | None] = mapped_column(Float)
    # pending -> delivered | lost (accepted, never arrived) ; send_failed (SMTP refused it)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(300), default="")
    seen_at: Mapped[float | None] = mapped_column(Float)
    delivery_latency_ms: Mapped[float | None] = mapped_column(Float)
