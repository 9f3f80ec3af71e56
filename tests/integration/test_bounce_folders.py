"""Folder paths on IMAP servers with either hierarchy separator (issue 14, defect 7).

A stock Dovecot with Maildir separates levels with "." and refuses "Relaydesk/Processed"
("Name must not have '/' characters"); others want "/". Every test runs against both, with
what a person may type in either form.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.bounces.processor import MailboxReport
from desktop_app.core.models import Security
from desktop_app.core.workspace import Workspace
from tests.support import bounce_samples as samples
from tests.support.dovecot import DovecotServer
from tests.support.tls import TestCA

PASSWORD = "folder-box-secret-1618"

Separator = Literal["/", "."]


@pytest.fixture(params=["/", "."], ids=["slash-server", "dot-server"])
def imap(
    request: pytest.FixtureRequest,
    dovecot: Callable[..., DovecotServer],
    test_ca: TestCA,
    monkeypatch: pytest.MonkeyPatch,
) -> DovecotServer:
    test_ca.trust(monkeypatch)
    server = dovecot(users={"bounces": PASSWORD}, separator=request.param)
    with server.session("bounces") as client:  # the layout really is the one asked for
        ((_flags, delimiter, _name),) = client.list_folders("", "")
    assert delimiter == request.param.encode()
    return server


@pytest.fixture
def workspace(data_dir: Path, secret_service: dict[str, str]) -> Iterator[Workspace]:
    ws = Workspace.open(data_dir)
    yield ws
    ws.close()


def mailbox(imap: DovecotServer, **changes: Any) -> MailboxConfig:
    values: dict[str, Any] = {
        "name": "bounces",
        "role": MailboxRole.BOUNCES,
        "host": "127.0.0.1",
        "port": imap.port,
        "security": Security.STARTTLS,
        "username": "bounces",
    }
    values.update(changes)
    return MailboxConfig(**values)


def only_report(results: list[Any]) -> MailboxReport:
    (result,) = results
    assert isinstance(result, MailboxReport), result
    return result


def test_a_bounce_is_read_and_moved_to_the_default_processed_folder(
    workspace: Workspace, imap: DovecotServer
) -> None:
    imap.append("bounces", "INBOX", samples.gmail("gone@example.net", "<x.1@example.com>"))
    config = workspace.configure_mailbox(mailbox(imap), PASSWORD)
    assert config.processed_folder == "Relaydesk/Processed"  # the default, as stored

    report = only_report(workspace.check_mailboxes())

    assert report.applied.hard == ["gone@example.net"] and report.moved == 1
    processed = f"Relaydesk{imap.separator}Processed"
    assert processed in imap.folders("bounces")
    assert len(imap.fetch_all("bounces", processed)) == 1
    assert imap.fetch_all("bounces", "INBOX") == []
    (stored,) = workspace.mailboxes.all()
    assert stored.last_error is None


@pytest.mark.parametrize("typed", ["/", "."], ids=["typed-slash", "typed-dot"])
def test_a_typed_nested_path_works_in_either_form(
    workspace: Workspace, imap: DovecotServer, typed: Separator
) -> None:
    server = imap.separator
    imap.append(
        "bounces",
        f"Bounces{server}Incoming",
        samples.gmail("gone@example.net", "<x.1@example.com>"),
    )
    imap.append("bounces", f"Bounces{server}Incoming", samples.ordinary("ann@example.org"))
    config = mailbox(
        imap,
        folder=f"Bounces{typed}Incoming",
        processed_folder=f"Relaydesk{typed}Done{typed}Bounces",
    )

    assert workspace.test_mailbox(config, PASSWORD).messages == 2
    workspace.configure_mailbox(config, PASSWORD)
    report = only_report(workspace.check_mailboxes())

    assert report.applied.hard == ["gone@example.net"] and report.moved == 1
    assert len(report.unrecognised) == 1
    done = server.join(["Relaydesk", "Done", "Bounces"])
    assert len(imap.fetch_all("bounces", done)) == 1
    assert len(imap.fetch_all("bounces", f"Bounces{server}Incoming")) == 1
    # Read again: nothing new, and the existing processed folder is found, not re-created.
    imap.append(
        "bounces",
        f"Bounces{server}Incoming",
        samples.gmail("lost@example.net", "<x.2@example.com>"),
    )
    again = only_report(workspace.check_mailboxes())
    assert again.applied.hard == ["lost@example.net"] and again.moved == 1
    assert len(imap.fetch_all("bounces", done)) == 2
