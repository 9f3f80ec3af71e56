"""``relaydesk campaign ...``: create, preview, test, send (now or later), pause, resume,
cancel, report.

Sending only changes the campaign's state; the mail goes out while ``relaydesk run`` (or the
window) runs, like every other queued mail.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
from pathlib import Path
from typing import Any, TextIO

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.campaigns.message import Attachment, parse_header_lines
from desktop_app.core.campaigns.report import REPORT_STATES, CampaignReport
from desktop_app.core.campaigns.schedule import describe_time, parse_send_time
from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.campaigns import Campaign, CampaignDraft
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import Workspace

#: A template file larger than this is not a mail body.
MAX_TEMPLATE_BYTES = 5 * 1024 * 1024


def register(commands: Any) -> None:
    campaign = commands.add_parser("campaign", help="campaigns: create, send, pause, report")
    campaign.set_defaults(handler=cmd_campaign)
    sub = campaign.add_subparsers(dest="campaign_command", required=True)

    create = sub.add_parser("create", help="create a campaign (a draft until it is sent)")
    create.add_argument("name")
    create.add_argument("--list", required=True, dest="list_name", help="subscriber list")
    create.add_argument("--from", required=True, dest="sender", help="From address")
    create.add_argument("--from-name", help="display name of the sender")
    create.add_argument("--reply-to")
    create.add_argument("--subject", required=True, help="subject template (Jinja2)")
    create.add_argument("--html-file", type=Path, help="HTML body template")
    create.add_argument("--text-file", type=Path, help="text body template (else from HTML)")
    create.add_argument("--unsubscribe-url", help="https one-click unsubscribe endpoint")
    create.add_argument("--unsubscribe-mailto", help="address that takes unsubscribe mail")
    create.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="custom header"
    )
    create.add_argument("--attach", action="append", default=[], type=Path, metavar="FILE")

    listing = sub.add_parser("list", help="campaigns with their state and progress")
    listing.add_argument("--json", action="store_true")

    preview = sub.add_parser("preview", help="render the campaign for one subscriber")
    preview.add_argument("name")
    preview.add_argument("--subscriber", help="address of the subscriber (default: the first)")

    test = sub.add_parser("test", help="send the campaign's message to test addresses")
    test.add_argument("name")
    test.add_argument("--to", action="append", required=True, dest="addresses")
    test.add_argument("--subscriber", help="personalise for this subscriber")

    send = sub.add_parser("send", help="send now, or schedule with --at")
    send.add_argument("name")
    send.add_argument("--at", help="ISO 8601 time, e.g. 2026-12-01T09:00+01:00")
    send.add_argument(
        "--zone", help="IANA time zone for an --at without offset (default: this computer's)"
    )

    for verb, text in (
        ("pause", "hold what is queued; resume later"),
        ("resume", "carry on where it was paused"),
        ("cancel", "stop what is queued; what was sent stays sent"),
        ("delete", "delete a draft, scheduled, completed or cancelled campaign"),
    ):
        sub.add_parser(verb, help=text).add_argument("name")

    report = sub.add_parser("report", help="counts by state and provider, failures")
    report.add_argument("name")
    report.add_argument("--json", action="store_true")
    report.add_argument("--csv", type=Path, metavar="FILE", help="one row per recipient")
    report.add_argument(
        "--raw",
        action="store_true",
        help="with --csv: write cells verbatim, no leading ' on formula-like cells",
    )


def cmd_campaign(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    command = args.campaign_command
    campaigns = ws.campaigns
    if command == "create":
        created = campaigns.create(_draft(args))
        print(f"campaign {created.name!r} created (draft) for list {created.list_name!r}", file=out)
        for warning in campaigns.warnings(created.as_draft()):
            print(f"warning: {warning}", file=out)
    elif command == "list":
        _list(ws, out, as_json=args.json)
    elif command == "preview":
        content = campaigns.preview(campaigns.get(args.name).as_draft(), args.subscriber)
        print(f"Subject: {content.subject}\n\n{content.text}", file=out)
    elif command == "test":
        ids = campaigns.test_send(args.name, args.addresses, subscriber_email=args.subscriber)
        print(f"{count_of(len(ids), 'test message')} queued", file=out)
    elif command == "send":
        at = None if args.at is None else parse_send_time(args.at, zone=args.zone)
        sent = campaigns.send(args.name, at=at)
        for warning in campaigns.warnings(sent.as_draft()):
            print(f"warning: {warning}", file=out)
        if sent.scheduled_at is not None and sent.state.value == "scheduled":
            when = describe_time(sent.scheduled_at)
            print(f"campaign {sent.name!r} scheduled for {when}", file=out)
        else:
            recipients = count_of(sent.recipients_total or 0, "recipient")
            print(
                f"campaign {sent.name!r} sending to {recipients} "
                "(delivered while `relaydesk run` or the window runs)",
                file=out,
            )
    elif command == "pause":
        campaigns.pause(args.name)
        print(f"campaign {args.name!r} paused", file=out)
    elif command == "resume":
        resumed = campaigns.resume(args.name)
        print(f"campaign {resumed.name!r} {resumed.state.value}", file=out)
    elif command == "cancel":
        stopped = campaigns.cancel(args.name)
        print(
            f"campaign {args.name!r} cancelled ({count_of(stopped, 'message')} will not be sent)",
            file=out,
        )
    elif command == "delete":
        campaigns.delete(args.name)
        print(f"campaign {args.name!r} deleted", file=out)
    else:
        _report(ws, args, out)
    return EXIT_OK


def _draft(args: argparse.Namespace) -> CampaignDraft:
    if args.html_file is None and args.text_file is None:
        raise UserInputError("a campaign needs --html-file or --text-file (or both)")
    return CampaignDraft(
        name=args.name,
        list_name=args.list_name,
        from_address=args.sender,
        from_name=args.from_name,
        reply_to=args.reply_to,
        subject=args.subject,
        html=_read_template(args.html_file),
        text=_read_template(args.text_file),
        unsubscribe_url=args.unsubscribe_url,
        unsubscribe_mailto=args.unsubscribe_mailto,
        headers=_headers(args.header),
        attachments=tuple(_attachment(path) for path in args.attach),
    )


def _read_template(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        if path.stat().st_size > MAX_TEMPLATE_BYTES:
            raise UserInputError(f"{path} is larger than {MAX_TEMPLATE_BYTES // 1024 // 1024} MB")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _headers(lines: list[str]) -> dict[str, str]:
    return parse_header_lines(lines, label=lambda _number, line: f"--header {line!r}")


def _attachment(path: Path) -> Attachment:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Attachment(filename=path.name, content=content, content_type=content_type)


def _list(ws: Workspace, out: TextIO, *, as_json: bool) -> None:
    campaigns = ws.campaigns.all()
    progress = ws.campaigns.progress()
    if as_json:
        print(
            json.dumps([_summary(c, progress.get(c.id)) for c in campaigns], indent=2),
            file=out,
        )
        return
    for campaign in campaigns:
        done, total = progress.get(campaign.id, (0, 0))
        when = ""
        if campaign.state.value == "scheduled" and campaign.scheduled_at is not None:
            when = f"  at {describe_time(campaign.scheduled_at)}"
        print(
            f"{campaign.name}  {campaign.state.value}  list {campaign.list_name}  "
            f"{done}/{total}{when}",
            file=out,
        )


def _summary(campaign: Campaign, progress: tuple[int, int] | None) -> dict[str, Any]:
    done, total = progress or (0, 0)
    return {
        "name": campaign.name,
        "state": campaign.state.value,
        "list": campaign.list_name,
        "from": campaign.from_address,
        "done": done,
        "recipients": total,
        "pause_reason": campaign.pause_reason,
    }


def _report(ws: Workspace, args: argparse.Namespace, out: TextIO) -> None:
    report: CampaignReport = ws.campaigns.report(args.name)
    if args.csv is not None:
        count = ws.campaigns.export_report(args.name, args.csv, raw=args.raw)
        print(f"{count_of(count, 'recipient')} written to {args.csv}", file=out)
        return
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False), file=out)
        return
    campaign = report.campaign
    print(f"{campaign.name}: {campaign.state.value}, {report.done}/{report.total} done", file=out)
    if campaign.pause_reason:
        print(f"  {campaign.pause_reason}", file=out)
    counts = "  ".join(f"{s} {report.counts[s]}" for s in REPORT_STATES if report.counts.get(s))
    print(f"  {counts or 'nothing sent yet'}", file=out)
    for provider, count in sorted(report.by_provider.items()):
        print(f"  via {provider}: {count}", file=out)
    feedback = report.as_json()
    bounces = feedback["bounces"]
    if bounces["hard"] or bounces["soft"] or feedback["unsubscribed"]:
        print(
            f"  bounces: hard {bounces['hard']}, soft {bounces['soft']}; "
            f"unsubscribed by mail {feedback['unsubscribed']}",
            file=out,
        )
    for failure in report.failures:
        print(f"  failed {failure.email}: {failure.reason}", file=out)
