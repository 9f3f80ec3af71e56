"""How long does enqueueing a 100,000-recipient campaign take, and does the window freeze?

Over a fresh temp data directory: a 100,000-subscriber list imported from a generated CSV
file (email, name, custom columns city and plan) and an HTML campaign using ``{{ name }}``,
``{{ city }}`` and ``{{ plan }}`` with an unsubscribe mailto. Three measurements, each with
its baseline taken in the same run:

1. **enqueue**: ``workspace.campaigns.send(name)`` headless (pre-send check of 200 sampled
   subscribers, then one ``INSERT ... SELECT`` into ``campaign_recipients`` and the state
   change), ``--repeat`` times on new campaigns over the same list. Baseline: a raw
   ``sqlite3`` ``INSERT INTO`` a temp table ``SELECT`` of the same columns from
   ``subscribers``, the floor for copying the rows.
2. **rendering**: what the campaign runner does per batch (``pending_batch``,
   ``render_batch``, ``store_batch``, 500 at a time) for ``--render`` recipients, without
   delivery. Baseline: as many ``compose.build_message`` messages with bodies of the same
   size. This is the ceiling of a campaign's send rate.
3. **GUI**: the real window offscreen (Workspace, LoopThread, CoreBridge, DeliveryController
   started, MainWindow on the Campaigns page) with one provider on a local ``smtp-sink``
   (or aiosmtpd). The heartbeat and watchdog of ``bench_gui_stall.py`` measure the idle
   window for ``--baseline-seconds``, then the load: ``bridge.call(workspace.campaigns.send,
   name)`` from the GUI thread as the Campaigns page does, the runner rendering and the
   engine sending, for ``--load-seconds`` or until ``--messages`` are sent.

    python tests/benchmarks/bench_campaign_enqueue.py [-n 100000] [--repeat 3]
        [--render 5000] [--messages 10000] [--load-seconds 15] [--skip-gui]

Targets: enqueue under 5 s for 100,000 recipients; longest GUI stall under 50 ms. Only
loopback traffic. Not collected by pytest, asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import collections
import csv
import gc
import importlib.util
import itertools
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from desktop_app.core.campaigns import manager as manager_module  # noqa: E402
from desktop_app.core.campaigns.rendering import (  # noqa: E402
    campaign_settings,
    preview,
    recipient_of,
    render_batch,
)
from desktop_app.core.compose import build_message  # noqa: E402
from desktop_app.core.storage.campaigns import CampaignDraft  # noqa: E402
from desktop_app.core.storage.database import DATABASE_FILENAME  # noqa: E402
from desktop_app.core.workspace import Workspace  # noqa: E402

LIST_NAME = "bench"
TARGET_ENQUEUE_S = 5.0
BATCH = 500  # the runner's batch size (campaigns/runner.py BATCH_SIZE)
CAMPAIGNS_PAGE = 1
HTML = """<html><body>
<h1>Hello {{ name }}</h1>
<p>Our {{ plan }} plan now has a local team in {{ city }}. Relaydesk benchmark filler text,
about as long as a short newsletter paragraph, so the body is not trivially small.</p>
<p>Relaydesk benchmark filler text, a second paragraph with a little more of the same so
that the rendered HTML part is about a kilobyte, like a short real newsletter.</p>
<p>Relaydesk benchmark filler text, a third paragraph. {{ name }}, thanks for reading.</p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</body></html>
"""


# -- setup ----------------------------------------------------------------------------------


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "city", "plan"])
        for i in range(rows):
            writer.writerow(
                [
                    f"user{i}@domain{i % 200}.example.com",
                    f"Subscriber Nº {i}",
                    f"City {i % 97}",
                    ("free", "pro", "team")[i % 3],
                ]
            )


def open_workspace(data_dir: Path, source: Path, rows: int) -> Workspace:
    workspace = Workspace.open(data_dir)
    workspace.create_list(LIST_NAME)
    report = workspace.import_list(LIST_NAME, source, accept_valid=True)
    if report.imported != rows:
        raise SystemExit(f"imported {report.imported} subscribers, expected {rows}")
    return workspace


def draft(name: str) -> CampaignDraft:
    return CampaignDraft(
        name=name,
        list_name=LIST_NAME,
        from_address="news@example.test",
        from_name="Relaydesk Bench",
        subject="News for {{ name }} in {{ city }}",
        html=HTML,
        unsubscribe_mailto="unsubscribe@example.test",
    )


# -- 1. enqueue ----------------------------------------------------------------------------


@contextmanager
def timed_steps(workspace: Workspace, steps: dict[str, float]) -> Iterator[None]:
    """Time the parts of ``campaigns.send`` by wrapping what it calls (same objects)."""

    def wrap(function: Callable[..., Any], label: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                steps[label] = steps.get(label, 0.0) + time.perf_counter() - start

        return timed

    lists, store = workspace.lists, workspace.campaign_store
    original_preflight = manager_module.preflight
    lists.sample_sendable = wrap(lists.sample_sendable, "sample 200 subscribers")  # type: ignore[method-assign]
    manager_module.preflight = wrap(original_preflight, "pre-send check (render 200)")  # type: ignore[assignment]
    store.start = wrap(store.start, "copy recipients (INSERT ... SELECT)")  # type: ignore[method-assign]
    try:
        yield
    finally:
        del lists.sample_sendable, store.start
        manager_module.preflight = original_preflight


def time_raw_copy(db_path: Path) -> tuple[float, int]:
    """The floor: the same rows and columns copied by SQLite alone, into a temp table."""
    connection = sqlite3.connect(db_path)
    try:
        connection.execute(
            "CREATE TEMP TABLE copy (campaign_id, subscriber_id, email, email_key, name,"
            " fields, state, detail)"
        )
        (list_id,) = connection.execute(
            "SELECT id FROM lists WHERE name = ?", (LIST_NAME,)
        ).fetchone()
        start = time.perf_counter()
        with connection:
            cursor = connection.execute(
                "INSERT INTO copy SELECT 0, id, email, email_key, name, fields, 'pending', NULL"
                " FROM subscribers WHERE list_id = ? AND status = 'active'",
                (list_id,),
            )
        elapsed = time.perf_counter() - start
        return elapsed, cursor.rowcount
    finally:
        connection.close()


def bench_enqueue(workspace: Workspace, args: argparse.Namespace) -> list[str]:
    db_path = workspace.data_dir / DATABASE_FILENAME
    baselines: list[float] = []
    sends: list[float] = []
    steps: list[dict[str, float]] = []
    names = []
    for run in range(args.repeat):
        seconds, copied = time_raw_copy(db_path)
        if copied != args.rows:
            raise SystemExit(f"raw copy found {copied} rows, expected {args.rows}")
        baselines.append(seconds)
        name = f"Enqueue {run + 1}"
        workspace.campaigns.create(draft(name))
        parts: dict[str, float] = {}
        with timed_steps(workspace, parts):
            start = time.perf_counter()
            campaign = workspace.campaigns.send(name)
            sends.append(time.perf_counter() - start)
        steps.append(parts)
        names.append(name)
        if campaign.recipients_total != args.rows:
            raise SystemExit(f"{name} has {campaign.recipients_total} recipients")

    baseline = statistics.median(baselines)
    seconds = statistics.median(sends)
    rows = args.rows
    print(f"1. enqueue: campaigns.send over {rows:,} subscribers, median of {args.repeat}")
    print(f"  raw sqlite3 INSERT..SELECT : {baseline:7.3f} s  {rows / baseline:12,.0f} rows/s")
    print(f"  campaigns.send             : {seconds:7.3f} s  {rows / seconds:12,.0f} recipients/s")
    print(f"  ratio                      : {seconds / baseline:7.1f}x the baseline")
    print(f"  runs (s)                   : {', '.join(f'{s:.3f}' for s in sends)}")
    for label in steps[0]:
        median = statistics.median(part.get(label, 0.0) for part in steps)
        print(f"    {label:33}{median:7.3f} s")
    verdict = "under" if seconds < TARGET_ENQUEUE_S else "OVER"
    print(f"  target {TARGET_ENQUEUE_S:g} s for 100,000 recipients: {verdict} ({seconds:.2f} s)")
    return names


# -- 2. rendering ---------------------------------------------------------------------------


def bench_render(workspace: Workspace, campaign_name: str, count: int) -> None:
    store = workspace.campaign_store
    campaign = workspace.campaigns.get(campaign_name)
    settings = campaign_settings(campaign, store.attachments(campaign.id), None)

    fetch = render = write = 0.0
    done = raw_bytes = 0
    start = time.perf_counter()
    while done < count:
        t0 = time.perf_counter()
        pending = store.pending_batch(campaign.id, min(BATCH, count - done))
        t1 = time.perf_counter()
        batch = render_batch(settings, campaign.id, pending)
        t2 = time.perf_counter()
        if not store.store_batch(campaign.id, batch):
            raise SystemExit("store_batch refused: the campaign is not sending")
        t3 = time.perf_counter()
        fetch, render, write = fetch + t1 - t0, render + t2 - t1, write + t3 - t2
        if len(batch.queued) != len(pending) or not pending:
            raise SystemExit(f"rendered {len(batch.queued)} of {len(pending)} recipients")
        done += len(pending)
        raw_bytes += sum(len(message.raw) for _, message in batch.queued)
    runner_seconds = time.perf_counter() - start

    # Same body size: the parts one recipient's rendering produces, as a plain message.
    sample = workspace.lists.sample_sendable(LIST_NAME, 1)[0]
    content = preview(settings, recipient_of(sample))
    start = time.perf_counter()
    plain_bytes = 0
    for n in range(count):
        plain_bytes += len(
            build_message(
                sender="news@example.test",
                recipients=[f"user{n}@domain{n % 200}.example.com"],
                subject=content.subject,
                text=content.text,
                html=content.html,
            ).raw
        )
    baseline = time.perf_counter() - start

    print()
    print(f"2. rendering: {count:,} recipients into the outbox, {BATCH} per batch, no delivery")
    print(
        f"  build_message baseline     : {baseline:7.3f} s  {count / baseline:12,.0f} msgs/s"
        f"  ({plain_bytes / count:,.0f} B/msg)"
    )
    print(
        f"  runner batches             : {runner_seconds:7.3f} s  "
        f"{count / runner_seconds:12,.0f} msgs/s  ({raw_bytes / count:,.0f} B/msg)"
    )
    print(f"    pending_batch (read)     {fetch:9.3f} s")
    print(f"    render_batch             {render:9.3f} s  {count / render:12,.0f} msgs/s")
    print(f"    store_batch (write)      {write:9.3f} s")
    print(f"  ratio                      : {runner_seconds / baseline:7.1f}x the baseline")
    minutes = 100_000 / (count / runner_seconds) / 60
    print(f"  100,000 recipients at this rate: {minutes:.1f} min of rendering alone")


# -- 3. GUI ---------------------------------------------------------------------------------


def load_gui_stall() -> ModuleType:
    """bench_gui_stall.py, imported from its file (Heartbeat, Watchdog, Gaps, spin, sink)."""
    path = Path(__file__).with_name("bench_gui_stall.py")
    spec = importlib.util.spec_from_file_location("bench_gui_stall", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


#: Innermost frames of a thread that is parked (idle executor worker, idle event loop).
_WAITING = frozenset(
    {"thread.py _worker", "selectors.py select <- runtime.py _run", "threading.py wait"}
)


class Competitors(threading.Thread):
    """While the heartbeat is late, what every other Python thread is doing: the GUI
    thread's rivals for the GIL (the watchdog of bench_gui_stall.py names the GUI side)."""

    def __init__(self, heartbeat: Any, late_ms: float, gui_thread_id: int) -> None:
        super().__init__(name="gil-competitors", daemon=True)
        self._heartbeat = heartbeat
        self._late_ms = late_ms
        self._gui = gui_thread_id
        self._stopping = threading.Event()
        self.samples: collections.Counter[str] = collections.Counter()

    def run(self) -> None:
        while not self._stopping.wait(0.002):
            late_ms = (time.perf_counter() - self._heartbeat.last_tick) * 1000
            if late_ms < self._late_ms or not self._heartbeat.running:
                continue
            names = {thread.ident: thread.name for thread in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident in (self._gui, self.ident) or names.get(ident) == "gui-watchdog":
                    continue
                where = _innermost(frame)
                if where not in _WAITING:  # parked, not competing for the GIL
                    self.samples[f"{names.get(ident, ident)}: {where}"] += 1

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def _innermost(frame: Any) -> str:
    """The innermost frame, and the innermost Relaydesk one when that is elsewhere."""
    inner = f"{Path(frame.f_code.co_filename).name} {frame.f_code.co_name}"
    while frame is not None and "desktop_app" not in frame.f_code.co_filename:
        frame = frame.f_back
    if frame is None:
        return inner
    ours = f"{Path(frame.f_code.co_filename).name} {frame.f_code.co_name}"
    return ours if ours == inner else f"{inner} <- {ours}"


class GcPauses:
    """Every garbage collection (gc.callbacks): which generation, when, how long, which thread.
    A collection holds the GIL, so it stops the GUI thread whichever thread triggered it."""

    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self.pauses: list[tuple[int, float, float, str]] = []  # gen, start, seconds, thread
        self._started = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def restart(self) -> None:
        self.origin = time.perf_counter()
        self.pauses = []

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
        else:
            name = threading.current_thread().name
            self.pauses.append(
                (info["generation"], self._started - self.origin, now - self._started, name)
            )

    def report(self, gaps: Any, limit_ms: float) -> list[str]:
        rows = []
        for generation in (0, 1, 2):
            mine = [p for p in self.pauses if p[0] == generation]
            if mine:
                longest = max(mine, key=lambda p: p[2])
                rows.append(
                    f"    gen {generation}: {len(mine):5,} collections, "
                    f"{sum(p[2] for p in mine) * 1000:7.1f} ms in all, longest "
                    f"{longest[2] * 1000:6.1f} ms (on {longest[3]})"
                )
        ends = list(itertools.accumulate(value / 1000 for value in gaps.values))
        for gap, end in zip(gaps.values, ends, strict=True):
            if gap <= limit_ms:
                continue
            begin = end - gap / 1000
            inside = [p for p in self.pauses if p[1] < end and p[1] + p[2] > begin]
            during = ", ".join(
                f"gen {p[0]} {p[2] * 1000:.1f} ms on {p[3]}" for p in inside if p[2] > 0.002
            )
            rows.append(
                f"    gap of {gap:6.1f} ms at {begin:6.2f} s: collections > 2 ms inside: "
                f"{during or 'none'}"
            )
        return rows


def late_by_phase(gaps: Any, late_ms: float, edges: list[tuple[str, float]]) -> list[str]:
    """Late ticks by phase: tick times are the running sum of the gaps since start."""
    rows = []
    bounds = [*edges, ("end", float("inf"))]
    ticks = list(itertools.accumulate(value / 1000 for value in gaps.values))
    for (label, begin), (_, end) in itertools.pairwise(bounds):
        inside = [g for g, t in zip(gaps.values, ticks, strict=True) if begin <= t < end]
        late = [g for g in inside if g > late_ms]
        rows.append(
            f"    {label:40}{len(inside):7,} ticks {len(late):5,} > {late_ms:.0f} ms"
            f"  longest {max(inside, default=0.0):6.1f} ms"
        )
    return rows


def bench_gui(source: Path, scratch: Path, args: argparse.Namespace) -> int:
    stall = load_gui_stall()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    print()
    print(f"3. GUI: preparing a fresh data dir with {args.rows:,} subscribers...", flush=True)
    workspace = open_workspace(scratch / "gui-data", source, args.rows)
    try:
        with stall.running_sink(args.sink) as port:
            return measure_gui(stall, app, workspace, scratch, port, args)
    finally:
        workspace.close()


def measure_gui(
    stall: ModuleType,
    app: Any,
    workspace: Workspace,
    scratch: Path,
    port: int,
    args: argparse.Namespace,
) -> int:
    from PySide6.QtCore import QEventLoop, QSettings

    from desktop_app.app import freeze_startup_objects
    from desktop_app.core.events import CampaignChanged, MessageStateChanged
    from desktop_app.core.models import MessageState, ProviderConfig, Security
    from desktop_app.core.runtime import LoopThread
    from desktop_app.ui.bridge import CoreBridge
    from desktop_app.ui.delivery_controller import DeliveryController
    from desktop_app.ui.main_window import MainWindow

    workspace.add_provider(
        ProviderConfig(
            name="Sink",
            host=stall.LOOPBACK,
            port=port,
            security=Security.NONE,
            max_connections=args.connections,
        )
    )
    name = "GUI campaign"
    workspace.campaigns.create(draft(name))

    runtime = LoopThread()
    runtime.start()
    bridge = CoreBridge(runtime)
    controller = DeliveryController(workspace, bridge)
    settings = QSettings(str(scratch / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workspace, bridge, controller, settings=settings)
    window.navigation.setCurrentRow(CAMPAIGNS_PAGE)
    window.show()
    controller.start()  # the engine and the campaign runner, idle: nothing is queued yet
    stall.spin(0.5)  # first layout, first campaign list, engine up
    freeze_startup_objects()

    sent = 0
    marks: dict[str, float] = {}
    batches = 0
    done = QEventLoop()

    def on_states(events: list[MessageStateChanged]) -> None:
        nonlocal sent
        sent += sum(1 for event in events if event.state is MessageState.SENT)
        if sent and "first sent" not in marks:
            marks["first sent"] = time.perf_counter()
        if sent >= args.messages and "all sent" not in marks:
            marks["all sent"] = time.perf_counter()
            done.quit()

    def on_campaign(event: CampaignChanged) -> None:
        nonlocal batches
        if event.queued:
            batches += 1
            marks.setdefault("first batch queued", time.perf_counter())

    def sent_ok(_campaign: Any) -> None:
        marks["send() returned"] = time.perf_counter()
        controller.wake_campaigns()  # as the Campaigns page does after a send

    def send_failed(error: BaseException) -> None:
        marks["send() failed"] = time.perf_counter()
        print(f"  campaigns.send failed: {error}", flush=True)
        done.quit()

    bridge.message_states_changed.connect(on_states)
    bridge.campaign_changed.connect(on_campaign)
    heartbeat = stall.Heartbeat()
    watchdog = stall.Watchdog(heartbeat, threading.get_ident())
    watchdog.start()
    competitors = Competitors(heartbeat, stall.LATE_MS, threading.get_ident())
    competitors.start()

    print(
        f"  baseline: idle window (engine running) for {args.baseline_seconds:g} s...", flush=True
    )
    heartbeat.start()
    stall.spin(args.baseline_seconds)
    baseline = heartbeat.stop()
    baseline_samples = collections.Counter(watchdog.samples)

    print(
        f"  load: send {name!r} from the GUI thread, up to {args.load_seconds:g} s or "
        f"{args.messages:,} sent...",
        flush=True,
    )
    watchdog.samples.clear()
    competitors.samples.clear()
    with GcPauses() as collections_seen:
        heartbeat.start()
        collections_seen.restart()
        started = time.perf_counter()
        bridge.call(workspace.campaigns.send, name, on_success=sent_ok, on_error=send_failed)
        stall.spin(args.load_seconds, done)
        ended = time.perf_counter()
        load = heartbeat.stop()
    load_samples = collections.Counter(watchdog.samples)
    watchdog.stop()
    competitors.stop()

    window.quit()
    controller.stop()
    runtime.stop()
    app.processEvents()
    window.deleteLater()
    app.processEvents()
    counts = workspace.campaigns.report(name).counts

    print()
    print(
        f"  {args.rows:,}-recipient campaign, {args.connections} connections to {args.sink}, "
        f"Campaigns page visible, heartbeat every {stall.HEARTBEAT_MS} ms, "
        f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms"
    )
    for label in ("send() returned", "send() failed", "first batch queued", "first sent"):
        if label in marks:
            print(f"  {label:22}{marks[label] - started:8.2f} s after the click")
    elapsed = marks.get("all sent", ended) - started
    print(f"  sent (events)         {sent:8,} in {elapsed:.1f} s  ({sent / elapsed:,.0f} msgs/s)")
    print(f"  batches queued        {batches:8,}")
    print(f"  campaign counts       {dict(sorted(counts.items()))}")
    print(f"{'':24}{'idle (baseline)':>16}{'sending':>12}")
    for label, pick in (
        ("ticks", lambda g: f"{len(g.values):,}"),
        ("median gap (ms)", lambda g: f"{g.median:.1f}"),
        ("p99 gap (ms)", lambda g: f"{g.percentile(0.99):.1f}"),
        ("longest gap (ms)", lambda g: f"{g.longest:.1f}"),
        (f"gaps > {stall.LATE_MS:.0f} ms", lambda g: f"{g.over(stall.LATE_MS):,}"),
        (f"gaps > {stall.TARGET_STALL_MS:.0f} ms", lambda g: f"{g.over(stall.TARGET_STALL_MS):,}"),
    ):
        print(f"  {label:22}{pick(baseline):>16}{pick(load):>12}")
    ratio = load.longest / baseline.longest if baseline.longest else float("inf")
    print(f"  longest stall / baseline longest gap: {ratio:.1f}x")
    verdict = "OK" if load.longest < stall.TARGET_STALL_MS else "OVER TARGET"
    print(f"  target: longest stall < {stall.TARGET_STALL_MS:.0f} ms -> {verdict}")
    for title, samples in (("idle", baseline_samples), ("sending", load_samples)):
        if samples:
            print(
                f"\n  where the GUI thread was when a tick was > {stall.LATE_MS:.0f} ms late "
                f"({title}, {sum(samples.values())} samples):"
            )
            total = sum(samples.values())
            for where, hits in samples.most_common(8):
                print(f"    {hits / total:6.1%}  {where}")
    edges = [("send() running (pre-send check, copy)", 0.0)]
    if "send() returned" in marks:
        edges.append(("send() done, first batch rendering", marks["send() returned"] - started))
    if "first batch queued" in marks:
        edges.append(("runner rendering, engine sending", marks["first batch queued"] - started))
    print(
        f"\n  garbage collections during the load (gaps > {stall.TARGET_STALL_MS:.0f} ms vs them):"
    )
    print("\n".join(collections_seen.report(load, stall.TARGET_STALL_MS)))
    print("\n  late ticks by phase of the load:")
    print("\n".join(late_by_phase(load, stall.LATE_MS, edges)))
    if competitors.samples:
        total = sum(competitors.samples.values())
        print(
            f"\n  what the other threads were doing meanwhile (sending, {total} samples"
            " over all threads):"
        )
        for where, hits in competitors.samples.most_common(10):
            print(f"    {hits:6,}  {where}")
    return 0 if load.longest < stall.TARGET_STALL_MS else 2


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--render", type=int, default=5_000, help="recipients to render")
    parser.add_argument("--messages", type=int, default=10_000, help="GUI: stop after these")
    parser.add_argument("--load-seconds", type=float, default=15.0)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument(
        "--sink",
        choices=("smtp-sink", "aiosmtpd"),
        default="smtp-sink"
        if shutil.which("smtp-sink") or Path("/usr/sbin/smtp-sink").exists()
        else "aiosmtpd",
    )
    parser.add_argument("--skip-gui", action="store_true")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="diagnosis only: sys.setswitchinterval (s) for the GUI part; default unchanged",
    )
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="relaydesk-bench-campaign-"))
    try:
        source = scratch / "subscribers.csv"
        write_csv(source, args.rows)
        print(f"importing {args.rows:,} subscribers...", flush=True)
        workspace = open_workspace(scratch / "data", source, args.rows)
        try:
            print()
            names = bench_enqueue(workspace, args)
            bench_render(workspace, names[0], args.render)
            for name in names:  # nothing of these may run later
                workspace.campaigns.cancel(name)
        finally:
            workspace.close()
        if args.skip_gui:
            return 0
        return bench_gui(source, scratch, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
