"""The IMAP mailboxes Relaydesk reads, and what each is for.

- ``bounces``: delivery status notifications come back here (one global mailbox, or one per
  provider); hard bounces suppress the address, soft ones are counted.
- ``unsubscribe``: the ``List-Unsubscribe`` mailto address; a request suppresses its sender.
- ``seed``: the inbox end-to-end delivery probes are sent to.
"""

from __future__ import annotations

import re
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
    if _same_folder(processed, folder):
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
    if not folder_levels(folder):
        raise UserInputError(f"{label} needs a name, not only '/' or '.'")
    return folder


# -- folder paths --------------------------------------------------------------------------
# IMAP servers differ in their hierarchy separator: "/" (Dovecot with LAYOUT=fs or a
# separator setting, Gmail, Exchange) or "." (a stock Dovecot with Maildir, Courier, Cyrus),
# and refuse names containing the other one as a separator. A folder is stored as typed
# and translated for the server it is used on (``server_folder``, with the delimiter the
# server LISTs): in what a person types, both "/" and "." separate levels, so
# "Relaydesk/Processed" and "Relaydesk.Processed" name the same folder everywhere. The price:
# a folder whose own name contains "/" or "." cannot be named.

_LEVEL_SEPARATORS = re.compile(r"[/.]")


def folder_levels(value: str) -> list[str]:
    """The levels of a folder path as typed (``"a/b"``, ``"a.b"`` -> ``["a", "b"]``); blank
    levels (``"a//b"``, a trailing ``"/"``) are dropped."""
    return [level.strip() for level in _LEVEL_SEPARATORS.split(value) if level.strip()]


def server_folder(value: str, delimiter: str | None) -> str:
    """The folder typed as ``value``, spelt with the server's hierarchy ``delimiter``; on a
    flat server (``None``: no hierarchy) the name exactly as typed."""
    if not delimiter:
        return value.strip()
    return delimiter.join(folder_levels(value))


def _same_folder(first: str, second: str) -> bool:
    """Whether two typed paths name the same folder (INBOX is case-insensitive)."""

    def key(value: str) -> list[str]:
        levels = folder_levels(value)
        if levels and levels[0].upper() == "INBOX":
            levels[0] = "INBOX"
        return levels

    return key(first) == key(second)
