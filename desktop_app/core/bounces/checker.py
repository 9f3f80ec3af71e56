"""One pass over one mailbox: open, read what is new, apply it, close (blocking)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from desktop_app.core.bounces.imap_session import (
    MailboxError,
    close_mailbox,
    hierarchy_delimiter,
    open_mailbox,
    server_words,
)
from desktop_app.core.bounces.mailboxes import MailboxConfig, server_folder
from desktop_app.core.bounces.processor import MailboxReport, process_mailbox
from desktop_app.core.secrets import SecretStore
from desktop_app.core.storage.bounces import Applied, BounceRepository
from desktop_app.core.storage.delivery_probes import DeliveryProbeRepository
from desktop_app.core.storage.mailboxes import MailboxRepository


@dataclass(frozen=True, slots=True)
class MailboxTest:
    """What "Test connection" found: it logged in and could open the folder."""

    latency_ms: float
    messages: int  # in the folder read
    idle: bool  # the server announces new mail (IMAP IDLE); else it is polled


class MailboxChecker:
    """Reads mailboxes with what it needs to apply what it finds."""

    def __init__(
        self,
        mailboxes: MailboxRepository,
        bounces: BounceRepository,
        secrets: SecretStore,
        soft_limit: Callable[[], int],
        *,
        probes: DeliveryProbeRepository | None = None,
    ) -> None:
        self.probes = probes
        self.mailboxes = mailboxes
        self.bounces = bounces
        self.secrets = secrets
        self._soft_limit = soft_limit

    def open(self, mailbox: MailboxConfig, *, timeout: float = 30.0) -> IMAPClient:
        return open_mailbox(
            mailbox, self.secrets.get_mailbox_password(mailbox.uid), timeout=timeout
        )

    def test(self, mailbox: MailboxConfig, password: str | None) -> MailboxTest:
        """Connect, log in (``password``, or the stored one) and open the folder; nothing
        is read or moved. Raises ``MailboxError`` (one line)."""
        started = time.perf_counter()
        if password is None and mailbox.uid:
            password = self.secrets.get_mailbox_password(mailbox.uid)
        client = open_mailbox(mailbox, password, timeout=15.0)
        try:
            try:
                folder = server_folder(mailbox.folder, hierarchy_delimiter(client))
            except IMAPClientError as error:
                raise MailboxError(f"mailbox {mailbox.name!r}: {server_words(error)}") from None
            try:
                selected = client.select_folder(folder, readonly=True)
            except IMAPClientError:
                raise MailboxError(f"folder {mailbox.folder!r} does not exist") from None
            return MailboxTest(
                latency_ms=(time.perf_counter() - started) * 1000,
                messages=int(selected.get(b"EXISTS", 0)),
                idle=bool(client.has_capability("IDLE")),
            )
        finally:
            close_mailbox(client)

    def check(self, mailbox: MailboxConfig) -> MailboxReport:
        """Open, process once, close; the outcome (or the error) is stored on the mailbox."""
        try:
            client = self.open(mailbox)
            try:
                report = self.process(client, mailbox)
            finally:
                close_mailbox(client)
        except MailboxError as error:
            assert mailbox.id is not None
            self.mailboxes.record_check(mailbox.id, str(error))
            raise
        return report

    def process(
        self,
        client: IMAPClient,
        mailbox: MailboxConfig,
        on_applied: Callable[[Applied], None] | None = None,
    ) -> MailboxReport:
        assert mailbox.id is not None
        # Re-read: the position may have moved since the caller loaded the config.
        current = self.mailboxes.get(mailbox.name)
        report = process_mailbox(
            client,
            current,
            self.bounces,
            self.mailboxes,
            soft_limit=self._soft_limit(),
            probes=self.probes,
            on_applied=on_applied,
        )
        self.mailboxes.record_check(mailbox.id, None)
        return report
