"""Reused, logged-in SMTP connections to one provider, never more than its max connections.

Opening a connection costs a TCP (and TLS) handshake, EHLO and AUTH; reusing one costs
nothing. The pool keeps idle connections, checks them with RSET when they have been idle
for a while (servers drop quiet clients), and closes them after ``idle_seconds``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import Awaitable, Callable

from desktop_app.core.delivery.smtp_connection import SmtpConnection, SmtpFailure, tls_context
from desktop_app.core.errors import KeyringUnavailableError
from desktop_app.core.models import OutcomeClass, ProviderConfig, Security, SmtpPhase

#: An idle connection older than this is checked with RSET before reuse.
LIVENESS_CHECK_SECONDS = 5.0


class AcquireAbandoned(Exception):
    """The caller no longer wants a connection (see ``ConnectionPool.acquire``)."""


class ConnectionPool:
    """Connections to one provider; ``acquire`` waits while all of them are busy."""

    def __init__(
        self,
        provider: ProviderConfig,
        password: Callable[[], Awaitable[str | None]],
        *,
        timeout: float,
        helo_name: str,
        idle_seconds: float = 30.0,
    ) -> None:
        self.provider = provider
        self._password_source = password
        self._password: str | None = None
        self._password_loaded = False
        self._timeout = timeout
        self._helo_name = helo_name
        self._idle_seconds = idle_seconds
        self._idle: list[SmtpConnection] = []
        self._tls_context: ssl.SSLContext | None = None
        self.in_use = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.opened = 0  # connections opened over the pool's life (for tests and stats)

    async def acquire(self, *, abandon: Callable[[], bool] | None = None) -> SmtpConnection:
        """A ready connection: an idle one if it is still alive, else a new one.

        Raises ``SmtpFailure`` when a new connection cannot be opened, and
        ``AcquireAbandoned`` when ``abandon()`` says so after waiting for a free slot.
        """
        if self.in_use < self.provider.max_connections and not self._waiters:
            self.in_use += 1
        else:
            await self._wait_for_slot()
            if abandon is not None and abandon():
                self._give_back_slot()
                raise AcquireAbandoned
        try:
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_connected or connection.provider != self.provider:
                    await connection.close()
                    continue
                quiet_for = time.monotonic() - connection.last_used
                if quiet_for > LIVENESS_CHECK_SECONDS and not await connection.reset():
                    await connection.close()
                    continue
                return connection
            return await self._open()
        except BaseException:
            self._give_back_slot()
            raise

    async def _open(self) -> SmtpConnection:
        if self.provider.username and not self._password_loaded:
            try:
                self._password = await self._password_source()
            except KeyringUnavailableError:
                # A provider we cannot log in to: fail over like any other provider failure
                # (left unhandled, it would strand the message in "sending" until restart).
                raise SmtpFailure(
                    SmtpPhase.AUTH,
                    None,
                    "the OS keyring is unavailable, so this provider's password cannot be read",
                    outcome=OutcomeClass.PROVIDER_FAILURE,
                ) from None
            self._password_loaded = True
        if self._tls_context is None and self.provider.security is not Security.NONE:
            self._tls_context = tls_context()  # once per pool: it loads the trust store
        connection = SmtpConnection(
            self.provider,
            self._password if self.provider.username else None,
            timeout=self._timeout,
            helo_name=self._helo_name,
            context=self._tls_context,
        )
        await connection.open()
        self.opened += 1
        return connection

    async def release(self, connection: SmtpConnection) -> None:
        """Give a connection back; a broken one (or one for old settings) is closed."""
        self._give_back_slot()
        if connection.is_connected and connection.provider == self.provider:
            self._idle.append(connection)
        else:
            await connection.close()

    async def _wait_for_slot(self) -> None:
        """Queue for a connection slot; it is counted in ``in_use`` for us when we wake.

        One waiter is woken per freed slot, first come first served: with many messages
        routed per connection, waking them all on every release (an Event) cost more CPU
        than the SMTP conversation itself.
        """
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back_slot()  # handed a slot in the same loop turn: pass it on
            raise

    def _give_back_slot(self) -> None:
        self.in_use -= 1
        self._hand_over_slots()

    def _hand_over_slots(self) -> None:
        while self._waiters and self.in_use < self.provider.max_connections:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter is done: skipped
                self.in_use += 1
                waiter.set_result(None)

    def forget_password(self) -> None:
        """Read the password from the keyring again next time (it was changed, or refused)."""
        self._password_loaded = False
        self._password = None

    def reconfigure(self, provider: ProviderConfig) -> None:
        """Use new settings from now on; connections made with the old ones are retired."""
        if provider != self.provider:
            self.provider = provider
            self.forget_password()
            self._hand_over_slots()  # more connections allowed: waiters need not wait

    async def close_idle(self, *, older_than: float | None = None) -> int:
        """QUIT idle connections unused for ``older_than`` seconds (default: idle_seconds)."""
        limit = self._idle_seconds if older_than is None else older_than
        now = time.monotonic()
        keep: list[SmtpConnection] = []
        stale: list[SmtpConnection] = []
        for connection in self._idle:
            (stale if now - connection.last_used >= limit else keep).append(connection)
        self._idle = keep
        await asyncio.gather(*(c.close() for c in stale))
        return len(stale)

    async def close_all(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(c.close() for c in idle))
