"""Adding providers from elsewhere: the plan (added, replaced, skipped), priorities after the
existing providers, and a batch stored all or nothing. The keyring here is a stand-in; the
real Secret Service is exercised by tests/gui/test_gui_first_run_wizard.py and the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.core.errors import KeyringUnavailableError
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow, ProviderConfig, Security
from desktop_app.core.provider_files.adding import (
    ImportOutcome,
    add_provider,
    add_providers,
    after_existing,
    import_providers,
    next_priority,
    place_unprioritized,
    plan_import,
)
from desktop_app.core.secrets import SecretStore
from desktop_app.core.storage.database import DATABASE_FILENAME, Database
from desktop_app.core.workspace import Workspace


def provider(name: str, priority: int = 0, **fields: object) -> ProviderConfig:
    return ProviderConfig(
        name=name, host="127.0.0.1", port=2525, security=Security.NONE, priority=priority, **fields
    )


class NoKeyring(SecretStore):
    """A machine without a usable keyring: every write fails as the real one does."""

    def set_password(self, uid: str, password: str) -> None:
        raise KeyringUnavailableError("no OS keyring is available to store provider passwords")

    def delete_password(self, uid: str) -> None:
        pass  # nothing was stored


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    database = Database.open_file(tmp_path / DATABASE_FILENAME)
    ws = Workspace(tmp_path, database, NoKeyring())
    yield ws
    ws.close()


def test_plan_adds_new_names_and_skips_taken_ones_case_insensitively() -> None:
    plan = plan_import(
        [provider("Relay")], [provider("relay"), provider("Other"), provider("OTHER")]
    )
    assert [p.name for p in plan.additions] == ["Other"]
    assert plan.replacements == ()
    assert plan.outcomes == (
        ImportOutcome("relay", "skipped", "a provider with this name exists"),
        ImportOutcome("Other", "added", "127.0.0.1:2525, none"),
        ImportOutcome("OTHER", "skipped", "a provider with this name exists"),
    )
    replacing = plan_import([provider("Relay")], [provider("relay")], replace_existing=True)
    assert [(current.name, new.name) for current, new in replacing.replacements] == [
        ("Relay", "relay")
    ]


def test_after_existing_keeps_order_and_tiers() -> None:
    moved = after_existing(
        [provider("A", 5), provider("B", 5), provider("C", 7)], [provider("X", 0), provider("Y", 2)]
    )
    assert [(p.name, p.priority) for p in moved] == [("A", 3), ("B", 3), ("C", 5)]
    assert [p.priority for p in after_existing([provider("A", 4)], [])] == [0]


def test_without_a_priority_a_provider_goes_behind_all_the_others() -> None:
    assert next_priority([]) == 0
    assert next_priority([provider("A", 0)]) == 1
    assert next_priority([provider("A", 3), provider("B", 1)]) == 4


def test_unprioritized_providers_are_placed_in_order_behind_existing_and_earlier_ones() -> None:
    placed = place_unprioritized(
        [provider("new"), provider("pinned", 9), provider("later"), provider("relay", 0)],
        {"NEW", "later", "Relay"},
        [provider("A", 2), provider("relay", 1)],
    )
    # "relay" replaces a stored provider: it keeps that one's priority.
    assert [(p.name, p.priority) for p in placed] == [
        ("new", 3),
        ("pinned", 9),
        ("later", 10),
        ("relay", 1),
    ]


def test_add_provider_without_priority_goes_behind(workspace: Workspace) -> None:
    assert add_provider(workspace, provider("first", 7)).priority == 0  # config's is not used
    assert add_provider(workspace, provider("pinned"), priority=4).priority == 4
    assert add_provider(workspace, provider("backup")).priority == 5
    assert [p.name for p in workspace.list_providers()] == ["first", "pinned", "backup"]


def test_a_batch_is_stored_all_or_nothing(workspace: Workspace) -> None:
    window = MaintenanceWindow(
        MaintenanceKind.WEEKLY, weekday=0, start_minute=60, duration_minutes=30, timezone="UTC"
    )
    with pytest.raises(KeyringUnavailableError):
        add_providers(
            workspace,
            [
                (provider("First", 0, maintenance=(window,)), None),
                (provider("Second", 1, username="mailer"), "secret"),
            ],
        )
    assert workspace.list_providers() == []
    assert workspace.list_maintenance() == {}

    stored = add_providers(workspace, [(provider("First", 0, maintenance=(window,)), None)])
    assert [p.name for p in stored] == ["First"]
    assert len(workspace.list_maintenance("First")["First"]) == 1


def test_a_dry_run_says_what_would_happen_and_stores_nothing(workspace: Workspace) -> None:
    workspace.add_provider(provider("Relay"))
    outcomes = import_providers(workspace, [provider("Relay"), provider("New")], dry_run=True)
    assert [o.line() for o in outcomes] == [
        "skipped Relay: a provider with this name exists",
        "would be added New: 127.0.0.1:2525, none",
    ]
    assert [p.name for p in workspace.list_providers()] == ["Relay"]
