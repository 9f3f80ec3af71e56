"""The headless face of Relaydesk: the same core as the window, driven from a shell.

Each command group lives in its own module and registers itself here; the exit codes and
the one-line error contract are in contract.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop_app import __version__
from desktop_app.cli import (
    alert_commands,
    bounce_commands,
    campaign_commands,
    health_commands,
    list_commands,
    maintenance_commands,
    outbox_commands,
    provider_commands,
    provider_transfer_commands,
    settings_commands,
)
from desktop_app.cli.contract import (
    EXIT_CLOSED_PIPE,
    EXIT_DISK_FULL,
    EXIT_ENVIRONMENT,
    EXIT_USAGE,
    Parser,
    Streams,
)
from desktop_app.core.disk_space import disk_full, is_no_space
from desktop_app.core.errors import (
    CampaignNotFoundError,
    DiskFullError,
    EnvironmentProblem,
    ListNotFoundError,
    ProviderNotFoundError,
    RelaydeskError,
    UserInputError,
)
from desktop_app.core.log_setup import configure_logging
from desktop_app.core.paths import resolve_data_dir
from desktop_app.core.workspace import Workspace
from desktop_app.platform_libraries import window_libraries_problem


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    # For packaging checks (packaging/README.md), not for users: open the window, wait until
    # the outbox has loaded, print one line and quit; exit 1 if it never loads.
    parser.add_argument("--smoke-test", action="store_true", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", parser_class=Parser)
    provider_group = provider_commands.register(commands)
    maintenance_commands.register(provider_group)
    provider_transfer_commands.register(commands, provider_group)
    outbox_commands.register(commands)
    settings_commands.register(commands)
    health_commands.register(commands)
    alert_commands.register(commands)
    list_commands.register(commands)
    campaign_commands.register(commands)
    bounce_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    err = sys.stderr
    streams = Streams(out=sys.stdout, stdin=sys.stdin)
    try:
        args = build_parser().parse_args(argv)
        data_dir = resolve_data_dir(args.data_dir)
        if args.command is None:
            return _launch_gui(args, data_dir)
        configure_logging(data_dir, verbose=args.verbose)
        workspace = Workspace.open(data_dir)
        try:
            status = int(args.handler(workspace, args, streams))
            # Flush here, inside the handlers below: a reader that closed the pipe fails
            # this flush, not the interpreter's own one at exit (an "Exception ignored").
            streams.out.flush()
            return status
        finally:
            workspace.close()
    except (
        UserInputError,
        ProviderNotFoundError,
        ListNotFoundError,
        CampaignNotFoundError,
    ) as exc:
        # A provider, list or campaign name that does not exist is bad input (exit 2),
        # not the machine's fault.
        print(f"relaydesk: error: {exc}", file=err)
        return EXIT_USAGE
    except DiskFullError as exc:
        print(f"relaydesk: error: {exc}", file=err)
        return EXIT_DISK_FULL
    except (EnvironmentProblem, RelaydeskError) as exc:
        print(f"relaydesk: error: {exc}", file=err)
        return EXIT_ENVIRONMENT
    except BrokenPipeError:
        # The reader went away (`relaydesk outbox | head -1`): that is not an error to
        # report. Point stdout at /dev/null so the interpreter's final flush stays quiet too.
        _silence_stdout()
        return EXIT_CLOSED_PIPE
    except OSError as exc:
        if is_no_space(exc) and exc.filename:  # the instance lock, an export file...
            print(f"relaydesk: error: {disk_full(Path(exc.filename))}", file=err)
            return EXIT_DISK_FULL
        # strerror alone ("File exists") does not say which file.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"relaydesk: error: {exc.strerror or exc}{where}", file=err)
        return EXIT_ENVIRONMENT
    except KeyboardInterrupt:
        print("relaydesk: interrupted", file=err)
        return 130


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (tests' StringIO)
        pass


def _launch_gui(args: argparse.Namespace, data_dir: Path) -> int:
    # Before Qt: a missing system library makes it abort with a misleading hint.
    problem = window_libraries_problem()
    if problem is not None:
        raise EnvironmentProblem(problem)
    # Imported here so that the command line never loads Qt.
    from desktop_app.app import run_gui

    return run_gui(
        data_dir=data_dir, demo=args.demo, verbose=args.verbose, smoke_test=args.smoke_test
    )
