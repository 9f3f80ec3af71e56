"""One SMTP connection to one provider, speaking in phases so outcomes can be classified.

aiosmtplib does the protocol work; this module adds what failover needs: which phase a
failure happened in, the reply code, and the ambiguous window after the final ".". The
reply to DATA and the reply to the final "." are read separately for that reason
(aiosmtplib's ``data()`` folds both into one ``SMTPDataError``).

Security rules enforced here, whatever the server offers:
- certificates are verified (``ssl.create_default_context()``);
- ``starttls`` is *required*: no STARTTLS offered means no AUTH and no mail;
- CR/LF never reach a command line (addresses are validated at enqueue, and
  aiosmtplib refuses them again).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from dataclasses import dataclass, replace

import aiosmtplib
from aiosmtplib import SMTPResponseException

from desktop_app.core.delivery.classify import classify, parse_enhanced_status
from desktop_app.core.models import OutcomeClass, ProviderConfig, Security, SmtpPhase

_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)
_DETAIL_LIMIT = 200


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
        self.broken = False
        self.last_used = time.monotonic()
        self.transactions = 0

    @property
    def is_connected(self) -> bool:
        return self._client.is_connected and not self.broken

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
                        "no password is stored in the keyring for this provider",
                        outcome=OutcomeClass.PROVIDER_FAILURE,
                    )
                await self._client.login(self.provider.username, self._password)
                lap(SmtpPhase.AUTH)
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
        try:
            result = await self._transact(envelope_from, recipients, raw)
        except SmtpFailure as failure:
            result = TransactionResult(
                outcome=failure.outcome,
                phase=failure.phase,
                reply_code=failure.reply_code,
                enhanced_status=failure.enhanced_status,
                detail=failure.detail,
            )
        self.last_used = time.monotonic()
        self.transactions += 1
        latency = (time.perf_counter() - started) * 1000
        return _with_latency(result, latency)

    async def _transact(
        self, envelope_from: str, recipients: tuple[str, ...], raw: bytes
    ) -> TransactionResult:
        client = self._client
        try:
            # MAIL and RCPT by hand rather than client.mail()/rcpt(): those re-parse each
            # address with email.utils.parseaddr, a fifth of the loop's CPU per message at
            # full speed, for addresses validated once at enqueue (validation.py).
            reply = await client.execute_command(b"MAIL", b"FROM:" + _path(envelope_from))
            if reply.code != 250:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, envelope_from)
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._after_failed_command(exc)
            raise SmtpFailure.from_exception(SmtpPhase.MAIL, exc) from None

        accepted: list[str] = []
        permanent: list[tuple[str, str]] = []
        transient: list[str] = []
        last_refusal: SmtpFailure | None = None
        for recipient in recipients:
            try:
                reply = await client.execute_command(b"RCPT", b"TO:" + _path(recipient))
                if reply.code not in (250, 251):
                    raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient)
            except (aiosmtplib.SMTPException, OSError) as exc:
                failure = SmtpFailure.from_exception(SmtpPhase.RCPT, exc)
                if failure.outcome is OutcomeClass.PROVIDER_FAILURE:  # 421 or connection lost
                    await self._after_failed_command(exc)
                    raise failure from None
                last_refusal = failure
                if failure.outcome is OutcomeClass.RECIPIENT_PERMANENT:
                    permanent.append((recipient, failure.detail))
                else:
                    transient.append(recipient)
            else:
                accepted.append(recipient)

        if not accepted:
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
            )

        try:
            reply = await client.execute_command(b"DATA")
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.broken = True
            raise SmtpFailure.from_exception(SmtpPhase.DATA_COMMAND, exc) from None
        if reply.code != 354:
            await self._after_failed_command(None)
            raise SmtpFailure.from_reply(SmtpPhase.DATA_COMMAND, reply.code, reply.message)

        # From here on the provider may end up with the message even if we hear nothing.
        try:
            protocol = client.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost")
            protocol.write(_dot_stuffed(raw))
            reply = await protocol.read_response(timeout=self._timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self.broken = True
            client.close()
            raise SmtpFailure.from_exception(SmtpPhase.DATA_END, exc) from None
        if reply.code == 421:
            self.broken = True
            client.close()
        if reply.code >= 400:
            failure = SmtpFailure.from_reply(SmtpPhase.DATA_END, reply.code, reply.message)
            return TransactionResult(
                outcome=failure.outcome,
                phase=SmtpPhase.DATA_END,
                reply_code=failure.reply_code,
                enhanced_status=failure.enhanced_status,
                detail=failure.detail,
                refused_permanently=tuple(permanent),
                refused_transiently=tuple(transient),
            )
        return TransactionResult(
            outcome=OutcomeClass.DELIVERED,
            phase=SmtpPhase.DATA_END,
            reply_code=reply.code,
            enhanced_status=parse_enhanced_status(reply.message),
            detail=_short(f"{reply.code} {reply.message}"),
            delivered_to=tuple(accepted),
            refused_permanently=tuple(permanent),
            refused_transiently=tuple(transient),
        )

    async def _after_failed_command(self, exc: BaseException | None) -> None:
        """Leave the connection clean for the next transaction, or mark it broken."""
        if isinstance(exc, SMTPResponseException) and exc.code != 421:
            await self.reset()
        else:
            self.broken = True
            self._abort()

    async def reset(self) -> bool:
        """RSET: abandon any transaction in progress. False (and broken) if that fails."""
        if not self._client.is_connected:
            self.broken = True
            return False
        try:
            await self._client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self.broken = True
            self._abort()
            return False
        return True

    async def noop(self) -> None:
        await self._client.noop()

    async def close(self) -> None:
        """Say QUIT if we can; close the socket either way."""
        if self._client.is_connected:
            try:
                await asyncio.wait_for(self._client.quit(), timeout=min(self._timeout, 5.0))
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass
        self._abort()

    def _abort(self) -> None:
        self._client.close()


def _dot_stuffed(raw: bytes) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, terminated by CRLF "." CRLF."""
    body = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    body = _LEADING_DOT.sub(b"..", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _with_latency(result: TransactionResult, latency_ms: float) -> TransactionResult:
    return replace(result, latency_ms=latency_ms)


def _path(address: str) -> bytes:
    """``<address>`` for MAIL FROM / RCPT TO; a line break can never reach the wire."""
    if "\r" in address or "\n" in address or "\x00" in address:
        # Validated at enqueue; this guards rows written by anything else.
        raise aiosmtplib.SMTPException(f"refusing an address with a line break: {address!r}")
    return b"<" + address.encode("ascii") + b">"
