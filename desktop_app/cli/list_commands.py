"""``relaydesk list ...`` and ``relaydesk suppress ...``: subscriber lists, suppressions."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.campaigns.csv_import import STATUSES, RejectedRow
from desktop_app.core.errors import RejectedRowsError
from desktop_app.core.storage.lists import SUPPRESSION_REASONS, ImportReport, SubscriberList
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import Workspace


def register(commands: Any) -> None:
    lists = commands.add_parser("list", help="subscriber lists: create, import, export, show")
    lists.set_defaults(handler=cmd_list)
    sub = lists.add_subparsers(dest="list_command", required=True)
    create = sub.add_parser("create", help="create an empty list")
    create.add_argument("name")
    rename = sub.add_parser("rename", help="rename a list")
    rename.add_argument("name")
    rename.add_argument("new_name")
    remove = sub.add_parser("delete", help="delete a list and its subscribers")
    remove.add_argument("name")
    load = sub.add_parser("import", help="import subscribers from a CSV file")
    load.add_argument("name")
    load.add_argument("file", type=Path)
    load.add_argument(
        "--accept-valid",
        action="store_true",
        help="import the valid rows even when some are rejected",
    )
    load.add_argument("--json", action="store_true")
    dump = sub.add_parser("export", help="write a list to a CSV file")
    dump.add_argument("name")
    dump.add_argument("file", type=Path)
    dump.add_argument(
        "--raw",
        action="store_true",
        help="write cells verbatim: no leading ' on cells a spreadsheet would run as formulas",
    )
    show = sub.add_parser("show", help="lists with their counts by status")
    show.add_argument("name", nargs="?")
    show.add_argument("--json", action="store_true")

    suppress = commands.add_parser("suppress", help="the global suppression list")
    suppress.set_defaults(handler=cmd_suppress)
    ssub = suppress.add_subparsers(dest="suppress_command", required=True)
    add = ssub.add_parser("add", help="never send to this address again")
    add.add_argument("address")
    add.add_argument("--reason", choices=SUPPRESSION_REASONS, default="manual")
    add.add_argument("--detail", default="")
    drop = ssub.add_parser("remove", help="allow sending to this address again")
    drop.add_argument("address")
    listing = ssub.add_parser("list", help="every suppressed address")
    listing.add_argument("--json", action="store_true")


def cmd_list(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    command = args.list_command
    if command == "create":
        created = ws.create_list(args.name)
        print(f"list {created.name!r} created", file=out)
    elif command == "rename":
        renamed = ws.rename_list(args.name, args.new_name)
        print(f"list {args.name!r} renamed to {renamed.name!r}", file=out)
    elif command == "delete":
        ws.delete_list(args.name)
        print(f"list {args.name!r} deleted", file=out)
    elif command == "import":
        try:
            report = ws.import_list(args.name, args.file, accept_valid=args.accept_valid)
        except RejectedRowsError as exc:
            # The rejects go to stdout (they are the answer); the one-line error to stderr.
            if isinstance(exc.report, ImportReport):
                _print_report(exc.report, out, as_json=args.json)
            raise
        _print_report(report, out, as_json=args.json)
    elif command == "export":
        count = ws.export_list(args.name, args.file, raw=args.raw)
        print(f"{count_of(count, 'subscriber')} written to {args.file}", file=out)
    else:
        _show(ws, args.name, out, as_json=args.json)
    return EXIT_OK


def cmd_suppress(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    command = args.suppress_command
    if command == "add":
        entry = ws.suppress(args.address, args.reason, args.detail)
        print(f"{entry.email_key} suppressed ({entry.reason})", file=out)
    elif command == "remove":
        ws.unsuppress(args.address)
        print(f"{args.address.strip()} no longer suppressed", file=out)
    elif args.json:
        entries = [
            {
                "address": s.email_key,
                "reason": s.reason,
                "detail": s.detail,
                "created_at": _iso(s.created_at),
            }
            for s in ws.suppressions()
        ]
        print(json.dumps(entries, indent=2, ensure_ascii=False), file=out)
    else:
        for s in ws.suppressions():
            detail = f"  {s.detail}" if s.detail else ""
            print(f"{s.email_key}  {s.reason}  {_iso(s.created_at)}{detail}", file=out)
    return EXIT_OK


def _print_report(report: ImportReport, out: TextIO, *, as_json: bool) -> None:
    if as_json:
        document = {
            "list": report.list_name,
            "imported": report.imported,
            "duplicate": len(report.duplicates),
            "rejected": len(report.rejects),
            "rejects": [_row(r) for r in report.rejects],
            "duplicates": [_row(r) for r in report.duplicates],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False), file=out)
        return
    print(
        f"imported {report.imported}, duplicate {len(report.duplicates)}, "
        f"rejected {len(report.rejects)}",
        file=out,
    )
    for row in report.rejects:
        print(f"line {row.line}: rejected {row.value!r}: {row.reason}", file=out)
    for row in report.duplicates:
        print(f"line {row.line}: duplicate {row.value!r}: {row.reason}", file=out)


def _show(ws: Workspace, name: str | None, out: TextIO, *, as_json: bool) -> None:
    lists = [ws.get_list(name)] if name is not None else ws.subscriber_lists()
    if as_json:
        documents = [_summary(s) for s in lists]
        print(
            json.dumps(
                documents[0] if name is not None else documents, indent=2, ensure_ascii=False
            ),
            file=out,
        )
        return
    for s in lists:
        counts = "  ".join(f"{status} {s.counts[status]}" for status in STATUSES)
        print(f"{s.name}  total {s.total}  {counts}  sendable {s.sendable}", file=out)


def _summary(s: SubscriberList) -> dict[str, Any]:
    return {
        "name": s.name,
        "total": s.total,
        **{status: s.counts[status] for status in STATUSES},
        "suppressed": s.suppressed,
        "sendable": s.sendable,
        "created_at": _iso(s.created_at),
    }


def _row(row: RejectedRow) -> dict[str, Any]:
    return {"line": row.line, "value": row.value, "reason": row.reason}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
