"""Providers, outbox and attempts: the first shipped schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(10), nullable=False),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("max_connections", sa.Integer(), nullable=False),
        sa.Column("rate_per_second", sa.Integer(), nullable=True),
        sa.Column("rate_per_minute", sa.Integer(), nullable=True),
        sa.Column("rate_per_hour", sa.Integer(), nullable=True),
        sa.Column("rate_per_day", sa.Integer(), nullable=True),
        sa.Column("sender_domains", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("allow_insecure", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("remaining_recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("deferral_count", sa.Integer(), nullable=False),
        sa.Column(
            "provider_id",
            sa.Integer(),
            sa.ForeignKey("providers.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("defer_reason", sa.String(32), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("possible_duplicate", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_outbox_claim", "outbox", ["state", "next_attempt_at", "id"])
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "outbox_id",
            sa.Integer(),
            sa.ForeignKey("outbox.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column(
            "provider_id",
            sa.Integer(),
            sa.ForeignKey("providers.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("phase", sa.String(16), nullable=True),
        sa.Column("reply_code", sa.Integer(), nullable=True),
        sa.Column("enhanced_status", sa.String(16), nullable=True),
        sa.Column("detail", sa.String(300), nullable=True),
        sa.UniqueConstraint("outbox_id", "number", name="uq_attempts_outbox_number"),
    )
    op.create_index("ix_attempts_provider_started", "attempts", ["provider_id", "started_at"])


def downgrade() -> None:
    op.drop_table("attempts")
    op.drop_table("outbox")
    op.drop_table("providers")
