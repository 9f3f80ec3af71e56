"""``relaydesk bounces configure|check|list|mailboxes|remove`` against a real Dovecot, with
the mailbox password in a real Secret Service."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cli.cli_harness import Relaydesk
from tests.support import bounce_samples as samples
from tests.support.dovecot import DovecotServer
from tests.support.tls import TestCA

PASSWORD = "imap-secret-2718"


@pytest.fixture
def cli(relaydesk: Relaydesk, secret_service: dict[str, str], test_ca: TestCA) -> Relaydesk:
    relaydesk.env.pop("PYTHON_KEYRING_BACKEND", None)
    relaydesk.env.update(secret_service)
    relaydesk.env.update(test_ca.client_env())
    return relaydesk


def configure(cli: Relaydesk, imap: DovecotServer, *extra: str, password: str = PASSWORD) -> None:
    cli.ok(
        "bounces", "configure", "--host", "127.0.0.1", "--port", str(imap.tls_port),
        "--security", "tls", "--username", "bounces", "--password-stdin",
        "--processed-folder", "Done", *extra, stdin=password + "\n",
    )  # fmt: skip


def test_configure_check_and_list(cli: Relaydesk, dovecot: Callable[..., DovecotServer]) -> None:
    imap = dovecot(users={"bounces": PASSWORD})
    imap.append("bounces", "INBOX", samples.gmail("gone@example.net", "<x.1@example.com>"))
    imap.append("bounces", "INBOX", samples.ordinary("ann@example.org", subject="Hello there"))
    configure(cli, imap)
    (box,) = cli.json("bounces", "mailboxes")
    assert (box["name"], box["role"], box["security"]) == ("bounces", "bounces", "tls")
    assert PASSWORD not in cli.database.read_bytes().decode("latin-1")

    (found,) = cli.json("bounces", "check")
    assert found["hard"] == ["gone@example.net"]
    assert found["suppressed"] == ["gone@example.net"]
    assert [u["subject"] for u in found["unrecognised"]] == ["Hello there"]
    text = cli.ok("bounces", "check").out  # nothing new the second time
    assert "read 0, hard 0" in text

    listed = cli.json("bounces", "list")
    assert [(e["kind"], e["address"], e["status"]) for e in listed["events"]] == [
        ("hard", "gone@example.net", "5.1.1")
    ]
    assert cli.json("suppress", "list")[0]["address"] == "gone@example.net"
    assert len(imap.fetch_all("bounces", "Done")) == 1
    assert len(imap.fetch_all("bounces", "INBOX")) == 1

    cli.ok("bounces", "remove", "bounces")
    assert cli.json("bounces", "mailboxes") == []


def test_mailbox_problems_are_one_line(
    cli: Relaydesk, dovecot: Callable[..., DovecotServer]
) -> None:
    imap = dovecot(users={"bounces": PASSWORD})
    configure(cli, imap, password="not-the-password")
    run = cli("bounces", "check")
    assert run.code == 1, str(run)
    assert "login as 'bounces' refused" in run.out
    assert "not-the-password" not in run.out + run.err

    base = ("bounces", "configure", "--host", "127.0.0.1", "--username", "u")
    assert "a new mailbox needs its password" in cli.fails(
        *base, "--port", "993", "--security", "tls", "--name", "fresh"
    )
    assert "port" in cli.fails(
        *base, "--port", "99999", "--security", "tls", "--password-stdin", stdin="x\n"
    )
    assert "must differ" in cli.fails(
        *base, "--port", "993", "--security", "tls", "--folder", "Done",
        "--processed-folder", "Done", "--password-stdin", stdin="x\n",
    )  # fmt: skip
    assert "in clear" in cli.fails(
        "bounces", "configure", "--host", "imap.example.org", "--port", "143",
        "--security", "none", "--username", "u", "--password-stdin", stdin="x\n",
    )  # fmt: skip


@pytest.mark.parametrize("separator", ["/", "."], ids=["slash-server", "dot-server"])
def test_check_files_into_the_default_processed_folder_on_either_separator(
    cli: Relaydesk, dovecot: Callable[..., DovecotServer], separator: str
) -> None:
    # A stock Dovecot (Maildir, "."): "Relaydesk/Processed" was refused (issue 14, defect 7).
    imap = dovecot(users={"bounces": PASSWORD}, separator=separator)
    imap.append("bounces", "INBOX", samples.gmail("gone@example.net", "<x.1@example.com>"))
    cli.ok(
        "bounces", "configure", "--host", "127.0.0.1", "--port", str(imap.tls_port),
        "--security", "tls", "--username", "bounces", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip

    (found,) = cli.json("bounces", "check")

    assert found["hard"] == ["gone@example.net"]
    assert len(imap.fetch_all("bounces", f"Relaydesk{separator}Processed")) == 1
    assert imap.fetch_all("bounces", "INBOX") == []
