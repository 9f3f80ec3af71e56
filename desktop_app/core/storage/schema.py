"""The ORM schema. Alembic migrations under ``migrations/versions`` must produce exactly this.

Times are epoch seconds (UTC) stored as floats: comparisons in claims stay cheap and
behave the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
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
