"""The providers table through ProviderRepository, on a real SQLite file."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from desktop_app.core.errors import (
    DuplicateProviderError,
    ProviderNotFoundError,
    UserInputError,
)
from desktop_app.core.models import ProviderConfig, RateLimits, Security
from desktop_app.core.storage.providers import ProviderRepository
from tests.unit.storage.storage_rows import RawRows


def _config(name: str = "primary", **changes: object) -> ProviderConfig:
    base = ProviderConfig(name=name, host="smtp.example.com", port=587, security=Security.STARTTLS)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_add_stores_every_field_and_gives_an_id_and_uid(providers: ProviderRepository) -> None:
    config = _config(
        "full",
        host="mail.example.org",
        port=465,
        security=Security.TLS,
        username="me@example.org",
        priority=3,
        weight=5,
        max_connections=7,
        rate_limits=RateLimits(per_second=1, per_minute=2, per_hour=3, per_day=4),
        sender_domains=("example.org", "example.com"),
        enabled=False,
        allow_insecure=True,
    )

    added = providers.add(config)

    assert added.id is not None
    assert uuid.UUID(added.uid)  # a fresh keyring key when none was given
    assert added == dataclasses.replace(config, id=added.id, uid=added.uid)
    assert providers.get("full") == added


def test_add_keeps_a_given_uid(providers: ProviderRepository) -> None:
    assert providers.add(_config(uid="fixed-uid")).uid == "fixed-uid"


def test_a_duplicate_name_is_refused_and_nothing_is_added(
    providers: ProviderRepository, rows: RawRows
) -> None:
    providers.add(_config("same"))

    with pytest.raises(DuplicateProviderError) as caught:
        providers.add(_config("same", host="other.example.com"))

    assert isinstance(caught.value, UserInputError)
    assert "same" in str(caught.value)
    assert [r["host"] for r in rows.query("SELECT host FROM providers")] == ["smtp.example.com"]


def test_update_changes_fields_and_may_rename(providers: ProviderRepository) -> None:
    original = providers.add(_config("old"))

    updated = providers.update("old", dataclasses.replace(original, name="new", port=2525))

    assert (updated.name, updated.port, updated.id, updated.uid) == (
        "new",
        2525,
        original.id,
        original.uid,
    )
    assert providers.get("new") == updated
    with pytest.raises(ProviderNotFoundError):
        providers.get("old")


def test_renaming_onto_an_existing_name_is_refused_and_nothing_changes(
    providers: ProviderRepository,
) -> None:
    first = providers.add(_config("first"))
    second = providers.add(_config("second", port=25))

    with pytest.raises(DuplicateProviderError):
        providers.update("second", dataclasses.replace(second, name="first", port=26))

    assert providers.get("first") == first
    assert providers.get("second") == second


def test_unknown_names_are_not_found(providers: ProviderRepository) -> None:
    for action in (
        lambda: providers.get("ghost"),
        lambda: providers.update("ghost", _config("ghost")),
        lambda: providers.remove("ghost"),
    ):
        with pytest.raises(ProviderNotFoundError) as caught:
            action()
        assert isinstance(caught.value, LookupError)
        assert "ghost" in str(caught.value)


def test_remove_returns_what_was_removed(providers: ProviderRepository) -> None:
    added = providers.add(_config("gone"))
    providers.add(_config("stays"))

    assert providers.remove("gone") == added
    assert [p.name for p in providers.all()] == ["stays"]


def test_all_lists_most_preferred_first_then_by_name(providers: ProviderRepository) -> None:
    for name, priority in (("c", 1), ("b", 0), ("a", 1), ("d", 0)):
        providers.add(_config(name, priority=priority))

    assert [p.name for p in providers.all()] == ["b", "d", "a", "c"]


def test_set_priorities_numbers_providers_in_the_given_order(
    providers: ProviderRepository,
) -> None:
    for name in ("a", "b", "c"):
        providers.add(_config(name, priority=9))

    providers.set_priorities(["c", "a", "b"])

    assert [(p.name, p.priority) for p in providers.all()] == [("c", 0), ("a", 1), ("b", 2)]


def test_set_priorities_with_an_unknown_name_changes_nothing(
    providers: ProviderRepository,
) -> None:
    for name in ("a", "b"):
        providers.add(_config(name, priority=5))

    with pytest.raises(ProviderNotFoundError):
        providers.set_priorities(["b", "ghost", "a"])

    assert [(p.name, p.priority) for p in providers.all()] == [("a", 5), ("b", 5)]
