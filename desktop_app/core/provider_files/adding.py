"""Putting providers that came from elsewhere (a TOML file, Thunderbird, the first-run wizard)
into a workspace: which are added, replaced or skipped, and where they go in priority.

Where a provider goes when nobody gave it a priority is decided once, by ``next_priority``:
behind every provider there is. ``relaydesk provider add``, the imports and the priority the
Providers page suggests for a new provider all use it.

Planning is pure (the window shows a plan before anything is stored); applying it, and
adding a batch of providers with their passwords, stores all of it or none of it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from desktop_app.core.models import ProviderConfig
from desktop_app.core.provider_files.thunderbird import SkippedServer
from desktop_app.core.provider_files.toml_file import PROVIDER_SETTINGS
from desktop_app.core.workspace import Workspace

log = logging.getLogger(__name__)

ADDED = "added"
REPLACED = "replaced"
SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an import does with one provider (or one server it could not use)."""

    name: str
    action: str  # added, replaced, skipped; "would be added"... on a dry run
    detail: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "action": self.action, "detail": self.detail}

    def line(self) -> str:
        return f"{self.action} {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What importing some providers would do; nothing is stored by making one."""

    additions: tuple[ProviderConfig, ...]
    #: (the stored provider, the settings that overwrite it)
    replacements: tuple[tuple[ProviderConfig, ProviderConfig], ...]
    #: One per provider offered, in their order.
    outcomes: tuple[ImportOutcome, ...]


def describe_server(config: ProviderConfig) -> str:
    """``host:port, security``: how an import names where a provider sends."""
    return f"{config.host}:{config.port}, {config.security.value}"


def plan_import(
    existing: Iterable[ProviderConfig],
    incoming: Iterable[ProviderConfig],
    *,
    replace_existing: bool = False,
) -> ImportPlan:
    """Decide per provider: added, replaced (``replace_existing``) or skipped (its name is
    taken; names compare case-insensitively, as everywhere)."""
    stored = {p.name.casefold(): p for p in existing}
    planned: set[str] = set()
    additions: list[ProviderConfig] = []
    replacements: list[tuple[ProviderConfig, ProviderConfig]] = []
    outcomes: list[ImportOutcome] = []
    for config in incoming:
        key = config.name.casefold()
        current = stored.get(key)
        if key in planned or (current is not None and not replace_existing):
            outcomes.append(ImportOutcome(config.name, SKIPPED, "a provider with this name exists"))
            continue
        planned.add(key)
        if current is not None:
            replacements.append((current, config))
            outcomes.append(ImportOutcome(config.name, REPLACED, describe_server(config)))
        else:
            additions.append(config)
            outcomes.append(ImportOutcome(config.name, ADDED, describe_server(config)))
    return ImportPlan(tuple(additions), tuple(replacements), tuple(outcomes))


def next_priority(existing: Iterable[ProviderConfig]) -> int:
    """The priority of a provider added without one: behind all of ``existing`` (their
    highest priority + 1), or 0 when there are none. A backup added without a priority must
    not become the primary."""
    return max((p.priority for p in existing), default=-1) + 1


def place_unprioritized(
    providers: Iterable[ProviderConfig],
    unprioritized: Collection[str],
    existing: Iterable[ProviderConfig],
) -> list[ProviderConfig]:
    """``providers`` with a priority for each one named in ``unprioritized`` (a file gave it
    none): the one it would get added alone, in this order, after ``existing``
    (``next_priority`` of those and of the providers before it). One that has the name of an
    ``existing`` provider keeps that provider's priority (an import with --replace must not
    move it). The others keep their own priority."""
    names = {name.casefold() for name in unprioritized}
    stored = list(existing)
    current = {p.name.casefold(): p.priority for p in stored}
    placed: list[ProviderConfig] = []
    for config in providers:
        key = config.name.casefold()
        if key in names:
            priority = current.get(key)
            if priority is None:
                priority = next_priority([*stored, *placed])
            config = replace(config, priority=priority)
        placed.append(config)
    return placed


def add_provider(
    ws: Workspace,
    config: ProviderConfig,
    password: str | None = None,
    *,
    priority: int | None = None,
) -> ProviderConfig:
    """Add one provider at ``priority``, or, when that is ``None``, behind every stored
    provider (``next_priority``); ``config.priority`` is not looked at."""
    if priority is None:
        priority = next_priority(ws.list_providers())
    return ws.add_provider(replace(config, priority=priority), password)


def after_existing(
    providers: Iterable[ProviderConfig], existing: Iterable[ProviderConfig]
) -> list[ProviderConfig]:
    """``providers`` moved behind the ``existing`` ones in priority, keeping their own
    order and tiers: an import must not change where today's mail goes."""
    first = next_priority(existing)
    incoming = list(providers)
    lowest = min((p.priority for p in incoming), default=0)
    return [replace(p, priority=first + p.priority - lowest) for p in incoming]


def skipped_outcomes(servers: Iterable[SkippedServer]) -> list[ImportOutcome]:
    """Thunderbird servers that could not become providers, as outcomes to show."""
    return [ImportOutcome(f"(Thunderbird server {s.key})", SKIPPED, s.reason) for s in servers]


def import_providers(
    ws: Workspace,
    providers: Sequence[ProviderConfig],
    *,
    replace_existing: bool = False,
    dry_run: bool = False,
    unprioritized: Collection[str] = (),
) -> list[ImportOutcome]:
    """Plan against the stored providers and, unless ``dry_run``, apply the plan.

    The providers named in ``unprioritized`` go behind the stored ones, in their order
    (``place_unprioritized``). Passwords are never part of an import: the added providers
    have none.
    """
    existing = ws.list_providers()
    if unprioritized:
        providers = place_unprioritized(providers, unprioritized, existing)
    plan = plan_import(existing, providers, replace_existing=replace_existing)
    if dry_run:
        return [
            replace(o, action=f"would be {o.action}") if o.action != SKIPPED else o
            for o in plan.outcomes
        ]
    apply_import(ws, plan)
    return list(plan.outcomes)


def apply_import(ws: Workspace, plan: ImportPlan) -> None:
    """Store what ``plan`` says: the additions all or none, then the replacements."""
    add_providers(ws, [(config, None) for config in plan.additions])
    for current, config in plan.replacements:
        _replace(ws, current, config)


def add_providers(
    ws: Workspace, entries: Sequence[tuple[ProviderConfig, str | None]]
) -> list[ProviderConfig]:
    """Add each provider (password to the keyring, maintenance windows after it), all or
    nothing: when one fails (a keyring that is not there, a name taken meanwhile), the ones
    added before it are removed again and the error is raised."""
    added: list[ProviderConfig] = []
    try:
        for config, password in entries:
            stored = ws.add_provider(replace(config, maintenance=()), password)
            added.append(stored)
            for window in config.maintenance:
                ws.add_maintenance(stored.name, window)
    except BaseException:
        for stored in reversed(added):
            _undo_add(ws, stored)
        raise
    return added


def _undo_add(ws: Workspace, stored: ProviderConfig) -> None:
    try:
        ws.remove_provider(stored.name)  # its maintenance windows go with it
    except Exception:  # the error that made us undo is the one to report
        log.warning("could not remove %s again after a failed import", stored.name, exc_info=True)


def _replace(ws: Workspace, current: ProviderConfig, config: ProviderConfig) -> None:
    changes: dict[str, Any] = {name: getattr(config, name) for name in PROVIDER_SETTINGS}
    ws.update_provider(current.name, changes)
    for window in current.maintenance:
        if window.id is not None:
            ws.remove_maintenance(current.name, window.id)
    for window in config.maintenance:
        ws.add_maintenance(current.name, window)
