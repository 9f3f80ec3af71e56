"""``relaydesk health [--json] [--probe]``: uptime, latency, errors and incidents per provider."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any

from desktop_app.cli.contract import EXIT_OK, Streams
from desktop_app.core.events import Event
from desktop_app.core.health.figures import ProviderFigures
from desktop_app.core.health.report import LiveStates
from desktop_app.core.instance_lock import InstanceLock
from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace


def register(commands: Any) -> None:
    health = commands.add_parser(
        "health", help="uptime, latency, error rate and incidents of each provider"
    )
    health.set_defaults(handler=cmd_health)
    health.add_argument("--json", action="store_true", help="one JSON object per provider")
    health.add_argument(
        "--probe",
        action="store_true",
        help="probe every enabled provider now and record the result first "
        "(needs the data folder to itself: not while the app is running)",
    )


class _Quiet:
    def publish(self, event: Event) -> None:
        pass


def _probe_now(ws: Workspace) -> LiveStates:
    """One round of probes, recorded like the app's; returns the states it saw."""
    lock = InstanceLock(ws.data_dir)
    lock.acquire()  # the running app's monitor is the only writer of health history
    runtime = LoopThread()
    runtime.start()
    try:
        monitor = ws.create_monitor(_Quiet(), board=ws.create_provider_board(_Quiet()))

        async def one_round() -> LiveStates:
            await monitor.start()
            try:
                await monitor.probe_all()
                await monitor.flush()
                return monitor.live_states()
            finally:
                await monitor.close()

        return runtime.submit(one_round()).result()
    finally:
        runtime.stop()
        lock.release()


def cmd_health(ws: Workspace, args: argparse.Namespace, io: Streams) -> int:
    live = _probe_now(ws) if args.probe else None
    now = time.time()
    figures = ws.health_figures(now=now, live=live)
    if args.json:
        json.dump([f.as_json(now) for f in figures], io.out, indent=2)
        io.out.write("\n")
        return EXIT_OK
    if not figures:
        print("no providers yet: add one with 'relaydesk provider add'", file=io.out)
        return EXIT_OK
    for f in figures:
        _print_provider(f, now, io)
    return EXIT_OK


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _print_provider(f: ProviderFigures, now: float, io: Streams) -> None:
    out = io.out
    print(f"{f.provider}: {f.state} (breaker {f.breaker.value})", file=out)
    print(
        f"  uptime   1h {_percent(f.uptime_1h)}  24h {_percent(f.uptime_24h)}  "
        f"7d {_percent(f.uptime_7d)}  30d {_percent(f.uptime_30d)}",
        file=out,
    )
    print(
        f"  latency  p50 {_ms(f.latency_p50_ms)}  p95 {_ms(f.latency_p95_ms)}  "
        f"max {_ms(f.latency_max_ms)}  (24h: {f.latency_probes_24h} probes, "
        f"{f.latency_sends_24h} sends)",
        file=out,
    )
    errors = ", ".join(f"{k} {v}" for k, v in f.errors_24h.items()) or "none"
    print(
        f"  24h      sent {f.sent_24h}  error rate {_percent(f.error_rate_24h)}  errors: {errors}",
        file=out,
    )
    for incident in f.incidents[:5]:
        start = datetime.fromtimestamp(incident.started_at).isoformat(sep=" ", timespec="seconds")
        ongoing = "ongoing, " if incident.ended_at is None else ""
        print(
            f"  incident {start} ({ongoing}{incident.duration_seconds(now):.0f} s): "
            f"{incident.cause}",
            file=out,
        )
