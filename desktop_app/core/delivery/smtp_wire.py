"""The mail transactions' side of an SMTP connection: commands out, replies in, pipelined.

aiosmtplib opens the session (connect, TLS, EHLO, STARTTLS, AUTH: the parts where its
care matters most). Then :meth:`SmtpWire.take_over` hands the transport to this small
protocol for everything after: MAIL, RCPT, DATA, the message, RSET, NOOP, QUIT.

Why not aiosmtplib for those too: its protocol reads exactly one reply per command
written and drops anything else that arrives, so it cannot pipeline (RFC 2920), and each
command costs a lock, a ``wait_for`` and its timer. At full speed on loopback that was
half of the engine's CPU per message (bench_throughput.py). With PIPELINING, MAIL FROM,
every RCPT TO and DATA go out in one write and their replies come back in one read: two
round trips per message instead of 3 + recipients, which also halves the time a real
provider 50 ms away needs per message.

Replies are parsed here: multi-line replies joined, lines and replies bounded in size
(a server cannot make us buffer without limit). Failures surface as aiosmtplib's own
exception types, so the classification code is the same whoever read the reply.
"""

from __future__ import annotations

import asyncio
import collections
from typing import NamedTuple

import aiosmtplib

#: RFC 5321 allows 512 octets per reply line; servers write longer texts in practice.
MAX_LINE = 8192
#: A whole multi-line reply (EHLO-sized replies never come through here).
MAX_REPLY = 65536
#: What may follow the three digits: text, a continuation dash, or the line end ("250").
_AFTER_CODE = (b" ", b"-", b"\r", b"")


def _line_text(line: bytes) -> str:
    return line[4:].strip(b" \t\r").decode("utf-8", "surrogateescape")


class Reply(NamedTuple):
    code: int
    text: str


class SmtpWire(asyncio.Protocol):
    """Writes commands and hands out the server's replies in order, with a timeout each."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._lines: list[bytes] = []  # of a multi-line reply still coming
        self._replies: collections.deque[Reply] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._failure: Exception | None = None

    @classmethod
    def take_over(cls, transport: asyncio.BaseTransport, timeout: float) -> SmtpWire:
        """Become the protocol of a session aiosmtplib has opened (nothing may be unread)."""
        if not isinstance(transport, asyncio.Transport) or transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("connection lost")
        wire = cls(timeout)
        wire._transport = transport
        transport.set_protocol(wire)
        return wire

    @property
    def is_open(self) -> bool:
        return (
            self._failure is None
            and self._transport is not None
            and not self._transport.is_closing()
        )

    @property
    def in_sync(self) -> bool:
        """No reply is waiting that nobody asked for (a 421 sent while we were idle...)."""
        return not self._replies and not self._lines and not self._buffer

    def write(self, data: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        if self._transport is None or self._transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected("connection lost")
        self._transport.write(data)

    async def reply(self) -> Reply:
        """The next reply, waiting at most the timeout for it."""
        if self._replies:
            return self._replies.popleft()
        if self._failure is not None:
            raise self._failure
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiter = waiter
        # One timer per read instead of asyncio.wait_for's task-and-timer machinery.
        timer = loop.call_later(self._timeout, self._time_out, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if self._replies:
            return self._replies.popleft()
        assert self._failure is not None
        raise self._failure

    async def command(self, line: bytes) -> Reply:
        """One command, one reply (RSET, NOOP, QUIT and servers without PIPELINING)."""
        self.write(line + b"\r\n")
        return await self.reply()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._buffer:  # the rest of a line that came in an earlier chunk
            data = bytes(self._buffer) + data
            self._buffer.clear()
        lines = data.split(b"\n")
        unfinished = lines.pop()  # after the last line feed: empty when data ends a line
        for line in lines:
            if not self._take_line(line):
                return
        if len(unfinished) > MAX_LINE:
            self._fail(aiosmtplib.SMTPResponseException(-1, "reply line too long"))
            return
        self._buffer += unfinished
        self._wake()

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("server closed the connection"))
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._failure is None:
            self._failure = aiosmtplib.SMTPServerDisconnected("connection lost")
        self._wake()

    # -- parsing -------------------------------------------------------------------------

    def _take_line(self, line: bytes) -> bool:
        """Add one reply line (without its line feed); False when the reply is malformed
        (the connection is then dropped)."""
        well_formed = line[:3].isdigit() and line[3:4] in _AFTER_CODE
        if len(line) > MAX_LINE or not well_formed:
            self._fail(
                aiosmtplib.SMTPResponseException(
                    -1, "malformed reply: " + line[:80].decode("ascii", "replace").strip()
                )
            )
            return False
        if line[3:4] == b"-":
            self._lines.append(line)
            if sum(map(len, self._lines)) > MAX_REPLY:
                self._fail(aiosmtplib.SMTPResponseException(-1, "reply too long"))
                return False
            return True
        if self._lines:
            self._lines.append(line)
            text = "\n".join(map(_line_text, self._lines))
            self._lines = []
        else:  # the usual one-line reply
            text = _line_text(line)
        self._replies.append(Reply(int(line[:3]), text))
        return True

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._replies or self._failure):
            waiter.set_result(None)

    def _time_out(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():
            return
        # A reply that comes later would pair with the wrong command: this connection is done.
        self._fail(aiosmtplib.SMTPReadTimeoutError("timed out waiting for the server"))

    def _fail(self, failure: Exception) -> None:
        if self._failure is None:
            self._failure = failure
        self._buffer.clear()
        self._lines = []
        self.close()
        self._wake()
