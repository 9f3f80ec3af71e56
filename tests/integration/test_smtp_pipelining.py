"""Pipelined transactions (RFC 2920) decide exactly as one-command-at-a-time ones do.

The same scripted aiosmtpd server is run once offering PIPELINING and once not; for every
row of the outcome table the connection must report the same outcome, phase, reply code
and recipients, leave the server with the same messages, and stay usable (or not) alike.
Postfix's smtp-sink, which offers PIPELINING, covers the same path in
test_smtp_sink_faults.py; the wire's own reply parsing is tested in test_smtp_wire.py.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from desktop_app.core.delivery.smtp_connection import SmtpConnection, TransactionResult
from desktop_app.core.models import OutcomeClass, ProviderConfig, Security, SmtpPhase
from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.servers import LOOPBACK
from tests.support.tls import TestCA

ScriptedFactory = Callable[..., ScriptedSMTPServer]

SENDER = "campaigns@example.test"
RECIPIENTS = ("ann@example.test", "bob@example.test", "gone@example.test", "later@example.test")
RAW = (
    b"From: campaigns@example.test\r\nTo: ann@example.test\r\nSubject: hello\r\n"
    b"Message-ID: <pipelining-1@example.test>\r\n\r\n.a line that starts with a dot\r\nbye\r\n"
)

SCENARIOS: dict[str, dict[str, Any]] = {
    "delivered": {},
    "MAIL 451": {"mail_reply": "451 4.3.0 try again later"},
    "MAIL 550": {"mail_reply": "550 5.7.1 sender not allowed"},
    "MAIL 421": {"mail_reply": "421 4.3.2 shutting down"},
    "one RCPT 550": {"rcpt_replies": {"gone@example.test": "550 5.1.1 no such user"}},
    "RCPT 550 and 451": {
        "rcpt_replies": {
            "gone@example.test": "550 5.1.1 no such user",
            "later@example.test": "451 4.2.0 greylisted",
        }
    },
    "every RCPT 550": {"rcpt_reply": "550 5.1.1 no such user"},
    "every RCPT 451": {"rcpt_reply": "451 4.2.0 greylisted"},
    "RCPT 421": {"rcpt_replies": {"bob@example.test": "421 4.3.2 closing"}},
    "content 554": {"data_reply": "554 5.7.1 looks like spam"},
    "after DATA 451": {"data_reply": "451 4.3.0 queue full"},
    "lost after the final dot": {"disconnect_after_data": True},
}


@dataclass(frozen=True)
class Seen:
    """What one transaction looked like from both ends."""

    outcome: OutcomeClass
    phase: SmtpPhase
    reply_code: int | None
    delivered_to: tuple[str, ...]
    refused_permanently: tuple[str, ...]
    refused_transiently: tuple[str, ...]
    still_connected: bool
    next_one_delivered: bool | None  # None: the connection was not usable any more
    server_took: tuple[tuple[tuple[str, ...], bytes], ...]  # each message the server recorded


def summary(result: TransactionResult) -> tuple[Any, ...]:
    return (
        result.outcome,
        result.phase,
        result.reply_code,
        result.delivered_to,
        tuple(address for address, _reply in result.refused_permanently),
        result.refused_transiently,
    )


async def transact(server: ScriptedSMTPServer, *, pipelining: bool, **behaviour: Any) -> Seen:
    server.reset_behaviour()
    server.clear_records()
    server.configure(pipelining=pipelining, **behaviour)
    connection = SmtpConnection(
        ProviderConfig(name="scripted", host=LOOPBACK, port=server.port, security=Security.NONE),
        None,
        timeout=5.0,
        helo_name="client.example.test",
    )
    await connection.open()
    assert connection.pipelining is pipelining
    try:
        result = await connection.send(SENDER, RECIPIENTS, RAW)
        still_connected = connection.is_connected
        next_one: bool | None = None
        if still_connected:
            server.reset_behaviour()  # a healthy server for the follow-up
            server.configure(pipelining=pipelining)
            follow_up = await connection.send(SENDER, ("ann@example.test",), RAW)
            next_one = follow_up.outcome is OutcomeClass.DELIVERED
    finally:
        await connection.close()
    took = tuple((message.rcpt_tos, message.data) for message in server.messages)
    outcome, phase, code, delivered, permanent, transient = summary(result)
    return Seen(
        outcome, phase, code, delivered, permanent, transient, still_connected, next_one, took
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_pipelined_and_sequential_transactions_decide_alike(
    scripted_smtp: ScriptedFactory, scenario: str
) -> None:
    server = scripted_smtp()

    sequential = await transact(server, pipelining=False, **SCENARIOS[scenario])
    pipelined = await transact(server, pipelining=True, **SCENARIOS[scenario])

    assert pipelined == sequential


REFUSED_THEN_LOST = {
    "DATA never answered": {"drop_instead_of": frozenset({"DATA"})},
    # A server that says 354 with nobody to deliver to: the client ends the empty message
    # with "." (RFC 2920 3.1), and the connection is lost there.
    "354, then '.' never answered": {
        "data_command_reply": "354 go ahead",
        "drop_instead_of": frozenset({"."}),
    },
}


@pytest.mark.asyncio
@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("lost", list(REFUSED_THEN_LOST))
async def test_recipients_refused_before_a_lost_connection_are_refused_not_a_provider_failure(
    scripted_smtp: ScriptedFactory, pipelining: bool, lost: str
) -> None:
    # Found by the chaos benchmark: 550 to the only RCPT, then the server dropped the
    # connection where the pipelined DATA (or the "." after its 354) should be answered.
    # That was a provider failure at DATA, so the engine tried the 550'd recipient on the
    # next provider (a wrong failover).
    behaviour = {"rcpt_reply": "550 5.1.1 no such user", **REFUSED_THEN_LOST[lost]}
    server = scripted_smtp()
    seen = await transact(server, pipelining=pipelining, **behaviour)
    assert (seen.outcome, seen.phase, seen.reply_code) == (
        OutcomeClass.RECIPIENT_PERMANENT,
        SmtpPhase.RCPT,
        550,
    )
    assert seen.refused_permanently == RECIPIENTS
    # Nothing taken in but the follow-up message, when the connection was still usable.
    assert len(seen.server_took) == (1 if seen.still_connected else 0)


@pytest.mark.asyncio
async def test_the_table_rows_come_out_as_documented_when_pipelined(
    scripted_smtp: ScriptedFactory,
) -> None:
    """Spot checks that the equality above is not two equally wrong answers."""
    server = scripted_smtp()

    delivered = await transact(server, pipelining=True)
    refused_sender = await transact(server, pipelining=True, **SCENARIOS["MAIL 550"])
    closing = await transact(server, pipelining=True, **SCENARIOS["RCPT 421"])
    partly = await transact(server, pipelining=True, **SCENARIOS["RCPT 550 and 451"])
    lost = await transact(server, pipelining=True, **SCENARIOS["lost after the final dot"])

    assert delivered.outcome is OutcomeClass.DELIVERED
    assert delivered.server_took[0] == (RECIPIENTS, RAW)
    assert (refused_sender.outcome, refused_sender.phase, refused_sender.reply_code) == (
        OutcomeClass.PROVIDER_FAILURE,
        SmtpPhase.MAIL,
        550,
    )
    assert refused_sender.next_one_delivered is True  # RSET left the session clean
    assert (closing.outcome, closing.phase, closing.reply_code) == (
        OutcomeClass.PROVIDER_FAILURE,
        SmtpPhase.RCPT,
        421,
    )
    assert closing.still_connected is False
    assert closing.server_took == ()
    assert partly.outcome is OutcomeClass.DELIVERED
    assert partly.delivered_to == ("ann@example.test", "bob@example.test")
    assert partly.refused_permanently == ("gone@example.test",)
    assert partly.refused_transiently == ("later@example.test",)
    assert (lost.outcome, lost.phase) == (OutcomeClass.AMBIGUOUS, SmtpPhase.DATA_END)


@pytest.mark.asyncio
@pytest.mark.parametrize("security", [Security.TLS, Security.STARTTLS])
async def test_pipelining_over_tls(
    scripted_smtp: ScriptedFactory,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
    security: Security,
) -> None:
    """The wire takes over the TLS transport aiosmtplib negotiated, not the raw socket."""
    test_ca.trust(monkeypatch)
    context: ssl.SSLContext = test_ca.server_context()
    server = scripted_smtp(implicit_tls=security is Security.TLS, tls_context=context)
    server.configure(pipelining=True)
    connection = SmtpConnection(
        ProviderConfig(name="tls", host=LOOPBACK, port=server.port, security=security),
        None,
        timeout=5.0,
        helo_name="client.example.test",
    )
    await connection.open()
    try:
        results = [await connection.send(SENDER, RECIPIENTS[:2], RAW) for _ in range(3)]
    finally:
        await connection.close()

    assert connection.pipelining
    assert [result.outcome for result in results] == [OutcomeClass.DELIVERED] * 3
    assert len(server.messages) == 3
    assert all(message.tls for message in server.messages)
    assert server.command_count("QUIT") == 1
