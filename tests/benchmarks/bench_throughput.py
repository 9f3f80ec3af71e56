"""Throughput of the delivery engine against bare SMTP clients, all in one run.

Starts one Postfix ``smtp-sink`` on a free loopback port and pushes 1 KB messages at it
five ways, over the same number of parallel connections where that applies:

  engine       Relaydesk's DeliveryEngine draining N durable outbox messages
               (claim, attempt row, send, outcome: every step group-committed to SQLite)
  client       the engine's own SMTP client (SmtpConnection: aiosmtplib opens the session,
               transactions pipelined when offered) in a bare loop, no outbox
  aiosmtplib   the bare library client: C connections, sendmail in a loop
  smtplib      the stdlib client, one connection, sequential (a floor, not a target)
  smtp-source  Postfix's C load generator (-d: reuse each connection): the wire's ceiling

It prints messages/s for each and ratios against the bare aiosmtplib loop measured in the
same run (the engine's target is >= 0.7x). Nothing here is collected by pytest.

    python tests/benchmarks/bench_throughput.py [--messages N] [--connections 10]
        [--repeat 3] [--profile engine.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import cProfile
import os
import platform
import pstats
import re
import resource
import shutil
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import aiosmtplib  # noqa: E402

from desktop_app.core.compose import build_message  # noqa: E402
from desktop_app.core.delivery.smtp_connection import SmtpConnection  # noqa: E402
from desktop_app.core.events import Event  # noqa: E402
from desktop_app.core.models import OutcomeClass, ProviderConfig, Security  # noqa: E402
from desktop_app.core.storage.outbox import NewMessage  # noqa: E402
from desktop_app.core.workspace import Workspace  # noqa: E402

LOOPBACK = "127.0.0.1"  # never anywhere else
SENDER = "bench@example.test"
RECIPIENT_DOMAIN = "example.test"
MESSAGE_BYTES = 1024
TARGET_RATIO = 0.7
SINK_BACKLOG = 1000


# -- the sink ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """A Postfix smtp-sink on loopback whose ``-c`` counters tell how many messages it took."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        # Outlives this method: the sink writes its counters here until stop().
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="smtp-sink-", suffix=".log", delete=False
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.binary, "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # required when run as root
        command += [f"{LOOPBACK}:{self.port}", str(SINK_BACKLOG)]
        self._process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise SystemExit(f"smtp-sink exited at once: {self._read_log()!r}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as conn:
                    conn.recv(512)  # the greeting
                    conn.sendall(b"QUIT\r\n")
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"smtp-sink did not listen on {LOOPBACK}:{self.port}")

    def _read_log(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_bytes().decode(errors="replace")

    def messages_received(self) -> int:
        """The sink's running ``mesg=`` counter (updated when "." arrives)."""
        time.sleep(0.05)  # let the sink print the last counter
        counters = re.findall(r"mesg=(\d+)", self._read_log())
        return int(counters[-1]) if counters else 0

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


# -- the messages --------------------------------------------------------------------------


def text_body(size: int) -> str:
    """Plain ASCII lines of 72 characters, ``size`` bytes in all (CRLF counted)."""
    line = ("Relaydesk throughput benchmark filler text. " * 3)[:70]
    lines: list[str] = []
    remaining = size
    while remaining > len(line) + 2:
        lines.append(line)
        remaining -= len(line) + 2
    lines.append("x" * max(0, remaining - 2))
    return "\n".join(lines) + "\n"


def build_messages(count: int, size: int) -> list[NewMessage]:
    """``count`` one-recipient messages whose raw bytes are about ``size`` bytes each."""
    subject = "Relaydesk benchmark"

    def one(index: int, body: str) -> NewMessage:
        return build_message(
            sender=SENDER,
            recipients=[f"rcpt{index}@{RECIPIENT_DOMAIN}"],
            subject=subject,
            text=body,
        )

    overhead = len(one(0, "x\n").raw) - 3  # headers and the CRLF that ends "x"
    body = text_body(max(64, size - overhead))
    return [one(i, body) for i in range(count)]


# -- the four ways -------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    messages: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # user+sys, all threads

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.messages / self.median_seconds

    @property
    def cpu_ms_per_message(self) -> float:
        return statistics.median(self.cpu_seconds) / self.messages * 1000

    @property
    def spread(self) -> str:
        if len(self.seconds) < 2:
            return ""
        rates = sorted(self.messages / s for s in self.seconds)
        return f"{rates[0]:,.0f}..{rates[-1]:,.0f}"


class NoOpSink:
    """Event sink that drops everything (the CLI and GUI would format or re-emit)."""

    def publish(self, event: Event) -> None:
        pass


@dataclass
class EngineRun:
    seconds: float
    cpu_seconds: float  # of the timed part only (not opening, migrating or queueing)
    commits: int
    journal_writes: int
    sent: int
    connections_opened: int


def run_engine(
    messages: Sequence[NewMessage],
    port: int,
    connections: int,
    *,
    profiler: cProfile.Profile | None = None,
) -> EngineRun:
    """Queue everything in a fresh data directory, then time ``engine.run(until_idle=True)``."""
    with tempfile.TemporaryDirectory(prefix="relaydesk-bench-") as data_dir:
        workspace = Workspace.open(data_dir)
        try:
            workspace.add_provider(
                ProviderConfig(
                    name="sink",
                    host=LOOPBACK,
                    port=port,
                    security=Security.NONE,
                    max_connections=connections,
                )
            )
            for start in range(0, len(messages), 1000):
                workspace.queue(messages[start : start + 1000])
            engine = workspace.create_engine(NoOpSink())

            async def timed() -> float:
                started = time.perf_counter()
                await engine.run(until_idle=True)
                return time.perf_counter() - started

            if profiler is not None:
                profiler.enable()
            cpu_before = cpu_seconds(resource.RUSAGE_SELF)
            try:
                seconds = asyncio.run(timed())
            finally:
                cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu_before
                if profiler is not None:
                    profiler.disable()

            counts = workspace.outbox_counts()
            if counts.sent != len(messages):
                raise SystemExit(
                    f"engine run incomplete: {counts.sent} of {len(messages)} sent; "
                    f"outbox counts: {counts}"
                )
            journal = engine._journal  # private, but the batching factor lives there
            commits = journal.commits if journal is not None else 0
            opened = sum(lane.pool.opened for lane in engine.lanes)
            return EngineRun(
                seconds=seconds,
                cpu_seconds=cpu,
                commits=commits,
                # Two journal writes per delivered message: attempt row, then outcome.
                journal_writes=2 * engine.stats.sent,
                sent=engine.stats.sent,
                connections_opened=opened,
            )
        finally:
            workspace.close()


def run_aiosmtplib(raw: bytes, port: int, connections: int, count: int) -> float:
    """C reused connections, ``count`` sendmail calls in all, gathered; returns seconds."""
    shares = [
        count // connections + (1 if i < count % connections else 0) for i in range(connections)
    ]

    async def worker(client: aiosmtplib.SMTP, share: int) -> None:
        for index in range(share):
            errors, _reply = await client.sendmail(SENDER, [f"rcpt{index}@{RECIPIENT_DOMAIN}"], raw)
            if errors:
                raise SystemExit(f"aiosmtplib: recipient refused: {errors}")

    async def main() -> float:
        clients = [
            aiosmtplib.SMTP(hostname=LOOPBACK, port=port, start_tls=False, use_tls=False)
            for _ in range(connections)
        ]
        started = time.perf_counter()
        await asyncio.gather(*(client.connect() for client in clients))
        await asyncio.gather(*(worker(c, s) for c, s in zip(clients, shares, strict=True)))
        await asyncio.gather(*(client.quit() for client in clients))
        return time.perf_counter() - started

    return asyncio.run(main())


def run_wire(raw: bytes, port: int, connections: int, count: int) -> float:
    """The engine's own SMTP client (SmtpConnection: pipelined when offered) in a bare
    loop like the aiosmtplib one, with no outbox: what the durable bookkeeping costs."""
    shares = [
        count // connections + (1 if i < count % connections else 0) for i in range(connections)
    ]
    provider = ProviderConfig(name="sink", host=LOOPBACK, port=port, security=Security.NONE)

    async def worker(client: SmtpConnection, share: int) -> None:
        for index in range(share):
            result = await client.send(SENDER, (f"rcpt{index}@{RECIPIENT_DOMAIN}",), raw)
            if result.outcome is not OutcomeClass.DELIVERED:
                raise SystemExit(f"SmtpConnection: not delivered: {result.detail}")

    async def main() -> float:
        clients = [
            SmtpConnection(provider, None, timeout=30.0, helo_name="bench.localhost")
            for _ in range(connections)
        ]
        started = time.perf_counter()
        await asyncio.gather(*(client.open() for client in clients))
        await asyncio.gather(*(worker(c, s) for c, s in zip(clients, shares, strict=True)))
        await asyncio.gather(*(client.close() for client in clients))
        return time.perf_counter() - started

    return asyncio.run(main())


def run_smtplib(raw: bytes, port: int, count: int) -> float:
    """One connection, ``count`` sequential sendmail calls; returns seconds."""
    started = time.perf_counter()
    client = smtplib.SMTP(LOOPBACK, port, timeout=30)
    try:
        client.ehlo()
        for index in range(count):
            client.sendmail(SENDER, [f"rcpt{index}@{RECIPIENT_DOMAIN}"], raw)
    finally:
        client.quit()
    return time.perf_counter() - started


def run_smtp_source(binary: str, port: int, connections: int, count: int, length: int) -> float:
    """Postfix's generator: -s parallel sessions, -m messages in all, -l payload bytes,
    -d do NOT disconnect after each message (reuse the session, like the others)."""
    command = [
        binary,
        "-d",
        "-s",
        str(connections),
        "-m",
        str(count),
        "-l",
        str(length),
        "-f",
        SENDER,
        "-t",
        f"rcpt@{RECIPIENT_DOMAIN}",
        "-M",
        "localhost",
        f"{LOOPBACK}:{port}",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"smtp-source failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


# -- reporting -----------------------------------------------------------------------------


def machine_summary() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return (
        f"machine: {platform.machine()} {platform.system()} {platform.release()}, "
        f"nproc={cpus}, Python {platform.python_version()} ({platform.python_implementation()}), "
        f"aiosmtplib {aiosmtplib.__version__}, SQLite {sqlite3.sqlite_version}"
    )


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(
    result: Result,
    sink: SmtpSink,
    run: Callable[[], float | tuple[float, float]],
    *,
    cpu_of: int = resource.RUSAGE_SELF,
) -> None:
    """Run once, check the sink really took the messages, record wall and CPU time.

    ``run`` returns wall seconds, or (wall, CPU) seconds when it times only part of itself.
    """
    before = sink.messages_received()
    cpu_before = cpu_seconds(cpu_of)
    outcome = run()
    if isinstance(outcome, tuple):
        seconds, cpu = outcome
    else:
        seconds, cpu = outcome, cpu_seconds(cpu_of) - cpu_before
    got = sink.messages_received() - before
    if got != result.messages:
        raise SystemExit(f"{result.name}: sink received {got} messages, expected {result.messages}")
    result.seconds.append(seconds)
    result.cpu_seconds.append(cpu)


@contextlib.contextmanager
def profile_executor_threads(profiles: dict[str, cProfile.Profile]) -> Iterator[None]:
    """Profile the engine's database thread too: cProfile only sees the thread it runs in."""

    class ProfiledExecutor(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "") -> None:
            profiler = cProfile.Profile()
            profiles[thread_name_prefix or "executor"] = profiler
            super().__init__(max_workers, thread_name_prefix, initializer=profiler.enable)

    # The engine makes its database executor with concurrent.futures.ThreadPoolExecutor(...).
    with mock.patch.object(concurrent.futures, "ThreadPoolExecutor", ProfiledExecutor):
        yield


def print_profiles(
    profiles: dict[str, cProfile.Profile], path: str | None, limit: int = 25
) -> None:
    for thread, profiler in profiles.items():
        if path:
            target = f"{path}.{thread}"
            profiler.dump_stats(target)
            print(f"\nprofile of the {thread} thread written to {target} (pstats/snakeviz)")
        stats = pstats.Stats(profiler)
        stats.strip_dirs()
        print(f"\n-- engine profile, {thread} thread, by own time (top {limit}) --")
        stats.sort_stats("tottime").print_stats(limit)
        print(f"-- engine profile, {thread} thread, by cumulative time (top {limit}) --")
        stats.sort_stats("cumulative").print_stats(limit)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", "-n", type=int, default=5000, help="N (default 5000)")
    parser.add_argument("--connections", "-c", type=int, default=10, help="parallel connections")
    parser.add_argument(
        "--smtplib-messages", type=int, default=None, help="messages for smtplib (default N/2)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians are reported")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help="after measuring, run the engine once more under cProfile (loop and database "
        "threads) and print the hotspots; with FILE, also save FILE.<thread> for pstats",
    )
    args = parser.parse_args(argv)
    count, connections = args.messages, args.connections
    smtplib_count = args.smtplib_messages or max(1, count // 2)

    sink_binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    source_binary = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    for binary in (sink_binary, source_binary):
        if not Path(binary).exists():
            raise SystemExit(f"{binary} not found (install postfix)")

    print(machine_summary())
    print(f"building {count} messages with build_message ...", flush=True)
    messages = build_messages(count, MESSAGE_BYTES)
    raw = messages[0].raw
    mean_size = sum(len(m.raw) for m in messages) / len(messages)
    print(
        f"messages: {mean_size:.0f} bytes raw on average, 1 recipient each; "
        f"{connections} connections; {args.repeat} round(s)",
        flush=True,
    )

    engine = Result("engine (durable outbox)", count)
    bare = Result("aiosmtplib (bare, gather)", count)
    wire = Result("engine's client, no outbox", count)
    stdlib = Result("smtplib (1 conn, sequential)", smtplib_count)
    source = Result("smtp-source -d (C, Postfix)", count)
    engine_runs: list[EngineRun] = []
    profiles: dict[str, cProfile.Profile] = {}

    def engine_once() -> tuple[float, float]:
        engine_runs.append(run_engine(messages, sink.port, connections))
        return engine_runs[-1].seconds, engine_runs[-1].cpu_seconds

    sink = SmtpSink(sink_binary)
    sink.start()
    print(f"smtp-sink on {LOOPBACK}:{sink.port}", flush=True)
    try:
        # Warm the sink, the page cache and the imports before anything is timed.
        run_aiosmtplib(raw, sink.port, connections, min(count, 200))
        for round_number in range(args.repeat):
            measure(bare, sink, lambda: run_aiosmtplib(raw, sink.port, connections, count))
            measure(engine, sink, engine_once)
            measure(wire, sink, lambda: run_wire(raw, sink.port, connections, count))
            measure(stdlib, sink, lambda: run_smtplib(raw, sink.port, smtplib_count))
            measure(
                source,
                sink,
                lambda: run_smtp_source(
                    source_binary, sink.port, connections, count, MESSAGE_BYTES
                ),
                cpu_of=resource.RUSAGE_CHILDREN,
            )
            print(f"round {round_number + 1}/{args.repeat} done", flush=True)

        if args.profile is not None:
            print("profiling one more engine run (cProfile makes it slower) ...", flush=True)
            loop_profiler = cProfile.Profile()
            with profile_executor_threads(profiles):
                run_engine(messages, sink.port, connections, profiler=loop_profiler)
            profiles = {"loop": loop_profiler, **profiles}
    finally:
        sink.stop()

    baseline = bare.rate
    print(
        f"\nN={count}, {connections} connections, ~{mean_size:.0f}-byte messages, "
        "loopback smtp-sink"
    )
    print(
        f"{'method':<30}{'msgs':>7}{'median s':>10}{'msgs/s':>9}{'vs aiosmtplib':>15}"
        f"{'CPU ms/msg':>12}  msgs/s range"
    )
    for result in (engine, wire, bare, stdlib, source):
        print(
            f"{result.name:<30}{result.messages:>7}{result.median_seconds:>10.3f}"
            f"{result.rate:>9,.0f}{result.rate / baseline:>14.2f}x"
            f"{result.cpu_ms_per_message:>12.3f}  {result.spread}"
        )
    ratio = engine.rate / baseline
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"\nengine / aiosmtplib  = {ratio:.2f}  ({verdict} the {TARGET_RATIO}x target)")
    print(f"engine / its client without the outbox = {engine.rate / wire.rate:.2f}")
    print(f"engine / smtplib     = {engine.rate / stdlib.rate:.2f}")
    print(f"engine / smtp-source = {engine.rate / source.rate:.2f}")
    print(f"aiosmtplib / smtp-source = {baseline / source.rate:.2f}  (the Python client vs C)")
    last = engine_runs[-1]
    if last.commits:
        print(
            f"engine journal (last round): {last.commits} group commits for "
            f"{last.journal_writes} writes of {last.sent} messages = "
            f"{last.journal_writes / last.commits:.1f} writes "
            f"({last.sent / last.commits:.1f} messages) per commit; "
            f"{last.connections_opened} SMTP connections opened"
        )
    print(
        "notes: CPU is user+sys of all threads (smtp-source: the child process);"
        " smtp-source -l counts payload only, its few headers come on top;"
        " -d keeps each session open for the next message (no reconnect)."
    )
    if profiles:
        print_profiles(profiles, args.profile or None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
