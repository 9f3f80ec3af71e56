"""Change counters: one row per kind of change, bumped by every write of that kind.

The change feed (core/change_feed.py) watches these counters so that a change made by any
process reaches every running engine, monitor and window.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: The topics as of this revision (storage/changes.py Topic); a later topic needs its own row.
TOPICS = ("providers", "maintenance", "settings", "outbox")


def upgrade() -> None:
    table = op.create_table(
        "change_counters",
        sa.Column("topic", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(table, [{"topic": topic, "version": 0} for topic in TOPICS])


def downgrade() -> None:
    op.drop_table("change_counters")
