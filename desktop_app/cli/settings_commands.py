"""``relaydesk settings ...``: read and change the settings declared in core/settings.py."""

from __future__ import annotations

import argparse
from typing import Any

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.settings import SPECS
from desktop_app.core.workspace import Workspace


def register(commands: Any) -> None:
    settings = commands.add_parser("settings", help="read and change settings")
    settings.set_defaults(handler=cmd_settings)
    settings_commands = settings.add_subparsers(dest="settings_command", required=True)
    get = settings_commands.add_parser("get")
    get.add_argument("key")
    put = settings_commands.add_parser("set")
    put.add_argument("key")
    put.add_argument("value")
    settings_commands.add_parser("list")


def cmd_settings(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    if args.settings_command == "get":
        print(_format_value(ws.get_setting(args.key)), file=out)
    elif args.settings_command == "set":
        value = ws.set_setting(args.key, args.value)
        print(f"{args.key} = {_format_value(value)}", file=out)
    else:
        for key, value in ws.settings.all().items():
            print(f"{key} = {_format_value(value)}    # {SPECS[key].title}", file=out)
    return EXIT_OK


def _format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
