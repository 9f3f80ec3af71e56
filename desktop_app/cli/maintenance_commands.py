"""``relaydesk provider maintenance ...``: add, list and remove maintenance windows.

During a window a provider takes no new mail (what it is sending finishes), its traffic
goes to the others, and its uptime does not count the window. A running app picks changes
up within a few seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.errors import UserInputError
from desktop_app.core.health.maintenance import (
    WEEKDAYS,
    describe,
    is_active,
    local_timezone,
    once_window,
    parse_datetime,
    parse_duration,
    parse_time_of_day,
    parse_weekday,
    validate_timezone,
    weekly_window,
)
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow
from desktop_app.core.workspace import Workspace


def register(provider_commands: Any) -> None:
    """Add ``maintenance`` to the ``provider`` command group."""
    maintenance = provider_commands.add_parser(
        "maintenance",
        help="windows when a provider takes no new mail",
        description="One-off (--start/--end) or weekly (--weekly DAY HH:MM DURATION) "
        "windows when a provider takes no new mail; its traffic goes to the others.",
    )
    maintenance.set_defaults(handler=cmd_maintenance)
    commands = maintenance.add_subparsers(dest="maintenance_command", required=True)

    add = commands.add_parser("add", help="add a one-off or weekly window")
    add.add_argument("name", help="the provider")
    add.add_argument("--start", help="one-off: ISO date and time (no offset: local time)")
    add.add_argument("--end", help="one-off: ISO date and time the window ends")
    add.add_argument(
        "--weekly",
        nargs=3,
        metavar=("DAY", "HH:MM", "DURATION"),
        help="every week: day (mon..sun), start time, duration (90m, 2h, 1h30m, 01:30)",
    )
    add.add_argument(
        "--timezone",
        help="IANA zone the times are in, e.g. Europe/Berlin (default: this computer's)",
    )
    add.add_argument("--note", default="", help="why (shown in lists and in the window)")

    listing = commands.add_parser("list", help="list windows, of one provider or of all")
    listing.add_argument("name", nargs="?", help="only this provider")
    listing.add_argument("--json", action="store_true")

    remove = commands.add_parser("remove", help="remove a window (ID from 'list')")
    remove.add_argument("name", help="the provider")
    remove.add_argument("id", type=int, help="the window's number, as 'list' shows it")


def window_from_args(args: argparse.Namespace) -> MaintenanceWindow:
    """The window that ``add``'s options describe, checked."""
    zone = validate_timezone(args.timezone) if args.timezone is not None else None
    if args.weekly is not None:
        if args.start is not None or args.end is not None:
            raise UserInputError("give either --start and --end, or --weekly, not both")
        day, clock, duration = args.weekly
        return weekly_window(
            parse_weekday(day),
            parse_time_of_day(clock),
            parse_duration(duration),
            zone or local_timezone(),
            args.note,
        )
    if args.start is None or args.end is None:
        raise UserInputError("give --start and --end for a one-off window, or --weekly")
    return once_window(
        parse_datetime(args.start, "--start", zone),
        parse_datetime(args.end, "--end", zone),
        args.note,
    )


def window_as_json(provider: str, window: MaintenanceWindow, now: float) -> dict[str, Any]:
    """One window for ``list --json`` (times in UTC ISO 8601, which ``--start`` reads back)."""
    weekly = window.kind is MaintenanceKind.WEEKLY
    start_minute = window.start_minute or 0
    return {
        "provider": provider,
        "id": window.id,
        "kind": window.kind.value,
        "starts_at": None if weekly else _utc_iso(window.starts_at),
        "ends_at": None if weekly else _utc_iso(window.ends_at),
        "weekday": WEEKDAYS[window.weekday or 0] if weekly else None,
        "start_time": f"{start_minute // 60:02d}:{start_minute % 60:02d}" if weekly else None,
        "duration_minutes": window.duration_minutes if weekly else None,
        "timezone": window.timezone if weekly else None,
        "note": window.note,
        "active": is_active(window, now),
    }


def _utc_iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def cmd_maintenance(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    command = args.maintenance_command
    if command == "add":
        added = ws.add_maintenance(args.name, window_from_args(args))
        print(f"added maintenance window {added.id} to {args.name}: {describe(added)}", file=out)
    elif command == "list":
        now = time.time()
        listing = ws.list_maintenance(args.name)
        if args.json:
            rows = [
                window_as_json(name, window, now)
                for name, windows in listing.items()
                for window in windows
            ]
            json.dump(rows, out, indent=2)
            out.write("\n")
        elif not any(listing.values()):
            where = f" for {args.name}" if args.name else ""
            print(f"no maintenance windows{where}", file=out)
        else:
            for name, windows in listing.items():
                for window in windows:
                    active = "  (active now)" if is_active(window, now) else ""
                    print(f"{window.id:>4}  {name:<20} {describe(window)}{active}", file=out)
    elif command == "remove":
        removed = ws.remove_maintenance(args.name, args.id)
        print(f"removed maintenance window {removed.id} of {args.name}", file=out)
    return EXIT_OK
