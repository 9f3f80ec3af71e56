"""TLS and AUTH against real servers: STARTTLS is required when configured, certificates
are verified, and a provider that fails them is failed over, never talked to in clear.

Servers are aiosmtpd (``ScriptedSMTPServer``) with certificates from the session's test CA;
``test_ca.trust(monkeypatch)`` makes ``ssl.create_default_context()`` (what the app uses)
trust that CA and nothing else. Provider passwords go through the real keyring (the private
Secret Service of the ``secret_service`` fixture) when the engine needs them; the probe
tests pass the password directly, as ``probe_provider`` allows.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest

from desktop_app.core.events import FailoverHappened
from desktop_app.core.health.probe import probe_provider
from desktop_app.core.models import ProviderConfig, Security, SmtpPhase
from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.servers import LOOPBACK, free_port
from tests.support.tls import TestCA, untrusted_server_context

ScriptedFactory = Callable[..., ScriptedSMTPServer]

USERNAME = "relay-user"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def trusted_ca(test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> TestCA:
    """The test CA, trusted (alone) by every default SSL context made during the test."""
    test_ca.trust(monkeypatch)
    return test_ca


def provider(name: str, port: int, security: Security, **fields: Any) -> ProviderConfig:
    return ProviderConfig(name=name, host=LOOPBACK, port=port, security=security, **fields)


def wrong_name_context(test_ca: TestCA) -> ssl.SSLContext:
    """A server context with a certificate from the trusted CA, for another host name."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.ca.issue_cert("mail.elsewhere.example").configure_cert(context)
    return context


# -- STARTTLS required but not offered -----------------------------------------------------


@pytest.mark.asyncio
async def test_starttls_not_offered_is_a_provider_failure_before_any_auth_or_mail(
    scripted_smtp: ScriptedFactory,
    delivery: Any,
    secret_service: dict[str, str],
    trusted_ca: TestCA,
) -> None:
    # No TLS context: no STARTTLS. AUTH is offered (and would succeed) in clear text.
    cleartext = scripted_smtp(auth=(USERNAME, PASSWORD), auth_require_tls=False)
    backup = scripted_smtp()
    delivery.add_provider(
        "primary",
        cleartext.port,
        priority=0,
        security=Security.STARTTLS,
        username=USERNAME,
        password=PASSWORD,
    )
    delivery.add_provider("backup", backup.port, priority=1)
    queued = delivery.queue(3)

    await delivery.run_until_idle()

    assert sorted(backup.message_ids()) == sorted(queued)
    assert cleartext.command_count("EHLO") >= 1  # it was reached...
    assert cleartext.command_count("AUTH") == 0  # ...and given neither the password
    assert cleartext.command_count("MAIL") == 0  # nor any mail
    assert cleartext.messages == []
    attempts = delivery.attempts_through("primary")
    assert attempts
    for attempt in attempts:
        assert (attempt["outcome"], attempt["phase"]) == ("provider_failure", "starttls")
        assert "does not offer STARTTLS" in attempt["detail"]
    assert all(f.from_provider == "primary" for f in delivery.events.of(FailoverHappened))

    # The probe says the same, and also stops before AUTH.
    result = await probe_provider(
        provider("primary", cleartext.port, Security.STARTTLS, username=USERNAME), PASSWORD
    )
    assert not result.ok
    assert result.failed_phase is SmtpPhase.STARTTLS
    assert "does not offer STARTTLS" in result.detail
    assert cleartext.command_count("AUTH") == 0

    # Control: the same server does take these credentials in clear from a provider that
    # explicitly allows it, so the zero AUTH above is the client's refusal.
    allowed = await probe_provider(
        provider("clear", cleartext.port, Security.NONE, username=USERNAME), PASSWORD
    )
    assert allowed.ok, allowed.detail
    assert cleartext.command_count("AUTH") == 1


# -- working TLS ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_starttls_with_auth_delivers_over_tls(
    scripted_smtp: ScriptedFactory,
    delivery: Any,
    secret_service: dict[str, str],
    trusted_ca: TestCA,
) -> None:
    # AUTH is offered only after STARTTLS and required before MAIL.
    server = scripted_smtp(tls_context=trusted_ca.server_context(), auth=(USERNAME, PASSWORD))
    delivery.add_provider(
        "tls-provider",
        server.port,
        security=Security.STARTTLS,
        username=USERNAME,
        password=PASSWORD,
        max_connections=1,
    )
    queued = delivery.queue(3)

    await delivery.run_until_idle()

    assert delivery.ws.outbox.counts().sent == 3
    assert sorted(server.message_ids()) == sorted(queued)
    for message in server.messages:
        assert message.tls
        assert message.auth_login == USERNAME
    assert server.command_count("STARTTLS") == server.connections_opened == 1
    assert server.command_count("AUTH") == 1


@pytest.mark.asyncio
async def test_implicit_tls_provider_delivers(
    scripted_smtp: ScriptedFactory,
    delivery: Any,
    secret_service: dict[str, str],
    trusted_ca: TestCA,
) -> None:
    server = scripted_smtp(
        implicit_tls=True, tls_context=trusted_ca.server_context(), auth=(USERNAME, PASSWORD)
    )
    delivery.add_provider(
        "smtps", server.port, security=Security.TLS, username=USERNAME, password=PASSWORD
    )
    queued = delivery.queue(2)

    await delivery.run_until_idle()

    assert sorted(server.message_ids()) == sorted(queued)
    assert all(m.tls and m.auth_login == USERNAME for m in server.messages)
    assert server.command_count("STARTTLS") == 0


@pytest.mark.asyncio
async def test_refused_password_is_a_provider_failure_and_mail_fails_over(
    scripted_smtp: ScriptedFactory,
    delivery: Any,
    secret_service: dict[str, str],
    trusted_ca: TestCA,
) -> None:
    server = scripted_smtp(tls_context=trusted_ca.server_context(), auth=(USERNAME, PASSWORD))
    backup = scripted_smtp()
    delivery.add_provider(
        "primary",
        server.port,
        priority=0,
        security=Security.STARTTLS,
        username=USERNAME,
        password="an old password",
    )
    delivery.add_provider("backup", backup.port, priority=1)
    queued = delivery.queue(4)

    await delivery.run_until_idle()

    assert sorted(backup.message_ids()) == sorted(queued)
    assert server.messages == [] and server.command_count("MAIL") == 0
    attempts = delivery.attempts_through("primary")
    assert attempts
    for attempt in attempts:
        assert (attempt["outcome"], attempt["phase"], attempt["reply_code"]) == (
            "provider_failure",
            "auth",
            535,
        )
        assert "an old password" not in (attempt["detail"] or "")


# -- certificates that must not be accepted -------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("security", "phase"),
    [(Security.STARTTLS, "starttls"), (Security.TLS, "connect")],
    ids=["starttls", "implicit-tls"],
)
@pytest.mark.parametrize("certificate", ["untrusted-ca", "wrong-host-name"])
async def test_bad_certificate_is_a_provider_failure_and_mail_fails_over(
    scripted_smtp: ScriptedFactory,
    delivery: Any,
    trusted_ca: TestCA,
    security: Security,
    phase: str,
    certificate: str,
) -> None:
    context = (
        untrusted_server_context()
        if certificate == "untrusted-ca"
        else wrong_name_context(trusted_ca)
    )
    bad = scripted_smtp(tls_context=context, implicit_tls=security is Security.TLS)
    backup = scripted_smtp()
    delivery.add_provider("primary", bad.port, priority=0, security=security)
    delivery.add_provider("backup", backup.port, priority=1)
    queued = delivery.queue(3)

    await delivery.run_until_idle()

    assert sorted(backup.message_ids()) == sorted(queued)
    assert bad.messages == []
    assert bad.command_count("MAIL") == 0
    attempts = delivery.attempts_through("primary")
    assert attempts
    for attempt in attempts:
        assert (attempt["outcome"], attempt["phase"]) == ("provider_failure", phase)
        assert "certificate" in attempt["detail"].lower(), attempt["detail"]
    assert delivery.events.of(FailoverHappened)


# -- the connection test ("Test connection" / `relaydesk provider test`) --------------------


@pytest.mark.asyncio
async def test_probe_reports_latency_on_success(
    scripted_smtp: ScriptedFactory, trusted_ca: TestCA
) -> None:
    server = scripted_smtp(tls_context=trusted_ca.server_context(), auth=(USERNAME, PASSWORD))
    config = provider("probe", server.port, Security.STARTTLS, username=USERNAME)

    result = await probe_provider(config, PASSWORD, timeout=5.0)

    assert result.ok, result.detail
    assert result.latency_ms > 0
    assert {"connect", "ehlo", "starttls", "auth", "noop"} <= set(result.phases_ms)
    assert result.failed_phase is None
    assert server.command_count("AUTH") == 1
    assert server.command_count("NOOP") == 1
    assert server.command_count("MAIL") == 0  # a probe never sends mail
    assert server.command_count("QUIT") == 1


@pytest.mark.asyncio
async def test_probe_reports_a_refused_password(
    scripted_smtp: ScriptedFactory, trusted_ca: TestCA
) -> None:
    server = scripted_smtp(tls_context=trusted_ca.server_context(), auth=(USERNAME, PASSWORD))
    config = provider("probe", server.port, Security.STARTTLS, username=USERNAME)

    result = await probe_provider(config, "not the password", timeout=5.0)

    assert not result.ok
    assert result.failed_phase is SmtpPhase.AUTH
    assert result.reply_code == 535
    assert result.detail.startswith("535")
    assert "not the password" not in result.summary()


@pytest.mark.asyncio
async def test_probe_reports_a_closed_port() -> None:
    config = provider("probe", free_port(), Security.NONE)

    result = await probe_provider(config, None, timeout=5.0)

    assert not result.ok
    assert result.failed_phase is SmtpPhase.CONNECT
    assert result.reply_code is None
    assert result.detail == "connection refused"


@pytest.mark.asyncio
async def test_workspace_test_provider_uses_the_keyring_password(
    scripted_smtp: ScriptedFactory,
    delivery: Any,
    secret_service: dict[str, str],
    trusted_ca: TestCA,
) -> None:
    server = scripted_smtp(tls_context=trusted_ca.server_context(), auth=(USERNAME, PASSWORD))
    delivery.add_provider(
        "good", server.port, security=Security.STARTTLS, username=USERNAME, password=PASSWORD
    )
    delivery.add_provider(
        "stale", server.port, security=Security.STARTTLS, username=USERNAME, password="old one"
    )
    delivery.add_provider("gone", free_port(), security=Security.NONE)

    good = await delivery.ws.test_provider("good", timeout=5.0)
    stale = await delivery.ws.test_provider("stale", timeout=5.0)
    gone = await delivery.ws.test_provider("gone", timeout=5.0)

    assert good.ok and good.latency_ms > 0, good.detail
    assert good.summary().startswith("good: OK in ")
    assert (stale.ok, stale.failed_phase, stale.reply_code) == (False, SmtpPhase.AUTH, 535)
    assert (gone.ok, gone.failed_phase, gone.detail) == (
        False,
        SmtpPhase.CONNECT,
        "connection refused",
    )
    assert server.command_count("MAIL") == 0
