"""``relaydesk send``, ``outbox`` and ``run``: queue mail, look at the outbox, deliver it."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from desktop_app.cli.contract import EXIT_OK, EXIT_PENDING, Streams
from desktop_app.core.compose import build_message, build_one_per_recipient
from desktop_app.core.errors import UserInputError
from desktop_app.core.events import (
    AlertRaised,
    CampaignChanged,
    EngineStatusChanged,
    Event,
    FailoverHappened,
    IncidentChanged,
    MessageStateChanged,
    ProviderStateChanged,
)
from desktop_app.core.instance_lock import InstanceLock
from desktop_app.core.models import MessageState
from desktop_app.core.runtime import LoopThread
from desktop_app.core.service import DeliveryService
from desktop_app.core.wording import count_of
from desktop_app.core.workspace import Workspace


def register(commands: Any) -> None:
    send = commands.add_parser("send", help="queue a message")
    send.set_defaults(handler=cmd_send)
    send.add_argument("--from", dest="sender", required=True)
    recipients = send.add_mutually_exclusive_group(required=True)
    recipients.add_argument("--to", action="append", help="recipient (repeat: one message)")
    recipients.add_argument("--to-file", help="one address a line: one message each")
    send.add_argument("--subject", required=True)
    send.add_argument("--text-file", help="plain text body")
    send.add_argument("--html-file", help="HTML body")

    outbox = commands.add_parser("outbox", help="how many messages are in each state")
    outbox.set_defaults(handler=cmd_outbox)
    outbox.add_argument("--json", action="store_true")

    run = commands.add_parser(
        "run",
        help="deliver the outbox",
        epilog="exit codes: 0 done, 1 a problem with the machine, 2 bad input, 3 mail still "
        "pending (--timeout, or nothing can send it), 4 the disk holding the data folder is "
        "full: sending stopped cleanly, nothing is lost; run again once there is room",
    )
    run.set_defaults(handler=cmd_run)
    run.add_argument("--until-idle", action="store_true", help="exit once nothing is pending")
    run.add_argument("--timeout", type=float, help="give up after SECONDS (exit 3 if pending)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserInputError(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def cmd_send(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
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
        print(f"queued {count_of(len(messages), 'message')}", file=out)
    if not any(provider.enabled for provider in ws.list_providers()):
        # Kept (the outbox is durable), but a silent wait would look like a hang later. A
        # line of its own, so scripts reading the first line keep working.
        they = "it waits" if len(messages) == 1 else "they wait"
        print(f"no provider is enabled yet: {they} in the outbox until one is", file=out)
    return EXIT_OK


def cmd_outbox(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    counts = ws.outbox_counts().as_dict()
    if args.json:
        json.dump(counts, out)
        out.write("\n")
    else:
        for state, count in counts.items():
            print(f"{state:<10} {count}", file=out)
    return EXIT_OK


# -- run ---------------------------------------------------------------------------------


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
        elif isinstance(event, AlertRaised):
            line = f"alert ({event.severity}): {event.message}"
        elif isinstance(event, CampaignChanged) and not event.queued:
            detail = f": {event.detail}" if event.detail else ""
            line = f"campaign {event.name}: {event.state}{detail}"
        elif isinstance(event, IncidentChanged):
            if event.ended_at is None:
                line = f"incident: {event.provider_name} is down ({event.cause})"
            else:
                minutes = (event.ended_at - event.started_at) / 60
                line = f"incident over: {event.provider_name} is back after {minutes:.1f} min"
        if line is not None:
            with self._lock:
                print(line, file=self._out, flush=True)


def cmd_run(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    out = io.out
    lock = InstanceLock(ws.data_dir)
    lock.acquire()
    runtime = LoopThread()
    runtime.start()
    # Sends feed the health history and alerts while this process holds the lock; the
    # first probes wait one interval (a short `run` should not knock on every provider).
    service = DeliveryService(ws, ProgressPrinter(out, quiet=args.quiet), probe_on_start=False)
    engine = service.engine
    stop_requested = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()
        runtime.call_soon(engine.request_stop)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        future = runtime.submit(service.run(until_idle=args.until_idle))
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
    pending = ws.pending_work()
    print(
        f"sent {stats.sent}, failed {stats.failed}, deferred {stats.deferred}, "
        f"unknown {stats.unknown}, failovers {stats.failovers}; "
        f"{pending} pending after {time.monotonic() - started:.1f} s",
        file=out,
    )
    if engine.stuck is not None:
        # Nothing this run could do would send it: say why at once instead of waiting.
        print(f"relaydesk: {engine.stuck}", file=sys.stderr)
        return EXIT_PENDING
    if args.timeout is not None and pending and not stop_requested.is_set():
        print(f"relaydesk: --timeout ran out with {_why_pending(ws, pending)}", file=sys.stderr)
        return EXIT_PENDING
    return EXIT_OK


def _why_pending(ws: Workspace, pending: int) -> str:
    """What a script reads after exit 3: how much is left, and the reason when it is ours."""
    left = f"{count_of(pending, 'message')} still waiting"
    if not any(provider.enabled for provider in ws.list_providers()):
        return f"{left} (no provider is enabled)"
    return left
