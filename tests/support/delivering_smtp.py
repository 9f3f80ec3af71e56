"""An SMTP server on loopback that delivers what it accepts into a Dovecot mailbox, or, when
told to, accepts and drops it (a provider that loses mail after saying 250)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.dovecot import DovecotServer
from tests.support.servers import LOOPBACK, free_port


class _Handler:
    def __init__(self, owner: DeliveringSMTPServer) -> None:
        self._owner = owner

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        owner = self._owner
        with owner.lock:
            owner.accepted += 1
            drop = owner.drop
        if not drop:
            # Blocking IMAP APPEND in the server's loop: fine for a test server.
            owner.imap.append(owner.user, "INBOX", bytes(envelope.original_content))
        return "250 2.0.0 Ok: queued"


class DeliveringSMTPServer:
    def __init__(self, imap: DovecotServer, user: str, *, drop: bool = False) -> None:
        self.imap = imap
        self.user = user
        self.drop = drop
        self.accepted = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(_Handler(self), hostname=LOOPBACK, port=self.port)

    def start(self) -> DeliveringSMTPServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> DeliveringSMTPServer:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()
