"""IMAP UIDVALIDITY and UID columns become BIGINT: both are unsigned 32-bit numbers
(RFC 3501 section 2.3.1.1, up to 4,294,967,295), past the 2**31 - 1 that INTEGER holds on
PostgreSQL. SQLite stores either in the same 64-bit integer; batch mode rebuilds the tables.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: (table, column, nullable) of every IMAP UIDVALIDITY or UID the database keeps.
_COLUMNS = (
    ("imap_mailboxes", "uidvalidity", True),
    ("imap_mailboxes", "last_uid", False),
    ("unrecognised_messages", "uidvalidity", False),
    ("unrecognised_messages", "uid", False),
)


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    for table in dict.fromkeys(table for table, _column, _nullable in _COLUMNS):
        with op.batch_alter_table(table) as batch:
            for name, column, nullable in _COLUMNS:
                if name == table:
                    batch.alter_column(
                        column, existing_type=old, type_=new, existing_nullable=nullable
                    )


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer())
