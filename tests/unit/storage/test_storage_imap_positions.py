"""IMAP UIDVALIDITY and UIDs: unsigned 32-bit numbers, stored whole (issue 14, item 8).

SQLite keeps any of them in its 64-bit integers whatever the column says, so the column types
are checked too: INTEGER on PostgreSQL stops at 2**31 - 1, and a mailbox past that would
fail to record where reading got to.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import BigInteger, create_engine

from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.models import Security
from desktop_app.core.storage import dialect
from desktop_app.core.storage.bounces import BounceRepository
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.mailboxes import MailboxRepository
from desktop_app.core.storage.schema import MailboxRow, UnrecognisedMessageRow
from tests.unit.storage.storage_rows import RawRows

MAX_UID = 4_294_967_295  # 2**32 - 1, the largest UIDVALIDITY or UID (RFC 3501 section 2.3.1.1)

_UID_COLUMNS = (
    ("imap_mailboxes", "uidvalidity"),
    ("imap_mailboxes", "last_uid"),
    ("unrecognised_messages", "uidvalidity"),
    ("unrecognised_messages", "uid"),
)


def _mailbox(database: Database) -> MailboxConfig:
    return MailboxRepository(database).save(
        MailboxConfig(
            name="bounces",
            role=MailboxRole.BOUNCES,
            host="imap.example.com",
            port=993,
            security=Security.TLS,
            username="me",
        )
    )


def test_the_largest_uidvalidity_and_uid_are_stored_and_read_back(database: Database) -> None:
    mailboxes = MailboxRepository(database)
    mailbox = _mailbox(database)
    assert mailbox.id is not None

    mailboxes.record_position(mailbox.id, MAX_UID, MAX_UID)
    again = mailboxes.get("bounces")
    assert (again.uidvalidity, again.last_uid) == (MAX_UID, MAX_UID)

    bounces = BounceRepository(database)
    bounces.add_unrecognised(mailbox.id, MAX_UID, MAX_UID, "mailer@example.net", "?")
    bounces.add_unrecognised(mailbox.id, MAX_UID, MAX_UID, "mailer@example.net", "?")  # once
    assert [(m.mailbox_id, m.uid) for m in bounces.unrecognised()] == [(mailbox.id, MAX_UID)]


@pytest.mark.parametrize(
    ("column"),
    [
        MailboxRow.__table__.c.uidvalidity,
        MailboxRow.__table__.c.last_uid,
        UnrecognisedMessageRow.__table__.c.uidvalidity,
        UnrecognisedMessageRow.__table__.c.uid,
    ],
    ids=lambda column: f"{column.table.name}.{column.name}",
)
def test_uid_columns_are_big_integers_in_the_orm(column: object) -> None:
    assert isinstance(getattr(column, "type", None), BigInteger)


def test_the_migrations_make_the_uid_columns_bigint(database: Database, rows: RawRows) -> None:
    for table, column in _UID_COLUMNS:
        (info,) = [r for r in rows.query(f"PRAGMA table_info({table})") if r["name"] == column]
        assert info["type"] == "BIGINT", (table, column)


def test_a_database_from_revision_0009_keeps_its_reading_positions(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    dialect.configure_engine(engine)
    Database(engine, str(path)).upgrade("0009")
    engine.dispose()
    raw = RawRows(path)
    raw.execute(
        "INSERT INTO imap_mailboxes (id, uid, name, role, host, port, security, username,"
        " folder, processed_folder, enabled, uidvalidity, last_uid, created_at) VALUES (3,"
        " 'mb-3', 'bounces', 'bounces', 'imap.example.com', 993, 'tls', 'me', 'INBOX',"
        " 'Relaydesk/Processed', 1, ?, ?, 1.0)",
        (MAX_UID, MAX_UID - 1),
    )
    raw.execute(
        "INSERT INTO unrecognised_messages (mailbox_id, uidvalidity, uid, sender, subject,"
        " received_at) VALUES (3, ?, ?, 'mailer@example.net', 'x', 2.0)",
        (MAX_UID, MAX_UID),
    )

    database = Database.open_file(path)
    try:
        for table, column in _UID_COLUMNS:
            (info,) = [r for r in raw.query(f"PRAGMA table_info({table})") if r["name"] == column]
            assert info["type"] == "BIGINT", (table, column)
        mailbox = MailboxRepository(database).get("bounces")
        assert (mailbox.id, mailbox.uidvalidity, mailbox.last_uid) == (3, MAX_UID, MAX_UID - 1)
        bounces = BounceRepository(database)
        bounces.add_unrecognised(3, MAX_UID, MAX_UID, "mailer@example.net", "?")  # still once
        assert [(m.mailbox_id, m.uid) for m in bounces.unrecognised()] == [(3, MAX_UID)]
    finally:
        database.dispose()
