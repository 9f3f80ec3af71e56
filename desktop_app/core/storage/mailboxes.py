"""IMAP mailbox settings and where reading each one got to (UIDVALIDITY and last UID)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.errors import UserInputError
from desktop_app.core.models import Security
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.schema import MailboxRow, ProviderRow

_WITH_PROVIDER = select(MailboxRow.__table__, ProviderRow.name.label("provider_name")).outerjoin(
    ProviderRow, ProviderRow.uid == MailboxRow.provider_uid
)


class MailboxRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    def save(self, config: MailboxConfig) -> MailboxConfig:
        """Create the mailbox named ``config.name``, or replace its settings. Changing the
        server, account or folder starts reading it from the beginning again (events already
        recorded are not counted twice)."""
        with self._database.write() as connection:
            provider_uid = None
            if config.provider_name is not None:
                provider_uid = connection.execute(
                    select(ProviderRow.uid).where(ProviderRow.name == config.provider_name)
                ).scalar()
                if provider_uid is None:
                    raise UserInputError(f"no provider named {config.provider_name!r}")
            values: dict[str, Any] = {
                "role": config.role.value,
                "provider_uid": provider_uid,
                "host": config.host,
                "port": config.port,
                "security": config.security.value,
                "username": config.username,
                "folder": config.folder,
                "processed_folder": config.processed_folder,
                "enabled": config.enabled,
            }
            existing = connection.execute(
                select(MailboxRow).where(MailboxRow.name == config.name)
            ).first()
            if existing is None:
                try:
                    connection.execute(
                        insert(MailboxRow).values(
                            uid=uuid.uuid4().hex,
                            name=config.name,
                            last_uid=0,
                            created_at=time.time(),
                            **values,
                        )
                    )
                except IntegrityError:
                    raise UserInputError(f"a mailbox named {config.name!r} exists") from None
            else:
                moved = any(
                    getattr(existing, key) != values[key]
                    for key in ("host", "port", "username", "folder")
                )
                if moved:
                    values.update(uidvalidity=None, last_uid=0)
                connection.execute(
                    update(MailboxRow).where(MailboxRow.id == existing.id).values(**values)
                )
        return self.get(config.name)

    def get(self, name: str) -> MailboxConfig:
        with self._database.read() as connection:
            row = connection.execute(_WITH_PROVIDER.where(MailboxRow.name == name.strip())).first()
        if row is None:
            raise UserInputError(f"no mailbox named {name.strip()!r}")
        return _config(row)

    def all(self, role: MailboxRole | None = None) -> list[MailboxConfig]:
        query = _WITH_PROVIDER.order_by(MailboxRow.name)
        if role is not None:
            query = query.where(MailboxRow.role == role.value)
        with self._database.read() as connection:
            return [_config(row) for row in connection.execute(query)]

    def remove(self, name: str) -> MailboxConfig:
        config = self.get(name)
        with self._database.write() as connection:
            connection.execute(delete(MailboxRow).where(MailboxRow.name == config.name))
        return config

    def record_position(self, mailbox_id: int, uidvalidity: int, last_uid: int) -> None:
        with self._database.write() as connection:
            connection.execute(
                update(MailboxRow)
                .where(MailboxRow.id == mailbox_id)
                .values(uidvalidity=uidvalidity, last_uid=last_uid)
            )

    def record_check(self, mailbox_id: int, error: str | None, *, now: float | None = None) -> None:
        with self._database.write() as connection:
            connection.execute(
                update(MailboxRow)
                .where(MailboxRow.id == mailbox_id)
                .values(
                    last_checked_at=time.time() if now is None else now,
                    last_error=None if error is None else error[:300],
                )
            )


def _config(row: Any) -> MailboxConfig:
    return replace(
        MailboxConfig(
            name=row.name,
            role=MailboxRole(row.role),
            host=row.host,
            port=row.port,
            security=Security(row.security),
            username=row.username,
            folder=row.folder,
            processed_folder=row.processed_folder,
            provider_name=row.provider_name,
            enabled=row.enabled,
        ),
        uid=row.uid,
        id=row.id,
        uidvalidity=row.uidvalidity,
        last_uid=row.last_uid,
        last_checked_at=row.last_checked_at,
        last_error=row.last_error,
    )
