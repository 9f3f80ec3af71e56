"""SMTP servers out of a Thunderbird profile's prefs.js (pure parsing), and where profiles
live on each platform."""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from desktop_app.core.errors import UserInputError
from desktop_app.core.models import ProviderConfig, Security
from desktop_app.core.provider_files.text_file import MAX_FILE_BYTES
from desktop_app.core.provider_files.text_file import one_line as _one_line
from desktop_app.core.validation import validate_provider_config

_DEFAULT_PORTS = {Security.TLS: 465, Security.STARTTLS: 587, Security.NONE: 25}

# -- Thunderbird's prefs.js -------------------------------------------------------------------

# user_pref("name", value); where value is a JS string, an integer or a boolean. The string
# pattern is linear (no nested quantifiers), so a hostile line cannot make it backtrack.
_JS_STRING = r'"(?:[^"\\\n]|\\.)*"'
_USER_PREF = re.compile(
    rf"^\s*user_pref\(\s*({_JS_STRING})\s*,\s*({_JS_STRING}|-?\d{{1,18}}|true|false)\s*\)\s*;?\s*$"
)
_JS_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|x[0-9A-Fa-f]{2}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
_SERVER_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SERVER_PREF = re.compile(r"^mail\.smtpserver\.([A-Za-z0-9_-]{1,64})\.([A-Za-z_]{1,32})$")
# The only per-server prefs read; anything else (password, auth_method, clientid...) is
# ignored, so a password pref never even reaches a variable.
_SERVER_ATTRIBUTES = frozenset({"hostname", "port", "try_ssl", "username", "description"})
# try_ssl: 0 plain, 1 STARTTLS if offered (old profiles), 2 STARTTLS, 3 SSL/TLS. Relaydesk
# has no "if offered": a downgrade an attacker can force is no protection, so 1 -> starttls.
_TRY_SSL = {0: Security.NONE, 1: Security.STARTTLS, 2: Security.STARTTLS, 3: Security.TLS}
_NAME_UNSAFE = re.compile(r"[^\w .@+()-]+")

PrefValue = str | int | bool


@dataclass(frozen=True, slots=True)
class SkippedServer:
    """A server in prefs.js that could not become a provider, and why (one line)."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class ThunderbirdServers:
    """What a prefs.js yields: providers in Thunderbird's order, and the servers left out."""

    providers: tuple[ProviderConfig, ...]
    skipped: tuple[SkippedServer, ...]


def read_thunderbird_prefs(text: str, *, allow_insecure: bool = False) -> list[ProviderConfig]:
    """The SMTP servers of a Thunderbird ``prefs.js`` as providers (unusable ones left out)."""
    return list(scan_thunderbird_prefs(text, allow_insecure=allow_insecure).providers)


def scan_thunderbird_prefs(text: str, *, allow_insecure: bool = False) -> ThunderbirdServers:
    """Like ``read_thunderbird_prefs``, and also says which servers were left out and why.

    Priorities follow ``mail.smtpservers`` (0, 1, 2...). A plain-text server (try_ssl 0)
    to a host that is not loopback is left out unless ``allow_insecure``.
    """
    if len(text) > MAX_FILE_BYTES:
        raise UserInputError(f"prefs.js is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    prefs = parse_user_prefs(text)
    servers: dict[str, dict[str, PrefValue]] = {}
    for name, value in prefs.items():
        match = _SERVER_PREF.match(name)
        if match and match.group(2) in _SERVER_ATTRIBUTES:
            servers.setdefault(match.group(1), {})[match.group(2)] = value
    order = _server_order(prefs.get("mail.smtpservers"), servers)
    providers: list[ProviderConfig] = []
    skipped: list[SkippedServer] = []
    taken: set[str] = set()
    for key in order:
        try:
            config = _server_config(key, servers.get(key, {}), allow_insecure=allow_insecure)
        except UserInputError as exc:
            skipped.append(SkippedServer(key, _one_line(str(exc))))
            continue
        name = _unique_name(config.name, taken)
        taken.add(name.casefold())
        providers.append(replace(config, name=name, priority=len(providers)))
    return ThunderbirdServers(tuple(providers), tuple(skipped))


def parse_user_prefs(text: str) -> dict[str, PrefValue]:
    """Every well-formed ``user_pref(name, value);`` line; everything else is ignored.

    A later line wins over an earlier one, as in Firefox and Thunderbird.
    """
    prefs: dict[str, PrefValue] = {}
    for line in text.splitlines():
        if "user_pref" not in line:
            continue
        match = _USER_PREF.match(line)
        if not match:
            continue
        raw = match.group(2)
        value: PrefValue
        if raw.startswith('"'):
            value = _unescape_js(raw[1:-1])
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            value = int(raw)
        prefs[_unescape_js(match.group(1)[1:-1])] = value
    return prefs


def _unescape_js(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        escape = match.group(1)
        if len(escape) > 1:  # \uXXXX or \xXX
            return chr(int(escape[1:], 16))
        return _SIMPLE_ESCAPES.get(escape, escape)

    return _JS_ESCAPE.sub(one, body)


def _server_order(listed: PrefValue | None, servers: Mapping[str, object]) -> list[str]:
    """Keys in ``mail.smtpservers`` order; without that pref, in the order they appear."""
    if not isinstance(listed, str):
        return list(servers)
    keys = (key.strip() for key in listed.split(","))
    return list(dict.fromkeys(key for key in keys if _SERVER_KEY.match(key)))


def _server_config(
    key: str, prefs: Mapping[str, PrefValue], *, allow_insecure: bool
) -> ProviderConfig:
    hostname = prefs.get("hostname")
    if not isinstance(hostname, str) or not hostname.strip():
        raise UserInputError("no host name")
    try_ssl = prefs.get("try_ssl", 0)
    if isinstance(try_ssl, bool) or not isinstance(try_ssl, int) or try_ssl not in _TRY_SSL:
        raise UserInputError(f"unknown connection security try_ssl={try_ssl!r}")
    security = _TRY_SSL[try_ssl]
    port = prefs.get("port")
    if port is None or port == 0:  # Thunderbird writes 0 for "the default port"
        port = _DEFAULT_PORTS[security]
    if isinstance(port, bool) or not isinstance(port, int):
        raise UserInputError(f"port must be a number, not {port!r}")
    username = prefs.get("username")
    if not isinstance(username, str) or not username.strip():
        username = None
    elif not _is_unicode_text(username):
        raise UserInputError("the user name is not valid text")
    config = validate_provider_config(
        ProviderConfig(
            name=_provider_name(prefs.get("description"), hostname.strip()),
            host=hostname,
            port=port,
            security=security,
            username=username,
            allow_insecure=allow_insecure and security is Security.NONE,
        )
    )
    return config


def _provider_name(description: PrefValue | None, host: str) -> str:
    """The description when it makes a usable name (tidied), else the host name."""
    if isinstance(description, str):
        tidy = " ".join(_NAME_UNSAFE.sub(" ", description).split())[:100].strip()
        if tidy and (tidy[0].isalnum() or tidy[0] == "_"):
            return tidy
    return host[:100]


def _unique_name(name: str, taken: set[str]) -> str:
    if name.casefold() not in taken:
        return name
    number = 2
    while True:
        suffix = f" ({number})"
        candidate = name[: 100 - len(suffix)] + suffix
        if candidate.casefold() not in taken:
            return candidate
        number += 1


def _is_unicode_text(value: str) -> bool:
    """False for text with lone surrogates (a ``\\ud800`` escape): no file or database takes it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- finding profiles -------------------------------------------------------------------------


def find_thunderbird_profiles(home: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    """Thunderbird profile directories (ones holding a prefs.js), default profiles first.

    Looks where Thunderbird keeps them on Linux (also its snap and flatpak), macOS and
    Windows (``%APPDATA%``, from ``environ``), reading each ``profiles.ini`` when present.
    """
    appdata = (environ or {}).get("APPDATA")
    roots = [
        home / ".thunderbird",
        home / ".mozilla-thunderbird",
        home / "snap" / "thunderbird" / "common" / ".thunderbird",
        home / ".var" / "app" / "org.mozilla.Thunderbird" / ".thunderbird",
        home / "Library" / "Thunderbird",
        Path(appdata) / "Thunderbird" if appdata else home / "AppData" / "Roaming" / "Thunderbird",
    ]
    found: dict[Path, None] = {}
    for root in roots:
        try:
            if not root.is_dir():
                continue
            candidates = [*_profiles_from_ini(root), *_profiles_by_glob(root)]
        except (OSError, UnicodeError):
            continue  # an unreadable directory is as good as none
        for profile in candidates:
            try:
                if (profile / "prefs.js").is_file():
                    found.setdefault(profile.resolve(), None)
            except (OSError, ValueError):  # ValueError: a NUL in a path from profiles.ini
                continue
    return list(found)


def _profiles_from_ini(root: Path) -> list[Path]:
    """Profiles listed in ``root/profiles.ini``: install defaults, then Default=1, then rest."""
    ini = root / "profiles.ini"
    if not ini.is_file() or ini.stat().st_size > MAX_FILE_BYTES:
        return []
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(ini.read_text(encoding="utf-8", errors="replace"))
    except configparser.Error:
        return []
    install_defaults: list[Path] = []
    defaults: list[Path] = []
    others: list[Path] = []
    for section in parser.sections():
        values = parser[section]
        if section.startswith("Install") and values.get("Default"):
            install_defaults.append(root / values["Default"])
        elif section.startswith("Profile") and values.get("Path"):
            relative = values.get("IsRelative", "1").strip() != "0"
            path = root / values["Path"] if relative else Path(values["Path"])
            (defaults if values.get("Default", "0").strip() == "1" else others).append(path)
    return [*install_defaults, *defaults, *others]


def _profiles_by_glob(root: Path) -> list[Path]:
    return sorted(p.parent for p in [*root.glob("*/prefs.js"), *root.glob("Profiles/*/prefs.js")])
