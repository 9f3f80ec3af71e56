"""``relaydesk alerts list [--open] [--json]`` and ``relaydesk alerts ack ID``: the alert log.

An alert is open until its condition clears (the provider is up again, the backlog
drained...). Acknowledging one says someone is on it: it stays open until it clears, and
is never raised again while open, whatever restarts happen.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.storage.alerts import LoggedAlert
from desktop_app.core.wording import local_time
from desktop_app.core.workspace import Workspace

#: The log keeps a year; a listing shows the newest of it.
LISTED = 500


def register(commands: Any) -> None:
    alerts = commands.add_parser("alerts", help="the alert log: list, acknowledge")
    alerts.set_defaults(handler=cmd_alerts)
    sub = alerts.add_subparsers(dest="alerts_command", required=True)
    listing = sub.add_parser("list", help="alerts, newest first")
    listing.add_argument("--open", action="store_true", help="only alerts not cleared yet")
    listing.add_argument("--json", action="store_true", help="one JSON object per alert")
    ack = sub.add_parser("ack", help="acknowledge an alert: someone is on it")
    ack.add_argument("id", type=int, help="the alert's id (from alerts list)")


def cmd_alerts(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    if args.alerts_command == "ack":
        alert = ws.acknowledge_alert(args.id)
        print(f"acknowledged alert {alert.id}: {alert.message}", file=out)
        return EXIT_OK
    listed = ws.recent_alerts(LISTED, open_only=args.open)
    if args.json:
        print(json.dumps([_document(a) for a in listed], indent=2, ensure_ascii=False), file=out)
        return EXIT_OK
    if not listed:
        print("no open alerts" if args.open else "no alerts", file=out)
        return EXIT_OK
    for alert in listed:
        state = "cleared" if alert.resolved_at is not None else "open"
        if alert.acknowledged_at is not None:
            state += ", acknowledged"
        about = f" {alert.subject}" if alert.subject else ""
        print(
            f"{alert.id:>5}  {local_time(alert.raised_at)}  {alert.severity:<8} {alert.rule}{about}"
            f" ({state}): {alert.message}",
            file=out,
        )
    return EXIT_OK


def _document(alert: LoggedAlert) -> dict[str, Any]:
    campaign = alert.rule == "campaign_paused"
    return {
        "id": alert.id,
        "kind": alert.rule,
        # The subject is a provider's name, a campaign's (campaign_paused) or "" (backlog).
        "provider": alert.subject if alert.subject and not campaign else None,
        "campaign": alert.subject if campaign else None,
        "severity": alert.severity,
        "opened_at": alert.raised_at,
        "cleared_at": alert.resolved_at,
        "acknowledged": alert.acknowledged_at is not None,
        "acknowledged_at": alert.acknowledged_at,
        "message": alert.message,
        # The channels alerts go through today: the log (always) and the team's e-mail.
        "channels": {"email": {"queued": alert.email_outbox_id is not None}},
    }
