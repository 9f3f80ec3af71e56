"""End-to-end delivery probes: sent through one provider to a seed mailbox, watched for there.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_probes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token", sa.String(40), nullable=False, unique=True),
        sa.Column("provider_uid", sa.String(36), nullable=False),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.Column("smtp_latency_ms", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(300), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=True),
        sa.Column("delivery_latency_ms", sa.Float(), nullable=True),
    )
    op.create_index(
        "ix_delivery_probes_provider_sent", "delivery_probes", ["provider_uid", "sent_at"]
    )
    op.create_index("ix_delivery_probes_status", "delivery_probes", ["status", "sent_at"])


def downgrade() -> None:
    op.drop_table("delivery_probes")
