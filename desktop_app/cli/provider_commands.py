"""``relaydesk provider ...``: add, change, list, remove and test providers."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any, TextIO

from desktop_app.cli.contract import EXIT_ENVIRONMENT, EXIT_OK, Streams
from desktop_app.core.errors import UserInputError
from desktop_app.core.models import ProviderConfig, ProviderState, RateLimits, Security
from desktop_app.core.provider_files.adding import add_provider
from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace

_RATE_OPTIONS = ("per_second", "per_minute", "per_hour", "per_day")


def register(commands: Any) -> Any:
    """Add the ``provider`` command; returns its sub-command group for others to extend."""
    provider = commands.add_parser("provider", help="add, change, list and test providers")
    provider.set_defaults(handler=cmd_provider)
    provider_commands = provider.add_subparsers(dest="provider_command", required=True)
    add = provider_commands.add_parser("add", help="add a provider")
    add.add_argument("name")
    _provider_options(add, required=True)
    change = provider_commands.add_parser("set", help="change a provider")
    change.add_argument("name")
    _provider_options(change, required=False)
    toggle = change.add_mutually_exclusive_group()
    toggle.add_argument("--enable", dest="enabled", action="store_true", default=None)
    toggle.add_argument("--disable", dest="enabled", action="store_false")
    listing = provider_commands.add_parser("list", help="list providers, most preferred first")
    listing.add_argument("--json", action="store_true")
    remove = provider_commands.add_parser("remove", help="remove a provider and its password")
    remove.add_argument("name")
    test = provider_commands.add_parser("test", help="connect, EHLO, TLS, AUTH, QUIT")
    test.add_argument("name")
    return provider_commands


def _provider_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--host", required=required, help="SMTP server host name or IP")
    parser.add_argument("--port", type=_port, required=required, help="SMTP port (465, 587...)")
    parser.add_argument(
        "--security",
        choices=[s.value for s in Security],
        required=required,
        help="tls: implicit TLS; starttls: STARTTLS required; none: loopback only",
    )
    parser.add_argument("--username", help="login name (the password goes to the OS keyring)")
    parser.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    parser.add_argument(
        "--priority",
        type=int,
        help="lower is preferred (add: default behind every existing provider, "
        "the highest priority + 1; 0 for the first)",
    )
    parser.add_argument("--weight", type=int, help="share of traffic within its priority tier")
    parser.add_argument("--max-connections", type=int, help="parallel connections (default 2)")
    for option in _RATE_OPTIONS:
        parser.add_argument(
            f"--rate-{option.replace('_', '-')}",
            dest=f"rate_{option}",
            type=int,
            help=f"most messages {option.replace('_', ' ')}",
        )
    parser.add_argument(
        "--sender-domain",
        action="append",
        dest="sender_domains",
        help="a From domain this provider may send for (repeat; none: any domain)",
    )
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        default=None,
        help="allow security 'none' to a host that is not loopback",
    )


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, not {text!r}") from None


def _read_password(args: argparse.Namespace, stdin: TextIO) -> str | None:
    if not args.password_stdin:
        return None
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise UserInputError("--password-stdin was given but standard input was empty")
    return password


def _rate_limits(args: argparse.Namespace, base: RateLimits) -> RateLimits:
    values = {
        option: getattr(args, f"rate_{option}")
        for option in _RATE_OPTIONS
        if getattr(args, f"rate_{option}") is not None
    }
    return replace(base, **values)


def _provider_changes(args: argparse.Namespace, current: ProviderConfig) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for field_name, value in (
        ("host", args.host),
        ("port", args.port),
        ("security", Security(args.security) if args.security else None),
        ("username", args.username),
        ("priority", args.priority),
        ("weight", args.weight),
        ("max_connections", args.max_connections),
        ("allow_insecure", args.allow_insecure),
        ("enabled", getattr(args, "enabled", None)),
    ):
        if value is not None:
            changes[field_name] = value
    if args.sender_domains is not None:
        changes["sender_domains"] = tuple(args.sender_domains)
    limits = _rate_limits(args, current.rate_limits)
    if limits != current.rate_limits:
        changes["rate_limits"] = limits
    return changes


def _provider_as_json(provider: ProviderConfig, state: str) -> dict[str, Any]:
    return {
        "name": provider.name,
        "state": state,
        "host": provider.host,
        "port": provider.port,
        "security": provider.security.value,
        "username": provider.username,
        "priority": provider.priority,
        "weight": provider.weight,
        "max_connections": provider.max_connections,
        "rate_per_second": provider.rate_limits.per_second,
        "rate_per_minute": provider.rate_limits.per_minute,
        "rate_per_hour": provider.rate_limits.per_hour,
        "rate_per_day": provider.rate_limits.per_day,
        "sender_domains": list(provider.sender_domains),
        "enabled": provider.enabled,
        "allow_insecure": provider.allow_insecure,
    }


def cmd_provider(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out, stdin = io.out, io.stdin
    command = args.provider_command
    if command == "add":
        template = ProviderConfig(
            name=args.name, host=args.host, port=args.port, security=Security(args.security)
        )
        # _provider_changes already carries allow_insecure when the flag was given; passing
        # it again as a keyword made "add --allow-insecure" die with a TypeError.
        changes = {**_provider_changes(args, template), "allow_insecure": bool(args.allow_insecure)}
        config = replace(template, **changes)
        # Without --priority it goes behind the others: a backup must not become the primary.
        added = add_provider(ws, config, _read_password(args, stdin), priority=args.priority)
        print(
            f"added provider {added.name} ({added.host}:{added.port}, {added.security})", file=out
        )
    elif command == "set":
        current = ws.get_provider(args.name)
        password = _read_password(args, stdin)
        changes = _provider_changes(args, current)
        if not changes and password is None:
            raise UserInputError("nothing to change: give at least one option")
        updated = ws.update_provider(args.name, changes, password=password)
        print(f"updated provider {updated.name}", file=out)
    elif command == "list":
        providers = ws.list_providers()
        if args.json:
            # The same word as the window and "relaydesk health": the stored live state.
            live = ws.provider_live_states()
            words = {uid: record.state.value for uid, record in live.items()}
            listed = [
                _provider_as_json(p, words.get(p.uid, ProviderState.UNKNOWN.value))
                for p in providers
            ]
            json.dump(listed, out, indent=2)
            out.write("\n")
        elif not providers:
            print("no providers yet: add one with 'relaydesk provider add'", file=out)
        else:
            for p in providers:
                state = "enabled" if p.enabled else "disabled"
                print(
                    f"{p.priority:>3}  {p.name:<20} {p.host}:{p.port} {p.security.value:<8} "
                    f"weight {p.weight} conns {p.max_connections} {state}",
                    file=out,
                )
    elif command == "remove":
        removed = ws.remove_provider(args.name)
        print(f"removed provider {removed.name}", file=out)
    elif command == "test":
        runtime = LoopThread()
        runtime.start()
        try:
            result = runtime.submit(ws.test_provider(args.name)).result()
        finally:
            runtime.stop()
        print(result.summary(), file=out)
        return EXIT_OK if result.ok else EXIT_ENVIRONMENT
    return EXIT_OK
