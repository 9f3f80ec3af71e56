"""Bounces and unsubscribe requests read over IMAP from a real Dovecot on loopback.

A campaign goes out through a real SMTP server; the tests then put bounces (built in the
formats real MTAs write, tests/support/bounce_samples.py) into a Dovecot mailbox and check
classification, correlation to the outbox, suppression, idempotency, IDLE and TLS.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop_app.core.bounces.imap_session import MailboxError
from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.bounces.processor import MailboxReport
from desktop_app.core.campaigns.message import campaign_message_id
from desktop_app.core.events import BouncesRecorded, Event
from desktop_app.core.models import ProviderConfig, Security
from desktop_app.core.service import DeliveryService
from desktop_app.core.storage.campaigns import Campaign, CampaignDraft
from desktop_app.core.workspace import Workspace
from tests.support import bounce_samples as samples
from tests.support.dovecot import DovecotServer
from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.tls import TestCA

PASSWORD = "bounce-box-secret-4711"
FROM = "news@example.com"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def workspace(data_dir: Path, secret_service: dict[str, str]) -> Iterator[Workspace]:
    ws = Workspace.open(data_dir)
    yield ws
    ws.close()


@pytest.fixture
def imap(dovecot: Callable[..., DovecotServer]) -> DovecotServer:
    return dovecot(users={"bounces": PASSWORD, "unsubscribe": PASSWORD})


def sent_campaign(
    ws: Workspace, server: ScriptedSMTPServer, tmp_path: Path, count: int = 12
) -> Campaign:
    ws.add_provider(
        ProviderConfig(name="primary", host="127.0.0.1", port=server.port, security=Security.NONE)
    )
    rows = ["email,name"] + [f"r{i}@example.net,Reader {i}" for i in range(count)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ws.create_list("readers")
    ws.import_list("readers", tmp_path / "list.csv")
    campaign = ws.campaigns.create(
        CampaignDraft(
            name="spring",
            list_name="readers",
            from_address=FROM,
            subject="Hi {{ name }}",
            text="Hello {{ name }}",
            unsubscribe_mailto="unsubscribe@example.com",
        )
    )
    ws.campaigns.send(campaign.name)
    asyncio.run(
        asyncio.wait_for(DeliveryService(ws, Sink(), probe_on_start=False).run(until_idle=True), 60)
    )
    assert ws.campaigns.report(campaign.name).counts == {"sent": count}
    return ws.campaigns.get(campaign.name)


def message_id(campaign: Campaign, index: int) -> str:
    return campaign_message_id(campaign.uid, f"r{index}@example.net", FROM)


def mailbox(
    imap: DovecotServer, role: MailboxRole = MailboxRole.BOUNCES, **changes: Any
) -> MailboxConfig:
    values: dict[str, Any] = {
        "name": role.value,
        "role": role,
        "host": "127.0.0.1",
        "port": imap.port,
        "security": Security.STARTTLS,
        "username": role.value,
        "processed_folder": "Processed",
    }
    values.update(changes)
    return MailboxConfig(**values)


def only_report(results: list[MailboxReport | MailboxError]) -> MailboxReport:
    (result,) = results
    assert isinstance(result, MailboxReport), result
    return result


# -- bounces ---------------------------------------------------------------------------------


def test_bounces_in_every_format_suppress_correlate_and_move(
    workspace: Workspace,
    imap: DovecotServer,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    tmp_path: Path,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_ca.trust(monkeypatch)
    ws = workspace
    campaign = sent_campaign(ws, scripted_smtp(), tmp_path)
    for index, name in enumerate(sorted(samples.HARD_FORMATS)):  # r0..r3: hard
        imap.append(
            "bounces",
            "INBOX",
            samples.HARD_FORMATS[name](f"r{index}@example.net", message_id(campaign, index)),
        )
    for _ in range(3):  # r4: soft, three times (three different DSNs)
        imap.append("bounces", "INBOX", samples.delayed("r4@example.net", message_id(campaign, 4)))
    imap.append("bounces", "INBOX", samples.delayed("r5@example.net", message_id(campaign, 5)))
    imap.append("bounces", "INBOX", samples.out_of_office("r6@example.net"))
    imap.append("bounces", "INBOX", samples.ordinary("someone@example.org"))
    ws.configure_mailbox(mailbox(imap), PASSWORD)

    report = only_report(ws.check_mailboxes())

    assert sorted(report.applied.hard) == [f"r{i}@example.net" for i in range(4)]
    assert sorted(report.applied.soft) == ["r4@example.net"] * 3 + ["r5@example.net"]
    assert sorted(report.applied.suppressed) == sorted(
        [f"r{i}@example.net" for i in range(4)] + ["r4@example.net"]
    )
    assert sorted(subject for _uid, _from, subject in report.unrecognised) == [
        "Automatic reply: Spring newsletter",
        "Question about my order",
    ]
    # Suppressed with the reason; subscribers marked; the outbox rows of hard bounces too.
    suppressed = {s.email_key: s.reason for s in ws.suppressions()}
    assert suppressed == {f"r{i}@example.net": "bounced" for i in range(5)}
    statuses = {s.email: s.status for s in ws.lists.iter_subscribers("readers")}
    assert [statuses[f"r{i}@example.net"] for i in range(7)] == ["bounced"] * 5 + ["active"] * 2
    counts = ws.campaigns.report(campaign.name).counts
    assert counts == {"sent": 8, "bounced": 4}
    assert ws.bounces.campaign_counts(campaign.id) == {"hard": 4, "soft": 4}
    document = ws.campaigns.report(campaign.name).as_json()
    assert document["bounces"] == {"hard": 4, "soft": 4}
    assert document["counts"]["bounced"] == 4
    # Recognised ones moved, unrecognised ones left in place; nothing deleted.
    assert len(imap.fetch_all("bounces", "INBOX")) == 2
    assert len(imap.fetch_all("bounces", "Processed")) == 8
    assert {u.subject for u in ws.bounces.unrecognised()} == {
        "Automatic reply: Spring newsletter",
        "Question about my order",
    }


def test_reading_twice_counts_once(
    workspace: Workspace,
    imap: DovecotServer,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    tmp_path: Path,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_ca.trust(monkeypatch)
    ws = workspace
    campaign = sent_campaign(ws, scripted_smtp(), tmp_path, count=3)
    bounce = samples.delayed("r1@example.net", message_id(campaign, 1))
    imap.append("bounces", "INBOX", bounce)
    config = ws.configure_mailbox(mailbox(imap), PASSWORD)
    assert only_report(ws.check_mailboxes()).applied.soft == ["r1@example.net"]

    # The same bounce delivered again, and the mailbox read from the start again (as after
    # a lost position or a new UIDVALIDITY): nothing is counted twice.
    imap.append("bounces", "INBOX", bounce)
    assert config.id is not None
    ws.mailboxes.record_position(config.id, 1, 0)
    second = only_report(ws.check_mailboxes())
    assert second.applied.soft == [] and second.applied.repeated == 1
    assert only_report(ws.check_mailboxes()).read == 0  # and a third pass reads nothing new
    assert ws.bounces.campaign_counts(campaign.id) == {"soft": 1}
    assert ws.suppressions() == []  # one soft bounce of three allowed


def test_an_unsubscribe_request_by_mail_suppresses_its_sender(
    workspace: Workspace,
    imap: DovecotServer,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    tmp_path: Path,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_ca.trust(monkeypatch)
    ws = workspace
    campaign = sent_campaign(ws, scripted_smtp(), tmp_path, count=3)
    imap.append(
        "unsubscribe",
        "INBOX",
        samples.unsubscribe_request("Reader 2 <R2@example.net>", campaign.uid),
    )
    imap.append("unsubscribe", "INBOX", samples.ordinary("r0@example.net", subject="Thanks!"))
    ws.configure_mailbox(mailbox(imap, MailboxRole.UNSUBSCRIBE), PASSWORD)

    report = only_report(ws.check_mailboxes())

    assert report.applied.unsubscribed == ["r2@example.net"]
    assert {s.email_key: s.reason for s in ws.suppressions()} == {"r2@example.net": "unsubscribed"}
    statuses = {s.email: s.status for s in ws.lists.iter_subscribers("readers")}
    assert statuses["r2@example.net"] == "unsubscribed"
    assert ws.bounces.campaign_counts(campaign.id) == {"unsubscribe": 1}
    assert ws.campaigns.report(campaign.name).as_json()["unsubscribed"] == 1
    assert len(imap.fetch_all("unsubscribe", "INBOX")) == 1  # the thank-you stays for a person


def test_a_refusal_at_rcpt_is_a_hard_bounce(
    workspace: Workspace, scripted_smtp: Callable[..., ScriptedSMTPServer], tmp_path: Path
) -> None:
    ws = workspace
    server = scripted_smtp(rcpt_replies={"r1@example.net": "550 5.1.1 no such user"})
    ws.add_provider(
        ProviderConfig(name="primary", host="127.0.0.1", port=server.port, security=Security.NONE)
    )
    (tmp_path / "l.csv").write_text("email\nr0@example.net\nr1@example.net\n", encoding="utf-8")
    ws.create_list("readers")
    ws.import_list("readers", tmp_path / "l.csv")
    ws.campaigns.create(
        CampaignDraft(name="c", list_name="readers", from_address=FROM, subject="S", text="T")
    )
    ws.campaigns.send("c")
    sink = Sink()
    asyncio.run(DeliveryService(ws, sink, probe_on_start=False).run(until_idle=True))

    assert {s.email_key: s.reason for s in ws.suppressions()} == {"r1@example.net": "bounced"}
    statuses = {s.email: s.status for s in ws.lists.iter_subscribers("readers")}
    assert statuses == {"r0@example.net": "active", "r1@example.net": "bounced"}
    recorded = [e for e in sink.events if isinstance(e, BouncesRecorded)]
    assert [(e.hard, e.suppressed) for e in recorded] == [(1, 1)]


# -- watching --------------------------------------------------------------------------------


def test_idle_sees_a_bounce_within_seconds(
    workspace: Workspace,
    imap: DovecotServer,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    tmp_path: Path,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_ca.trust(monkeypatch)
    ws = workspace
    campaign = sent_campaign(ws, scripted_smtp(), tmp_path, count=3)
    ws.configure_mailbox(mailbox(imap, security=Security.TLS, port=imap.tls_port), PASSWORD)

    async def scenario() -> float:
        sink = Sink()
        service = DeliveryService(ws, sink, probe_on_start=False)
        task = asyncio.create_task(service.run())
        try:
            # Connected and idling (first pass done) before the bounce arrives.
            await _until(lambda: ws.mailboxes.get("bounces").last_checked_at is not None)
            await asyncio.sleep(0.5)
            arrived = time.monotonic()
            await asyncio.to_thread(
                imap.append,
                "bounces",
                "INBOX",
                samples.postfix("r0@example.net", message_id(campaign, 0)),
            )
            await _until(lambda: ws.is_suppressed("r0@example.net"), timeout=10)
            return time.monotonic() - arrived
        finally:
            service.request_stop()
            await asyncio.wait_for(task, 30)

    seconds = asyncio.run(scenario())
    assert seconds < 10  # IDLE, not the 60 s poll
    assert ws.mailboxes.get("bounces").last_error is None


def test_a_watcher_reconnects_after_the_server_restarts(
    workspace: Workspace,
    imap: DovecotServer,
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test_ca.trust(monkeypatch)
    ws = workspace
    ws.configure_mailbox(mailbox(imap), PASSWORD)
    monkeypatch.setattr("desktop_app.core.bounces.watcher.FIRST_BACKOFF", 0.5)

    async def scenario() -> None:
        service = DeliveryService(ws, Sink(), probe_on_start=False)
        task = asyncio.create_task(service.run())
        try:
            await _until(lambda: ws.mailboxes.get("bounces").last_checked_at is not None)
            await asyncio.to_thread(imap.stop)
            await _until(lambda: ws.mailboxes.get("bounces").last_error is not None)
            await asyncio.to_thread(imap.start)
            await asyncio.to_thread(
                imap.append,
                "bounces",
                "INBOX",
                samples.postfix("x@example.net", "<none@example.com>"),
            )
            await _until(lambda: ws.is_suppressed("x@example.net"), timeout=20)
        finally:
            service.request_stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(scenario())


# -- security --------------------------------------------------------------------------------


def test_a_wrong_password_is_one_line_without_the_password(
    workspace: Workspace, imap: DovecotServer, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_ca.trust(monkeypatch)
    ws = workspace
    ws.configure_mailbox(mailbox(imap), "wrong-password-0815")
    (result,) = ws.check_mailboxes()
    assert isinstance(result, MailboxError)
    message = str(result)
    assert "login as 'bounces' refused" in message
    assert "\n" not in message and "wrong-password-0815" not in message
    assert ws.mailboxes.get("bounces").last_error == message
    stored = b"".join(p.read_bytes() for p in ws.data_dir.glob("relaydesk.sqlite3*"))
    assert b"wrong-password-0815" not in stored


def test_an_untrusted_certificate_is_refused(workspace: Workspace, imap: DovecotServer) -> None:
    ws = workspace  # no test CA trusted: the server's certificate must not be accepted
    ws.configure_mailbox(mailbox(imap, security=Security.TLS, port=imap.tls_port), PASSWORD)
    (result,) = ws.check_mailboxes()
    assert isinstance(result, MailboxError)
    assert "certificate not trusted" in str(result)


async def _until(predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


def test_test_connection_logs_in_and_reads_nothing(
    workspace: Workspace, imap: DovecotServer, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_ca.trust(monkeypatch)
    imap.append("bounces", "INBOX", samples.ordinary("ann@example.org"))
    config = mailbox(imap, security=Security.TLS, port=imap.tls_port)

    result = workspace.test_mailbox(config, PASSWORD)  # before it is saved: the typed password

    assert result.messages == 1 and result.idle and result.latency_ms > 0
    assert workspace.mailboxes.all() == []
    with pytest.raises(MailboxError, match="folder 'Nope' does not exist"):
        workspace.test_mailbox(mailbox(imap, folder="Nope"), PASSWORD)
    with pytest.raises(MailboxError, match="refused"):
        workspace.test_mailbox(config, "wrong")
    assert len(imap.fetch_all("bounces", "INBOX")) == 1
