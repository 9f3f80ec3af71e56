"""The headless face of Relaydesk: the same core as the window, driven from a shell.

The command line is a contract that scripts and tests rely on (see README). Every error a
user can cause is one line on stderr and a non-zero exit, never a traceback:
exit 1 for trouble in the environment (keyring, locked database, failed probe),
exit 2 for bad input, exit 3 when ``run --timeout`` ends with mail still pending.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from desktop_app import __version__
from desktop_app.core.compose import build_message, build_one_per_recipient
from desktop_app.core.errors import (
    EnvironmentProblem,
    ProviderNotFoundError,
    RelaydeskError,
    UserInputError,
)
from desktop_app.core.events import (
    EngineStatusChanged,
    Event,
    FailoverHappened,
    MessageStateChanged,
    ProviderStateChanged,
)
from desktop_app.core.instance_lock import InstanceLock
from desktop_app.core.log_setup import configure_logging
from desktop_app.core.models import MessageState, ProviderConfig, RateLimits, Security
from desktop_app.core.paths import resolve_data_dir
from desktop_app.core.runtime import LoopThread
from desktop_app.core.settings import SPECS
from desktop_app.core.workspace import Workspace

EXIT_OK = 0
EXIT_ENVIRONMENT = 1
EXIT_USAGE = 2
EXIT_PENDING = 3

_RATE_OPTIONS = ("per_second", "per_minute", "per_hour", "per_day")


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are our one-line errors (exit 2)."""

    def error(self, message: str) -> Any:
        raise UserInputError(message)


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
    parser.add_argument("--priority", type=int, help="lower is preferred (default 0)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="relaydesk",
        description="Send email through several SMTP providers with failover and a durable "
        "outbox. Without a command, the desktop window opens.",
    )
    parser.add_argument("--version", action="version", version=f"relaydesk {__version__}")
    parser.add_argument("--data-dir", help="where the database and logs live")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr too")
    parser.add_argument(
        "--demo", action="store_true", help="open the window with local demo providers"
    )
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    provider = commands.add_parser("provider", help="add, change, list and test providers")
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

    send = commands.add_parser("send", help="queue a message")
    send.add_argument("--from", dest="sender", required=True)
    recipients = send.add_mutually_exclusive_group(required=True)
    recipients.add_argument("--to", action="append", help="recipient (repeat: one message)")
    recipients.add_argument("--to-file", help="one address a line: one message each")
    send.add_argument("--subject", required=True)
    send.add_argument("--text-file", help="plain text body")
    send.add_argument("--html-file", help="HTML body")

    outbox = commands.add_parser("outbox", help="how many messages are in each state")
    outbox.add_argument("--json", action="store_true")

    run = commands.add_parser("run", help="deliver the outbox")
    run.add_argument("--until-idle", action="store_true", help="exit once nothing is pending")
    run.add_argument("--timeout", type=float, help="give up after SECONDS (exit 3 if pending)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the summary")

    settings = commands.add_parser("settings", help="read and change settings")
    settings_commands = settings.add_subparsers(dest="settings_command", required=True)
    get = settings_commands.add_parser("get")
    get.add_argument("key")
    put = settings_commands.add_parser("set")
    put.add_argument("key")
    put.add_argument("value")
    settings_commands.add_parser("list")
    return parser


# -- provider commands ---------------------------------------------------------------------


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


def _provider_as_json(provider: ProviderConfig) -> dict[str, Any]:
    return {
        "name": provider.name,
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


def cmd_provider(ws: Workspace, args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    command = args.provider_command
    if command == "add":
        template = ProviderConfig(
            name=args.name, host=args.host, port=args.port, security=Security(args.security)
        )
        # _provider_changes already carries allow_insecure when the flag was given; passing
        # it again as a keyword made "add --allow-insecure" die with a TypeError.
        changes = {**_provider_changes(args, template), "allow_insecure": bool(args.allow_insecure)}
        config = replace(template, **changes)
        added = ws.add_provider(config, _read_password(args, stdin))
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
            json.dump([_provider_as_json(p) for p in providers], out, indent=2)
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


# -- send and outbox -----------------------------------------------------------------------


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def cmd_send(ws: Workspace, args: argparse.Namespace, out: TextIO) -> int:
    if args.text_file is None and args.html_file is None:
        raise UserInputError("give the body with --text-file or --html-file")
    text = _read_text(args.text_file, "text file") if args.text_file else None
    html = _read_text(args.html_file, "HTML file") if args.html_file else None
    if args.to_file:
        lines = _read_text(args.to_file, "recipient file").splitlines()
        addresses = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not addresses:
            raise UserInputError(f"recipient file {args.to_file} has no addresses")
        messages = build_one_per_recipient(
            sender=args.sender, recipients=addresses, subject=args.subject, text=text, html=html
        )
    else:
        messages = [
            build_message(
                sender=args.sender, recipients=args.to, subject=args.subject, text=text, html=html
            )
        ]
    ws.queue(messages)  # one transaction: all of them, or none
    if len(messages) == 1:
        print(f"queued 1 message {messages[0].message_id}", file=out)
    else:
        print(f"queued {len(messages)} messages", file=out)
    return EXIT_OK


def cmd_outbox(ws: Workspace, args: argparse.Namespace, out: TextIO) -> int:
    counts = ws.outbox_counts().as_dict()
    if args.json:
        json.dump(counts, out)
        out.write("\n")
    else:
        for state, count in counts.items():
            print(f"{state:<10} {count}", file=out)
    return EXIT_OK


# -- run -----------------------------------------------------------------------------------


class ProgressPrinter:
    """Prints what matters while the engine runs: failures, failovers, provider changes."""

    def __init__(self, out: TextIO, *, quiet: bool) -> None:
        self._out = out
        self._quiet = quiet
        self._lock = threading.Lock()

    def publish(self, event: Event) -> None:
        if self._quiet:
            return
        line: str | None = None
        if isinstance(event, MessageStateChanged) and event.state in (
            MessageState.FAILED,
            MessageState.UNKNOWN,
        ):
            line = f"{event.state.value}: {event.message_id} {event.detail}"
        elif isinstance(event, FailoverHappened):
            line = f"failover: {event.from_provider} failed ({event.detail}), trying the next"
        elif isinstance(event, ProviderStateChanged):
            line = f"provider {event.provider_name}: {event.state.value} (breaker {event.breaker})"
        elif isinstance(event, EngineStatusChanged):
            line = f"engine {event.detail}"
        if line is not None:
            with self._lock:
                print(line, file=self._out, flush=True)


def cmd_run(ws: Workspace, args: argparse.Namespace, out: TextIO) -> int:
    lock = InstanceLock(ws.data_dir)
    lock.acquire()
    runtime = LoopThread()
    runtime.start()
    engine = ws.create_engine(ProgressPrinter(out, quiet=args.quiet))
    stop_requested = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()
        runtime.call_soon(engine.request_stop)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        future = runtime.submit(engine.run(until_idle=args.until_idle))
        deadline = None if args.timeout is None else started + args.timeout
        while not future.done():
            if deadline is not None and time.monotonic() >= deadline:
                runtime.call_soon(engine.request_stop)
                break
            time.sleep(0.05)
        future.result()  # re-raise what the engine died of, if anything
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.stop()
        lock.release()
    stats = engine.stats
    pending = ws.outbox.pending_count()
    print(
        f"sent {stats.sent}, failed {stats.failed}, deferred {stats.deferred}, "
        f"unknown {stats.unknown}, failovers {stats.failovers}; "
        f"{pending} pending after {time.monotonic() - started:.1f} s",
        file=out,
    )
    if args.timeout is not None and pending and not stop_requested.is_set():
        return EXIT_PENDING
    return EXIT_OK


# -- settings ------------------------------------------------------------------------------


def cmd_settings(ws: Workspace, args: argparse.Namespace, out: TextIO) -> int:
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


# -- entry point ---------------------------------------------------------------------------


def _dispatch(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> Callable[[Workspace], int]:
    handlers: dict[str, Callable[[Workspace], int]] = {
        "provider": lambda ws: cmd_provider(ws, args, out, stdin),
        "send": lambda ws: cmd_send(ws, args, out),
        "outbox": lambda ws: cmd_outbox(ws, args, out),
        "run": lambda ws: cmd_run(ws, args, out),
        "settings": lambda ws: cmd_settings(ws, args, out),
    }
    return handlers[args.command]


def main(argv: Sequence[str] | None = None) -> int:
    out, err, stdin = sys.stdout, sys.stderr, sys.stdin
    try:
        args = build_parser().parse_args(argv)
        data_dir = resolve_data_dir(args.data_dir)
        if args.command is None:
            return _launch_gui(args, data_dir)
        configure_logging(data_dir, verbose=args.verbose)
        handler = _dispatch(args, out, stdin)
        workspace = Workspace.open(data_dir)
        try:
            return handler(workspace)
        finally:
            workspace.close()
    except (UserInputError, ProviderNotFoundError) as exc:
        # A provider name that does not exist is bad input (exit 2), not the machine's fault.
        print(f"relaydesk: error: {exc}", file=err)
        return EXIT_USAGE
    except (EnvironmentProblem, RelaydeskError) as exc:
        print(f"relaydesk: error: {exc}", file=err)
        return EXIT_ENVIRONMENT
    except OSError as exc:
        # strerror alone ("File exists") does not say which file.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"relaydesk: error: {exc.strerror or exc}{where}", file=err)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print("relaydesk: interrupted", file=err)
        return 130


def _launch_gui(args: argparse.Namespace, data_dir: Path) -> int:
    # Imported here so that the command line never loads Qt.
    from desktop_app.app import run_gui

    return run_gui(data_dir=data_dir, demo=args.demo, verbose=args.verbose)
