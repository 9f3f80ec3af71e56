"""Health measurement, maintenance windows and alerts; outbox.route for alert mail.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _rollup_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("provider_uid", sa.String(36), primary_key=True),
        sa.Column("bucket_start", sa.Float(), primary_key=True),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("up_seconds", sa.Float(), nullable=False),
        sa.Column("down_seconds", sa.Float(), nullable=False),
        sa.Column("maintenance_seconds", sa.Float(), nullable=False),
        sa.Column("probes_up", sa.Integer(), nullable=False),
        sa.Column("probes_down", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("provider_failure", sa.Integer(), nullable=False),
        sa.Column("recipient_permanent", sa.Integer(), nullable=False),
        sa.Column("recipient_transient", sa.Integer(), nullable=False),
        sa.Column("content_rejected", sa.Integer(), nullable=False),
        sa.Column("transient_after_data", sa.Integer(), nullable=False),
        sa.Column("ambiguous", sa.Integer(), nullable=False),
        sa.Column("probe_latency_count", sa.Integer(), nullable=False),
        sa.Column("probe_latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("probe_latency_max_ms", sa.Float(), nullable=True),
        sa.Column("probe_latency_hist", sa.JSON(), nullable=False),
        sa.Column("send_latency_count", sa.Integer(), nullable=False),
        sa.Column("send_latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("send_latency_max_ms", sa.Float(), nullable=True),
        sa.Column("send_latency_hist", sa.JSON(), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("route", sa.String(16), nullable=True))
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "provider_id",
            sa.Integer(),
            sa.ForeignKey("providers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("starts_at", sa.Float(), nullable=True),
        sa.Column("ends_at", sa.Float(), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("start_minute", sa.Integer(), nullable=True),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "probe_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider_uid", sa.String(36), nullable=False),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("phases_ms", sa.JSON(), nullable=False),
        sa.Column("failed_phase", sa.String(16), nullable=True),
        sa.Column("reply_code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(300), nullable=False),
    )
    op.create_index(
        "ix_probe_results_provider_started", "probe_results", ["provider_uid", "started_at"]
    )
    op.create_index("ix_probe_results_started", "probe_results", ["started_at"])
    op.create_table("health_minute", *_rollup_columns())
    op.create_index("ix_health_minute_bucket", "health_minute", ["bucket_start"])
    op.create_table("health_hour", *_rollup_columns())
    op.create_index("ix_health_hour_bucket", "health_hour", ["bucket_start"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider_uid", sa.String(36), nullable=False),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("cause", sa.String(300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
    )
    op.create_index("ix_incidents_provider_started", "incidents", ["provider_uid", "started_at"])
    op.create_table(
        "provider_status",
        sa.Column("provider_uid", sa.String(36), primary_key=True),
        sa.Column("provider_name", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("breaker", sa.String(10), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("detail", sa.String(300), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("raised_at", sa.Float(), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("message", sa.String(500), nullable=False),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("email_outbox_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_alerts_raised", "alerts", ["raised_at"])


def downgrade() -> None:
    for table in (
        "alerts",
        "provider_status",
        "incidents",
        "health_hour",
        "health_minute",
        "probe_results",
        "maintenance_windows",
    ):
        op.drop_table(table)
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("route")
