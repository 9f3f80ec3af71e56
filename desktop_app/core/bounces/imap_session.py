"""Opening an IMAP mailbox the safe way (imapclient, blocking: call it off the GUI thread).

TLS is verified against the system trust store (as for SMTP); with ``starttls`` the upgrade is
required, and a server that does not offer it gets no password. Errors come back as one
line that never contains the password.
"""

from __future__ import annotations

import contextlib
import ssl

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from desktop_app.core.bounces.mailboxes import MailboxConfig
from desktop_app.core.delivery.smtp_connection import tls_context
from desktop_app.core.errors import RelaydeskError
from desktop_app.core.models import Security

DEFAULT_TIMEOUT = 30.0


class MailboxError(RelaydeskError):
    """The mailbox could not be opened or read (one line, no secrets)."""


def open_mailbox(
    config: MailboxConfig, password: str | None, *, timeout: float = DEFAULT_TIMEOUT
) -> IMAPClient:
    """A logged-in client for ``config``, or ``MailboxError``."""
    where = f"{config.host}:{config.port}"
    if not password:
        raise MailboxError(f"mailbox {config.name!r} has no password in the keyring")
    client: IMAPClient | None = None
    try:
        if config.security is Security.TLS:
            client = IMAPClient(
                config.host, config.port, ssl=True, ssl_context=tls_context(), timeout=timeout
            )
        else:
            client = IMAPClient(config.host, config.port, ssl=False, timeout=timeout)
            if config.security is Security.STARTTLS:
                if not client.has_capability("STARTTLS"):
                    raise MailboxError(
                        f"{where} does not offer STARTTLS; the password is not sent in clear"
                    )
                client.starttls(tls_context())
        client.login(config.username, password)
        return client
    except MailboxError:
        _close(client)
        raise
    except LoginError:
        _close(client)
        raise MailboxError(f"{where}: login as {config.username!r} refused") from None
    except ssl.SSLCertVerificationError as error:
        _close(client)
        raise MailboxError(f"{where}: certificate not trusted ({error.verify_message})") from None
    except ssl.SSLError as error:
        _close(client)
        raise MailboxError(f"{where}: TLS failed ({error.reason or error})") from None
    except TimeoutError:
        _close(client)
        raise MailboxError(f"{where}: timed out") from None
    except OSError as error:
        _close(client)
        raise MailboxError(f"{where}: {error.strerror or error}") from None
    except IMAPClientError as error:
        _close(client)
        raise MailboxError(f"{where}: {server_words(error)}") from None


def _close(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except Exception:  # already broken: nothing more to say politely
        with contextlib.suppress(Exception):
            client.shutdown()


def close_mailbox(client: IMAPClient) -> None:
    _close(client)


def hierarchy_delimiter(client: IMAPClient) -> str | None:
    """The server's hierarchy delimiter, as ``LIST "" ""`` reports it (RFC 3501 6.3.8):
    ``"/"`` or ``"."`` mostly, ``None`` for a flat server (NIL) or one that says nothing.
    Folder names are translated with it (``mailboxes.server_folder``). Raises
    ``IMAPClientError`` when the server refuses the LIST."""
    for _flags, delimiter, _name in client.list_folders("", ""):
        if isinstance(delimiter, bytes):
            delimiter = delimiter.decode("ascii", "replace")
        return delimiter or None
    return None


def server_words(error: BaseException) -> str:
    """What a server or the network said, as one short line (never empty)."""
    return " ".join(str(error).split())[:200] or type(error).__name__
