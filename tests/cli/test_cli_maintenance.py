"""``relaydesk provider maintenance add|list|remove`` end to end, and the errors people meet."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.cli.cli_harness import Relaydesk

ADD_PROVIDER = ("provider", "add", "primary", "--host", "smtp.example.com", "--port", "587")
ADD = ("provider", "maintenance", "add")
WEEKLY = ("--weekly", "sun", "02:00", "1h")


@pytest.fixture
def with_provider(relaydesk: Relaydesk) -> Relaydesk:
    relaydesk.ok(*ADD_PROVIDER, "--security", "starttls")
    return relaydesk


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def test_a_window_lifecycle(with_provider: Relaydesk) -> None:
    relaydesk = with_provider
    relaydesk.ok(
        *ADD_PROVIDER[:2], "backup", *ADD_PROVIDER[3:], "--security", "tls", "--priority", "1"
    )
    weekly = relaydesk.ok(
        *ADD, "primary", "--weekly", "Sun", "02:00", "1h30m",
        "--timezone", "Europe/Berlin", "--note", "provider upgrade",
    )  # fmt: skip
    assert weekly.out == (
        "added maintenance window 1 to primary: "
        "weekly Sun 02:00 for 1h30m (Europe/Berlin): provider upgrade\n"
    )
    now = time.time()
    relaydesk.ok(*ADD, "backup", "--start", iso(now - 60), "--end", iso(now + 3600))
    relaydesk.ok(*ADD, "primary", "--start", "2031-01-02T03:04+01:00", "--end", "2031-01-02T05:00Z")

    listing = relaydesk.json("provider", "maintenance", "list")
    assert listing == [
        {
            "provider": "primary",
            "id": 1,
            "kind": "weekly",
            "starts_at": None,
            "ends_at": None,
            "weekday": "sunday",
            "start_time": "02:00",
            "duration_minutes": 90,
            "timezone": "Europe/Berlin",
            "note": "provider upgrade",
            "active": listing[0]["active"],  # depends on when the test runs
        },
        {
            "provider": "primary",
            "id": 3,
            "kind": "once",
            "starts_at": "2031-01-02T02:04:00+00:00",
            "ends_at": "2031-01-02T05:00:00+00:00",
            "weekday": None,
            "start_time": None,
            "duration_minutes": None,
            "timezone": None,
            "note": "",
            "active": False,
        },
        {
            "provider": "backup",
            "id": 2,
            "kind": "once",
            "starts_at": iso(round(now - 60, 6)),
            "ends_at": iso(round(now + 3600, 6)),
            "weekday": None,
            "start_time": None,
            "duration_minutes": None,
            "timezone": None,
            "note": "",
            "active": True,
        },
    ]
    assert [w["id"] for w in relaydesk.json("provider", "maintenance", "list", "backup")] == [2]

    text = relaydesk.ok("provider", "maintenance", "list").out.splitlines()
    assert len(text) == 3
    assert text[0].split()[:2] == ["1", "primary"]
    assert "weekly Sun 02:00 for 1h30m (Europe/Berlin): provider upgrade" in text[0]
    assert text[2].split()[:3] == ["2", "backup", "once"]
    assert text[2].endswith("(active now)")

    removed = relaydesk.ok("provider", "maintenance", "remove", "backup", "2")
    assert removed.out == "removed maintenance window 2 of backup\n"
    assert relaydesk.ok("provider", "maintenance", "list", "backup").out == (
        "no maintenance windows for backup\n"
    )
    # Removing the provider removes its windows.
    relaydesk.ok("provider", "remove", "primary")
    assert relaydesk.json("provider", "maintenance", "list") == []


def test_times_without_a_zone_are_this_computers_local_time(with_provider: Relaydesk) -> None:
    tokyo = {"TZ": "Asia/Tokyo"}
    naive = ("--start", "2031-06-01T09:00", "--end", "2031-06-01T10:00")
    run = with_provider(*ADD, "primary", *naive, env=tokyo)
    assert run.code == 0, str(run)
    run = with_provider(*ADD, "primary", "--weekly", "monday", "23:30", "01:30", env=tokyo)
    assert run.code == 0, str(run)
    # --timezone says which zone naive --start/--end times are in.
    with_provider.ok(*ADD, "primary", *naive, "--timezone", "America/New_York")

    once, weekly, new_york = with_provider.json("provider", "maintenance", "list")
    assert (once["starts_at"], once["ends_at"]) == (
        "2031-06-01T00:00:00+00:00",
        "2031-06-01T01:00:00+00:00",
    )
    assert (weekly["weekday"], weekly["start_time"], weekly["timezone"]) == (
        "monday",
        "23:30",
        "Asia/Tokyo",
    )
    assert weekly["duration_minutes"] == 90
    assert new_york["starts_at"] == "2031-06-01T13:00:00+00:00"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("ghost", "--weekly", "sun", "02:00", "1h"), "no provider named 'ghost'"),
        (("primary", "--weekly", "someday", "02:00", "1h"), "'someday' is not a weekday"),
        (("primary", "--weekly", "sun", "25:00", "1h"), "'25:00' is not HH:MM"),
        (("primary", "--weekly", "sun", "02:00", "0m"), "at least one minute"),
        (("primary", "--weekly", "sun", "02:00", "8d"), "7 days at most"),
        (("primary", "--weekly", "sun", "02:00", "soon"), "'soon' is not like 90m"),
        (("primary", "--weekly", "sun", "02:00"), "expected 3 arguments"),
        (
            ("primary", "--weekly", "sun", "02:00", "1h", "--timezone", "Mars/Base"),
            "unknown time zone 'Mars/Base'",
        ),
        (
            ("primary", "--start", "2031-01-02T00:00Z", "--end", "2031-01-01T00:00Z"),
            "the window must end after it starts",
        ),
        (("primary", "--start", "tomorrow", "--end", "2031-01-01T00:00Z"), "--start: 'tomorrow'"),
        (("primary", "--start", "2031-01-01T00:00Z"), "give --start and --end"),
        (
            ("primary", "--start", "2031-01-01T00:00Z", "--end", "2031-01-02T00:00Z", *WEEKLY),
            "not both",
        ),
        (
            ("primary", "--weekly", "sun", "02:00", "1h", "--note", "fine\r\nBcc: x@example.com"),
            "note must not contain line breaks",
        ),
    ],
)
def test_bad_windows_are_refused_with_one_line(
    with_provider: Relaydesk, args: tuple[str, ...], says: str
) -> None:
    assert says in with_provider.fails(*ADD, *args, code=2)
    assert with_provider.json("provider", "maintenance", "list") == []


def test_removing_what_is_not_there(with_provider: Relaydesk) -> None:
    remove = ("provider", "maintenance", "remove")
    assert "has no maintenance window 9" in with_provider.fails(*remove, "primary", "9")
    assert "no provider named 'ghost'" in with_provider.fails(*remove, "ghost", "1")
    assert "invalid int value" in with_provider.fails(*remove, "primary", "one")
    assert "no provider named 'ghost'" in with_provider.fails(
        "provider", "maintenance", "list", "ghost"
    )
    assert with_provider.ok("provider", "maintenance", "list").out == "no maintenance windows\n"
