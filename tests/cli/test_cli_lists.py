"""``relaydesk list create|import|export|show`` and ``relaydesk suppress add|remove|list``."""

from __future__ import annotations

import csv
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_harness import Relaydesk

GOOD_AND_BAD = (
    "Email;Name;City\n"
    "ann@example.com;Ann;Oslo\n"
    "not-an-address;X;Y\n"
    "ANN@example.com;Ann again;Oslo\n"
    "bob@example.com;Bob;Rome\n"
)


def subscribers(relaydesk: Relaydesk) -> list[dict[str, Any]]:
    if not relaydesk.database.exists():
        return []
    with closing(sqlite3.connect(relaydesk.database)) as connection:
        connection.row_factory = sqlite3.Row
        query = "SELECT email, name, status, fields FROM subscribers ORDER BY id"
        return [dict(row) for row in connection.execute(query)]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    return path


def test_rejects_block_the_import_and_are_listed(relaydesk: Relaydesk, source: Path) -> None:
    relaydesk.ok("list", "create", "news")

    run = relaydesk("list", "import", "news", str(source))

    assert run.code == 2, str(run)
    assert run.out.splitlines() == [
        "imported 0, duplicate 1, rejected 1",
        "line 3: rejected 'not-an-address': An email address must have an @-sign.",
        "line 4: duplicate 'ANN@example.com': same address as line 2",
    ]
    error = relaydesk.fails("list", "import", "news", str(source))
    assert error.startswith("1 row rejected (first: line 3")
    assert "--accept-valid" in error
    assert subscribers(relaydesk) == []


def test_accept_valid_imports_the_rest_and_json_reports_it(
    relaydesk: Relaydesk, source: Path
) -> None:
    relaydesk.ok("list", "create", "news")

    report = relaydesk.json("list", "import", "news", str(source), "--accept-valid")

    assert {k: report[k] for k in ("list", "imported", "duplicate", "rejected")} == {
        "list": "news",
        "imported": 2,
        "duplicate": 1,
        "rejected": 1,
    }
    assert report["rejects"] == [
        {"line": 3, "value": "not-an-address", "reason": "An email address must have an @-sign."}
    ]
    assert [r["line"] for r in report["duplicates"]] == [4]
    assert subscribers(relaydesk) == [
        {
            "email": "ann@example.com",
            "name": "Ann",
            "status": "active",
            "fields": '{"City":"Oslo"}',
        },
        {
            "email": "bob@example.com",
            "name": "Bob",
            "status": "active",
            "fields": '{"City":"Rome"}',
        },
    ]

    again = relaydesk.json("list", "import", "news", str(source), "--accept-valid")
    assert (again["imported"], again["duplicate"]) == (0, 3)


def test_show_and_export(relaydesk: Relaydesk, source: Path, tmp_path: Path) -> None:
    relaydesk.ok("list", "create", "news")
    relaydesk.ok("list", "create", "empty")
    relaydesk.ok("list", "import", "news", str(source), "--accept-valid")
    relaydesk.ok("suppress", "add", "Bob@Example.com", "--reason", "complained")

    shown = relaydesk.json("list", "show", "news")
    assert {k: v for k, v in shown.items() if k != "created_at"} == {
        "name": "news",
        "total": 2,
        "active": 2,
        "unsubscribed": 0,
        "bounced": 0,
        "complained": 0,
        "suppressed": 1,
        "sendable": 1,
    }
    assert [entry["name"] for entry in relaydesk.json("list", "show")] == ["empty", "news"]
    assert relaydesk.ok("list", "show").out.splitlines()[1] == (
        "news  total 2  active 2  unsubscribed 0  bounced 0  complained 0  sendable 1"
    )

    target = tmp_path / "out.csv"
    assert relaydesk.ok("list", "export", "news", str(target)).out == (
        f"2 subscribers written to {target}\n"
    )
    with target.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["email", "name", "status", "City"],
            ["ann@example.com", "Ann", "active", "Oslo"],
            ["bob@example.com", "Bob", "active", "Rome"],
        ]


FORMULA_NAMES = ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tx"]


def list_content(relaydesk: Relaydesk, name: str) -> list[tuple[str, str, str, str]]:
    query = (
        "SELECT s.email, s.name, s.status, s.fields FROM subscribers s "
        "JOIN lists l ON l.id = s.list_id WHERE l.name = ? ORDER BY s.id"
    )
    with closing(sqlite3.connect(relaydesk.database)) as connection:
        return [tuple(row) for row in connection.execute(query, (name,))]


def test_export_escapes_spreadsheet_formulas_and_imports_back_unchanged(
    relaydesk: Relaydesk, tmp_path: Path
) -> None:
    source = tmp_path / "formulas.csv"
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "=note"])
        writer.writerow(["=eq@example.com", FORMULA_NAMES[0], "=1+1"])
        for i, name in enumerate(FORMULA_NAMES[1:4], start=1):
            writer.writerow([f"r{i}@example.com", name, "@x"])
        # A leading tab survives the import only behind the escape the export writes; the
        # import takes one apostrophe off (so this note is stored as "'=already quoted").
        writer.writerow(["r4@example.com", "'\tx", "''=already quoted"])
        writer.writerow(["ann@example.com", "Ann", "Oslo"])
    relaydesk.ok("list", "create", "news")
    relaydesk.ok("list", "import", "news", str(source))
    stored = list_content(relaydesk, "news")
    assert [row[1] for row in stored] == [*FORMULA_NAMES, "Ann"]
    assert stored[0][0] == "=eq@example.com"
    assert json.loads(stored[4][3]) == {"=note": "'=already quoted"}

    escaped = tmp_path / "escaped.csv"
    relaydesk.ok("list", "export", "news", str(escaped))
    with escaped.open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["email", "name", "status", "'=note"],
            ["'=eq@example.com", '\'=HYPERLINK("http://x")', "active", "'=1+1"],
            ["r1@example.com", "'+cmd|' /C calc'!A0", "active", "'@x"],
            ["r2@example.com", "'@SUM(1+1)", "active", "'@x"],
            ["r3@example.com", "'-2+3", "active", "'@x"],
            ["r4@example.com", "'\tx", "active", "''=already quoted"],
            ["ann@example.com", "Ann", "active", "Oslo"],
        ]

    verbatim = tmp_path / "raw.csv"
    relaydesk.ok("list", "export", "news", str(verbatim), "--raw")
    with verbatim.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["email", "name", "status", "=note"]
    assert [row[1] for row in table[1:]] == [*FORMULA_NAMES, "Ann"]
    assert table[1][0] == "=eq@example.com"
    assert table[5][3] == "'=already quoted"

    relaydesk.ok("list", "create", "copy")
    relaydesk.ok("list", "import", "copy", str(escaped))
    assert list_content(relaydesk, "copy") == stored


def test_suppress_add_list_remove(relaydesk: Relaydesk) -> None:
    assert relaydesk.ok("suppress", "add", "Ann@EXAMPLE.com").out == (
        "Ann@example.com".lower() + " suppressed (manual)\n"
    )
    relaydesk.ok("suppress", "add", "zed@example.com", "--reason", "bounced")

    entries = relaydesk.json("suppress", "list")
    assert [(e["address"], e["reason"]) for e in entries] == [
        ("ann@example.com", "manual"),
        ("zed@example.com", "bounced"),
    ]
    relaydesk.ok("suppress", "remove", "ANN@example.com")
    assert relaydesk.ok("suppress", "list").out.startswith("zed@example.com  bounced  ")
    assert relaydesk.fails("suppress", "remove", "ann@example.com") == (
        "'ann@example.com' is not on the suppression list"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary", "NUL bytes"),
        (b"first,last\nAnn,Lee\n", "no email column"),
        (b"email|name\na@example.com|A\n", "one column only"),
        (b"email,note\na@example.com," + b"x" * 70_000 + b"\n", "line 2 is longer than 64 KB"),
    ],
    ids=["empty", "binary", "no-email-column", "wrong-delimiter", "huge-line"],
)
def test_malformed_files_are_one_line_errors_and_import_nothing(
    relaydesk: Relaydesk, tmp_path: Path, content: bytes, message: str
) -> None:
    relaydesk.ok("list", "create", "news")
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    assert message in relaydesk.fails("list", "import", "news", str(path), "--accept-valid")
    assert subscribers(relaydesk) == []


def test_usage_errors(relaydesk: Relaydesk, source: Path, tmp_path: Path) -> None:
    assert relaydesk.fails("list", "import", "nope", str(source)) == "no list named 'nope'"
    relaydesk.ok("list", "create", "news")
    assert relaydesk.fails("list", "create", "news") == "a list named 'news' already exists"
    assert relaydesk.fails("suppress", "add", "nobody") == (
        "'nobody' is not an email address: An email address must have an @-sign."
    )
    missing = tmp_path / "missing.csv"
    assert relaydesk.fails("list", "import", "news", str(missing)) == (
        f"cannot read {missing}: No such file or directory"
    )
