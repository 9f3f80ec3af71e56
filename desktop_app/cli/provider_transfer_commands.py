"""``relaydesk providers-file ...`` and ``relaydesk provider import-thunderbird``.

Provider settings move between data directories as a TOML file, and SMTP servers come in
from a Thunderbird profile. Neither ever carries a password: set those afterwards with
``relaydesk provider set NAME --password-stdin``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, TextIO

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.errors import UserInputError
from desktop_app.core.provider_files.adding import (
    ImportOutcome,
    after_existing,
    import_providers,
    skipped_outcomes,
)
from desktop_app.core.provider_files.text_file import read_text_file
from desktop_app.core.provider_files.thunderbird import (
    find_thunderbird_profiles,
    scan_thunderbird_prefs,
)
from desktop_app.core.provider_files.toml_file import providers_to_toml, read_providers_toml
from desktop_app.core.wording import count_of
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
        print(
            f"exported {count_of(len(providers), 'provider')} to {args.file} (no passwords)",
            file=io.out,
        )
        return EXIT_OK
    found = read_providers_toml(read_text_file(args.file, "settings file"))
    # Providers the file gives no priority go behind the stored ones, in the file's order.
    outcomes = import_providers(
        ws,
        found.providers,
        replace_existing=args.replace,
        dry_run=args.dry_run,
        unprioritized=found.unprioritized,
    )
    _report(outcomes, args.json, io.out)
    return EXIT_OK


def cmd_import_thunderbird(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    prefs_js = _prefs_path(args)
    scan = scan_thunderbird_prefs(
        read_text_file(prefs_js, "prefs.js"), allow_insecure=args.allow_insecure
    )
    if not scan.providers and not scan.skipped:
        raise UserInputError(f"no SMTP servers found in {str(prefs_js)!r}")
    providers = after_existing(scan.providers, ws.list_providers())
    outcomes = import_providers(ws, providers, dry_run=args.dry_run)
    outcomes += skipped_outcomes(scan.skipped)
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


def _report(outcomes: list[ImportOutcome], as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump([o.as_json() for o in outcomes], out, indent=2)
        out.write("\n")
        return
    if not outcomes:
        print("no providers in the file", file=out)
    for outcome in outcomes:
        print(outcome.line(), file=out)
