"""``relaydesk send`` and ``relaydesk outbox``: what gets queued, and what never does."""

from __future__ import annotations

import email
import email.policy
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.cli.cli_harness import Relaydesk
from tests.support.scripted_smtp import ScriptedSMTPServer

OUTBOX_KEYS = {
    *("queued", "sending", "deferred", "sent", "failed", "unknown", "cancelled", "bounced"),
    "held",
}
SENDER = "news@example.com"


def _send(body: Path, *extra: str, subject: str = "Hello") -> tuple[str, ...]:
    return ("send", "--from", SENDER, "--subject", subject, "--text-file", str(body), *extra)


def test_to_twice_queues_one_message_for_both(relaydesk: Relaydesk, body: Path) -> None:
    run = relaydesk.ok(*_send(body, "--to", "a@example.net", "--to", "b@example.org"))

    (row,) = relaydesk.outbox_rows()
    assert row["recipients"] == ["a@example.net", "b@example.org"]
    assert row["remaining_recipients"] == ["a@example.net", "b@example.org"]
    assert (row["state"], row["envelope_from"], row["subject"]) == ("queued", SENDER, "Hello")
    assert run.out == (
        f"queued 1 message {row['message_id']}\n"
        "no provider is enabled yet: it waits in the outbox until one is\n"
    )
    parsed = email.message_from_bytes(row["raw"], policy=email.policy.default)
    assert parsed["Message-ID"] == row["message_id"]
    assert [a.addr_spec for a in parsed["To"].addresses] == ["a@example.net", "b@example.org"]
    assert parsed.get_content().replace("\r\n", "\n") == "Hello from the tests.\n"


def test_to_file_queues_one_message_per_address(
    relaydesk: Relaydesk, body: Path, tmp_path: Path
) -> None:
    addresses = [f"reader{i}@example.net" for i in range(5)]
    to_file = tmp_path / "list.txt"
    to_file.write_text(
        "# newsletter readers\n\n" + "\n".join(f"  {a} " for a in addresses) + "\n",
        encoding="utf-8",
    )

    run = relaydesk.ok(*_send(body, "--to-file", str(to_file)))

    assert run.out.splitlines()[0] == "queued 5 messages"
    rows = relaydesk.outbox_rows()
    assert [r["recipients"] for r in rows] == [[a] for a in addresses]
    assert len({r["message_id"] for r in rows}) == 5
    for row in rows:
        parsed = email.message_from_bytes(row["raw"], policy=email.policy.default)
        assert parsed["Message-ID"] == row["message_id"]
    assert relaydesk.json("outbox")["queued"] == 5


def test_outbox_json_has_exactly_the_documented_keys(relaydesk: Relaydesk, body: Path) -> None:
    counts = relaydesk.json("outbox")
    assert set(counts) == OUTBOX_KEYS
    assert set(counts.values()) == {0}

    relaydesk.ok(*_send(body, "--to", "a@example.net"))

    counts = relaydesk.json("outbox")
    assert set(counts) == OUTBOX_KEYS
    assert counts == {**dict.fromkeys(OUTBOX_KEYS, 0), "queued": 1}
    lines = relaydesk.ok("outbox").out.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(OUTBOX_KEYS)
    assert "queued     1" in lines


@pytest.mark.parametrize(
    "subject",
    [
        "Hello\r\nBcc: everyone@example.org",
        "Hello\nBcc: everyone@example.org",
        "trailing newline\n",
        "=?utf-8?q?Hello=0D=0ABcc:_everyone@example.org?=",
    ],
)
def test_a_line_break_in_the_subject_queues_nothing(
    relaydesk: Relaydesk, body: Path, tmp_path: Path, subject: str
) -> None:
    to_file = tmp_path / "list.txt"
    to_file.write_text("a@example.net\nb@example.net\n", encoding="utf-8")

    for recipients in (("--to", "a@example.net"), ("--to-file", str(to_file))):
        error = relaydesk.fails(*_send(body, *recipients, subject=subject))
        assert "subject" in error

    assert relaydesk.outbox_rows() == []


@pytest.mark.parametrize(
    "recipients",
    [
        ("--to", "not-an-address"),
        ("--to", "a@example.net", "--to", "b@@example.net"),
        ("--to", "Someone <a@example.net>"),
        ("--to", "a@example.net\r\nRCPT TO:<x@example.org>"),
    ],
)
def test_a_bad_recipient_queues_nothing(
    relaydesk: Relaydesk, body: Path, recipients: tuple[str, ...]
) -> None:
    assert relaydesk.fails(*_send(body, *recipients)).startswith("to")
    assert relaydesk.outbox_rows() == []


def test_a_bad_sender_queues_nothing(relaydesk: Relaydesk, body: Path) -> None:
    error = relaydesk.fails("send", "--from", "news at example.com", "--to", "a@example.net",
                            "--subject", "x", "--text-file", str(body))  # fmt: skip
    assert error.startswith("from")
    assert relaydesk.outbox_rows() == []


def test_one_bad_line_in_a_to_file_queues_none_of_it(
    relaydesk: Relaydesk, body: Path, tmp_path: Path
) -> None:
    to_file = tmp_path / "list.txt"
    to_file.write_text("a@example.net\nb@example.net\nnot an address\nc@example.net\n")

    assert "not an address" in relaydesk.fails(*_send(body, "--to-file", str(to_file)))
    assert relaydesk.outbox_rows() == []


@pytest.mark.parametrize(
    ("make_file", "fragment"),
    [
        (lambda d: d / "missing.txt", "cannot read text file"),
        (lambda d: d, "cannot read text file"),  # a directory
        (lambda d: _write_bytes(d / "latin1.txt", "Grüße".encode("latin-1")), "not UTF-8"),
    ],
)
def test_an_unreadable_body_is_one_line(
    relaydesk: Relaydesk, tmp_path: Path, make_file: object, fragment: str
) -> None:
    path = make_file(tmp_path)  # type: ignore[operator]

    error = relaydesk.fails(*_send(path, "--to", "a@example.net"))

    assert fragment in error
    assert str(path) in error
    assert relaydesk.outbox_rows() == []


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_an_unreadable_or_empty_to_file_is_one_line(
    relaydesk: Relaydesk, body: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nobody.txt"
    assert "recipient file" in relaydesk.fails(*_send(body, "--to-file", str(missing)))

    only_comments = tmp_path / "comments.txt"
    only_comments.write_text("# nobody yet\n\n")
    assert "no addresses" in relaydesk.fails(*_send(body, "--to-file", str(only_comments)))
    assert relaydesk.outbox_rows() == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("send", "--from", SENDER, "--to", "a@example.net", "--subject", "x"), "--text-file"),
        (("send", "--from", SENDER, "--subject", "x", "--text-file", "b.txt"), "--to"),
        (("send", "--to", "a@example.net", "--subject", "x", "--text-file", "b.txt"), "--from"),
        (("send", "--from", SENDER, "--to", "a@x.net", "--to-file", "l.txt", "--subject", "x"),
         "not allowed"),
    ],
)  # fmt: skip
def test_missing_or_conflicting_send_options_are_one_line(
    relaydesk: Relaydesk, args: tuple[str, ...], fragment: str
) -> None:
    assert fragment in relaydesk.fails(*args)
    assert relaydesk.outbox_rows() == []


def test_html_body_is_queued_as_html(relaydesk: Relaydesk, tmp_path: Path) -> None:
    html = tmp_path / "body.html"
    html.write_text("<p>Grüße</p>\n", encoding="utf-8")

    relaydesk.ok("send", "--from", SENDER, "--to", "a@example.net", "--subject", "Grüße",
                 "--html-file", str(html))  # fmt: skip

    (row,) = relaydesk.outbox_rows()
    parsed = email.message_from_bytes(row["raw"], policy=email.policy.default)
    assert parsed.get_content_type() == "text/html"
    assert parsed["Subject"] == "Grüße"
    assert row["subject"] == "Grüße"


def test_run_until_idle_with_nothing_pending_ends_at_once(relaydesk: Relaydesk) -> None:
    # No provider at all, nothing queued: nothing to wait for.
    run = relaydesk("run", "--until-idle", "--quiet")
    assert run.code == 0, str(run)
    assert "0 pending" in run.out
    relaydesk.ok(
        "provider", "add", "off", "--host", "127.0.0.1", "--port", "9", "--security", "none"
    )
    relaydesk.ok("provider", "set", "off", "--disable")
    run = relaydesk("run", "--until-idle", "--quiet")
    assert run.code == 0, str(run)


def test_run_until_idle_with_mail_and_no_enabled_provider_says_so_and_exits_3(
    relaydesk: Relaydesk, body: Path
) -> None:
    relaydesk.ok(
        "provider", "add", "off", "--host", "127.0.0.1", "--port", "9", "--security", "none"
    )
    relaydesk.ok("provider", "set", "off", "--disable")
    relaydesk.ok(*_send(body, "--to", "b@example.com"))
    relaydesk.ok(*_send(body, "--to", "c@example.com"))
    # Without --timeout: it must end by itself, long before the harness's 120 s limit.
    run = relaydesk("run", "--until-idle", "--quiet")
    assert run.code == 3, str(run)
    assert run.err == "relaydesk: 2 messages wait: no provider is enabled\n", str(run)
    assert "Traceback" not in run.out
    assert [row["state"] for row in relaydesk.outbox_rows()] == ["queued", "queued"]


# -- NUL in a body (issue 14, item 5) -------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "content", "fragment"),
    [
        ("--text-file", "Hi\nwo\x00\n", "text body contains a NUL character (line 2, column 3)"),
        ("--html-file", "<p>\x00</p>\n", "HTML body contains a NUL character (line 1, column 4)"),
        ("--text-file", "Grüße\x00\n", "text body contains a NUL character (line 1, column 6)"),
    ],
)  # fmt: skip
def test_a_nul_in_a_body_is_one_line_and_queues_nothing(
    relaydesk: Relaydesk, tmp_path: Path, option: str, content: str, fragment: str
) -> None:
    # An ASCII body went out raw under "Content-Transfer-Encoding: 7bit", NUL and all.
    path = tmp_path / "body"
    path.write_text(content, encoding="utf-8")
    to_file = tmp_path / "list.txt"
    to_file.write_text("a@example.net\nb@example.net\n", encoding="utf-8")

    for recipients in (("--to", "a@example.net"), ("--to-file", str(to_file))):
        error = relaydesk.fails("send", "--from", SENDER, "--subject", "x", option, str(path),
                                *recipients)  # fmt: skip
        assert error.startswith(f"the {fragment}; ")

    assert relaydesk.outbox_rows() == []


def test_a_queued_message_with_a_nul_never_reaches_the_wire(
    relaydesk: Relaydesk,
    body: Path,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
) -> None:
    # Queued by a version that did not refuse NUL yet: it fails, and no server is sent it.
    server = scripted_smtp()
    relaydesk.ok("provider", "add", "primary", "--host", "127.0.0.1", "--port", str(server.port),
                 "--security", "none", "--allow-insecure")  # fmt: skip
    relaydesk.ok(*_send(body, "--to", "a@example.net"))
    (row,) = relaydesk.outbox_rows()
    with closing(sqlite3.connect(relaydesk.database)) as connection, connection:
        connection.execute(
            "UPDATE outbox SET raw = ? WHERE id = ?", (row["raw"] + b"NUL\x00\r\n", row["id"])
        )

    relaydesk.ok("run", "--until-idle", "--timeout", "60", "--quiet")

    (row,) = relaydesk.outbox_rows()
    assert row["state"] == "failed"
    assert "NUL" in row["last_error"]
    assert server.messages == []
    assert server.command_count("MAIL") == 0
