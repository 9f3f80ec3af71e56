"""Lists in SQLite: one-transaction imports, counts, keyset reads, export, suppressions."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.core.campaigns.csv_import import parse_subscribers
from desktop_app.core.errors import ListNotFoundError, RejectedRowsError, UserInputError
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.lists import ListRepository
from desktop_app.core.workspace import Workspace
from tests.unit.storage.storage_rows import RawRows

CSV = (
    b"email,name,status,city\n"
    b"ann@example.com,Ann,,Oslo\n"
    b"Bob@Example.com,Bob,unsubscribed,Rome\n"
    b"cy@example.com,Cy,bounced,\n"
    b"dee@example.com,Dee,,Lima\n"
)


@pytest.fixture
def lists(database: Database) -> ListRepository:
    return ListRepository(database)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.open(tmp_path / "ws")
    yield ws
    ws.close()


def test_create_rename_delete_and_counts(lists: ListRepository, rows: RawRows) -> None:
    lists.create("news")
    lists.create("alerts")
    lists.import_parsed("news", parse_subscribers(CSV))

    news = lists.get("news")
    assert news.counts == {"active": 2, "unsubscribed": 1, "bounced": 1, "complained": 0}
    assert (news.total, news.sendable) == (4, 2)
    assert [(s.name, s.total) for s in lists.all()] == [("alerts", 0), ("news", 4)]

    lists.rename("news", "weekly")
    with pytest.raises(ListNotFoundError):
        lists.get("news")
    assert lists.get("weekly").total == 4

    lists.delete("weekly")
    assert [s.name for s in lists.all()] == ["alerts"]
    assert rows.query("SELECT count(*) AS n FROM subscribers") == [{"n": 0}]


def test_list_names_are_unique_and_validated(lists: ListRepository) -> None:
    lists.create("news")
    with pytest.raises(UserInputError, match="already exists"):
        lists.create("news")
    lists.create("other")
    with pytest.raises(UserInputError, match="already exists"):
        lists.rename("other", "news")
    for bad in ["", "   ", "x" * 101, "a\nb"]:
        with pytest.raises(UserInputError):
            lists.create(bad)
    with pytest.raises(ListNotFoundError, match="no list named 'nope'"):
        lists.delete("nope")


def test_import_stores_every_column(lists: ListRepository, rows: RawRows) -> None:
    lists.create("news")
    report = lists.import_parsed("news", parse_subscribers(CSV), now=1000.0)

    assert (report.imported, report.duplicates, report.rejects) == (4, (), ())
    stored = rows.query(
        "SELECT email, email_key, name, fields, status, created_at FROM subscribers"
    )
    assert stored[1] == {
        "email": "Bob@example.com",
        "email_key": "bob@example.com",
        "name": "Bob",
        "fields": '{"city":"Rome"}',
        "status": "unsubscribed",
        "created_at": 1000.0,
    }


def test_importing_again_reports_duplicates_against_the_list(lists: ListRepository) -> None:
    lists.create("news")
    lists.import_parsed("news", parse_subscribers(CSV))
    report = lists.import_parsed("news", parse_subscribers(CSV + b"new@example.com,New,,\n"))

    assert report.imported == 1
    assert [(d.line, d.reason) for d in report.duplicates] == [
        (2, "already on the list"),
        (3, "already on the list"),
        (4, "already on the list"),
        (5, "already on the list"),
    ]
    assert lists.get("news").total == 5


def test_an_error_mid_import_stores_nothing(lists: ListRepository, rows: RawRows) -> None:
    lists.create("news")
    lists.import_parsed("news", parse_subscribers(b"email\nfirst@example.com\n"))
    # The database itself refuses row 5,000 of 10,000: the whole import must roll back.
    rows.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON subscribers "
        "WHEN NEW.email_key = 'user4999@example.com' "
        "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
    )
    data = "email\n" + "".join(f"user{i}@example.com\n" for i in range(10_000))
    parsed = parse_subscribers(data.encode())

    with pytest.raises(Exception, match="refused by test"):
        lists.import_parsed("news", parsed)

    assert rows.query("SELECT email_key FROM subscribers") == [{"email_key": "first@example.com"}]


def test_rejected_rows_import_nothing_unless_accepted(workspace: Workspace, tmp_path: Path) -> None:
    workspace.create_list("news")
    source = tmp_path / "in.csv"
    source.write_bytes(CSV + b"broken,X,,\n")

    with pytest.raises(RejectedRowsError, match=r"1 row rejected.*line 6") as caught:
        workspace.import_list("news", source)
    assert workspace.get_list("news").total == 0
    assert [r.line for r in caught.value.report.rejects] == [6]  # type: ignore[attr-defined]

    report = workspace.import_list("news", source, accept_valid=True)
    assert (report.imported, len(report.rejects)) == (4, 1)
    assert workspace.get_list("news").total == 4


def test_sendable_is_active_and_not_suppressed_in_id_order(
    lists: ListRepository, rows: RawRows
) -> None:
    lists.create("news")
    data = "email\n" + "".join(f"u{i}@example.com\n" for i in range(7))
    lists.import_parsed("news", parse_subscribers(data.encode()))
    rows.execute("UPDATE subscribers SET status = 'complained' WHERE email_key = 'u1@example.com'")
    lists.suppress("u4@example.com", "bounced")

    # batch_size 2: several keyset pages, each its own short read.
    sendable = [s.email for s in lists.iter_sendable("news", batch_size=2)]

    assert sendable == [f"u{i}@example.com" for i in (0, 2, 3, 5, 6)]
    assert lists.get("news").sendable == 5
    assert lists.get("news").suppressed == 1


def test_keyset_iteration_sees_rows_added_meanwhile_once(lists: ListRepository) -> None:
    lists.create("news")
    lists.import_parsed("news", parse_subscribers(b"email\na@example.com\nb@example.com\n"))
    seen = []
    for subscriber in lists.iter_sendable("news", batch_size=1):
        seen.append(subscriber.email)
        if subscriber.email == "a@example.com":
            lists.import_parsed("news", parse_subscribers(b"email\nc@example.com\n"))
    assert seen == ["a@example.com", "b@example.com", "c@example.com"]


def test_export_then_import_round_trips(workspace: Workspace, tmp_path: Path) -> None:
    workspace.create_list("news")
    source = tmp_path / "in.csv"
    source.write_bytes(CSV)
    workspace.import_list("news", source)

    exported = tmp_path / "out.csv"
    assert workspace.export_list("news", exported) == 4
    with exported.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["email", "name", "status", "city"]
    assert table[2] == ["Bob@example.com", "Bob", "unsubscribed", "Rome"]

    workspace.create_list("copy")
    workspace.import_list("copy", exported)

    def content(name: str) -> list[tuple[str, str, str, dict[str, str]]]:
        return [
            (s.email, s.name, s.status, s.fields) for s in workspace.lists.iter_subscribers(name)
        ]

    assert content("copy") == content("news")
    assert not list(tmp_path.glob(".out.csv.*"))  # no temporary file left


def test_suppression_list(workspace: Workspace) -> None:
    workspace.suppress("Ann@EXAMPLE.com", "bounced", "550 5.1.1")
    workspace.suppress("ann@example.com", "manual")  # already there: keeps the first reason

    assert workspace.is_suppressed("ANN@example.COM")
    assert [(s.email_key, s.reason, s.detail) for s in workspace.suppressions()] == [
        ("ann@example.com", "bounced", "550 5.1.1")
    ]
    with pytest.raises(UserInputError, match="reason must be one of"):
        workspace.suppress("b@example.com", "whatever")
    with pytest.raises(UserInputError):
        workspace.suppress("not an address")

    workspace.unsuppress("ANN@example.com")
    assert not workspace.is_suppressed("ann@example.com")
    with pytest.raises(UserInputError, match="not on the suppression list"):
        workspace.unsuppress("ann@example.com")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=60),
            st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.emails().map(lambda e: f"{e},n\n".encode()),
            st.sampled_from([b"email,name\n", b"\x00", b'"', b"\r\n", b";", b"bad\n"]),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_hostile_files_import_all_valid_rows_or_nothing(
    workspace: Workspace, tmp_path: Path, pieces: list[bytes], accept_valid: bool
) -> None:
    if not any(s.name == "prop" for s in workspace.subscriber_lists()):
        workspace.create_list("prop")
    source = tmp_path / "hostile.csv"
    source.write_bytes(b"".join(pieces))
    before = workspace.get_list("prop").total
    try:
        report = workspace.import_list("prop", source, accept_valid=accept_valid)
    except UserInputError as exc:
        assert "\n" not in str(exc)
        assert workspace.get_list("prop").total == before
        return
    assert workspace.get_list("prop").total == before + report.imported
    assert accept_valid or not report.rejects
