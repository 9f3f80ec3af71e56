"""The IMAP mailboxes Relaydesk reads, and what each is for.

- ``bounces``: delivery status notifications come back here (one global mailbox, or one per
  provider); hard bounces suppress the address, soft ones are counted.
- ``unsubscribe``: the ``List-Unsubscribe`` mailto address; a request suppresses its sender.
- ``seed``: the inbox end-to-end delivery probes are sent to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from desktop_app.core.errors import UserInputError
from desktop_app.core.models import Security
from desktop_app.core.validation import (
    check_no_line_breaks,
    is_loopback,
    validate_host,
    validate_port,
)

MAX_FOLDER = 200


class MailboxRole(StrEnum):
    BOUNCES = "bounces"
    UNSUBSCRIBE = "unsubscribe"
    SEED = "seed"


@dataclass(frozen=True, slots=True)
class MailboxConfig:
    """A mailbox as configured; the password is in the keyring under ``imap:<uid>``."""

    name: str
    role: MailboxRole
    host: str
    port: int
    security: Security
    username: str
    folder: str = "INBOX"
    processed_folder: str = "Relaydesk/Processed"
    provider_name: str | None = None  # a provider's own bounce mailbox; None = global
    enabled: bool = True
    allow_insecure: bool = False
    uid: str = ""
    id: int | None = None
    uidvalidity: int | None = None
    last_uid: int = 0
    last_checked_at: float | None = None
    last_error: str | None = None


def validate_mailbox(config: MailboxConfig) -> MailboxConfig:
    """A normalized copy, or a one-line ``UserInputError`` naming the first bad field."""
    host = validate_host(config.host)
    security = Security(config.security)
    if security is Security.NONE and not is_loopback(host) and not config.allow_insecure:
        raise UserInputError(
            f"security 'none' sends the mailbox password in clear to {host}; use tls or "
            "starttls, or pass --allow-insecure if you really mean it"
        )
    username = config.username.strip()
    if not username:
        raise UserInputError("a mailbox needs a username")
    check_no_line_breaks("username", username)
    folder = _folder("folder", config.folder)
    processed = _folder("processed folder", config.processed_folder)
    if processed == folder:
        raise UserInputError("the processed folder must differ from the folder read")
    check_no_line_breaks("mailbox name", config.name)
    name = config.name.strip()
    if not name or len(name) > 100:
        raise UserInputError("a mailbox name must be 1 to 100 characters")
    return replace(
        config,
        name=name,
        role=MailboxRole(config.role),
        host=host,
        port=validate_port(config.port),
        security=security,
        username=username,
        folder=folder,
        processed_folder=processed,
    )


def default_name(role: MailboxRole, provider_name: str | None) -> str:
    return role.value if provider_name is None else f"{role.value}:{provider_name}"


def _folder(label: str, value: str) -> str:
    check_no_line_breaks(label, value)
    folder = value.strip()
    if not folder or len(folder) > MAX_FOLDER or '"' in folder:
        raise UserInputError(f"{label} must be 1 to {MAX_FOLDER} characters without quotes")
    return folder
