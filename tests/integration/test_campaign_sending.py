"""Campaigns end to end: list -> campaign -> runner -> engine -> a real SMTP server on loopback.

Everything goes through ``DeliveryService`` (engine, campaign runner, health monitor,
alerter), as in the app and in ``relaydesk run``. "Restarting the app" is stopping the
service and starting a new one on a freshly opened workspace over the same data folder.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from desktop_app.core.campaigns.lifecycle import CampaignState, CampaignStateError
from desktop_app.core.campaigns.message import campaign_message_id, verify_unsubscribe_token
from desktop_app.core.campaigns.templates import TemplateError
from desktop_app.core.events import AlertRaised, CampaignChanged, Event
from desktop_app.core.models import ProviderConfig, RateLimits, Security
from desktop_app.core.service import DeliveryService
from desktop_app.core.storage.campaigns import CampaignDraft
from desktop_app.core.workspace import Workspace
from tests.support.scripted_smtp import ScriptedSMTPServer

CITIES = ["Oslo", "Zürich", "São Paulo", "Kraków", "東京"]


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


def write_csv(path: Path, count: int, *, start: int = 0, with_code: bool = True) -> Path:
    lines = ["email,name,city,code" if with_code else "email,name,city"]
    for index in range(start, start + count):
        row = f"reader{index}@example.net,Reader {index} Ünlü,{CITIES[index % len(CITIES)]}"
        lines.append(f"{row},C-{index:04d}" if with_code else row)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_list(ws: Workspace, tmp_path: Path, count: int, name: str = "readers") -> None:
    ws.create_list(name)
    ws.import_list(name, write_csv(tmp_path / f"{name}.csv", count))


def draft(name: str = "december", **changes: Any) -> CampaignDraft:
    values: dict[str, Any] = {
        "name": name,
        "list_name": "readers",
        "from_address": "news@example.com",
        "from_name": "Example News",
        "subject": "{{ name }}: your code {{ code }}",
        "html": "<h1>Hello {{ name }}</h1><p>Weather in {{ city }}.</p>"
        "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>",
        "unsubscribe_mailto": "unsubscribe@example.com",
        "headers": {"X-Campaign": "december"},
    }
    values.update(changes)
    return CampaignDraft(**values)


def add_provider(
    ws: Workspace, port: int, *, max_connections: int = 2, per_second: int | None = None
) -> None:
    ws.add_provider(
        ProviderConfig(
            name="primary",
            host="127.0.0.1",
            port=port,
            security=Security.NONE,
            max_connections=max_connections,
            rate_limits=RateLimits(per_second=per_second),
        )
    )


@pytest.fixture
def open_workspace(data_dir: Path) -> Iterator[Callable[[], Workspace]]:
    """Open the data folder (again): each call is the app starting up."""
    opened: list[Workspace] = []

    def open_() -> Workspace:
        workspace = Workspace.open(data_dir)
        opened.append(workspace)
        return workspace

    yield open_
    for workspace in opened:
        workspace.close()


async def run_until_idle(ws: Workspace, sink: Sink | None = None, timeout: float = 120) -> None:
    service = DeliveryService(ws, sink or Sink(), probe_on_start=False)
    await asyncio.wait_for(service.run(until_idle=True), timeout)


class Running:
    """A service running in the background until ``stop()`` (an app session)."""

    def __init__(self, ws: Workspace) -> None:
        self.sink = Sink()
        self.service = DeliveryService(ws, self.sink, probe_on_start=False)
        self.task = asyncio.create_task(self.service.run())

    async def stop(self) -> None:
        self.service.request_stop()
        await asyncio.wait_for(self.task, 30)


async def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(predicate)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.05)


# -- a whole campaign ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_campaign_reaches_every_subscriber_personalised_and_no_suppressed_one(
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    open_workspace: Callable[[], Workspace],
    tmp_path: Path,
    secret_service: dict[str, str],
) -> None:
    ws = open_workspace()
    server = scripted_smtp()
    add_provider(ws, server.port, max_connections=4)
    make_list(ws, tmp_path, 1000)
    ws.suppress("reader3@example.net")  # suppressed before the campaign
    campaign = ws.campaigns.create(draft(unsubscribe_url="https://example.com/u"))
    ws.campaigns.send(campaign.name)
    ws.suppress("reader998@example.net")  # after it started, before its mail was rendered

    await run_until_idle(ws)

    report = ws.campaigns.report(campaign.name)
    assert report.campaign.state is CampaignState.COMPLETED
    assert report.counts == {"sent": 998, "skipped": 2}
    assert report.by_provider == {"primary": 998}
    received = {message.rcpt_tos[0]: message for message in server.messages}
    assert len(server.messages) == 998
    assert "reader3@example.net" not in received
    assert "reader998@example.net" not in received
    key = ws.secrets.signing_key()
    for index in (0, 1, 4, 500, 999):
        address = f"reader{index}@example.net"
        parsed = email.message_from_bytes(received[address].data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        assert not parsed.defects
        assert str(parsed["Subject"]) == f"Reader {index} Ünlü: your code C-{index:04d}"
        assert str(parsed["Message-ID"]) == campaign_message_id(
            campaign.uid, address, "news@example.com"
        )
        assert str(parsed["X-Campaign"]) == "december"
        assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        https = str(parsed["List-Unsubscribe"]).split(",")[0].strip()[1:-1]
        token = parse_qs(urlsplit(https).query)["token"][0]
        assert verify_unsubscribe_token(key, campaign.uid, address, token)
        html = parsed.get_body(("html",))
        assert html is not None
        assert f"Weather in {CITIES[index % len(CITIES)]}." in html.get_content()
    # The key that signs the links is a secret: the keyring has it, the database does not.
    stored = b"".join(path.read_bytes() for path in ws.data_dir.glob("relaydesk.sqlite3*"))
    assert stored and key.hex().encode() not in stored and key not in stored


@pytest.mark.asyncio
async def test_a_campaign_to_postfix_smtp_sink_arrives_whole(
    smtp_sink: Any, open_workspace: Callable[[], Workspace], tmp_path: Path
) -> None:
    sink = smtp_sink(dump=True)
    ws = open_workspace()
    add_provider(ws, sink.port, max_connections=4)
    make_list(ws, tmp_path, 300)
    campaign = ws.campaigns.create(draft())
    ws.campaigns.send(campaign.name)

    await run_until_idle(ws)

    assert ws.campaigns.report(campaign.name).counts == {"sent": 300}
    dumps = sink.dumps()
    assert sorted(d.rcpt_tos[0] for d in dumps) == sorted(
        f"reader{i}@example.net" for i in range(300)
    )
    assert {d.message_id for d in dumps} == {
        campaign_message_id(campaign.uid, f"reader{i}@example.net", "news@example.com")
        for i in range(300)
    }
    assert b"Reader 7 " in next(d.raw for d in dumps if d.rcpt_tos[0] == "reader7@example.net")


# -- checks before anything is queued -------------------------------------------------------


def test_a_template_typo_blocks_sending_and_queues_nothing(
    open_workspace: Callable[[], Workspace], tmp_path: Path
) -> None:
    ws = open_workspace()
    make_list(ws, tmp_path, 20)
    campaign = ws.campaigns.create(draft(subject="Hi {{ frist_name }}"))

    with pytest.raises(TemplateError, match="frist_name"):
        ws.campaigns.send(campaign.name)

    assert ws.campaigns.get(campaign.name).state is CampaignState.DRAFT
    assert ws.outbox_counts().waiting == 0
    assert ws.campaign_store.counts(campaign.id) == {}


def test_a_field_missing_from_some_rows_blocks_sending(
    open_workspace: Callable[[], Workspace], tmp_path: Path
) -> None:
    ws = open_workspace()
    make_list(ws, tmp_path, 30)
    # Rows imported later, from a file without the "code" column.
    ws.import_list("readers", write_csv(tmp_path / "more.csv", 5, start=100, with_code=False))
    campaign = ws.campaigns.create(draft())

    with pytest.raises(TemplateError, match="code"):
        ws.campaigns.send(campaign.name)
    assert ws.outbox_counts().waiting == 0


# -- pause, resume, cancel, schedule across restarts ------------------------------------------


@pytest.mark.asyncio
async def test_pause_holds_the_rest_across_a_restart_and_resume_finishes_it(
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    open_workspace: Callable[[], Workspace],
    tmp_path: Path,
) -> None:
    server = scripted_smtp()
    ws = open_workspace()
    add_provider(ws, server.port, max_connections=1, per_second=20)
    make_list(ws, tmp_path, 200)
    campaign = ws.campaigns.create(draft())
    ws.campaigns.send(campaign.name)

    session = Running(ws)
    await wait_until(lambda: len(server.messages) >= 20, what="the first messages")
    await asyncio.to_thread(ws.campaigns.pause, campaign.name)
    await session.stop()
    sent_before_restart = len(server.messages)
    assert sent_before_restart < 200

    ws = open_workspace()  # the app starts again
    assert ws.campaigns.get(campaign.name).state is CampaignState.PAUSED
    session = Running(ws)
    await asyncio.sleep(1.5)
    assert len(server.messages) == sent_before_restart  # paused stays paused
    counts = ws.campaigns.report(campaign.name).counts
    assert counts["sent"] == sent_before_restart
    assert counts.get("queued", 0) == counts.get("deferred", 0) == 0

    await asyncio.to_thread(ws.campaigns.resume, campaign.name)
    session.service.wake_campaigns()
    await wait_until(
        lambda: ws.campaigns.get(campaign.name).state is CampaignState.COMPLETED,
        what="completion",
    )
    await session.stop()
    assert sorted(m.rcpt_tos[0] for m in server.messages) == sorted(
        f"reader{i}@example.net" for i in range(200)
    )
    assert ws.campaigns.report(campaign.name).counts == {"sent": 200}


@pytest.mark.asyncio
async def test_cancel_keeps_what_was_sent_and_stops_the_rest_for_good(
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    open_workspace: Callable[[], Workspace],
    tmp_path: Path,
) -> None:
    server = scripted_smtp()
    ws = open_workspace()
    add_provider(ws, server.port, max_connections=1, per_second=20)
    make_list(ws, tmp_path, 3000)  # more than one rendered batch: some never leave the list
    campaign = ws.campaigns.create(draft())
    ws.campaigns.send(campaign.name)
    session = Running(ws)
    await wait_until(lambda: len(server.messages) >= 10, what="the first messages")
    await asyncio.to_thread(ws.campaigns.cancel, campaign.name)
    await session.stop()
    sent = len(server.messages)

    ws = open_workspace()
    await run_until_idle(ws)  # a restart delivers nothing more of it
    assert len(server.messages) == sent
    report = ws.campaigns.report(campaign.name)
    assert report.campaign.state is CampaignState.CANCELLED
    assert report.counts["sent"] == sent
    assert report.counts["cancelled"] == 3000 - sent
    with pytest.raises(CampaignStateError, match="cancelled"):
        ws.campaigns.resume(campaign.name)


@pytest.mark.asyncio
async def test_a_scheduled_campaign_waits_for_its_time_even_across_a_restart(
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    open_workspace: Callable[[], Workspace],
    tmp_path: Path,
) -> None:
    server = scripted_smtp()
    ws = open_workspace()
    add_provider(ws, server.port)
    make_list(ws, tmp_path, 10)
    campaign = ws.campaigns.create(draft())
    at = time.time() + 3.0
    assert ws.campaigns.send(campaign.name, at=at).state is CampaignState.SCHEDULED
    await run_until_idle(ws)  # nothing due yet: idle at once, nothing sent
    assert server.messages == []

    ws = open_workspace()  # restart before its time
    session = Running(ws)
    await wait_until(
        lambda: ws.campaigns.get(campaign.name).state is CampaignState.COMPLETED,
        what="the scheduled campaign to run",
    )
    await session.stop()
    assert len(server.messages) == 10
    assert min(m.received_at for m in server.messages) >= at - 0.5
    started = [e for e in session.sink.events if isinstance(e, CampaignChanged)]
    assert started[0].state == "sending"


# -- automatic pause ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_too_many_permanent_failures_pause_the_campaign_with_an_alert(
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    open_workspace: Callable[[], Workspace],
    tmp_path: Path,
) -> None:
    ws = open_workspace()
    refused = {f"reader{i}@example.net": "550 5.1.1 no such user" for i in range(0, 300, 2)}
    server = scripted_smtp(rcpt_replies=refused)
    add_provider(ws, server.port, max_connections=1, per_second=50)
    ws.set_setting("campaigns.auto_pause_failure_percent", "25")
    ws.set_setting("campaigns.auto_pause_min_messages", "20")
    make_list(ws, tmp_path, 300)
    campaign = ws.campaigns.create(draft())
    ws.campaigns.send(campaign.name)

    session = Running(ws)
    await wait_until(
        lambda: ws.campaigns.get(campaign.name).state is CampaignState.PAUSED,
        what="the automatic pause",
    )
    await asyncio.sleep(1.0)
    await session.stop()

    paused = ws.campaigns.get(campaign.name)
    assert paused.pause_reason is not None and "failed permanently" in paused.pause_reason
    report = ws.campaigns.report(campaign.name)
    assert report.counts["sent"] + report.counts["failed"] < 300
    assert all(f.reason.startswith("550") or "550" in f.reason for f in report.failures)
    alerts = [e for e in session.sink.events if isinstance(e, AlertRaised)]
    assert [a.rule for a in alerts if a.subject == campaign.name] == ["campaign_paused"]
    assert ws.campaigns.report(campaign.name).counts.get("held", 0) > 0 or (
        report.counts.get("pending", 0) > 0
    )


# -- test send ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_test_send_reaches_the_given_addresses_only(
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    open_workspace: Callable[[], Workspace],
    tmp_path: Path,
) -> None:
    server = scripted_smtp()
    ws = open_workspace()
    add_provider(ws, server.port)
    make_list(ws, tmp_path, 5)
    campaign = ws.campaigns.create(draft())

    test_addresses = ["me@example.org", "boss@example.org"]
    ws.campaigns.test_send(campaign.name, test_addresses, subscriber_email="reader2@example.net")
    await run_until_idle(ws)

    assert sorted(m.rcpt_tos[0] for m in server.messages) == ["boss@example.org", "me@example.org"]
    parsed = email.message_from_bytes(server.messages[0].data, policy=email.policy.default)
    assert str(parsed["Subject"]) == "[TEST] Reader 2 Ünlü: your code C-0002"
    assert ws.campaigns.get(campaign.name).state is CampaignState.DRAFT
    real_id = campaign_message_id(campaign.uid, "reader2@example.net", "news@example.com")
    assert str(parsed["Message-ID"]) != real_id
