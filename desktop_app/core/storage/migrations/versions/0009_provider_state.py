"""provider_status becomes each provider's whole live state (the provider-state home).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("health", sa.String(16), sa.text("'unknown'")),
    ("breaker_retry_at", sa.Float(), None),
    ("last_probe_at", sa.Float(), None),
    ("last_probe_ok", sa.Boolean(), None),
    ("last_send_at", sa.Float(), None),
    ("last_send_outcome", sa.String(32), None),
    ("quota_free_at", sa.Float(), None),
    ("in_maintenance", sa.Boolean(), sa.false()),
    ("password_missing", sa.Boolean(), sa.false()),
    ("enabled", sa.Boolean(), sa.true()),
)


def upgrade() -> None:
    # The change feed's topic for these rows (storage/changes.py Topic.PROVIDER_STATE).
    counters = sa.table("change_counters", sa.column("topic"), sa.column("version"))
    op.bulk_insert(counters, [{"topic": "provider_state", "version": 0}])
    with op.batch_alter_table("provider_status") as batch:
        for name, kind, default in _COLUMNS:
            batch.add_column(
                sa.Column(
                    name,
                    kind,
                    nullable=default is None,
                    server_default=default,
                )
            )


def downgrade() -> None:
    with op.batch_alter_table("provider_status") as batch:
        for name, _kind, _default in reversed(_COLUMNS):
            batch.drop_column(name)
    op.execute("DELETE FROM change_counters WHERE topic = 'provider_state'")
