"""Change counters on a real SQLite file: each kind of write bumps its topic, and only it.

The counters are read with the test's own sqlite3 connection (``RawRows``), so a bump is
only seen once it is committed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import pytest

from desktop_app.core.bounces.reading import BouncedRecipient, BounceReading
from desktop_app.core.campaigns.csv_import import parse_subscribers
from desktop_app.core.campaigns.lifecycle import CampaignState
from desktop_app.core.errors import DuplicateProviderError
from desktop_app.core.health.maintenance import weekly_window
from desktop_app.core.models import (
    AmbiguousPolicy,
    MessageState,
    OutcomeClass,
    ProviderConfig,
    Security,
)
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.bounces import BounceRepository
from desktop_app.core.storage.campaigns import CampaignDraft, CampaignRepository, RenderedBatch
from desktop_app.core.storage.changes import Topic, bump, read_versions
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.lists import ListRepository
from desktop_app.core.storage.maintenance import MaintenanceRepository
from desktop_app.core.storage.outbox import (
    AttemptFinished,
    AttemptStarted,
    MessageTransition,
    NewMessage,
    OutboxRepository,
)
from desktop_app.core.storage.providers import ProviderRepository
from tests.unit.storage.storage_rows import RawRows

MakeMessage = Callable[..., NewMessage]
WINDOW = weekly_window(6, 120, 90, "Europe/Berlin", "upgrade")


def _config(name: str = "primary") -> ProviderConfig:
    return ProviderConfig(name, "smtp.example.com", 587, Security.STARTTLS)


class Counters:
    """What moved on disk since the last look."""

    def __init__(self, rows: RawRows) -> None:
        self._rows = rows
        self._last = self._read()

    def _read(self) -> dict[str, int]:
        return {r["topic"]: r["version"] for r in self._rows.query("SELECT * FROM change_counters")}

    def moved(self) -> dict[str, int]:
        """{topic: by how much} of the topics that moved since the last call."""
        now = self._read()
        moved = {t: v - self._last[t] for t, v in now.items() if v != self._last[t]}
        self._last = now
        return moved


@pytest.fixture
def counters(rows: RawRows) -> Counters:
    return Counters(rows)


def test_the_migration_seeds_one_counter_per_topic(database: Database) -> None:
    with database.read() as connection:
        assert read_versions(connection) == {topic.value: 0 for topic in Topic}


def test_bump_counts_in_the_callers_transaction(database: Database, counters: Counters) -> None:
    with database.write() as connection:
        bump(connection, Topic.SETTINGS, Topic.OUTBOX, Topic.OUTBOX)  # a topic counts once
        bump(connection)  # nothing: no statement
    assert counters.moved() == {"settings": 1, "outbox": 1}

    with pytest.raises(RuntimeError), database.write() as connection:
        bump(connection, Topic.PROVIDERS)
        raise RuntimeError("rolled back")
    assert counters.moved() == {}


# -- providers and maintenance ------------------------------------------------------------------


def test_every_provider_write_bumps_providers(
    providers: ProviderRepository, counters: Counters
) -> None:
    providers.add(_config("primary"))
    assert counters.moved() == {"providers": 1}
    providers.add(_config("backup"))
    counters.moved()

    providers.update("primary", dataclasses.replace(_config("primary"), enabled=False))
    assert counters.moved() == {"providers": 1}
    providers.set_priorities(["backup", "primary"])
    assert counters.moved() == {"providers": 1}
    providers.remove("backup")  # it had no maintenance windows
    assert counters.moved() == {"providers": 1}


def test_a_refused_provider_write_bumps_nothing(
    providers: ProviderRepository, counters: Counters
) -> None:
    providers.add(_config("primary"))
    counters.moved()
    with pytest.raises(DuplicateProviderError):
        providers.add(_config("primary"))
    assert counters.moved() == {}


def test_reads_bump_nothing(
    database: Database, providers: ProviderRepository, counters: Counters
) -> None:
    providers.add(_config())
    counters.moved()
    providers.all()
    providers.get("primary")
    MaintenanceRepository(database).by_provider()
    SettingsStore(database).all()
    OutboxRepository(database).counts()
    assert counters.moved() == {}


def test_maintenance_writes_bump_maintenance(
    database: Database, providers: ProviderRepository, counters: Counters
) -> None:
    windows = MaintenanceRepository(database)
    providers.add(_config())
    counters.moved()

    added = windows.add("primary", WINDOW)
    assert counters.moved() == {"maintenance": 1}
    assert added.id is not None
    windows.remove("primary", added.id)
    assert counters.moved() == {"maintenance": 1}


def test_removing_a_provider_with_windows_bumps_maintenance_too(
    database: Database, providers: ProviderRepository, counters: Counters
) -> None:
    providers.add(_config())
    MaintenanceRepository(database).add("primary", WINDOW)
    counters.moved()

    providers.remove("primary")  # its windows go with it
    assert counters.moved() == {"providers": 1, "maintenance": 1}


# -- settings ---------------------------------------------------------------------------------


def test_setting_a_value_bumps_settings(database: Database, counters: Counters) -> None:
    settings = SettingsStore(database)
    settings.set_text("breaker.failure_threshold", "5")
    assert counters.moved() == {"settings": 1}
    settings.set("retry.max_age_hours", 12.0)
    assert counters.moved() == {"settings": 1}


# -- the outbox ---------------------------------------------------------------------------------


def test_enqueue_bumps_outbox_once_per_transaction(
    outbox: OutboxRepository, make_message: MakeMessage, counters: Counters
) -> None:
    outbox.enqueue([make_message()])
    assert counters.moved() == {"outbox": 1}
    outbox.enqueue([make_message() for _ in range(50)])  # bulk: one transaction, one bump
    assert counters.moved() == {"outbox": 1}
    outbox.enqueue([])
    assert counters.moved() == {}


def test_cancel_and_retry_now_bump_outbox_when_they_move_something(
    outbox: OutboxRepository, make_message: MakeMessage, counters: Counters
) -> None:
    ids = outbox.enqueue([make_message(), make_message()])
    counters.moved()

    assert outbox.cancel(ids) == 2
    assert counters.moved() == {"outbox": 1}
    assert outbox.cancel(ids) == 0  # already cancelled: nothing changed, nothing announced
    assert counters.moved() == {}
    assert outbox.retry_now(ids) == 2
    assert counters.moved() == {"outbox": 1}
    assert outbox.retry_now(ids) == 0  # queued is not retryable
    assert counters.moved() == {}


def test_the_engine_journal_bumps_nothing(
    outbox: OutboxRepository,
    providers: ProviderRepository,
    rows: RawRows,
    make_message: MakeMessage,
    counters: Counters,
) -> None:
    provider = providers.add(_config())
    (outbox_id,) = outbox.enqueue([make_message()])
    due = rows.outbox(outbox_id)["next_attempt_at"]
    counters.moved()

    (claimed,) = outbox.claim_due("w1", 1, now=due)
    outbox.record(
        started=[AttemptStarted(outbox_id, 1, provider.id, "primary", due)],
        owner="w1",
    )
    outbox.record(
        finished=[
            AttemptFinished(
                outbox_id, 1, due + 1, 5.0, OutcomeClass.DELIVERED, "data", 250, None, ""
            )
        ],
        transitions=[
            MessageTransition(outbox_id, MessageState.SENT, (), 1, 0, provider.id, sent_at=due + 1)
        ],
        owner="w1",
        claim=5,  # the group commit's claim too
    )
    writer = outbox.open_writer()
    try:
        outbox.record(connection=writer, claim=5, owner="w1")
    finally:
        writer.close()
    outbox.wake_waiting_for_provider()

    assert claimed.outbox_id == outbox_id
    assert rows.outbox(outbox_id)["state"] == "sent"
    assert counters.moved() == {}


def test_leases_given_back_bump_outbox(
    outbox: OutboxRepository, rows: RawRows, make_message: MakeMessage, counters: Counters
) -> None:
    ids = outbox.enqueue([make_message(), make_message()])
    due = rows.outbox(ids[0])["next_attempt_at"]
    outbox.claim_due("w1", 2, now=due)
    counters.moved()

    assert outbox.recover_stale_leases("w2", AmbiguousPolicy.RETRY, exclusive=True).requeued == 2
    assert counters.moved() == {"outbox": 1}
    assert outbox.recover_stale_leases("w2", AmbiguousPolicy.RETRY, exclusive=True).requeued == 0
    assert counters.moved() == {}

    outbox.claim_due("w1", 2, now=due + 1)
    counters.moved()
    outbox.release(ids, "w1", AmbiguousPolicy.RETRY, due_at=due + 60, detail="broke")
    assert counters.moved() == {"outbox": 1}


# -- campaigns and bounces ---------------------------------------------------------------------


@pytest.fixture
def campaigns(database: Database, outbox: OutboxRepository) -> Iterator[CampaignRepository]:
    lists = ListRepository(database)
    lists.create("news")
    lists.import_parsed("news", parse_subscribers(b"email\nann@example.com\nbob@example.com\n"))
    yield CampaignRepository(database, outbox)


def _sending_campaign(campaigns: CampaignRepository) -> int:
    draft = CampaignDraft("Spring", "news", "news@example.com", "Hello", text="Hi")
    campaign = campaigns.create(draft, uid="c0ffee")
    campaigns.start(campaign.id)
    return campaign.id


def test_campaign_batches_pause_resume_and_cancel_bump_outbox(
    campaigns: CampaignRepository, make_message: MakeMessage, counters: Counters
) -> None:
    campaign_id = _sending_campaign(campaigns)
    counters.moved()

    pending = campaigns.pending_batch(campaign_id, 10)
    batch = RenderedBatch(
        queued=[(p.id, make_message((p.email,), campaign_id=campaign_id)) for p in pending]
    )
    assert campaigns.store_batch(campaign_id, batch)
    assert counters.moved() == {"outbox": 1}

    assert campaigns.pause(campaign_id, "by you") == 2
    assert counters.moved() == {"outbox": 1}
    assert campaigns.hold_paused() == 0  # nothing to hold: nothing announced
    assert counters.moved() == {}
    assert campaigns.resume(campaign_id, CampaignState.SENDING) == 2
    assert counters.moved() == {"outbox": 1}
    assert campaigns.cancel(campaign_id) == 2
    assert counters.moved() == {"outbox": 1}


def test_a_hard_bounce_of_sent_mail_bumps_outbox(
    database: Database,
    outbox: OutboxRepository,
    rows: RawRows,
    make_message: MakeMessage,
    counters: Counters,
) -> None:
    (outbox_id,) = outbox.enqueue([make_message(("ann@example.com",))])
    rows.update_outbox(outbox_id, state="sent")
    counters.moved()

    BounceRepository(database).apply_bounce(
        BounceReading(
            recipients=(BouncedRecipient("ann@example.com", permanent=True, status="5.1.1"),),
            original_message_id=rows.outbox(outbox_id)["message_id"],
            bounce_message_id="<bounce-1@example.net>",
        ),
        bounce_key="<bounce-1@example.net>",
        mailbox_id=None,
        soft_limit=3,
    )
    assert rows.outbox(outbox_id)["state"] == "bounced"
    assert counters.moved() == {"outbox": 1}
