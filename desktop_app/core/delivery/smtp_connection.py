"""One SMTP connection to one provider, speaking in phases so outcomes can be classified.

aiosmtplib opens the session (connect, TLS, EHLO, STARTTLS, AUTH); the transactions then
go through ``smtp_wire.SmtpWire``, pipelined when the server offers PIPELINING. This
module adds what failover needs: which phase a failure happened in, the reply code, and
the ambiguous window after the final ".", whose reply is read on its own.

Security rules enforced here, whatever the server offers:
- certificates are verified (``ssl.create_default_context()``);
- ``starttls`` is *required*: no STARTTLS offered means no AUTH and no mail;
- CR/LF never reach a command line (addresses are validated at enqueue, and
  aiosmtplib refuses them again).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import time
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib import SMTPResponseException

from desktop_app.core.delivery.classify import classify, parse_enhanced_status
from desktop_app.core.delivery.smtp_wire import Reply, SmtpWire
from desktop_app.core.models import OutcomeClass, ProviderConfig, Security, SmtpPhase

_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
_DETAIL_LIMIT = 200
#: The failure detail when a provider needs a password this computer's keyring lacks; the
#: provider-state home shows such a provider as ``no_password``.
NO_PASSWORD_DETAIL = "no password is stored in the keyring for this provider"  # noqa: S105
#: The failure detail of a message with a NUL byte, which is never put on the wire.
NUL_DETAIL = "not sent: the message contains a NUL byte, which mail cannot carry"


def _short(text: str) -> str:
    """One line, bounded: reply texts end up in the attempts table and the GUI."""
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_LIMIT else line[: _DETAIL_LIMIT - 1] + "…"


def describe_network_error(exc: BaseException) -> str:
    """A short human description of a failure that has no SMTP reply."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiosmtplib.SMTPTimeoutError):
        return "timed out waiting for the server"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, BaseException) and cause is not exc:
            return describe_network_error(cause)
        return _short(str(exc)) or "could not connect"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return "server closed the connection"
    if isinstance(exc, OSError):
        return _short(exc.strerror or str(exc)) or type(exc).__name__
    return _short(str(exc)) or type(exc).__name__


class SmtpFailure(Exception):
    """A failed step of the conversation, already classified."""

    def __init__(
        self,
        phase: SmtpPhase,
        reply_code: int | None,
        detail: str,
        *,
        outcome: OutcomeClass,
        enhanced_status: str | None = None,
    ) -> None:
        super().__init__(f"{phase.value}: {detail}")
        self.phase = phase
        self.reply_code = reply_code
        self.detail = detail
        self.outcome = outcome
        self.enhanced_status = enhanced_status

    @classmethod
    def from_reply(cls, phase: SmtpPhase, code: int, text: str) -> SmtpFailure:
        # The enhanced status starts the reply *text*; ``detail`` starts with the code.
        return cls(
            phase,
            code,
            _short(f"{code} {text}"),
            outcome=classify(phase, code),
            enhanced_status=parse_enhanced_status(text),
        )

    @classmethod
    def from_exception(cls, phase: SmtpPhase, exc: BaseException) -> SmtpFailure:
        if isinstance(exc, SMTPResponseException) and exc.code >= 400:
            return cls.from_reply(phase, exc.code, exc.message)
        return cls(phase, None, describe_network_error(exc), outcome=classify(phase, None))


@dataclass(frozen=True, slots=True)
class TransactionResult:
    """What one MAIL/RCPT/DATA transaction achieved."""

    outcome: OutcomeClass
    phase: SmtpPhase
    reply_code: int | None
    enhanced_status: str | None
    detail: str
    delivered_to: tuple[str, ...] = ()
    refused_permanently: tuple[tuple[str, str], ...] = ()  # (recipient, reply)
    refused_transiently: tuple[str, ...] = ()
    latency_ms: float = 0.0


def tls_context() -> ssl.SSLContext:
    """Certificate and host name verification on; system trust store (or SSL_CERT_FILE)."""
    return ssl.create_default_context()


class SmtpConnection:
    """A logged-in connection to a provider, reused for many transactions by the pool."""

    def __init__(
        self,
        provider: ProviderConfig,
        password: str | None,
        *,
        timeout: float,
        helo_name: str,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.provider = provider
        self._password = password
        self._timeout = timeout
        # Building a context loads the trust store (tens of ms): only when TLS is used.
        needs_tls = provider.security in (Security.TLS, Security.STARTTLS)
        self._context = context or (tls_context() if needs_tls else None)
        self._client = aiosmtplib.SMTP(
            hostname=provider.host,
            port=provider.port,
            use_tls=provider.security is Security.TLS,
            start_tls=False,  # we decide about STARTTLS ourselves (required, never optional)
            tls_context=self._context,
            timeout=timeout,
            local_hostname=helo_name,
        )
        self._wire: SmtpWire | None = None  # once the session is open
        self._pipelining = False
        self.broken = False
        self.last_used = time.monotonic()
        self.transactions = 0

    @property
    def is_connected(self) -> bool:
        # A reply nobody asked for (a server's 421 while the connection idled) means it
        # is going away: the pool opens a fresh one rather than fail a message on it.
        wire = self._wire
        return wire is not None and wire.is_open and wire.in_sync and not self.broken

    @property
    def pipelining(self) -> bool:
        """Whether transactions go out pipelined (the server offered PIPELINING)."""
        return self._pipelining

    async def open(self) -> dict[str, float]:
        """Connect, EHLO, STARTTLS and AUTH as configured. Returns ms spent per phase.

        Raises ``SmtpFailure`` (always a provider failure) naming the phase that failed.
        """
        timings: dict[str, float] = {}
        phase = SmtpPhase.CONNECT
        started = time.perf_counter()

        def lap(name: SmtpPhase) -> None:
            nonlocal started
            now = time.perf_counter()
            timings[name.value] = (now - started) * 1000
            started = now

        try:
            try:
                await self._client.connect()
            except aiosmtplib.SMTPConnectResponseError as exc:
                phase = SmtpPhase.GREETING
                raise SmtpFailure.from_reply(phase, exc.code, exc.message) from None
            lap(SmtpPhase.CONNECT)
            phase = SmtpPhase.EHLO
            await self._client.ehlo()
            lap(SmtpPhase.EHLO)
            if self.provider.security is Security.STARTTLS:
                phase = SmtpPhase.STARTTLS
                if not self._client.supports_extension("starttls"):
                    raise SmtpFailure(
                        phase,
                        None,
                        "server does not offer STARTTLS, which this provider requires",
                        outcome=OutcomeClass.PROVIDER_FAILURE,
                    )
                await self._client.starttls(tls_context=self._context)
                phase = SmtpPhase.EHLO
                await self._client.ehlo()
                lap(SmtpPhase.STARTTLS)
            if self.provider.username:
                phase = SmtpPhase.AUTH
                if self._password is None:
                    raise SmtpFailure(
                        phase,
                        None,
                        NO_PASSWORD_DETAIL,
                        outcome=OutcomeClass.PROVIDER_FAILURE,
                    )
                await self._client.login(self.provider.username, self._password)
                lap(SmtpPhase.AUTH)
            self._pipelining = self._client.supports_extension("pipelining")
            assert self._client.transport is not None
            self._wire = SmtpWire.take_over(self._client.transport, self._timeout)
        except SmtpFailure:
            self._abort()
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            self._abort()
            failure = SmtpFailure.from_exception(phase, exc)
            # Whatever the reply, a failure while getting ready is the provider's.
            failure.outcome = OutcomeClass.PROVIDER_FAILURE
            raise failure from None
        self.last_used = time.monotonic()
        return timings

    async def send(
        self, envelope_from: str, recipients: tuple[str, ...], raw: bytes
    ) -> TransactionResult:
        """One transaction. Never raises for SMTP or network trouble: it is in the result."""
        started = time.perf_counter()
        if b"\x00" in raw:
            # Refused at enqueue since (compose.py, templates.py), but a message queued by
            # an older version may still hold one: final, as no provider may be sent it.
            return TransactionResult(
                outcome=OutcomeClass.CONTENT_REJECTED,
                phase=SmtpPhase.MAIL,
                reply_code=None,
                enhanced_status=None,
                detail=NUL_DETAIL,
            )
        try:
            result = await self._transact(envelope_from, recipients, raw, started)
        except SmtpFailure as failure:
            result = TransactionResult(
                outcome=failure.outcome,
                phase=failure.phase,
                reply_code=failure.reply_code,
                enhanced_status=failure.enhanced_status,
                detail=failure.detail,
                latency_ms=_milliseconds_since(started),
            )
        self.last_used = time.monotonic()
        self.transactions += 1
        return result

    async def _transact(
        self, envelope_from: str, recipients: tuple[str, ...], raw: bytes, started: float
    ) -> TransactionResult:
        wire = self._wire
        if wire is None or not wire.in_sync:
            # A reply nobody asked for (a server's 421 while we were idle) would be read as
            # the answer to MAIL FROM: the connection is not usable, nothing was sent.
            self.broken = True
            self._abort()
            raise SmtpFailure.from_exception(
                SmtpPhase.MAIL, aiosmtplib.SMTPServerDisconnected("connection lost")
            )
        mail = b"MAIL FROM:" + _path(envelope_from) + b"\r\n"
        rcpts = [b"RCPT TO:" + _path(recipient) + b"\r\n" for recipient in recipients]
        if self._pipelining:
            # RFC 2920: MAIL, every RCPT and DATA in one write; every reply is read, in
            # order, before anything is decided, so the connection stays in step.
            replies = await self._exchange(wire, b"".join([mail, *rcpts, b"DATA\r\n"]))
            mail_reply, rcpt_replies, data_reply = replies[0], replies[1:-1], replies[-1]
        else:
            mail_reply = await self._step(wire, SmtpPhase.MAIL, mail)
            rcpt_replies = []
            data_reply = None
        if mail_reply.code != 250:
            await self._after_refusal(mail_reply)
            raise SmtpFailure.from_reply(SmtpPhase.MAIL, mail_reply.code, mail_reply.text)

        accepted: list[str] = []
        permanent: list[tuple[str, str]] = []
        transient: list[str] = []
        last_refusal: SmtpFailure | None = None
        for index, recipient in enumerate(recipients):
            if self._pipelining:
                reply = rcpt_replies[index]
            else:
                reply = await self._step(wire, SmtpPhase.RCPT, rcpts[index])
            if reply.code in (250, 251):
                accepted.append(recipient)
                continue
            failure = SmtpFailure.from_reply(SmtpPhase.RCPT, reply.code, reply.text)
            if failure.outcome is OutcomeClass.PROVIDER_FAILURE:  # 421
                await self._after_refusal(reply)
                raise failure
            last_refusal = failure
            if failure.outcome is OutcomeClass.RECIPIENT_PERMANENT:
                permanent.append((recipient, failure.detail))
            else:
                transient.append(recipient)

        if not accepted:
            if data_reply is not None and data_reply.code == 354:
                # A pipelining server that said yes to DATA with nobody to deliver to:
                # end the empty message (RFC 2920 section 3.1) before resetting. If the
                # connection goes there, the refusals still decide (reset() sees it).
                with contextlib.suppress(SmtpFailure):
                    await self._step(wire, SmtpPhase.DATA_COMMAND, b".\r\n")
            await self.reset()
            assert last_refusal is not None
            return TransactionResult(
                outcome=(
                    OutcomeClass.RECIPIENT_TRANSIENT
                    if transient
                    else OutcomeClass.RECIPIENT_PERMANENT
                ),
                phase=SmtpPhase.RCPT,
                reply_code=last_refusal.reply_code,
                enhanced_status=last_refusal.enhanced_status,
                detail=last_refusal.detail,
                refused_permanently=tuple(permanent),
                refused_transiently=tuple(transient),
                latency_ms=_milliseconds_since(started),
            )

        if data_reply is None:
            data_reply = await self._step(wire, SmtpPhase.DATA_COMMAND, b"DATA\r\n")
        if data_reply.code != 354:
            await self._after_refusal(data_reply)
            raise SmtpFailure.from_reply(SmtpPhase.DATA_COMMAND, data_reply.code, data_reply.text)

        # From here on the provider may end up with the message even if we hear nothing.
        try:
            wire.write(_dot_stuffed(raw))
            reply = await wire.reply()
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.broken = True
            self._abort()
            raise SmtpFailure.from_exception(SmtpPhase.DATA_END, exc) from None
        if reply.code == 421:
            self.broken = True
            self._abort()
        if reply.code >= 400:
            failure = SmtpFailure.from_reply(SmtpPhase.DATA_END, reply.code, reply.text)
            return TransactionResult(
                outcome=failure.outcome,
                phase=SmtpPhase.DATA_END,
                reply_code=failure.reply_code,
                enhanced_status=failure.enhanced_status,
                detail=failure.detail,
                refused_permanently=tuple(permanent),
                refused_transiently=tuple(transient),
                latency_ms=_milliseconds_since(started),
            )
        return TransactionResult(
            outcome=OutcomeClass.DELIVERED,
            phase=SmtpPhase.DATA_END,
            reply_code=reply.code,
            enhanced_status=parse_enhanced_status(reply.text),
            detail=_short(f"{reply.code} {reply.text}"),
            delivered_to=tuple(accepted),
            refused_permanently=tuple(permanent),
            refused_transiently=tuple(transient),
            latency_ms=_milliseconds_since(started),
        )

    async def _exchange(self, wire: SmtpWire, commands: bytes) -> list[Reply]:
        """Write a pipelined group and read one reply per line of it.

        When the connection is lost or times out part-way, a reply already read that
        explains it (a 421, MAIL FROM refused) is the failure; otherwise the failure is in
        the phase whose reply is missing. Before DATA's reply nothing can be delivered.
        """
        expected = commands.count(b"\n")

        def phase_of(index: int) -> SmtpPhase:
            if index == 0:
                return SmtpPhase.MAIL
            return SmtpPhase.DATA_COMMAND if index == expected - 1 else SmtpPhase.RCPT

        replies: list[Reply] = []
        try:
            wire.write(commands)
            while len(replies) < expected:
                replies.append(await wire.reply())
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.broken = True
            self._abort()
            for index, reply in enumerate(replies):
                if reply.code == 421 or (index == 0 and reply.code != 250):
                    raise SmtpFailure.from_reply(phase_of(index), reply.code, reply.text) from None
            if len(replies) == expected - 1 and not any(
                reply.code in (250, 251) for reply in replies[1:]
            ):
                # Every RCPT was answered, and refused, before the connection went: DATA's
                # reply could deliver nothing, so the refusals decide. A 550 taken for a
                # provider failure here would be tried on the next provider.
                return [*replies, _NO_REPLY]
            raise SmtpFailure.from_exception(phase_of(len(replies)), exc) from None
        return replies

    async def _step(self, wire: SmtpWire, phase: SmtpPhase, line: bytes) -> Reply:
        """One command and its reply; a lost connection or timeout is a failure in ``phase``."""
        try:
            wire.write(line)
            return await wire.reply()
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.broken = True
            self._abort()
            raise SmtpFailure.from_exception(phase, exc) from None

    async def _after_refusal(self, reply: Reply) -> None:
        """Leave the connection clean for the next transaction, or drop it after a 421."""
        if reply.code == 421:
            self.broken = True
            self._abort()
        else:
            await self.reset()

    async def reset(self) -> bool:
        """RSET: abandon any transaction in progress. False (and broken) if that fails."""
        wire = self._wire
        if wire is None or not wire.is_open or not wire.in_sync:
            self.broken = True
            self._abort()
            return False
        try:
            reply = await wire.command(b"RSET")
        except (aiosmtplib.SMTPException, OSError):
            reply = None
        if reply is None or reply.code != 250:
            self.broken = True
            self._abort()
            return False
        return True

    async def noop(self) -> None:
        """NOOP, for health probes; raises aiosmtplib's exceptions like the other steps."""
        wire = self._wire
        if wire is None:
            raise aiosmtplib.SMTPServerDisconnected("not connected")
        reply = await wire.command(b"NOOP")
        if reply.code != 250:
            raise SMTPResponseException(reply.code, reply.text)

    async def close(self) -> None:
        """Say QUIT if we can; close the socket either way."""
        wire = self._wire
        if wire is not None and wire.is_open and wire.in_sync:
            try:
                await asyncio.wait_for(wire.command(b"QUIT"), timeout=min(self._timeout, 5.0))
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass
        self._abort()

    def _abort(self) -> None:
        if self._wire is not None:
            self._wire.close()
        self._client.close()


#: Stands in for DATA's reply when the connection was lost before it came (see _exchange).
_NO_REPLY = Reply(0, "no reply: the connection was lost")


def _dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, terminated by CRLF "." CRLF."""
    # Messages from Relaydesk's composer already have CRLF line ends and rarely a line
    # starting with a dot: counting is far cheaper than three rewrites and a regex pass.
    line_feeds = raw.count(b"\n")
    if not (raw.count(b"\r") == line_feeds == raw.count(b"\r\n")):
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if raw.startswith(b".") or b"\n." in raw:
        raw = _LEADING_DOT.sub(b"..", raw)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw + b".\r\n"


def _milliseconds_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _path(address: str) -> bytes:
    """``<address>`` for MAIL FROM / RCPT TO; a line break can never reach the wire."""
    if "\r" in address or "\n" in address or "\x00" in address:
        # Validated at enqueue; this guards rows written by anything else.
        raise aiosmtplib.SMTPException(f"refusing an address with a line break: {address!r}")
    return b"<" + address.encode("ascii") + b">"
