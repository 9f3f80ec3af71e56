"""A real aiosmtpd SMTP server on 127.0.0.1 whose replies a test can script.

The server runs its own asyncio loop on a background thread, so it serves both blocking
clients and async clients running on the test's loop. Everything a test may touch from its
own thread (behaviour, recorded messages, counters) is guarded by one lock.

Typical use::

    with ScriptedSMTPServer(rcpt_replies={"gone@example.test": "550 5.1.1 no such user"}) as srv:
        await aiosmtplib.send(msg, hostname=srv.host, port=srv.port)
        srv.configure(data_reply="451 4.3.0 try later")    # while running
        srv.stop(); ...; srv.start()                        # refuse, then serve the same port

Reply strings are sent verbatim (``"554 5.7.1 rejected"``). A reply starting with ``421``
closes the connection after it is sent, as RFC 5321 section 3.8 expects of a server.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import errno
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from types import TracebackType
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.servers import LOOPBACK, wait_for, wait_for_async

__all__ = [
    "Behaviour",
    "ReceivedMessage",
    "ScriptedSMTPServer",
    "wait_for",
    "wait_for_async",
]

T = TypeVar("T")

# Keys of Behaviour.delays besides SMTP verbs: the greeting and the reply to the final ".".
GREETING = "CONNECT"
END_OF_DATA = "."

_CONTROL_TIMEOUT = 10.0


@dataclass(frozen=True)
class Behaviour:
    """What the server answers. Replace it with :meth:`ScriptedSMTPServer.configure`.

    ``None`` means "answer like a healthy server".
    """

    greeting_reply: str | None = None
    """Replaces the ``220`` greeting, e.g. ``"421 4.3.2 too busy"`` or ``"554 5.7.1 go away"``."""
    mail_reply: str | None = None
    """Reply to every MAIL FROM."""
    rcpt_reply: str | None = None
    """Reply to every RCPT TO not listed in ``rcpt_replies``."""
    rcpt_replies: Mapping[str, str] = field(default_factory=dict)
    """Reply per recipient address (compared case-insensitively)."""
    data_reply: str | None = None
    """Reply to the final ``.`` of DATA."""
    disconnect_after_data: bool = False
    """Take the whole message, then drop the connection without replying to the final ``.``.
    The message is recorded with ``acknowledged=False``: the ambiguous window."""
    data_command_reply: str | None = None
    """Reply to DATA itself, whatever the recipients: ``"354 go ahead"`` with every RCPT
    refused is a server that takes an empty message (the final ``"."`` is then read)."""
    drop_instead_of: frozenset[str] = frozenset()
    """SMTP verbs (``"DATA"`` for its 354 or 503, ``"RSET"``...) never answered: the server
    drops the connection where that reply would go, as a crashing server does."""
    delay_seconds: float = 0.0
    """Pause before every reply (greeting included) that ``delays`` does not name."""
    delays: Mapping[str, float] = field(default_factory=dict)
    """Pause per reply: SMTP verbs (``"EHLO"``, ``"MAIL"``, ``"RCPT"``, ``"DATA"`` for the
    354, ``"AUTH"``, ...), ``"CONNECT"`` for the greeting and ``"."`` for the final reply."""
    pipelining: bool = False
    """Advertise PIPELINING (RFC 2920) after EHLO. aiosmtpd reads commands one line at a
    time, so it serves a pipelining client either way; this only changes what it offers."""
    credentials: tuple[str, str] | None = None
    """Username and password that AUTH accepts (only used when the server offers AUTH)."""

    def delay_for(self, command: str) -> float:
        """Seconds to wait before the reply to ``command``."""
        return self.delays.get(command, self.delay_seconds)

    def rcpt_reply_for(self, address: str) -> str | None:
        """The scripted reply for RCPT TO ``address``, if any."""
        lowered = {key.lower(): value for key, value in self.rcpt_replies.items()}
        return lowered.get(address.lower(), self.rcpt_reply)


@dataclass(frozen=True)
class ReceivedMessage:
    """One message whose content the server took in."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    """The content as received after dot-unstuffing, CRLF line ends kept."""
    message_id: str | None
    """The ``Message-ID`` header as sent (angle brackets kept), or None."""
    received_at: float
    """``time.time()`` when the final ``.`` arrived."""
    session_id: int
    """Which connection brought it: 1 for the first connection the server accepted."""
    acknowledged: bool
    """False when the server dropped the connection instead of replying (see
    ``disconnect_after_data``)."""
    tls: bool
    """True when it came over STARTTLS or implicit TLS."""
    auth_login: str | None
    """The username the session authenticated as, if any."""
    mail_from_at: float | None = None
    """``time.time()`` when this transaction's accepted MAIL FROM arrived (rate-limit tests
    compare these: a client takes its send token right before MAIL FROM)."""


def _is_positive(reply: str) -> bool:
    return reply.startswith("2")


def _message_id(data: bytes) -> str | None:
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(data)
    value = headers.get("Message-ID")
    return None if value is None else str(value).strip()


class _ScriptedSMTP(SMTP):
    """One connection's protocol: aiosmtpd's SMTP plus counting, delays and dropping."""

    def __init__(self, owner: ScriptedSMTPServer, session_id: int, **kwargs: Any) -> None:
        self._owner = owner
        self.session_id = session_id
        self._current_command = GREETING
        self._reply_delayed = False
        self.mail_from_at: float | None = None  # the current transaction's MAIL FROM arrival
        super().__init__(**kwargs)
        # aiosmtpd warns (UserWarning) when auth_required is passed without auth_require_tls.
        # A test server may legitimately want that combination; set the flag directly.
        self._auth_required = owner.auth_required
        self._smtp_methods = {
            name: self._counted(name, method) for name, method in self._smtp_methods.items()
        }

    def _counted(
        self, name: str, method: Callable[[str | None], Coroutine[Any, Any, None]]
    ) -> Callable[[str | None], Coroutine[Any, Any, None]]:
        async def run(arg: str | None) -> None:
            self.begin_reply(name)
            self._owner._count_command(name)
            await method(arg)

        return run

    def begin_reply(self, command: str) -> None:
        """Mark the start of the reply to ``command`` (its first line gets the delay)."""
        self._current_command = command
        self._reply_delayed = False

    async def apply_reply_delay(self) -> None:
        """Sleep the scripted delay once per reply."""
        if self._reply_delayed:
            return
        self._reply_delayed = True
        delay = self._owner.behaviour.delay_for(self._current_command)
        if delay > 0:
            await asyncio.sleep(delay)

    @property
    def uses_tls(self) -> bool:
        return self._owner.implicit_tls or self._tls_protocol is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is None:  # not the STARTTLS upgrade of this connection
            self._owner._connection_opened(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._connection_closed(self)
        super().connection_lost(error)

    async def push(self, status: str | bytes) -> None:
        await self.apply_reply_delay()
        if self._current_command in self._owner.behaviour.drop_instead_of:
            self.drop_connection()
            return
        greeting = self._owner.behaviour.greeting_reply
        if self._current_command == GREETING and greeting and status_text(status).startswith("220"):
            status = greeting
        if isinstance(status, bytes):  # two calls because aiosmtpd types status as AnyStr
            await super().push(status)
        else:
            await super().push(status)
        if status_text(status).startswith("421") and self.transport is not None:
            self.transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        reply = self._owner.behaviour.data_command_reply
        if reply is None:
            await super().smtp_DATA(arg)
            return
        await self.push(reply)
        if reply.startswith("354"):
            await self._reader.readuntil(b".\r\n")  # the empty message a client ends at once
            self.begin_reply(END_OF_DATA)
            await self.push("554 5.5.1 no valid recipients")

    def drop_connection(self) -> None:
        """Close the TCP connection at once, without a reply or a TLS close_notify."""
        for transport in (self.transport, self._original_transport):
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            elif transport is not None:
                transport.close()


def status_text(status: str | bytes) -> str:
    """A reply as text, whichever type aiosmtpd handed to ``push``."""
    return status if isinstance(status, str) else status.decode("ascii", "replace")


class _ScriptedHandler:
    """aiosmtpd handler hooks that consult the owner's current :class:`Behaviour`."""

    def __init__(self, owner: ScriptedSMTPServer) -> None:
        self._owner = owner

    async def handle_EHLO(
        self,
        server: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self._owner.behaviour.pipelining:
            responses = [responses[0], "250-PIPELINING", *responses[1:]]
        if self._owner.offers_auth:
            return responses
        # aiosmtpd always advertises its built-in mechanisms; a server without AUTH should not.
        return [line for line in responses if not line.startswith("250-AUTH")]

    async def handle_MAIL(
        self,
        server: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        arrived = time.time()
        reply = self._owner.behaviour.mail_reply or "250 2.1.0 OK"
        if _is_positive(reply):
            server.mail_from_at = arrived
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
        return reply

    async def handle_RCPT(
        self,
        server: _ScriptedSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self._owner.behaviour.rcpt_reply_for(address) or "250 2.1.5 OK"
        if _is_positive(reply):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def handle_DATA(self, server: _ScriptedSMTP, session: Session, envelope: Envelope) -> str:
        server.begin_reply(END_OF_DATA)
        behaviour = self._owner.behaviour
        if behaviour.disconnect_after_data:
            self._owner._record(server, session, envelope, acknowledged=False)
            await server.apply_reply_delay()
            server.drop_connection()
            # connection_lost() cancels this task; the reply below is never sent.
            await asyncio.sleep(_CONTROL_TIMEOUT)
            return "421 4.3.0 connection dropped"
        reply = behaviour.data_reply or "250 2.0.0 OK: queued"
        if _is_positive(reply):
            # Recorded before the reply goes out, so a client that saw 250 can look at once.
            self._owner._record(server, session, envelope, acknowledged=True)
        return reply

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd ``authenticator`` callable: compare against the current credentials."""
        credentials = self._owner.behaviour.credentials
        if credentials is not None and isinstance(auth_data, LoginPassword):
            username, password = credentials
            if auth_data.login == username.encode() and auth_data.password == password.encode():
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


class ScriptedSMTPServer:
    """An aiosmtpd server on loopback with scripted replies, recording what it receives.

    Arguments fixed for the server's life: ``host``, ``port`` (0 picks a free one, kept across
    :meth:`stop`/:meth:`start`), ``auth`` (username, password: offers AUTH and requires it
    unless ``auth_required=False``), ``auth_require_tls`` (AUTH only after TLS; aiosmtpd's
    default), ``tls_context`` (a server context: STARTTLS is offered), ``require_starttls``
    (530 to MAIL before STARTTLS), ``implicit_tls`` (TLS from the first byte, SMTPS).
    All other keyword arguments are :class:`Behaviour` fields and can be changed later with
    :meth:`configure`.
    """

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        hostname: str = "scripted-smtp.localhost",
        auth: tuple[str, str] | None = None,
        auth_required: bool | None = None,
        auth_require_tls: bool = True,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        **behaviour: Any,
    ) -> None:
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        self.host = host
        self.port = port
        # Given explicitly: aiosmtpd would otherwise call socket.getfqdn(), a DNS lookup.
        self.hostname = hostname
        self.offers_auth = auth is not None
        self.auth_required = self.offers_auth if auth_required is None else auth_required
        self.tls_context = tls_context
        self.require_starttls = require_starttls
        self.implicit_tls = implicit_tls
        # Under implicit TLS aiosmtpd does not know the session is encrypted, so "AUTH only
        # after TLS" would hide AUTH for good; the whole session is TLS anyway.
        self.auth_require_tls = auth_require_tls and not implicit_tls

        self._lock = threading.Lock()
        self._behaviour = Behaviour(credentials=auth)
        self._initial_behaviour = self._behaviour
        if behaviour:
            self.configure(**behaviour)
            self._initial_behaviour = self._behaviour
        self._messages: list[ReceivedMessage] = []
        self._commands: collections.Counter[str] = collections.Counter()
        self._connections_opened = 0
        self._live: set[_ScriptedSMTP] = set()

        self._handler = _ScriptedHandler(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # -- behaviour -------------------------------------------------------------------------

    @property
    def behaviour(self) -> Behaviour:
        """The behaviour in force now (an immutable snapshot)."""
        with self._lock:
            return self._behaviour

    def configure(self, **changes: Any) -> Behaviour:
        """Change behaviour fields, effective for the next reply; returns the new behaviour."""
        for name in ("rcpt_replies", "delays"):
            if name in changes:
                changes[name] = dict(changes[name])
        with self._lock:
            self._behaviour = dataclasses.replace(self._behaviour, **changes)
            return self._behaviour

    def reset_behaviour(self) -> None:
        """Back to the behaviour given to the constructor."""
        with self._lock:
            self._behaviour = self._initial_behaviour

    # -- recordings ------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Every message taken in so far, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    def message_ids(self) -> list[str]:
        """Message-ID headers of :attr:`messages`, in order (messages without one skipped)."""
        return [m.message_id for m in self.messages if m.message_id is not None]

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since the server was created."""
        with self._lock:
            return self._connections_opened

    @property
    def open_connections(self) -> int:
        """Connections open right now."""
        with self._lock:
            return len(self._live)

    def command_count(self, command: str) -> int:
        """How many times a command (``"RSET"``, ``"AUTH"``, ``"MAIL"``...) was received."""
        with self._lock:
            return self._commands[command.upper()]

    def command_counts(self) -> dict[str, int]:
        """All command counters (a copy)."""
        with self._lock:
            return dict(self._commands)

    def clear_records(self) -> None:
        """Forget recorded messages and counters (behaviour is kept)."""
        with self._lock:
            self._messages.clear()
            self._commands.clear()
            self._connections_opened = 0

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages were recorded; return them all."""
        return wait_for(
            lambda: msgs if len(msgs := self.messages) >= count else None,
            timeout,
            message=f"{self!r}: expected {count} messages, have {len(self.messages)}",
        )

    # -- life cycle ------------------------------------------------------------------------

    @property
    def is_listening(self) -> bool:
        return self._server is not None

    def start(self) -> ScriptedSMTPServer:
        """Listen (again) on :attr:`port`. Idempotent."""
        if self._loop is None:
            self._start_thread()
        if self._server is None:
            self._run(self._listen())
        return self

    def stop(self, *, drop_connections: bool = True) -> None:
        """Stop listening, so new connections are refused; by default also drop open ones."""
        if self._loop is not None:
            self._run(self._close_listener(drop_connections))

    def close(self) -> None:
        """Stop serving and end the server's thread. The object cannot be restarted."""
        if self._loop is None:
            return
        self.stop()
        loop = self._loop
        self._run(self._cancel_tasks())
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(_CONTROL_TIMEOUT)
        loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> ScriptedSMTPServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "listening" if self.is_listening else "stopped"
        return f"<ScriptedSMTPServer {self.host}:{self.port} {state}>"

    # -- internals (called on the server's loop) --------------------------------------------

    def _start_thread(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"scripted-smtp-{id(self):x}", daemon=True)
        self._loop = loop
        self._thread.start()
        if not ready.wait(_CONTROL_TIMEOUT):
            raise RuntimeError("the scripted SMTP server's loop did not start")

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CONTROL_TIMEOUT)

    def _make_protocol(self) -> _ScriptedSMTP:
        with self._lock:
            self._connections_opened += 1
            session_id = self._connections_opened
        return _ScriptedSMTP(
            self,
            session_id,
            handler=self._handler,
            hostname=self.hostname,
            ident="Relaydesk scripted SMTP",
            tls_context=None if self.implicit_tls else self.tls_context,
            require_starttls=self.require_starttls,
            auth_require_tls=self.auth_require_tls,
            authenticator=self._handler.authenticate,
            loop=self._loop,
        )

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self._server = await loop.create_server(
                    self._make_protocol,
                    host=self.host,
                    port=self.port,
                    ssl=self.tls_context if self.implicit_tls else None,
                    reuse_address=True,
                )
                break
            except OSError as error:
                # Restarting on a fixed port can race the old socket's release for a moment.
                if error.errno != errno.EADDRINUSE or self.port == 0:
                    raise
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self, drop_connections: bool) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        if drop_connections:
            with self._lock:
                live = list(self._live)
            for protocol in live:
                protocol.drop_connection()
        if server is not None:
            await server.wait_closed()
        # Let connection_lost callbacks run so open_connections is accurate on return.
        await asyncio.sleep(0)

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _connection_opened(self, protocol: _ScriptedSMTP) -> None:
        with self._lock:
            self._live.add(protocol)

    def _connection_closed(self, protocol: _ScriptedSMTP) -> None:
        with self._lock:
            self._live.discard(protocol)

    def _count_command(self, command: str) -> None:
        with self._lock:
            self._commands[command] += 1

    def _record(
        self, server: _ScriptedSMTP, session: Session, envelope: Envelope, *, acknowledged: bool
    ) -> None:
        data = envelope.original_content or b""
        auth = session.auth_data if session.authenticated else None
        message = ReceivedMessage(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=data,
            message_id=_message_id(data),
            received_at=time.time(),
            session_id=server.session_id,
            acknowledged=acknowledged,
            tls=server.uses_tls,
            auth_login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            mail_from_at=server.mail_from_at,
        )
        with self._lock:
            self._messages.append(message)
