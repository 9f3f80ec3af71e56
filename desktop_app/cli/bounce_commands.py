"""``relaydesk bounces ...``: the IMAP mailboxes bounces and unsubscribe requests come back
to, one pass over them, and what was found."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any, TextIO

from desktop_app.cli.contract import EXIT_ENVIRONMENT, EXIT_OK, Streams
from desktop_app.core.bounces.imap_session import MailboxError
from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole, default_name
from desktop_app.core.errors import UserInputError
from desktop_app.core.instance_lock import InstanceLock
from desktop_app.core.models import Security
from desktop_app.core.workspace import Workspace


def register(commands: Any) -> None:
    bounces = commands.add_parser("bounces", help="bounce and unsubscribe mailboxes (IMAP)")
    bounces.set_defaults(handler=cmd_bounces)
    sub = bounces.add_subparsers(dest="bounces_command", required=True)

    configure = sub.add_parser("configure", help="add or change a mailbox")
    configure.add_argument("--host", required=True)
    configure.add_argument("--port", required=True, type=int)
    configure.add_argument("--security", required=True, choices=[s.value for s in Security])
    configure.add_argument("--username", required=True)
    configure.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    levels = "'/' or '.' between levels, whatever the server's own separator"
    configure.add_argument("--folder", default="INBOX", help=f"the folder read; {levels}")
    configure.add_argument(
        "--processed-folder",
        default="Relaydesk/Processed",
        help=f"recognised messages are moved here; {levels}",
    )
    configure.add_argument(
        "--role",
        choices=[r.value for r in MailboxRole],
        default=MailboxRole.BOUNCES.value,
        help="bounces (default), unsubscribe (the List-Unsubscribe mailto box), seed",
    )
    configure.add_argument("--provider", help="this provider's own bounce mailbox")
    configure.add_argument("--name", help="default: the role, or role:provider")
    configure.add_argument("--allow-insecure", action="store_true")
    configure.add_argument("--disable", action="store_true", help="keep it, but do not read it")

    check = sub.add_parser("check", help="read every mailbox once and print what was found")
    check.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="bounces and unsubscribe requests recorded")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--limit", type=int, default=200)
    sub.add_parser("mailboxes", help="the configured mailboxes").add_argument(
        "--json", action="store_true"
    )
    sub.add_parser("remove", help="forget a mailbox (its password too)").add_argument("name")


def cmd_bounces(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    command = args.bounces_command
    if command == "configure":
        role = MailboxRole(args.role)
        config = MailboxConfig(
            name=args.name or default_name(role, args.provider),
            role=role,
            host=args.host,
            port=args.port,
            security=Security(args.security),
            username=args.username,
            folder=args.folder,
            processed_folder=args.processed_folder,
            provider_name=args.provider,
            enabled=not args.disable,
            allow_insecure=args.allow_insecure,
        )
        saved = ws.configure_mailbox(config, _password(args, io.stdin))
        print(
            f"mailbox {saved.name!r} saved ({saved.username}@{saved.host}:{saved.port})", file=out
        )
        return EXIT_OK
    if command == "check":
        return _check(ws, out, as_json=args.json)
    if command == "list":
        _list(ws, out, as_json=args.json, limit=args.limit)
    elif command == "mailboxes":
        _mailboxes(ws, out, as_json=args.json)
    else:
        removed = ws.remove_mailbox(args.name)
        print(f"mailbox {removed.name!r} removed", file=out)
    return EXIT_OK


def _password(args: argparse.Namespace, stdin: TextIO) -> str | None:
    if not args.password_stdin:
        return None
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise UserInputError("--password-stdin was given but standard input was empty")
    return password


def _check(ws: Workspace, out: TextIO, *, as_json: bool) -> int:
    lock = InstanceLock(ws.data_dir)
    lock.acquire()  # the running app watches the mailboxes itself: one reader at a time
    try:
        results = ws.check_mailboxes()
    finally:
        lock.release()
    documents: list[dict[str, Any]] = []
    failed = False
    for result in results:
        if isinstance(result, MailboxError):
            failed = True
            documents.append({"error": str(result)})
            continue
        applied = result.applied
        documents.append(
            {
                "mailbox": result.mailbox,
                "read": result.read,
                "hard": sorted(applied.hard),
                "soft": sorted(applied.soft),
                "unsubscribed": sorted(applied.unsubscribed),
                "suppressed": sorted(applied.suppressed),
                "already_counted": applied.repeated,
                "unrecognised": [
                    {"uid": uid, "from": sender, "subject": subject}
                    for uid, sender, subject in result.unrecognised
                ],
            }
        )
    if as_json:
        print(json.dumps(documents, indent=2, ensure_ascii=False), file=out)
    else:
        if not documents:
            print("no mailbox to check (relaydesk bounces configure ...)", file=out)
        for document in documents:
            if "error" in document:
                print(f"error: {document['error']}", file=out)
                continue
            print(
                f"{document['mailbox']}: read {document['read']}, hard {len(document['hard'])}, "
                f"soft {len(document['soft'])}, unsubscribed {len(document['unsubscribed'])}, "
                f"suppressed {len(document['suppressed'])}, "
                f"unrecognised {len(document['unrecognised'])}",
                file=out,
            )
            for kind in ("hard", "soft", "unsubscribed"):
                for address in document[kind]:
                    print(f"  {kind}: {address}", file=out)
            for item in document["unrecognised"]:
                print(f"  left for a person: {item['from']} {item['subject']!r}", file=out)
    return EXIT_ENVIRONMENT if failed else EXIT_OK


def _list(ws: Workspace, out: TextIO, *, as_json: bool, limit: int) -> None:
    events = ws.bounces.events(limit=max(1, limit))
    unrecognised = ws.bounces.unrecognised()
    if as_json:
        document = {
            "events": [
                {
                    "kind": e.kind,
                    "address": e.address,
                    "received_at": _iso(e.received_at),
                    "status": e.status,
                    "detail": e.detail,
                    "campaign": e.campaign,
                    "message_id": e.message_id,
                }
                for e in events
            ],
            "unrecognised": [
                {"from": u.sender, "subject": u.subject, "received_at": _iso(u.received_at)}
                for u in unrecognised
            ],
        }
        print(json.dumps(document, indent=2, ensure_ascii=False), file=out)
        return
    for e in events:
        campaign = f"  campaign {e.campaign}" if e.campaign else ""
        status = f" {e.status}" if e.status else ""
        print(f"{_iso(e.received_at)}  {e.kind:11} {e.address}{status}{campaign}", file=out)
    for u in unrecognised:
        print(f"{_iso(u.received_at)}  unrecognised from {u.sender} {u.subject!r}", file=out)


def _mailboxes(ws: Workspace, out: TextIO, *, as_json: bool) -> None:
    boxes = ws.mailboxes.all()
    if as_json:
        print(json.dumps([_mailbox(m) for m in boxes], indent=2), file=out)
        return
    for m in boxes:
        state = "enabled" if m.enabled else "disabled"
        error = f"  last error: {m.last_error}" if m.last_error else ""
        print(
            f"{m.name}  {m.role.value}  {m.username}@{m.host}:{m.port} ({m.security.value}) "
            f"{m.folder} -> {m.processed_folder}  {state}{error}",
            file=out,
        )


def _mailbox(m: MailboxConfig) -> dict[str, Any]:
    return {
        "name": m.name,
        "role": m.role.value,
        "provider": m.provider_name,
        "host": m.host,
        "port": m.port,
        "security": m.security.value,
        "username": m.username,
        "folder": m.folder,
        "processed_folder": m.processed_folder,
        "enabled": m.enabled,
        "last_checked_at": _iso(m.last_checked_at) if m.last_checked_at else None,
        "last_error": m.last_error,
    }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
