"""Folder paths as typed, translated to a server's hierarchy delimiter (issue 14, defect 7)."""

from __future__ import annotations

import pytest

from desktop_app.core.bounces.mailboxes import (
    MailboxConfig,
    MailboxRole,
    folder_levels,
    server_folder,
    validate_mailbox,
)
from desktop_app.core.errors import UserInputError
from desktop_app.core.models import Security


@pytest.mark.parametrize(
    ("typed", "levels"),
    [
        ("INBOX", ["INBOX"]),
        ("Relaydesk/Processed", ["Relaydesk", "Processed"]),
        ("Relaydesk.Processed", ["Relaydesk", "Processed"]),
        ("a/b.c", ["a", "b", "c"]),
        ("/a//b/", ["a", "b"]),
        (" Relaydesk / Processed ", ["Relaydesk", "Processed"]),
    ],
)
def test_both_slash_and_dot_separate_levels(typed: str, levels: list[str]) -> None:
    assert folder_levels(typed) == levels


@pytest.mark.parametrize(
    ("typed", "delimiter", "expected"),
    [
        ("Relaydesk/Processed", ".", "Relaydesk.Processed"),
        ("Relaydesk.Processed", ".", "Relaydesk.Processed"),
        ("Relaydesk/Processed", "/", "Relaydesk/Processed"),
        ("Relaydesk.Processed", "/", "Relaydesk/Processed"),
        ("INBOX", ".", "INBOX"),
        ("INBOX/Bounces", ".", "INBOX.Bounces"),
        ("Relaydesk/Processed", None, "Relaydesk/Processed"),  # flat: as typed
    ],
)
def test_server_folder_uses_the_servers_delimiter(
    typed: str, delimiter: str | None, expected: str
) -> None:
    assert server_folder(typed, delimiter) == expected


def config(**changes: str) -> MailboxConfig:
    values = {"folder": "INBOX", "processed_folder": "Relaydesk/Processed", **changes}
    return MailboxConfig(
        name="bounces",
        role=MailboxRole.BOUNCES,
        host="127.0.0.1",
        port=143,
        security=Security.NONE,
        username="u",
        **values,
    )


def test_a_typed_path_is_stored_as_typed() -> None:
    assert validate_mailbox(config(processed_folder="Relaydesk.Done")).processed_folder == (
        "Relaydesk.Done"
    )


@pytest.mark.parametrize(
    ("folder", "processed"),
    [("Box/Done", "Box.Done"), ("inbox", "INBOX"), ("Box/Done", "Box/Done/")],
)
def test_the_same_folder_in_either_form_is_refused(folder: str, processed: str) -> None:
    with pytest.raises(UserInputError, match="must differ"):
        validate_mailbox(config(folder=folder, processed_folder=processed))


@pytest.mark.parametrize("typed", ["/", "./.", " . "])
def test_a_path_without_a_name_is_refused(typed: str) -> None:
    with pytest.raises(UserInputError, match="needs a name"):
        validate_mailbox(config(processed_folder=typed))
