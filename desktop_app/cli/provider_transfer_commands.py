"""``relaydesk providers-file ...`` and ``relaydesk provider import-thunderbird``.

Provider settings move between data directories as a TOML file, and SMTP servers come in
from a Thunderbird profile. Neither ever carries a password: set those afterwards with
``relaydesk provider set NAME --password-stdin``.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.errors import UserInputError
from desktop_app.core.models import ProviderConfig
from desktop_app.core.provider_files.text_file import read_text_file
from desktop_app.core.provider_files.thunderbird import (
    find_thunderbird_profiles,
    scan_thunderbird_prefs,
)
from desktop_app.core.provider_files.toml_file import (
    PROVIDER_SETTINGS,
    providers_from_toml,
    providers_to_toml,
)
from desktop_app.core.workspace import Workspace


def register(commands: Any, provider_commands: Any) -> None:
    """Add ``providers-file`` to the top level and ``import-thunderbird`` to ``provider``."""
    transfer = commands.add_parser(
        "providers-file",
        help="export or import provider settings as TOML (never passwords)",
        description="Provider settings as a TOML file, to move them to another data "
        "directory or keep them in version control. Passwords are never written or read.",
    )
    transfer.set_defaults(handler=cmd_providers_file)
    actions = transfer.add_subparsers(dest="providers_file_command", required=True)
    export = actions.add_parser("export", help="write every provider to a TOML file")
    export.add_argument("file", type=Path, metavar="FILE.toml")
    export.add_argument("--force", action="store_true", help="overwrite an existing file")
    load = actions.add_parser("import", help="add the providers of a TOML file")
    load.add_argument("file", type=Path, metavar="FILE.toml")
    load.add_argument(
        "--replace",
        action="store_true",
        help="overwrite the settings (and maintenance windows) of providers with the same "
        "name; their passwords are kept",
    )
    load.add_argument("--dry-run", action="store_true", help="check and report, change nothing")
    load.add_argument("--json", action="store_true")

    thunderbird = provider_commands.add_parser(
        "import-thunderbird",
        help="add the SMTP servers of a Thunderbird profile (no passwords)",
        description="Reads the SMTP servers of a Thunderbird profile's prefs.js: host, port, "
        "security, user name and description. Passwords stay in Thunderbird; set them with "
        "'relaydesk provider set NAME --password-stdin'. Without PREFS_JS or --profile, the "
        "profile is looked for where Thunderbird keeps it.",
    )
    thunderbird.set_defaults(handler=cmd_import_thunderbird)
    source = thunderbird.add_mutually_exclusive_group()
    source.add_argument("prefs_js", nargs="?", type=Path, metavar="PREFS_JS")
    source.add_argument("--profile", type=Path, metavar="DIR", help="a profile directory")
    thunderbird.add_argument(
        "--allow-insecure",
        action="store_true",
        help="also import servers without TLS to hosts that are not loopback",
    )
    thunderbird.add_argument("--dry-run", action="store_true", help="report, change nothing")
    thunderbird.add_argument("--json", action="store_true")


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What an import did with one provider."""

    name: str
    action: str  # added, replaced, skipped (would-add... on --dry-run)
    detail: str = ""

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "action": self.action, "detail": self.detail}

    def line(self) -> str:
        return f"{self.action} {self.name}" + (f": {self.detail}" if self.detail else "")


def cmd_providers_file(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    if args.providers_file_command == "export":
        providers = ws.list_providers()
        text = providers_to_toml(providers)
        try:
            with args.file.open("w" if args.force else "x", encoding="utf-8") as stream:
                stream.write(text)
        except FileExistsError:
            raise UserInputError(
                f"{str(args.file)!r} already exists; pass --force to overwrite it"
            ) from None
        except IsADirectoryError:
            raise UserInputError(f"{str(args.file)!r} is a directory") from None
        except FileNotFoundError:
            raise UserInputError(f"the folder of {str(args.file)!r} does not exist") from None
        print(f"exported {len(providers)} provider(s) to {args.file} (no passwords)", file=io.out)
        return EXIT_OK
    providers = providers_from_toml(read_text_file(args.file, "settings file"))
    outcomes = _import(ws, providers, replace_existing=args.replace, dry_run=args.dry_run)
    _report(outcomes, args.json, io.out)
    return EXIT_OK


def cmd_import_thunderbird(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    prefs_js = _prefs_path(args)
    scan = scan_thunderbird_prefs(
        read_text_file(prefs_js, "prefs.js"), allow_insecure=args.allow_insecure
    )
    if not scan.providers and not scan.skipped:
        raise UserInputError(f"no SMTP servers found in {str(prefs_js)!r}")
    # Imported servers come after the providers already here: importing must not
    # change where today's mail goes.
    first = max((p.priority for p in ws.list_providers()), default=-1) + 1
    providers = [replace(p, priority=first + p.priority) for p in scan.providers]
    outcomes = _import(ws, providers, replace_existing=False, dry_run=args.dry_run)
    outcomes += [
        _Outcome(f"(Thunderbird server {s.key})", "skipped", s.reason) for s in scan.skipped
    ]
    _report(outcomes, args.json, io.out)
    return EXIT_OK


def _prefs_path(args: argparse.Namespace) -> Path:
    if args.prefs_js is not None:
        path: Path = args.prefs_js
        return path / "prefs.js" if path.is_dir() else path
    if args.profile is not None:
        return Path(args.profile) / "prefs.js"
    profiles = find_thunderbird_profiles(Path.home(), os.environ)
    if not profiles:
        raise UserInputError(
            "no Thunderbird profile found; give the path of its prefs.js or --profile DIR"
        )
    if len(profiles) > 1:
        listed = ", ".join(str(p) for p in profiles)
        raise UserInputError(
            f"several Thunderbird profiles found, choose one with --profile: {listed}"
        )
    return profiles[0] / "prefs.js"


def _import(
    ws: Workspace, providers: list[ProviderConfig], *, replace_existing: bool, dry_run: bool
) -> list[_Outcome]:
    """Add each provider (no password); a name already here is skipped, or replaced."""
    existing = {p.name.casefold(): p for p in ws.list_providers()}
    outcomes: list[_Outcome] = []
    for config in providers:
        current = existing.get(config.name.casefold())
        where = f"{config.host}:{config.port}, {config.security.value}"
        if current is not None and not replace_existing:
            outcomes.append(_Outcome(config.name, "skipped", "a provider with this name exists"))
        elif current is not None:
            if not dry_run:
                _replace(ws, current, config)
            outcomes.append(_Outcome(config.name, _verb("replaced", dry_run), where))
        else:
            if not dry_run:
                added = ws.add_provider(replace(config, maintenance=()))
                for window in config.maintenance:
                    ws.add_maintenance(added.name, window)
            outcomes.append(_Outcome(config.name, _verb("added", dry_run), where))
    return outcomes


def _replace(ws: Workspace, current: ProviderConfig, config: ProviderConfig) -> None:
    ws.update_provider(current.name, {name: getattr(config, name) for name in PROVIDER_SETTINGS})
    for window in current.maintenance:
        if window.id is not None:
            ws.remove_maintenance(current.name, window.id)
    for window in config.maintenance:
        ws.add_maintenance(current.name, window)


def _verb(action: str, dry_run: bool) -> str:
    return f"would be {action}" if dry_run else action


def _report(outcomes: list[_Outcome], as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump([o.as_json() for o in outcomes], out, indent=2)
        out.write("\n")
        return
    if not outcomes:
        print("no providers in the file", file=out)
    for outcome in outcomes:
        print(outcome.line(), file=out)
