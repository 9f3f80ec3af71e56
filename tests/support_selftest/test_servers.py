"""Proof that the loopback test servers behave as the fixtures promise."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from email.message import EmailMessage

import aiosmtplib
import keyring
import keyring.backends.SecretService
import pytest

from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.servers import (
    LOOPBACK,
    free_port,
    port_accepts,
    require_binary,
    wait_for,
    wait_for_port,
)
from tests.support.smtp_sink import SmtpSink
from tests.support.tls import TestCA, untrusted_server_context

# aiosmtplib and smtplib would otherwise call socket.getfqdn() for EHLO: a DNS lookup.
CLIENT_NAME = "client.relaydesk.test"

ScriptedFactory = Callable[..., ScriptedSMTPServer]
SinkFactory = Callable[..., SmtpSink]


def make_message(message_id: str, to: str = "bob@example.test") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "alice@example.test"
    message["To"] = to
    message["Subject"] = "selftest"
    message["Message-ID"] = message_id
    message.set_content("hello over loopback\n.leading dot survives\n")
    return message


async def send(
    server: ScriptedSMTPServer,
    message: EmailMessage,
    recipients: list[str] | None = None,
    **kwargs: object,
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    options: dict[str, object] = {
        "hostname": server.host,
        "port": server.port,
        "local_hostname": CLIENT_NAME,
        "timeout": 5,
        "start_tls": False,
    }
    options.update(kwargs)
    return await aiosmtplib.send(message, recipients=recipients, **options)  # type: ignore[arg-type]


# -- helpers -----------------------------------------------------------------------------


def test_require_binary_finds_sbin_tools() -> None:
    assert require_binary("smtp-sink", "postfix").endswith("/smtp-sink")


def test_require_binary_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="relaydesk-no-such-pkg"):
        require_binary("relaydesk-no-such-binary", "relaydesk-no-such-pkg")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="relaydesk-no-such-pkg"):
        require_binary("relaydesk-no-such-binary", "relaydesk-no-such-pkg")


def test_free_port_and_wait_for_port() -> None:
    port = free_port()
    assert not port_accepts(LOOPBACK, port)
    with socket.create_server((LOOPBACK, port)):
        wait_for_port(LOOPBACK, port, timeout=2)
    with pytest.raises(TimeoutError):
        wait_for_port(LOOPBACK, port, timeout=0.2)


# -- scripted aiosmtpd server ------------------------------------------------------------


@pytest.mark.asyncio
async def test_scripted_server_accepts_and_records(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp()
    before = time.time()
    errors, reply = await send(server, make_message("<one@relaydesk.test>"))
    assert errors == {}
    assert reply.startswith("2.0.0") or "OK" in reply
    [received] = server.messages
    assert received.mail_from == "alice@example.test"
    assert received.rcpt_tos == ("bob@example.test",)
    assert received.message_id == "<one@relaydesk.test>"
    assert b"\r\n.leading dot survives\r\n" in received.data
    assert before <= received.received_at <= time.time()
    assert received.session_id == 1
    assert received.acknowledged
    assert not received.tls
    assert received.auth_login is None
    assert server.message_ids() == ["<one@relaydesk.test>"]
    assert server.connections_opened == 1
    assert server.command_count("MAIL") == 1
    assert server.command_count("RCPT") == 1
    assert server.command_count("QUIT") == 1


@pytest.mark.asyncio
async def test_several_servers_and_sessions(scripted_smtp: ScriptedFactory) -> None:
    first, second = scripted_smtp(), scripted_smtp()
    assert first.port != second.port
    await send(first, make_message("<a@relaydesk.test>"))
    await send(first, make_message("<b@relaydesk.test>"))
    await send(second, make_message("<c@relaydesk.test>"))
    assert first.message_ids() == ["<a@relaydesk.test>", "<b@relaydesk.test>"]
    assert [m.session_id for m in first.messages] == [1, 2]
    assert second.message_ids() == ["<c@relaydesk.test>"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("setting", "reply", "error", "code"),
    [
        ("mail_reply", "421 4.3.2 shutting down", aiosmtplib.SMTPSenderRefused, 421),
        ("mail_reply", "451 4.3.0 try later", aiosmtplib.SMTPSenderRefused, 451),
        ("mail_reply", "550 5.7.1 sender denied", aiosmtplib.SMTPSenderRefused, 550),
        ("rcpt_reply", "550 5.1.1 no such user", aiosmtplib.SMTPRecipientsRefused, 550),
        ("rcpt_reply", "451 4.3.0 try later", aiosmtplib.SMTPRecipientsRefused, 451),
        ("data_reply", "554 5.7.1 rejected", aiosmtplib.SMTPDataError, 554),
        ("data_reply", "451 4.3.0 try later", aiosmtplib.SMTPDataError, 451),
        ("data_reply", "421 4.3.2 shutting down", aiosmtplib.SMTPDataError, 421),
    ],
)
async def test_scripted_reply_overrides(
    scripted_smtp: ScriptedFactory,
    setting: str,
    reply: str,
    error: type[aiosmtplib.SMTPException],
    code: int,
) -> None:
    server = scripted_smtp(**{setting: reply})
    with pytest.raises(error) as raised:
        await send(server, make_message("<refused@relaydesk.test>"))
    if isinstance(raised.value, aiosmtplib.SMTPRecipientsRefused):
        # No top-level code on this one: it lives on each refused recipient.
        [refused] = raised.value.recipients
        assert refused.code == code
        assert refused.message == reply[4:]
    else:
        assert isinstance(raised.value, aiosmtplib.SMTPResponseException)
        assert raised.value.code == code
        assert raised.value.message == reply[4:]
    assert server.messages == []
    if code == 421:
        # 421 closes the channel: the server must have hung up.
        wait_for(lambda: server.open_connections == 0, timeout=2)


@pytest.mark.asyncio
async def test_per_recipient_reply(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp(rcpt_replies={"Gone@Example.test": "550 5.1.1 no such user"})
    errors, _ = await send(
        server,
        make_message("<partial@relaydesk.test>"),
        recipients=["bob@example.test", "gone@example.test"],
    )
    assert errors["gone@example.test"].code == 550
    [received] = server.messages
    assert received.rcpt_tos == ("bob@example.test",)


@pytest.mark.asyncio
async def test_behaviour_changes_while_running(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp()
    smtp = aiosmtplib.SMTP(
        hostname=server.host, port=server.port, local_hostname=CLIENT_NAME, start_tls=False
    )
    async with smtp:
        await smtp.send_message(make_message("<before@relaydesk.test>"))
        server.configure(data_reply="554 5.7.1 rejected")
        with pytest.raises(aiosmtplib.SMTPDataError):
            await smtp.send_message(make_message("<during@relaydesk.test>"))
        await smtp.rset()
        server.reset_behaviour()
        await smtp.send_message(make_message("<after@relaydesk.test>"))
    assert server.message_ids() == ["<before@relaydesk.test>", "<after@relaydesk.test>"]
    assert server.connections_opened == 1
    assert server.command_count("RSET") >= 1
    assert server.behaviour.data_reply is None


@pytest.mark.asyncio
async def test_disconnect_after_data_is_ambiguous(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp(disconnect_after_data=True)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send(server, make_message("<maybe@relaydesk.test>"))
    # The content reached the server before it hung up: the provider may deliver it.
    [received] = server.messages
    assert received.message_id == "<maybe@relaydesk.test>"
    assert not received.acknowledged


@pytest.mark.asyncio
async def test_delay_before_final_reply_times_out(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp(delays={".": 3.0})
    started = time.monotonic()
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await send(server, make_message("<slow@relaydesk.test>"), timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert server.message_ids() == ["<slow@relaydesk.test>"]


@pytest.mark.asyncio
async def test_greeting_reply(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp(greeting_reply="421 4.3.2 too busy")
    with pytest.raises(aiosmtplib.SMTPConnectResponseError) as raised:
        await send(server, make_message("<busy@relaydesk.test>"))
    assert raised.value.code == 421


@pytest.mark.asyncio
async def test_stop_and_start_on_the_same_port(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp()
    port = server.port
    server.stop()
    assert not port_accepts(LOOPBACK, port)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await send(server, make_message("<refused@relaydesk.test>"))
    server.start()
    assert server.port == port
    await send(server, make_message("<back@relaydesk.test>"))
    assert server.message_ids() == ["<back@relaydesk.test>"]


@pytest.mark.asyncio
async def test_stop_drops_open_connections(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp()
    smtp = aiosmtplib.SMTP(
        hostname=server.host, port=server.port, local_hostname=CLIENT_NAME, start_tls=False
    )
    await smtp.connect()
    await smtp.ehlo()
    assert server.open_connections == 1
    server.stop()
    assert server.open_connections == 0
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await smtp.noop()
    smtp.close()


@pytest.mark.asyncio
async def test_starttls_and_auth_trusting_the_test_ca(
    scripted_smtp: ScriptedFactory, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted_smtp(
        tls_context=test_ca.server_context(), require_starttls=True, auth=("alice", "s3cret")
    )
    test_ca.trust(monkeypatch)
    # What the app does: default verification, trust from the environment (SSL_CERT_FILE).
    client_context = ssl.create_default_context()
    for hostname in ("localhost", "127.0.0.1"):
        await send(
            server,
            make_message(f"<tls-{hostname}@relaydesk.test>"),
            hostname=hostname,
            start_tls=True,
            tls_context=client_context,
            username="alice",
            password="s3cret",
        )
    assert [m.tls for m in server.messages] == [True, True]
    assert [m.auth_login for m in server.messages] == ["alice", "alice"]
    assert server.command_count("STARTTLS") == 2
    assert server.command_count("AUTH") == 2

    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as raised:
        await send(
            server,
            make_message("<wrong@relaydesk.test>"),
            hostname="localhost",
            start_tls=True,
            tls_context=ssl.create_default_context(),
            username="alice",
            password="wrong",
        )
    assert raised.value.code == 535


@pytest.mark.asyncio
async def test_auth_and_starttls_are_enforced(
    scripted_smtp: ScriptedFactory, test_ca: TestCA
) -> None:
    server = scripted_smtp(
        tls_context=test_ca.server_context(), require_starttls=True, auth=("alice", "s3cret")
    )
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as raised:
        await send(server, make_message("<plain@relaydesk.test>"))
    assert raised.value.code == 530  # must issue STARTTLS first
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as raised:
        await send(
            server,
            make_message("<noauth@relaydesk.test>"),
            start_tls=True,
            tls_context=test_ca.client_context(),
        )
    assert raised.value.code == 530  # authentication required


@pytest.mark.asyncio
async def test_auth_without_tls_when_allowed(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp(auth=("alice", "s3cret"), auth_require_tls=False)
    await send(
        server, make_message("<plainauth@relaydesk.test>"), username="alice", password="s3cret"
    )
    assert server.messages[0].auth_login == "alice"


@pytest.mark.asyncio
async def test_server_without_auth_does_not_advertise_it(scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp()
    async with aiosmtplib.SMTP(
        hostname=server.host, port=server.port, local_hostname=CLIENT_NAME, start_tls=False
    ) as smtp:
        assert not smtp.supports_extension("auth")


@pytest.mark.asyncio
async def test_implicit_tls(
    scripted_smtp: ScriptedFactory, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = scripted_smtp(
        tls_context=test_ca.server_context(), implicit_tls=True, auth=("alice", "s3cret")
    )
    test_ca.trust(monkeypatch)
    await send(
        server,
        make_message("<smtps@relaydesk.test>"),
        hostname="localhost",
        use_tls=True,
        tls_context=ssl.create_default_context(),
        username="alice",
        password="s3cret",
    )
    [received] = server.messages
    assert received.tls
    assert received.auth_login == "alice"


@pytest.mark.asyncio
async def test_untrusted_certificate_fails_verification(
    scripted_smtp: ScriptedFactory, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    starttls = scripted_smtp(tls_context=untrusted_server_context())
    smtps = scripted_smtp(tls_context=untrusted_server_context(), implicit_tls=True)
    test_ca.trust(monkeypatch)  # trusts our CA, not the stranger that signed these servers
    # aiosmtplib lets the ssl error through unwrapped during STARTTLS...
    with pytest.raises(ssl.SSLCertVerificationError):
        await send(
            starttls,
            make_message("<mitm@relaydesk.test>"),
            hostname="localhost",
            start_tls=True,
            tls_context=ssl.create_default_context(),
        )
    # ...but wraps it in SMTPConnectError for implicit TLS.
    with pytest.raises(aiosmtplib.SMTPConnectError) as raised:
        await send(
            smtps,
            make_message("<mitm@relaydesk.test>"),
            hostname="localhost",
            use_tls=True,
            tls_context=ssl.create_default_context(),
        )
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)
    assert starttls.messages == smtps.messages == []


def test_ssl_cert_file_reaches_subprocesses(
    scripted_smtp: ScriptedFactory, test_ca: TestCA
) -> None:
    server = scripted_smtp(tls_context=test_ca.server_context())
    script = textwrap.dedent(
        """
        import smtplib, ssl, sys
        s = smtplib.SMTP("localhost", int(sys.argv[1]), local_hostname="sub.relaydesk.test")
        s.starttls(context=ssl.create_default_context())
        content = b"Message-ID: <sub@relaydesk.test>\\r\\n\\r\\nhi\\r\\n"
        s.sendmail("a@example.test", ["b@example.test"], content)
        s.quit()
        """
    )
    env = {**os.environ, **test_ca.client_env()}
    subprocess.run(
        [sys.executable, "-c", script, str(server.port)], env=env, check=True, timeout=30
    )
    assert server.message_ids() == ["<sub@relaydesk.test>"]
    assert server.messages[0].tls


# -- Postfix smtp-sink -------------------------------------------------------------------


def sink_transaction(sink: SmtpSink) -> list[tuple[str, int | str]]:
    """Run one transaction step by step until a step fails.

    Returns (step, reply code), ending with ("after", "disconnected") when the sink hung up.
    """
    steps: list[tuple[str, int | str]] = []
    try:
        client = smtplib.SMTP(sink.host, sink.port, local_hostname=CLIENT_NAME, timeout=5)
    except smtplib.SMTPConnectError as error:
        return [("connect", error.smtp_code)]
    except smtplib.SMTPServerDisconnected:
        return [("connect", "disconnected")]
    steps.append(("connect", 220))
    commands: list[tuple[str, Callable[[], tuple[int, bytes]], int]] = [
        ("ehlo", client.ehlo, 250),
        ("mail", lambda: client.mail("alice@example.test"), 250),
        ("rcpt", lambda: client.rcpt("bob@example.test"), 250),
        ("data", lambda: client.docmd("DATA"), 354),
        (".", lambda: send_content(client), 250),
    ]
    try:
        for step, run, wanted in commands:
            code = run()[0]
            steps.append((step, code))
            if code != wanted:
                break
        client.quit()
    except smtplib.SMTPServerDisconnected:
        steps.append(("after", "disconnected"))
    finally:
        client.close()
    return steps


def send_content(client: smtplib.SMTP) -> tuple[int, bytes]:
    client.send(b"Message-ID: <sink@relaydesk.test>\r\nSubject: sink\r\n\r\nhi\r\n.\r\n")
    return client.getreply()


def test_smtp_sink_accepts_mail_and_dumps_it(smtp_sink: SinkFactory) -> None:
    sink = smtp_sink(dump=True)
    assert sink_transaction(sink) == [
        ("connect", 220),
        ("ehlo", 250),
        ("mail", 250),
        ("rcpt", 250),
        ("data", 354),
        (".", 250),
    ]
    assert wait_for(sink.message_ids) == ["<sink@relaydesk.test>"]
    [dumped] = sink.dumps()
    assert dumped.mail_from == "alice@example.test"
    assert dumped.rcpt_tos == ("bob@example.test",)


@pytest.mark.parametrize(
    ("flags", "expected_tail"),
    [
        ({"hard_reject": ["mail"]}, [("mail", 500)]),
        ({"hard_reject": ["rcpt"]}, [("mail", 250), ("rcpt", 500)]),
        ({"hard_reject": ["."]}, [("data", 354), (".", 500)]),
        ({"soft_reject": ["rcpt"]}, [("mail", 250), ("rcpt", 450)]),
        ({"soft_reject": ["."]}, [("data", 354), (".", 450)]),
        ({"hard_reject": ["."], "hard_reply": "554 5.7.1 rejected"}, [(".", 554)]),
        ({"soft_reject": ["mail"], "soft_reply": "451 4.3.0 try later"}, [("mail", 451)]),
        ({"disconnect": ["."]}, [("data", 354), ("after", "disconnected")]),
        ({"disconnect": ["data"]}, [("rcpt", 250), ("after", "disconnected")]),
        ({"shutdown_421": ["mail"]}, [("mail", 421), ("after", "disconnected")]),
        ({"shutdown_421": ["."]}, [(".", 421), ("after", "disconnected")]),
        ({"shutdown_421": ["connect"]}, [("connect", 421)]),
        ({"hard_reject": ["connect"]}, [("connect", 500)]),
    ],
)
def test_smtp_sink_fault_flags(
    smtp_sink: SinkFactory, flags: dict[str, object], expected_tail: list[tuple[str, object]]
) -> None:
    steps = sink_transaction(smtp_sink(**flags))
    assert steps[-len(expected_tail) :] == expected_tail, steps


def test_smtp_sink_disconnect_after_dot_still_dumps(smtp_sink: SinkFactory) -> None:
    sink = smtp_sink(disconnect=["."], dump=True)
    assert sink_transaction(sink)[-1] == ("after", "disconnected")
    assert wait_for(sink.message_ids) == ["<sink@relaydesk.test>"]


def test_smtp_sink_delay(smtp_sink: SinkFactory) -> None:
    sink = smtp_sink(delays={"mail": 1})
    client = smtplib.SMTP(sink.host, sink.port, local_hostname=CLIENT_NAME, timeout=5)
    client.ehlo()
    started = time.monotonic()
    assert client.mail("alice@example.test")[0] == 250
    assert time.monotonic() - started >= 0.9
    client.quit()


def test_smtp_sink_restart_on_the_same_port(smtp_sink: SinkFactory) -> None:
    sink = smtp_sink()
    port = sink.port
    sink.stop()
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(LOOPBACK, port, local_hostname=CLIENT_NAME, timeout=5)
    sink.start()
    assert sink.port == port
    assert sink_transaction(sink)[-1] == (".", 250)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root drops privileges to nobody")
def test_smtp_sink_refuses_dump_dir_nobody_cannot_reach(tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises(ValueError, match="not searchable"):
        SmtpSink(dump_dir=tmp_path / "dumps")  # type: ignore[operator]


# -- private Secret Service --------------------------------------------------------------

KEYRING_SERVICE = "relaydesk-selftest"


def test_keyring_default_backend_round_trip(secret_service: dict[str, str]) -> None:
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == secret_service["DBUS_SESSION_BUS_ADDRESS"]
    # With keyrings.alt installed (a test extra) keyring returns a chainer; the private
    # Secret Service must be its best backend.
    chosen = keyring.get_keyring()
    best = getattr(chosen, "backends", [chosen])[0]
    assert isinstance(best, keyring.backends.SecretService.Keyring)
    keyring.set_password(KEYRING_SERVICE, "alice", "s3cret")
    assert keyring.get_password(KEYRING_SERVICE, "alice") == "s3cret"
    keyring.delete_password(KEYRING_SERVICE, "alice")
    assert keyring.get_password(KEYRING_SERVICE, "alice") is None


def test_keyring_explicit_backend_round_trip(secret_service: dict[str, str]) -> None:
    backend = keyring.backends.SecretService.Keyring()
    backend.set_password(KEYRING_SERVICE, "bob", "hunter2")
    assert backend.get_password(KEYRING_SERVICE, "bob") == "hunter2"
    backend.delete_password(KEYRING_SERVICE, "bob")
    assert backend.get_password(KEYRING_SERVICE, "bob") is None


def test_keyring_shared_with_subprocess(secret_service: dict[str, str]) -> None:
    keyring.set_password(KEYRING_SERVICE, "carol", "from-parent")
    script = textwrap.dedent(
        f"""
        import keyring
        chosen = keyring.get_keyring()
        backend = type(getattr(chosen, "backends", [chosen])[0]).__module__
        print(backend, keyring.get_password({KEYRING_SERVICE!r}, "carol"))
        keyring.delete_password({KEYRING_SERVICE!r}, "carol")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **secret_service},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["keyring.backends.SecretService", "from-parent"]
    assert keyring.get_password(KEYRING_SERVICE, "carol") is None
