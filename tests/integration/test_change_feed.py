"""The change feed on a real SQLite file, with changes made by another process (the CLI).

Each wait is a ``threading.Event`` with a timeout: a test ends as soon as the change is
heard, and fails only if it is not heard within the bound.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path

import pytest

from desktop_app.core.change_feed import ChangeFeed, Topic
from desktop_app.core.models import ProviderConfig, Security
from desktop_app.core.storage.changes import PollingChangeSource, SqliteChangeSource
from desktop_app.core.storage.database import DATABASE_FILENAME, Database
from desktop_app.core.workspace import Workspace
from tests.cli.cli_harness import Relaydesk

#: The issue's bound: any process's change reaches every running component within 2 s.
HEARD_WITHIN = 2.0
ADD_PROVIDER = ("provider", "add", "primary", "--host", "smtp.example.com", "--port", "587")


class Heard:
    """A subscriber that remembers every call and signals each topic it hears."""

    def __init__(self) -> None:
        self.calls: list[frozenset[str]] = []
        self._lock = threading.Lock()
        self._events = {topic.value: threading.Event() for topic in Topic}
        self.any = threading.Event()

    def __call__(self, topics: frozenset[str]) -> None:
        with self._lock:
            self.calls.append(topics)
        for topic in topics:
            self._events[topic].set()
        self.any.set()

    def wait_for(self, topic: Topic, timeout: float = HEARD_WITHIN) -> bool:
        return self._events[topic.value].wait(timeout)

    def topics(self) -> set[str]:
        with self._lock:
            return set().union(*self.calls)


class CountingSource:
    """A real source that also counts its polls (so a test knows several happened)."""

    def __init__(self, source: SqliteChangeSource, polls_wanted: int) -> None:
        self._source = source
        self._polls = 0
        self._wanted = polls_wanted
        self.enough = threading.Event()

    def versions(self) -> Mapping[str, int] | None:
        answer = self._source.versions()
        self._polls += 1
        if self._polls >= self._wanted:
            self.enough.set()
        return answer

    def wait(self, timeout: float) -> None:
        self._source.wait(timeout)

    def interrupt(self) -> None:
        self._source.interrupt()

    def close(self) -> None:
        self._source.close()


@pytest.fixture
def relaydesk(data_dir: Path, tmp_path: Path) -> Relaydesk:
    return Relaydesk(data_dir, cwd=tmp_path)


@pytest.fixture
def feed(workspace: Workspace) -> Iterator[ChangeFeed]:
    changes = workspace.changes
    yield changes
    changes.stop()


def _add_provider(workspace: Workspace, name: str = "primary") -> None:
    workspace.add_provider(ProviderConfig(name, "smtp.example.com", 587, Security.STARTTLS))


# -- another process changes things -----------------------------------------------------------


def test_a_provider_added_by_another_process_is_heard_within_2_s(
    workspace: Workspace, feed: ChangeFeed, relaydesk: Relaydesk
) -> None:
    heard = Heard()
    feed.subscribe(heard)
    feed.start()

    relaydesk.ok(*ADD_PROVIDER, "--security", "starttls")

    assert heard.wait_for(Topic.PROVIDERS)
    assert heard.topics() == {"providers"}
    assert [p.name for p in workspace.list_providers()] == ["primary"]


def test_settings_and_maintenance_changed_elsewhere_are_heard_by_topic(
    feed: ChangeFeed, relaydesk: Relaydesk
) -> None:
    relaydesk.ok(*ADD_PROVIDER, "--security", "starttls")
    settings, maintenance = Heard(), Heard()
    feed.subscribe(settings, topics={Topic.SETTINGS})
    feed.subscribe(maintenance, topics=[Topic.MAINTENANCE])
    feed.start()

    relaydesk.ok("settings", "set", "breaker.failure_threshold", "5")
    assert settings.wait_for(Topic.SETTINGS)

    relaydesk.ok("provider", "maintenance", "add", "primary", "--weekly", "sun", "02:00", "1h")
    assert maintenance.wait_for(Topic.MAINTENANCE)
    # Each hears only its own topic, whatever else moved meanwhile.
    assert settings.topics() == {"settings"}
    assert maintenance.topics() == {"maintenance"}


def test_mail_queued_by_another_process_is_heard_as_outbox(
    feed: ChangeFeed, relaydesk: Relaydesk, tmp_path: Path
) -> None:
    body = tmp_path / "body.txt"
    body.write_text("Hello.\n", encoding="utf-8")
    heard = Heard()
    feed.subscribe(heard)
    feed.start()

    relaydesk.ok(
        "send", "--from", "news@example.com", "--to", "a@example.net",
        "--subject", "Hi", "--text-file", str(body),
    )  # fmt: skip

    assert heard.wait_for(Topic.OUTBOX)
    assert heard.topics() == {"outbox"}


# -- what the feed does not say --------------------------------------------------------------------


def test_nothing_changed_means_no_callback_over_many_polls(
    workspace: Workspace, relaydesk: Relaydesk, tmp_path: Path
) -> None:
    body = tmp_path / "body.txt"
    body.write_text("Hello.\n", encoding="utf-8")
    for n in range(2):
        relaydesk.ok(
            "send", "--from", "news@example.com", "--to", f"r{n}@example.net",
            "--subject", "Hi", "--text-file", str(body),
        )  # fmt: skip
    source = CountingSource(SqliteChangeSource(workspace.data_dir / DATABASE_FILENAME), 10)
    feed = ChangeFeed(source, interval=0.01)
    heard = Heard()
    feed.subscribe(heard)
    feed.start()
    try:
        assert source.enough.wait(HEARD_WITHIN * 5)
        # Commits that change no topic (the engine's journal claiming mail) say nothing.
        assert len(workspace.outbox.claim_due("w1", 1)) == 1
        assert feed.poll_once() == frozenset()
        assert len(workspace.outbox.claim_due("w1", 1)) == 1
        source.enough.clear()
        assert source.enough.wait(HEARD_WITHIN * 5)  # the thread polled past it too
    finally:
        feed.close()
    assert heard.calls == []
    assert not feed.running


def test_poll_once_reports_each_change_once(workspace: Workspace) -> None:
    feed = ChangeFeed.for_database(workspace.database)
    try:
        assert feed.poll_once() == frozenset()
        _add_provider(workspace)
        workspace.set_setting("retry.max_age_hours", "12")
        assert feed.poll_once() == {"providers", "settings"}
        assert feed.poll_once() == frozenset()
    finally:
        feed.close()


def test_changes_made_before_the_feed_existed_are_not_reported(workspace: Workspace) -> None:
    _add_provider(workspace)
    feed = ChangeFeed.for_database(workspace.database)
    try:
        assert feed.poll_once() == frozenset()
    finally:
        feed.close()


# -- subscribers ---------------------------------------------------------------------------------


def test_a_failing_callback_is_logged_and_stops_nothing(
    workspace: Workspace, feed: ChangeFeed, caplog: pytest.LogCaptureFixture
) -> None:
    raised = threading.Event()

    def broken(_topics: frozenset[str]) -> None:
        raised.set()
        raise RuntimeError("subscriber bug")

    heard = Heard()
    feed.subscribe(broken)
    feed.subscribe(heard)
    feed.start()

    with caplog.at_level(logging.ERROR, logger="desktop_app.core.change_feed"):
        _add_provider(workspace, "primary")
        assert heard.wait_for(Topic.PROVIDERS)
        assert raised.is_set()
        workspace.set_setting("retry.max_age_hours", "12")  # the feed still runs after it
        assert heard.wait_for(Topic.SETTINGS)

    assert feed.running
    assert "subscriber bug" in caplog.text


def test_unsubscribed_callbacks_hear_nothing_more(workspace: Workspace) -> None:
    feed = workspace.changes
    kept, dropped = Heard(), Heard()
    feed.subscribe(kept)
    unsubscribe = feed.subscribe(dropped)
    unsubscribe()
    unsubscribe()  # twice is harmless

    _add_provider(workspace)
    assert feed.poll_once() == {"providers"}
    assert kept.calls == [frozenset({"providers"})]
    assert dropped.calls == []


def test_stop_then_start_again(workspace: Workspace, feed: ChangeFeed) -> None:
    feed.start()
    feed.start()  # idempotent
    feed.stop()
    assert not feed.running

    heard = Heard()
    feed.subscribe(heard)
    feed.start()
    _add_provider(workspace)
    assert heard.wait_for(Topic.PROVIDERS)


# -- sources ---------------------------------------------------------------------------------------


def test_a_locked_database_skips_the_poll_and_catches_up(workspace: Workspace) -> None:
    path = workspace.data_dir / DATABASE_FILENAME
    workspace.database.dispose()  # nobody else has the file open
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        # Another program holding the file for itself: every reader is busy.
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE change_counters SET version = version + 1 WHERE topic = 'outbox'")
        other.execute("COMMIT")
        feed = ChangeFeed(SqliteChangeSource(path))
        assert feed.poll_once() == frozenset()  # busy: quietly nothing
    try:
        assert feed.poll_once() == frozenset()  # its first answer: where it starts from
        _add_provider(workspace)
        assert feed.poll_once() == {"providers"}
    finally:
        feed.close()


def test_the_polling_source_says_the_same(workspace: Workspace) -> None:
    # What any database but a SQLite file gets (PostgreSQL until LISTEN/NOTIFY).
    database = Database.open_file(workspace.data_dir / DATABASE_FILENAME)
    feed = ChangeFeed(PollingChangeSource(database))
    try:
        assert feed.poll_once() == frozenset()
        _add_provider(workspace)
        assert feed.poll_once() == {"providers"}
        assert feed.poll_once() == frozenset()
    finally:
        feed.close()
        database.dispose()


def test_the_workspace_makes_one_feed_and_closes_it(data_dir: Path) -> None:
    workspace = Workspace.open(data_dir)
    feed = workspace.changes
    assert workspace.changes is feed
    assert not feed.running  # nothing starts on its own
    feed.start()
    workspace.close()
    assert not feed.running
