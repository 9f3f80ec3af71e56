"""Provider settings as a TOML file a team can share (no secrets), written with tomli-w and
read with the standard library's tomllib."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import tomli_w

from desktop_app.core.errors import UserInputError
from desktop_app.core.health.maintenance import validate_window
from desktop_app.core.models import (
    MaintenanceKind,
    MaintenanceWindow,
    ProviderConfig,
    RateLimits,
    Security,
)
from desktop_app.core.provider_files.text_file import MAX_FILE_BYTES
from desktop_app.core.provider_files.text_file import one_line as _one_line
from desktop_app.core.validation import validate_provider_config

#: The version of the TOML layout written by ``providers_to_toml``.
TOML_VERSION = 1

# -- TOML export and import -------------------------------------------------------------------

#: A provider's settings a file carries besides its name and maintenance windows (and the
#: ones an import with --replace overwrites).
PROVIDER_SETTINGS = (
    "host",
    "port",
    "security",
    "username",
    "priority",
    "weight",
    "max_connections",
    "rate_limits",
    "sender_domains",
    "enabled",
    "allow_insecure",
)
_PROVIDER_KEYS = frozenset({"name", "maintenance", *PROVIDER_SETTINGS})
_RATE_KEYS = ("per_second", "per_minute", "per_hour", "per_day")
_ONCE_KEYS = frozenset({"kind", "starts_at", "ends_at", "note"})
_WEEKLY_KEYS = frozenset(
    {"kind", "weekday", "start_minute", "duration_minutes", "timezone", "note"}
)
_NO_PASSWORDS_IN_FILES = (
    "passwords are never read from files; set it with "
    "'relaydesk provider set NAME --password-stdin'"
)


def providers_to_toml(providers: Iterable[ProviderConfig]) -> str:
    """Provider settings as TOML (``version = 1``), without any password or keyring key.

    Database ids and keyring uids are left out too: they mean nothing in another data
    directory.
    """
    document: dict[str, Any] = {
        "version": TOML_VERSION,
        "providers": [_provider_table(p) for p in providers],
    }
    return tomli_w.dumps(document)


def _provider_table(provider: ProviderConfig) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": provider.name,
        "host": provider.host,
        "port": provider.port,
        "security": Security(provider.security).value,
    }
    if provider.username:  # TOML has no null: an absent key is "no username"
        table["username"] = provider.username
    table.update(
        priority=provider.priority,
        weight=provider.weight,
        max_connections=provider.max_connections,
        enabled=provider.enabled,
        allow_insecure=provider.allow_insecure,
        sender_domains=list(provider.sender_domains),
    )
    limits = {
        key: getattr(provider.rate_limits, key)
        for key in _RATE_KEYS
        if getattr(provider.rate_limits, key) is not None
    }
    if limits:
        table["rate_limits"] = limits
    if provider.maintenance:
        table["maintenance"] = [_window_table(w) for w in provider.maintenance]
    return table


def _window_table(window: MaintenanceWindow) -> dict[str, Any]:
    if window.kind is MaintenanceKind.ONCE:
        assert window.starts_at is not None and window.ends_at is not None
        table: dict[str, Any] = {
            "kind": "once",
            "starts_at": datetime.fromtimestamp(window.starts_at, UTC),
            "ends_at": datetime.fromtimestamp(window.ends_at, UTC),
        }
    else:
        table = {
            "kind": "weekly",
            "weekday": window.weekday,
            "start_minute": window.start_minute,
            "duration_minutes": window.duration_minutes,
            "timezone": window.timezone,
        }
    if window.note:
        table["note"] = window.note
    return table


@dataclass(frozen=True, slots=True)
class ProvidersFile:
    """What a TOML providers file holds."""

    providers: tuple[ProviderConfig, ...]
    #: The names of the providers that have no ``priority`` key (theirs reads as 0 here): an
    #: import puts them behind the providers already stored (``adding.place_unprioritized``).
    unprioritized: frozenset[str] = frozenset()


def providers_from_toml(text: str) -> list[ProviderConfig]:
    """The providers of ``read_providers_toml``; a missing ``priority`` reads as 0."""
    return list(read_providers_toml(text).providers)


def read_providers_toml(text: str) -> ProvidersFile:
    """Providers from a file ``providers_to_toml`` wrote, each validated.

    Unknown keys, wrong types, duplicate names and a missing or newer ``version`` are
    refused with a one-line ``UserInputError`` naming the provider and the key.
    """
    if len(text) > MAX_FILE_BYTES:
        raise UserInputError(f"settings file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"not a valid TOML file: {_one_line(str(exc))}") from None
    except RecursionError:
        raise UserInputError("not a valid TOML file: nested too deeply") from None
    unknown = sorted(set(document) - {"version", "providers"})
    if unknown:
        raise UserInputError(f"unknown key {unknown[0]!r} (expected 'version' and 'providers')")
    version = document.get("version")
    if version is None:
        raise UserInputError("missing 'version = 1': this does not look like a providers file")
    if isinstance(version, bool) or not isinstance(version, int):
        raise UserInputError(f"'version' must be a number, not {_type_name(version)}")
    if version != TOML_VERSION:
        raise UserInputError(
            f"providers file version {version} is not supported (this Relaydesk reads "
            f"version {TOML_VERSION})"
        )
    entries = document.get("providers", [])
    if not isinstance(entries, list):
        raise UserInputError("'providers' must be an array of tables ([[providers]])")
    providers: list[ProviderConfig] = []
    unprioritized: set[str] = set()
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        where = f"provider #{number}"
        if not isinstance(entry, dict):
            raise UserInputError(f"{where} must be a table ([[providers]])")
        if isinstance(entry.get("name"), str):
            where = f"{where} ({_one_line(entry['name'])[:100]!r})"
        try:
            config = _provider_from_table(entry)
        except UserInputError as exc:
            raise UserInputError(f"{where}: {_one_line(str(exc))}") from None
        if config.name.casefold() in seen:
            raise UserInputError(f"{where}: the name {config.name!r} appears twice")
        seen.add(config.name.casefold())
        providers.append(config)
        if "priority" not in entry:
            unprioritized.add(config.name)
    return ProvidersFile(tuple(providers), frozenset(unprioritized))


def _provider_from_table(table: Mapping[str, Any]) -> ProviderConfig:
    for key in table:
        if key not in _PROVIDER_KEYS:
            if "pass" in key.lower() or "secret" in key.lower():
                raise UserInputError(f"key {key!r} refused: {_NO_PASSWORDS_IN_FILES}")
            raise UserInputError(f"unknown key {key!r}")
    for key in ("name", "host", "port", "security"):
        if key not in table:
            raise UserInputError(f"missing key {key!r}")
    security = _get(table, "security", str)
    if security not in {s.value for s in Security}:
        raise UserInputError(f"'security' must be tls, starttls or none, not {security!r}")
    config = ProviderConfig(
        name=_get(table, "name", str),
        host=_get(table, "host", str),
        port=_get(table, "port", int),
        security=Security(security),
        username=_get(table, "username", str, None) or None,
        priority=_get(table, "priority", int, 0),
        weight=_get(table, "weight", int, 1),
        max_connections=_get(table, "max_connections", int, 2),
        rate_limits=_rate_limits(_get(table, "rate_limits", dict, {})),
        sender_domains=tuple(_strings(_get(table, "sender_domains", list, []), "sender_domains")),
        enabled=_get(table, "enabled", bool, True),
        allow_insecure=_get(table, "allow_insecure", bool, False),
    )
    windows = _get(table, "maintenance", list, [])
    config = validate_provider_config(config)
    return replace(config, maintenance=tuple(_window(w, n) for n, w in enumerate(windows, 1)))


def _rate_limits(table: Mapping[str, Any]) -> RateLimits:
    for key in table:
        if key not in _RATE_KEYS:
            raise UserInputError(f"unknown key 'rate_limits.{key}'")
    return RateLimits(**{key: _get(table, key, int, None, f"rate_limits.{key}") for key in table})


def _window(table: object, number: int) -> MaintenanceWindow:
    where = f"maintenance #{number}"
    if not isinstance(table, dict):
        raise UserInputError(f"{where} must be a table ([[providers.maintenance]])")
    kind = table.get("kind")
    if kind not in ("once", "weekly"):
        raise UserInputError(f"{where}: 'kind' must be 'once' or 'weekly', not {kind!r}")
    allowed = _ONCE_KEYS if kind == "once" else _WEEKLY_KEYS
    for key in table:
        if key not in allowed:
            raise UserInputError(f"{where}: unknown key {key!r} for a {kind} window")
    note = _get(table, "note", str, "", f"{where}.note")
    if kind == "once":
        window = MaintenanceWindow(
            MaintenanceKind.ONCE,
            starts_at=_epoch(table, "starts_at", where),
            ends_at=_epoch(table, "ends_at", where),
            note=note,
        )
    else:
        window = MaintenanceWindow(
            MaintenanceKind.WEEKLY,
            weekday=_get(table, "weekday", int, None, f"{where}.weekday"),
            start_minute=_get(table, "start_minute", int, None, f"{where}.start_minute"),
            duration_minutes=_get(
                table, "duration_minutes", int, None, f"{where}.duration_minutes"
            ),
            timezone=_get(table, "timezone", str, None, f"{where}.timezone"),
            note=note,
        )
    try:
        return validate_window(window)
    except UserInputError as exc:
        raise UserInputError(f"{where}: {exc}") from None


def _epoch(table: Mapping[str, Any], key: str, where: str) -> float:
    value = table.get(key)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise UserInputError(
            f"{where}: {key!r} must be a date and time with an offset "
            "(2026-03-01T22:00:00Z), not " + _type_name(value)
        )
    try:
        seconds = value.timestamp()
    except (OverflowError, OSError, ValueError):
        raise UserInputError(f"{where}: {key!r} is out of range") from None
    if not math.isfinite(seconds):
        raise UserInputError(f"{where}: {key!r} is out of range")
    return seconds


_MISSING: Any = object()


def _get(
    table: Mapping[str, Any],
    key: str,
    kind: type,
    default: Any = _MISSING,
    label: str | None = None,
) -> Any:
    """``table[key]`` if it has type ``kind`` (a bool is not a number here)."""
    label = label or key
    if key not in table:
        if default is _MISSING:
            raise UserInputError(f"missing key {label!r}")
        return default
    value = table[key]
    wrong_bool = isinstance(value, bool) and kind is not bool
    if wrong_bool or not isinstance(value, kind):
        raise UserInputError(f"{label!r} must be {_KIND_NAMES[kind]}, not {_type_name(value)}")
    if isinstance(value, int) and not -(2**62) < value < 2**62:  # SQLite holds 64 bits
        raise UserInputError(f"{label!r} is out of range")
    return value


def _strings(values: Sequence[object], label: str) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise UserInputError(f"{label!r} must hold only strings, not {_type_name(value)}")
    return [str(v) for v in values]


_KIND_NAMES: dict[type, str] = {
    str: "a string",
    int: "a whole number",
    bool: "true or false",
    list: "an array",
    dict: "a table",
}


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return "a date and time without an offset"
    if value is None:
        return "nothing"
    return "a date or time"
