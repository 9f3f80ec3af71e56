"""Chaos run: does any mail get lost, silently duplicated or wrongly failed over?

A seeded random run of N messages (default 20,000) through three providers on loopback
whose servers misbehave at random, while the engine process is SIGKILLed and restarted at
random and a campaign runs alongside the bulk mail. Relaydesk is driven as a user drives
it, through the ``relaydesk`` command line (``python -m desktop_app``) on a private data
folder: providers and settings, a list import and a campaign, ``send --to-file`` in
chunks, ``campaign send``, and ``run`` as the engine that is killed; the last restart is
``run --until-idle``, which drains the outbox.

The three servers (aiosmtpd, in this process, on 127.0.0.1 only) misbehave per the issue:
421 at any step (greeting, EHLO, MAIL, RCPT, DATA, the final ".", RSET, NOOP, QUIT), 550
to RCPT for ``bounce-*`` addresses and 450 now and then for ``grey-*`` ones, disconnects
before the final "." (instead of a reply, or in the middle of the message) and after it
(no reply, or 250 then a drop), hangs past the client's timeout, stop/start flapping with
random periods, and restarts that drop every connection. Every message a server took in is
recorded by Message-ID, including the ones taken in before a disconnect or hang after the
final ".": the server has those, which is exactly how duplicates arise.

At the end the servers' records are compared with the outbox (its SQLite file, read
directly): delivered, lost (must be 0), duplicates received and how many of them the
outbox flagged ``possible_duplicate`` (all must be), recipients refused with a 5xx at RCPT
and then tried on another provider (must be 0), and the time to drain.

    python tests/benchmarks/bench_chaos.py [--seed N] [--messages 20000] [--kills 5]
        [--workdir DIR]

``--seed`` replays a run: the same addresses, fault rates, fault drawn for the n-th try of
each message at each server, flapping timetable and kill points. Thread and OS timing still
differ, so a replay's figures are close to, not identical with, the first run's. Exit
status 0 when the three conditions hold, 1 when one fails, 2 when the run itself broke.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"  # never anywhere else
DOMAIN = "example.com"  # list import refuses reserved names such as .test; nothing leaves loopback
BULK_SENDER = f"bulk@{DOMAIN}"
CAMPAIGN_SENDER = f"news@{DOMAIN}"
CAMPAIGN = "chaos"
LIST = "chaos-subscribers"
DATABASE = "relaydesk.sqlite3"

# -- engine settings: the defaults are minutes-long waits made for real providers ------------

SMTP_TIMEOUT = 1.0  # the smallest the setting allows; hangs last HANG_SECONDS, well past it
HANG_SECONDS = 3.0
SETTINGS = {
    "smtp.timeout_seconds": SMTP_TIMEOUT,
    "retry.min_backoff_seconds": 0.5,
    "retry.max_backoff_seconds": 5,
    "breaker.open_seconds": 1,
    "health.probe_interval_seconds": 10,
    "health.probe_interval_down_seconds": 1,
    "ambiguous.policy": "retry",  # the default, said out loud: duplicates must be possible
}

# -- the scenario's shape -----------------------------------------------------------------

CAMPAIGN_SHARE = 0.2  # of --messages; the rest is bulk mail
BULK_CHUNKS = 4  # the first is queued before the engine starts, the others while it runs
FIRST_CHUNK_SHARE = 0.4  # of all messages, so later actions' thresholds are always reachable
BOUNCE_SHARE = 0.02  # every server refuses these with 550 at RCPT (a mailbox that is gone)
GREY_SHARE = 0.03  # these get a 450 at RCPT now and then (greylisting, mailbox full)
ENQUEUE_WINDOW = (0.02, 0.30)  # when later chunks and the campaign go in, share of messages
KILL_WINDOW = (0.05, 0.85)  # when kills happen, share of messages received by the servers
MIN_KILL_GAP = 0.005  # each restarted engine delivers at least this share before its kill
RESTART_PAUSE = (0.0, 1.0)  # seconds between a kill and the restart
KILL_JITTER = (0.0, 0.25)  # seconds after the threshold: not always right after a delivery
STALL_SECONDS = 90.0  # no new delivery for this long: do the next action anyway (and say so)
DRAIN_TIMEOUT = 1500.0  # the final `run --until-idle --timeout`
ORPHAN_GRACE_SECONDS = 3.0  # after a kill, what is left of the engine's process group dies


# Three providers, as a small team would set them up: two sharing the traffic (weights 2:1)
# and a backup that gets mail only when both fail. One offers no PIPELINING, so the
# engine's one-command-at-a-time path is exercised too.
@dataclass(frozen=True)
class ProviderSetup:
    name: str
    priority: int
    weight: int
    connections: int
    pipelining: bool


PROVIDERS = (
    ProviderSetup("alpha", priority=0, weight=2, connections=3, pipelining=True),
    ProviderSetup("bravo", priority=0, weight=1, connections=3, pipelining=True),
    ProviderSetup("charlie", priority=1, weight=1, connections=2, pipelining=False),
)

# Per step: the range each server's fault rate is drawn from, and how a fault there splits
# into kinds. "421": reply 421 and close; "drop": close without a reply; "hang": say nothing
# for HANG_SECONDS, then close; the "dot" kinds are explained in ChaosHandler.handle_DATA.
FAULT_RATES = {
    "greeting": (0.01, 0.05),
    "ehlo": (0.005, 0.03),
    "mail": (0.005, 0.03),
    "rcpt": (0.005, 0.03),
    "data": (0.005, 0.03),
    "dot": (0.01, 0.04),
    "other": (0.005, 0.03),  # RSET, NOOP (the health probes' command) and QUIT
}
FAULT_KINDS = {
    "greeting": (("421", 0.5), ("drop", 0.3), ("hang", 0.2)),
    "ehlo": (("421", 0.6), ("drop", 0.3), ("hang", 0.1)),
    "mail": (("421", 0.6), ("drop", 0.25), ("hang", 0.15)),
    "rcpt": (("421", 0.5), ("drop", 0.3), ("hang", 0.2)),
    "data": (("421", 0.4), ("drop", 0.2), ("drop_in_body", 0.25), ("hang", 0.15)),
    "dot": (("421", 0.3), ("drop_after", 0.3), ("hang_after", 0.2), ("ok_then_drop", 0.2)),
    "other": (("421", 0.6), ("drop", 0.3), ("hang", 0.1)),
}
GREYLIST_RANGE = (0.3, 0.6)  # chance a grey-* address gets 450 on one try at one server
UP_SECONDS = (2.0, 12.0)  # flapping: how long a server listens between two outages
DOWN_SECONDS = (0.5, 5.0)  # ...and how long an outage lasts
RESTART_SHARE = 0.35  # of outages: a restart (every connection dropped, back at once)

REPLY_421 = "421 4.3.2 chaos: service shutting down"
RECOVERY_DETAIL = "interrupted"  # how crash recovery closes an attempt it found open


def draw(*key: object) -> float:
    """A uniform number fixed by ``key`` (seed first): the same question, the same answer.

    Decisions are keyed by what they are about (a server's n-th connection, a message's
    n-th try at a server) rather than drawn from one stream, so thread timing does not
    reshuffle every later decision of a replay.
    """
    return random.Random("/".join(map(str, key))).random()


# -- the scenario: everything that comes from the seed ---------------------------------------


@dataclass(frozen=True)
class Action:
    at: int  # distinct messages received by the servers when it happens
    kind: str  # "enqueue" (a bulk chunk), "campaign" (campaign send) or "kill"
    chunk: int = 0


@dataclass(frozen=True)
class Personality:
    """How badly one server behaves."""

    rates: dict[str, float]
    greylist: float


@dataclass
class Scenario:
    seed: int
    messages: int
    kills: int
    bulk_chunks: list[list[str]]
    campaign_addresses: list[str]
    personalities: dict[str, Personality]
    actions: list[Action]

    @property
    def bulk_count(self) -> int:
        return sum(map(len, self.bulk_chunks))

    def all_addresses(self) -> list[str]:
        return [a for chunk in self.bulk_chunks for a in chunk] + self.campaign_addresses


def address_class(rng: random.Random) -> str:
    x = rng.random()
    if x < BOUNCE_SHARE:
        return "bounce"
    return "grey" if x < BOUNCE_SHARE + GREY_SHARE else "ok"


def plan(seed: int, messages: int, kills: int) -> Scenario:
    rng = random.Random(f"{seed}/plan")
    campaign_count = round(messages * CAMPAIGN_SHARE)
    bulk_count = messages - campaign_count
    # The local part says what the servers do with the address, so the record needs no map.
    bulk = [f"{address_class(rng)}-b{i:05d}@{DOMAIN}" for i in range(bulk_count)]
    campaign = [f"{address_class(rng)}-c{i:05d}@{DOMAIN}" for i in range(campaign_count)]

    first = min(bulk_count, round(messages * FIRST_CHUNK_SHARE))
    later = range(first + 1, bulk_count)
    cuts = sorted(rng.sample(later, BULK_CHUNKS - 2)) if len(later) >= BULK_CHUNKS else []
    bounds = [0, first, *cuts, bulk_count]
    chunks = [bulk[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    def at(window: tuple[float, float]) -> int:
        return round(messages * rng.uniform(*window))

    actions = [Action(at(ENQUEUE_WINDOW), "enqueue", chunk=i) for i in range(1, len(chunks))]
    actions.append(Action(at(ENQUEUE_WINDOW), "campaign"))
    kill_points = sorted(at(KILL_WINDOW) for _ in range(kills))
    # Each restarted engine must deliver something before the next kill, and the last
    # kill must come after every enqueue: its restart is the one that drains.
    gap = max(1, round(messages * MIN_KILL_GAP))
    last_enqueue = max(a.at for a in actions)
    for i in range(len(kill_points)):
        floor = kill_points[i - 1] + gap if i else 0
        if i == len(kill_points) - 1:
            floor = max(floor, last_enqueue + gap)
        kill_points[i] = max(kill_points[i], floor)
    actions += [Action(point, "kill") for point in kill_points]
    actions.sort(key=lambda a: (a.at, a.kind == "kill"))

    personalities = {
        p.name: Personality(
            rates={step: rng.uniform(*span) for step, span in FAULT_RATES.items()},
            greylist=rng.uniform(*GREYLIST_RANGE),
        )
        for p in PROVIDERS
    }
    return Scenario(seed, messages, kills, chunks, campaign, personalities, actions)


# -- what the servers saw ------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    message_id: str
    server: str
    how: str  # "250", "ok_then_drop", "drop_after" or "hang_after"
    at: float


@dataclass(frozen=True)
class RcptEvent:
    at: float
    server: str
    reply: str  # "250", "450", "550", or the fault ("421", "drop", "hang")


class Ledger:
    """Every message the servers took in and every RCPT they answered (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.receipts: list[Receipt] = []
        self.rcpts: dict[str, list[RcptEvent]] = collections.defaultdict(list)
        self.faults: collections.Counter[str] = collections.Counter()
        self._received: set[str] = set()

    def receipt(self, content: bytes, server: str, how: str) -> None:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(content)
        message_id = str(headers.get("Message-ID", "")).strip()
        with self._lock:
            self.receipts.append(Receipt(message_id, server, how, time.time()))
            self._received.add(message_id)

    def rcpt(self, address: str, server: str, reply: str) -> None:
        with self._lock:
            self.rcpts[address.lower()].append(RcptEvent(time.time(), server, reply))

    def count(self, what: str) -> None:
        with self._lock:
            self.faults[what] += 1

    @property
    def distinct_received(self) -> int:
        with self._lock:
            return len(self._received)

    def dump(self, path: Path) -> None:
        with self._lock, path.open("w") as out:
            for r in self.receipts:
                out.write(json.dumps({"receipt": r.__dict__}) + "\n")
            for address, events in self.rcpts.items():
                for e in events:
                    out.write(json.dumps({"rcpt": address, **e.__dict__}) + "\n")


# -- the misbehaving servers ---------------------------------------------------------------


class ChaosSMTP(SMTP):
    """One connection: aiosmtpd's SMTP with a fault drawn before each reply."""

    def __init__(self, chaos: ChaosServer, connection: int) -> None:
        self.chaos = chaos
        self.connection = connection
        self.transactions = 0
        self.others = 0  # RSET, NOOP and QUIT commands so far
        self.current: tuple[str, int] = ("", 0)  # (recipient, its try number here)
        self.close_after_reply = False
        super().__init__(
            chaos.handler,
            hostname=f"{chaos.name}.chaos.localhost",  # given: aiosmtpd would ask DNS
            ident="Relaydesk chaos SMTP",
            loop=chaos.loop,
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.chaos.live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.chaos.live.discard(self)
        super().connection_lost(error)

    @property
    def gone(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    async def push(self, status: Any) -> None:
        await super().push(status)
        text = status if isinstance(status, str) else status.decode("ascii", "replace")
        # RFC 5321 3.8: a server that says 421 closes the channel. close() flushes the reply.
        if (text.startswith("421") or self.close_after_reply) and self.transport is not None:
            self.transport.close()

    def vanish(self) -> None:
        """Drop the connection at once: no reply, buffered output discarded."""
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()

    async def misbehave(self, fault: str) -> None:
        """Instead of the reply: 421 and close, drop, or hang and then drop.

        After a drop this coroutine sleeps until connection_lost cancels the session task.
        """
        self.chaos.ledger.count(fault)
        if fault == "421":
            await self.push(REPLY_421)
            return
        if fault.startswith("hang"):
            await asyncio.sleep(HANG_SECONDS)  # the client times out and closes first
        self.vanish()
        await asyncio.sleep(HANG_SECONDS)

    async def _handle_client(self) -> None:
        fault = self.chaos.fault("greeting", self.connection)
        if fault:
            await self.misbehave(fault)
            return
        await super()._handle_client()

    async def smtp_EHLO(self, hostname: str) -> None:
        fault = self.chaos.fault("ehlo", self.connection)
        if fault:
            await self.misbehave(fault)
            return
        await super().smtp_EHLO(hostname)

    async def smtp_MAIL(self, arg: str | None) -> None:
        self.transactions += 1
        fault = self.chaos.fault("mail", self.connection, self.transactions)
        if fault:
            await self.misbehave(fault)
            return
        await super().smtp_MAIL(arg)

    async def smtp_RSET(self, arg: str | None) -> None:
        if await self.other_fault("RSET"):
            return
        await super().smtp_RSET(arg)

    async def smtp_NOOP(self, arg: str | None) -> None:
        if await self.other_fault("NOOP"):
            return
        await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg: str | None) -> None:
        if await self.other_fault("QUIT"):
            return
        await super().smtp_QUIT(arg)

    async def other_fault(self, verb: str) -> bool:
        self.others += 1
        fault = self.chaos.fault("other", self.connection, verb, self.others)
        if fault:
            await self.misbehave(fault)
        return fault is not None

    async def smtp_DATA(self, arg: str | None) -> None:
        # Keyed by the message's recipient and try: the n-th try of a message meets the
        # same fault in a replay, whatever connection it happens to use.
        fault = self.chaos.fault("data", *self.current)
        if fault == "drop_in_body":
            self.chaos.ledger.count(fault)
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.readuntil(b"\r\n")  # one line of the message, then gone
            self.vanish()
            await asyncio.sleep(HANG_SECONDS)
            return
        if fault:
            await self.misbehave(fault)
            return
        await super().smtp_DATA(arg)


class ChaosHandler:
    """aiosmtpd hooks: EHLO's list, RCPT replies per address, and what the final "." gets."""

    def __init__(self, chaos: ChaosServer) -> None:
        self.chaos = chaos

    async def handle_EHLO(
        self, server: ChaosSMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        responses = [line for line in responses if not line.startswith("250-AUTH")]
        if self.chaos.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: ChaosSMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        chaos = self.chaos
        attempt = chaos.next_try(address)
        server.current = (address.lower(), attempt)
        fault = chaos.fault("rcpt", address.lower(), attempt)
        if fault:
            chaos.ledger.rcpt(address, chaos.name, fault)
            if fault == "421":
                chaos.ledger.count(fault)
                return REPLY_421
            await server.misbehave(fault)
            return REPLY_421  # not reached: the session was cancelled
        reply = chaos.rcpt_reply(address.lower(), attempt)
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        # A reply written to a connection the client already left is not a reply it got.
        chaos.ledger.rcpt(address, chaos.name, reply[:3] if not server.gone else "unsent")
        return reply

    async def handle_DATA(self, server: ChaosSMTP, session: Any, envelope: Any) -> str:
        """The whole message is here. The kinds of fault at this point:

        421           refused: the server does not have it (not recorded)
        drop_after    recorded, then the connection drops with no reply
        hang_after    recorded, no reply until the client gives up
        ok_then_drop  recorded, 250, then the connection drops
        """
        chaos = self.chaos
        content = envelope.original_content or b""
        fault = chaos.fault("dot", *server.current)
        if fault:
            chaos.ledger.count(fault)
        if fault == "421":
            return REPLY_421
        chaos.ledger.receipt(content, chaos.name, fault or "250")
        if fault in ("drop_after", "hang_after"):
            if fault == "hang_after":
                await asyncio.sleep(HANG_SECONDS)
            server.vanish()
            await asyncio.sleep(HANG_SECONDS)
        if fault == "ok_then_drop":
            server.close_after_reply = True
        return "250 2.0.0 queued"


class ChaosServer:
    """One provider's server: listens on a fixed port, flaps, restarts (on the farm's loop)."""

    def __init__(
        self, name: str, seed: int, personality: Personality, pipelining: bool, ledger: Ledger
    ) -> None:
        self.name = name
        self.seed = seed
        self.personality = personality
        self.pipelining = pipelining
        self.ledger = ledger
        self.handler = ChaosHandler(self)
        self.live: set[ChaosSMTP] = set()
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Server | None = None
        self._connections = 0
        self._tries: collections.Counter[str] = collections.Counter()

    def fault(self, step: str, *key: object) -> str | None:
        """The fault (or None) at ``step`` for ``key``: one draw, scaled into the kinds."""
        rate = self.personality.rates[step]
        x = draw(self.seed, self.name, step, *key)
        if x >= rate:
            return None
        position, total = x / rate, 0.0
        for kind, weight in FAULT_KINDS[step]:
            total += weight
            if position < total:
                return kind
        return FAULT_KINDS[step][-1][0]

    def next_try(self, address: str) -> int:
        self._tries[address.lower()] += 1
        return self._tries[address.lower()]

    def rcpt_reply(self, address: str, attempt: int) -> str:
        if address.startswith("bounce-"):
            return f"550 5.1.1 <{address}>: no such mailbox"
        if address.startswith("grey-") and self.greylisted(address, attempt):
            return f"450 4.2.0 <{address}>: greylisted, try again later"
        return "250 2.1.5 OK"

    def greylisted(self, address: str, attempt: int) -> bool:
        return draw(self.seed, self.name, "grey", address, attempt) < self.personality.greylist

    def _protocol(self) -> ChaosSMTP:
        self._connections += 1
        return ChaosSMTP(self, self._connections)

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        for _ in range(100):  # a restart on a fixed port can race the old socket's release
            try:
                self._listener = await loop.create_server(
                    self._protocol, host=LOOPBACK, port=self.port, reuse_address=True, backlog=200
                )
                break
            except OSError:
                if self.port == 0:
                    raise
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"{self.name} cannot listen on port {self.port} again")
        self.port = self._listener.sockets[0].getsockname()[1]

    async def stop_listening(self, *, drop: bool) -> None:
        # close() shuts the listening socket at once: new connections are refused. Not
        # wait_closed(): from Python 3.12 on it waits for every kept connection to end.
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if drop:
            for protocol in list(self.live):
                protocol.vanish()
        await asyncio.sleep(0)

    async def flap_forever(self) -> None:
        rng = random.Random(f"{self.seed}/{self.name}/flaps")
        while True:
            await asyncio.sleep(rng.uniform(*UP_SECONDS))
            if rng.random() < RESTART_SHARE:
                self.ledger.count("restart")
                await self.stop_listening(drop=True)
                await asyncio.sleep(rng.uniform(0.05, 0.5))
            else:
                self.ledger.count("flap")
                await self.stop_listening(drop=rng.random() < 0.5)
                await asyncio.sleep(rng.uniform(*DOWN_SECONDS))
            await self.listen()


class ServerFarm:
    """The three servers and their flapping on one asyncio loop in a background thread."""

    def __init__(self, scenario: Scenario, ledger: Ledger) -> None:
        self.servers = [
            ChaosServer(p.name, scenario.seed, scenario.personalities[p.name], p.pipelining, ledger)
            for p in PROVIDERS
        ]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chaos-smtp", daemon=True
        )
        self._flappers: list[asyncio.Task[None]] = []

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def start(self) -> None:
        self._thread.start()
        for server in self.servers:
            self._call(server.listen())

    def start_flapping(self) -> None:
        async def begin() -> None:
            self._flappers = [asyncio.create_task(s.flap_forever()) for s in self.servers]

        self._call(begin())

    def stop(self) -> None:
        async def end() -> None:
            for task in self._flappers:
                task.cancel()
            await asyncio.gather(*self._flappers, return_exceptions=True)
            for server in self.servers:
                await server.stop_listening(drop=True)
            await asyncio.sleep(0.1)  # let the dropped sessions finish

        self._call(end())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def port(self, name: str) -> int:
        return next(s.port for s in self.servers if s.name == name)


# -- driving Relaydesk through its command line --------------------------------------------


class Relaydesk:
    """``python -m desktop_app --data-dir DIR ...`` with no keyring (no passwords needed)."""

    def __init__(self, data_dir: Path, logs: Path) -> None:
        self.data_dir = data_dir
        self.logs = logs
        self.engines_started = 0
        self.engine: subprocess.Popen[bytes] | None = None
        hidden = ("RELAYDESK_DATA_DIR", "DBUS_SESSION_BUS_ADDRESS", "RELAYDESK_BUSY_TIMEOUT_MS")
        self.env = {k: v for k, v in os.environ.items() if k not in hidden}
        # As tests/cli/cli_harness.py: explicitly no keyring, so no real one is ever touched.
        self.env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        )

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "desktop_app", "--data-dir", str(self.data_dir), *args]

    def __call__(self, *args: str) -> str:
        result = subprocess.run(
            self.command(*args),
            cwd=REPO_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RunBroke(
                f"relaydesk {' '.join(args)} exited {result.returncode}: {result.stderr}"
            )
        return result.stdout

    def start_engine(self, *args: str) -> subprocess.Popen[bytes]:
        """``relaydesk run`` in its own process group (its render child joins it)."""
        self.engines_started += 1
        with (self.logs / f"engine-{self.engines_started}.log").open("wb") as log:
            self.engine = subprocess.Popen(
                self.command("run", *args),
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.engine

    def stop_engine(self) -> None:
        """After a broken run: end the engine this script started, if it still runs."""
        if self.engine is not None and self.engine.poll() is None:
            kill_engine(self.engine)


class RunBroke(Exception):
    """The run could not be carried out (not a finding about delivery)."""


def configure(desk: Relaydesk, farm: ServerFarm, scenario: Scenario, work: Path) -> None:
    for p in PROVIDERS:
        desk(
            "provider", "add", p.name, "--host", LOOPBACK, "--port", str(farm.port(p.name)),
            "--security", "none", "--priority", str(p.priority), "--weight", str(p.weight),
            "--max-connections", str(p.connections),
        )  # fmt: skip
    for key, value in SETTINGS.items():
        desk("settings", "set", key, str(value))
    subscribers = work / "subscribers.csv"
    subscribers.write_text(
        "email,name\n"
        + "".join(f"{a},Reader {i}\n" for i, a in enumerate(scenario.campaign_addresses))
    )
    desk("list", "create", LIST)
    desk("list", "import", LIST, str(subscribers))
    body = work / "campaign.txt"
    body.write_text("Hello {{ name }},\n\nthis is the chaos campaign for {{ email }}.\n")
    desk(
        "campaign", "create", CAMPAIGN, "--list", LIST, "--from", CAMPAIGN_SENDER,
        "--subject", "Chaos for {{ name }}", "--text-file", str(body),
    )  # fmt: skip


def enqueue_chunk(desk: Relaydesk, scenario: Scenario, index: int, work: Path) -> None:
    recipients = work / f"bulk-{index}.txt"
    recipients.write_text("".join(f"{a}\n" for a in scenario.bulk_chunks[index]))
    body = work / "bulk.txt"
    body.write_text("Hello,\n\n" + "this is bulk mail in a chaos run.\n" * 20)
    desk(
        "send", "--from", BULK_SENDER, "--to-file", str(recipients),
        "--subject", f"Chaos bulk {index}", "--text-file", str(body),
    )  # fmt: skip


def kill_engine(engine: subprocess.Popen[bytes], reaped: list[int] | None = None) -> None:
    """SIGKILL the engine, as a crash would.

    Its render child (and multiprocessing's resource tracker) outlive it: they were seen
    still running a minute later. They are in the engine's own process group, which is
    SIGKILLed after a grace period on a timer, so the restart is not delayed and they do
    not pile up; ``reaped`` gets the group's id when something was left to kill.
    """
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait(30)

    def reap() -> None:
        try:
            os.killpg(engine.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if reaped is not None:
            reaped.append(engine.pid)

    reaper = threading.Timer(ORPHAN_GRACE_SECONDS, reap)
    reaper.daemon = False  # the script waits for the last reap before it exits
    reaper.start()


@dataclass
class Timeline:
    started: float = 0.0
    last_restart: float = 0.0
    drained: float = 0.0
    kills: int = 0
    orphans: list[int] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    final_exit: int | None = None


def wait_for_deliveries(
    ledger: Ledger, target: int, engine: subprocess.Popen[bytes], report: Callable[[], None]
) -> bool:
    """Wait until the servers have ``target`` distinct messages; False after a stall."""
    last_seen, last_change, last_report = -1, time.monotonic(), time.monotonic()
    while (seen := ledger.distinct_received) < target:
        if engine.poll() is not None:
            raise RunBroke(f"`relaydesk run` exited {engine.returncode} on its own")
        now = time.monotonic()
        if seen != last_seen:
            last_seen, last_change = seen, now
        elif now - last_change > STALL_SECONDS:
            return False
        if now - last_report > 15:
            report()
            last_report = now
        time.sleep(0.05)
    return True


def run_chaos(
    scenario: Scenario, desk: Relaydesk, farm: ServerFarm, ledger: Ledger, work: Path
) -> Timeline:
    timeline = Timeline()
    rng = random.Random(f"{scenario.seed}/timing")

    def report() -> None:
        elapsed = time.monotonic() - timeline.started
        print(
            f"  {elapsed:6.1f} s  {ledger.distinct_received:,} received, "
            f"{timeline.kills} kills, engine #{desk.engines_started}",
            flush=True,
        )

    enqueue_chunk(desk, scenario, 0, work)
    farm.start_flapping()
    timeline.started = time.monotonic()
    engine = desk.start_engine()
    kills_left = sum(a.kind == "kill" for a in scenario.actions)
    for action in scenario.actions:
        if not wait_for_deliveries(ledger, action.at, engine, report):
            stalled_at = ledger.distinct_received
            timeline.stalls.append(f"{action.kind} due at {action.at}, stalled at {stalled_at}")
        if action.kind == "enqueue":
            enqueue_chunk(desk, scenario, action.chunk, work)
        elif action.kind == "campaign":
            desk("campaign", "send", CAMPAIGN)
        else:
            time.sleep(rng.uniform(*KILL_JITTER))
            kill_engine(engine, timeline.orphans)
            timeline.kills += 1
            kills_left -= 1
            print(f"  kill {timeline.kills} at {ledger.distinct_received:,} received", flush=True)
            time.sleep(rng.uniform(*RESTART_PAUSE))
            timeline.last_restart = time.monotonic()
            if kills_left:
                engine = desk.start_engine()
            else:
                engine = desk.start_engine("--until-idle", "--timeout", str(DRAIN_TIMEOUT))
    try:
        timeline.final_exit = engine.wait(DRAIN_TIMEOUT + 120)
    except subprocess.TimeoutExpired:
        kill_engine(engine, timeline.orphans)
    timeline.drained = time.monotonic()
    report()
    return timeline


# -- the verdict ---------------------------------------------------------------------------


@dataclass
class Verdict:
    expected: int = 0
    delivered: int = 0
    failed: int = 0
    failed_without_5xx: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicated_messages: int = 0
    flagged: int = 0
    flagged_rows: int = 0
    unexpected_receipts: int = 0
    wrong_failovers: list[str] = field(default_factory=list)
    excused_by_kill: int = 0
    states: dict[str, int] = field(default_factory=dict)

    @property
    def unflagged(self) -> int:
        return self.duplicates - self.flagged

    @property
    def passed(self) -> bool:
        # A message failed with no 5xx from any server is as good as lost.
        return (
            not self.lost
            and self.unflagged == 0
            and not self.wrong_failovers
            and not self.failed_without_5xx
        )


@contextlib.contextmanager
def database(path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        yield connection
    finally:
        connection.close()


def judge(db_path: Path, ledger: Ledger, scenario: Scenario) -> Verdict:
    verdict = Verdict()
    with database(db_path) as db:
        rows = [dict(r) for r in db.execute(
            "SELECT id, message_id, state, recipients, possible_duplicate, last_error FROM outbox"
        )]  # fmt: skip
        attempts = collections.defaultdict(list)
        for a in db.execute(
            "SELECT outbox_id, provider_name, started_at, outcome, detail FROM attempts"
        ):
            attempts[a["outbox_id"]].append(dict(a))
    # One recipient per message (send --to-file and campaigns both queue one per address),
    # so the address names the message.
    by_address = {json.loads(r["recipients"])[0].lower(): r for r in rows}
    verdict.states = dict(collections.Counter(r["state"] for r in rows))
    verdict.flagged_rows = sum(bool(r["possible_duplicate"]) for r in rows)
    received = collections.Counter(r.message_id for r in ledger.receipts)
    known_ids = {r["message_id"] for r in rows}
    verdict.unexpected_receipts = sum(n for mid, n in received.items() if mid not in known_ids)

    for address in (a.lower() for a in scenario.all_addresses()):
        verdict.expected += 1
        row = by_address.get(address)
        if row is None:  # accepted by `send` or `campaign send`, never seen in the outbox
            verdict.lost.append(f"{address}: not in the outbox")
            continue
        times = received[row["message_id"]]
        if times:
            verdict.delivered += 1
            if times > 1:
                verdict.duplicates += times - 1
                verdict.duplicated_messages += 1
                if row["possible_duplicate"]:
                    verdict.flagged += times - 1
        elif row["state"] in ("failed", "bounced") and row["last_error"]:
            verdict.failed += 1
            if not any(e.reply.startswith("5") for e in ledger.rcpts.get(address, [])):
                verdict.failed_without_5xx += 1
        else:
            verdict.lost.append(f"{address}: {row['state']}, never received ({row['last_error']})")

    for address, events in ledger.rcpts.items():
        row = by_address.get(address)
        refusal = next((e for e in events if e.reply.startswith("5")), None)
        if refusal is None or row is None:
            continue
        elsewhere = [e for e in events if e.at > refusal.at and e.server != refusal.server]
        if not elsewhere:
            continue
        if refusal_lost_to_a_kill(attempts[row["id"]], refusal):
            verdict.excused_by_kill += 1
            continue
        verdict.wrong_failovers.append(
            f"{address}: {refusal.reply} from {refusal.server}, then tried on "
            + ", ".join(sorted({e.server for e in elsewhere}))
            + f" (attempts: {describe(attempts[row['id']])})"
        )
    return verdict


def refusal_lost_to_a_kill(attempts: list[dict[str, Any]], refusal: RcptEvent) -> bool:
    """Whether the engine died before it could commit the 5xx it was sent.

    The attempt through that server that was open when the 5xx went out is the latest one
    started before it; crash recovery closes such an attempt as ambiguous ("interrupted").
    The engine never learned of that 5xx, so trying elsewhere is no failover decision.
    """
    before = [
        a
        for a in attempts
        if a["provider_name"] == refusal.server and a["started_at"] <= refusal.at
    ]
    if not before:
        return False
    attempt = max(before, key=lambda a: a["started_at"])
    return attempt["outcome"] == "ambiguous" and RECOVERY_DETAIL in (attempt["detail"] or "")


def describe(attempts: list[dict[str, Any]]) -> str:
    ordered = sorted(attempts, key=lambda a: a["started_at"])
    return ", ".join(f"{a['provider_name']}={a['outcome']}" for a in ordered)


def print_results(scenario: Scenario, verdict: Verdict, timeline: Timeline, ledger: Ledger) -> None:
    faults = ledger.faults
    drain = timeline.drained - timeline.started
    after_last = timeline.drained - timeline.last_restart
    hangs = sum(n for kind, n in faults.items() if kind.startswith("hang"))
    drops = sum(n for kind, n in faults.items() if "drop" in kind)
    failed = f"{verdict.failed:,}"
    if verdict.failed_without_5xx:
        failed += f" ({verdict.failed_without_5xx} with no 5xx from any server!)"
    wrong = f"{len(verdict.wrong_failovers)}"
    if verdict.excused_by_kill:
        wrong += f" (and {verdict.excused_by_kill} whose 5xx died with a killed engine)"
    campaign = len(scenario.campaign_addresses)
    lines = [
        ("seed", f"{scenario.seed}"),
        ("messages", f"{verdict.expected:,} ({scenario.bulk_count:,} bulk, {campaign:,} campaign)"),
        ("kills", f"{timeline.kills} (SIGKILL of `relaydesk run`, restarted each time)"),
        ("delivered", f"{verdict.delivered:,}"),
        ("failed (5xx at RCPT)", failed),
        ("lost", f"{len(verdict.lost)}"),
        ("duplicates received", f"{verdict.duplicates} (in {verdict.duplicated_messages} msgs)"),
        ("duplicates flagged", f"{verdict.flagged} (unflagged: {verdict.unflagged})"),
        ("rows flagged", f"{verdict.flagged_rows} possible duplicates in the outbox"),
        ("wrong 5xx failovers", wrong),
        ("drain time (s)", f"{drain:.1f} (first start to idle; {after_last:.1f} after last kill)"),
        ("server chaos", f"421s {faults['421']}, drops {drops}, hangs {hangs}, "
                         f"flaps {faults['flap']}, restarts {faults['restart']}"),
        ("outbox at the end", ", ".join(f"{k} {v:,}" for k, v in sorted(verdict.states.items()))),
    ]  # fmt: skip
    if verdict.unexpected_receipts:
        lines.append(("unexpected receipts", f"{verdict.unexpected_receipts} (not in the outbox)"))
    if timeline.orphans:
        lines.append(("orphans reaped", f"{len(timeline.orphans)} killed engines' render children"))
    if timeline.final_exit not in (0, None):
        lines.append(("final run exit", f"{timeline.final_exit}"))
    print("\n== bench_chaos ==")
    for label, value in lines:
        print(f"{label:<22} {value}")
    for stall in timeline.stalls:
        print(f"stall: {stall}")
    for title, items in (("lost", verdict.lost), ("wrong failover", verdict.wrong_failovers)):
        for item in items[:10]:
            print(f"{title}: {item}")
        if len(items) > 10:
            print(f"{title}: ... {len(items) - 10} more")
    print(f"{'verdict':<22} {'PASS' if verdict.passed else 'FAIL'}")
    print(
        f"replay: python tests/benchmarks/bench_chaos.py --seed {scenario.seed} "
        f"--messages {scenario.messages} --kills {scenario.kills}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="replay this run (default: a random seed)")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "relaydesk-bench-chaos",
        help="the run's data folder, engine logs and server records go to WORKDIR/seed-N",
    )
    args = parser.parse_args()
    if args.messages < 100 or args.kills < 1:
        parser.error("--messages must be at least 100 and --kills at least 1")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    print(f"seed {seed}: {args.messages:,} messages, {args.kills} kills", flush=True)
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # aiosmtpd: every drop is "news"

    work = args.workdir / f"seed-{seed}"
    if work.exists():
        subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    scenario = plan(seed, args.messages, args.kills)
    ledger = Ledger()
    farm = ServerFarm(scenario, ledger)
    desk = Relaydesk(work / "data", work)
    farm.start()
    try:
        configure(desk, farm, scenario, work)
        timeline = run_chaos(scenario, desk, farm, ledger, work)
    except RunBroke as broke:
        print(f"the run broke: {broke}", file=sys.stderr)
        return 2
    finally:
        desk.stop_engine()
        farm.stop()
    ledger.dump(work / "servers.jsonl")
    verdict = judge(work / "data" / DATABASE, ledger, scenario)
    print_results(scenario, verdict, timeline, ledger)
    print(f"data, engine logs and server records: {work}")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
