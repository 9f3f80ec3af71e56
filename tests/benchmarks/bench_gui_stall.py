"""Does the window stay responsive while the engine drains a big outbox? Measured, not guessed.

Builds the real GUI stack offscreen (Workspace, LoopThread, CoreBridge, DeliveryController,
MainWindow on the Outbox page) over a fresh temp data directory with N queued 1 KB messages and
one provider: a local sink (Postfix ``smtp-sink`` in its own process, or an aiosmtpd server
on a thread with ``--sink aiosmtpd``) on 127.0.0.1, ``--connections`` parallel connections.

A 5 ms QTimer on the GUI thread ("heartbeat") records the gap between its ticks: a gap is
how long the GUI thread could not run anything, i.e. how long a click or a repaint would
wait. First with the idle window (the baseline, same run), then while the engine sends all
N messages. A watchdog thread samples the GUI thread's Python stack whenever the heartbeat
is late, to name what blocked it.

    python tests/benchmarks/bench_gui_stall.py [-n 10000] [--connections 10]
        [--baseline-seconds 3] [--sink smtp-sink|aiosmtpd]

Prints messages/s, the longest stall, the p99 gap, and the baseline's longest gap; the
target is a longest stall under 50 ms. Nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop_app.app import freeze_startup_objects  # noqa: E402
from desktop_app.core.compose import build_message  # noqa: E402
from desktop_app.core.events import MessageStateChanged  # noqa: E402
from desktop_app.core.models import MessageState, ProviderConfig, Security  # noqa: E402
from desktop_app.core.runtime import LoopThread  # noqa: E402
from desktop_app.core.workspace import Workspace  # noqa: E402
from desktop_app.ui.bridge import CoreBridge  # noqa: E402
from desktop_app.ui.delivery_controller import DeliveryController  # noqa: E402
from desktop_app.ui.main_window import MainWindow  # noqa: E402

LOOPBACK = "127.0.0.1"
HEARTBEAT_MS = 5
TARGET_STALL_MS = 50.0
#: A heartbeat later than this is a stall worth naming (the watchdog samples the stack).
LATE_MS = 20.0
OUTBOX_PAGE = 2
MESSAGE_BYTES = 1024


# -- the sink ------------------------------------------------------------------------------


@contextmanager
def running_sink(kind: str) -> Iterator[int]:
    """Yield the port of a local SMTP sink that accepts everything."""
    if kind == "smtp-sink":
        from tests.support.smtp_sink import SmtpSink

        with SmtpSink(backlog=1000) as sink:
            yield sink.port
    else:
        from tests.support.scripted_smtp import ScriptedSMTPServer

        with ScriptedSMTPServer() as server:
            yield server.port


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Gaps:
    """Gaps between heartbeat ticks, in milliseconds."""

    values: list[float] = field(default_factory=list)

    @property
    def longest(self) -> float:
        return max(self.values, default=0.0)

    def percentile(self, fraction: float) -> float:
        if not self.values:
            return 0.0
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else 0.0

    def over(self, limit_ms: float) -> int:
        return sum(1 for value in self.values if value > limit_ms)


class Heartbeat:
    """A PreciseTimer on the GUI thread; ``gaps`` collects the time between its ticks."""

    def __init__(self) -> None:
        self.gaps = Gaps()
        self.last_tick = time.perf_counter()
        self.running = False
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(HEARTBEAT_MS)
        self.timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.gaps = Gaps()
        self.last_tick = time.perf_counter()
        self.running = True  # read by the watchdog thread, which must not call Qt
        self.timer.start()

    def stop(self) -> Gaps:
        self.running = False
        self.timer.stop()
        return self.gaps

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.values.append((now - self.last_tick) * 1000)
        self.last_tick = now


class Watchdog(threading.Thread):
    """Samples the GUI thread's stack while the heartbeat is late: who holds the GUI thread."""

    def __init__(self, heartbeat: Heartbeat, gui_thread_id: int) -> None:
        super().__init__(name="gui-watchdog", daemon=True)
        self._heartbeat = heartbeat
        self._gui = gui_thread_id
        self._stopping = threading.Event()
        self.samples: collections.Counter[str] = collections.Counter()

    def run(self) -> None:
        while not self._stopping.wait(0.002):
            late_ms = (time.perf_counter() - self._heartbeat.last_tick) * 1000
            if late_ms < LATE_MS or not self._heartbeat.running:
                continue
            frame = sys._current_frames().get(self._gui)
            if frame is not None:
                self.samples[_where(frame)] += 1

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def _where(frame: Any) -> str:
    """The innermost Relaydesk frames of a stack, or the Qt event loop when none runs."""
    ours = [
        f"{Path(entry.filename).name}:{entry.lineno} {entry.name}"
        for entry in traceback.extract_stack(frame)
        if "desktop_app" in entry.filename
    ]
    if not ours:
        return "Qt event processing (no Python slot running)"
    return " <- ".join(reversed(ours[-3:]))


# -- the run -------------------------------------------------------------------------------


def queue_messages(workspace: Workspace, count: int) -> None:
    body = ("Relaydesk GUI stall benchmark filler text. " * 2)[:70] + "\n"
    body *= max(1, (MESSAGE_BYTES - 400) // len(body))
    batch = 2000
    for start in range(0, count, batch):
        workspace.queue(
            [
                build_message(
                    sender="bench@example.test",
                    recipients=[f"rcpt{n}@example.test"],
                    subject=f"GUI stall benchmark {n}",
                    text=body,
                )
                for n in range(start, min(count, start + batch))
            ]
        )


def spin(seconds: float, loop: QEventLoop | None = None) -> None:
    """Run the real Qt event loop for ``seconds`` (or until someone quits ``loop``)."""
    loop = loop or QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def run(args: argparse.Namespace) -> int:
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    scratch = Path(tempfile.mkdtemp(prefix="relaydesk-bench-gui-"))
    try:
        with running_sink(args.sink) as port:
            return measure(app, scratch, port, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def measure(app: QApplication, scratch: Path, port: int, args: argparse.Namespace) -> int:
    workspace = Workspace.open(scratch / "data")
    workspace.add_provider(
        ProviderConfig(
            name="Sink",
            host=LOOPBACK,
            port=port,
            security=Security.NONE,
            max_connections=args.connections,
        )
    )
    print(f"queueing {args.messages:,} messages...", flush=True)
    queue_messages(workspace, args.messages)

    runtime = LoopThread()
    runtime.start()
    bridge = CoreBridge(runtime)
    controller = DeliveryController(workspace, bridge)
    settings = QSettings(str(scratch / "gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workspace, bridge, controller, settings=settings)
    window.navigation.setCurrentRow(OUTBOX_PAGE)
    window.show()
    spin(0.5)  # first layout, first page of the outbox, first counts
    freeze_startup_objects()  # as run_gui does once the window is up

    sent = 0
    finished_at = 0.0
    drained = QEventLoop()

    def on_states(events: list[MessageStateChanged]) -> None:
        nonlocal sent, finished_at
        sent += sum(1 for event in events if event.state is MessageState.SENT)
        if sent >= args.messages and not finished_at:
            finished_at = time.perf_counter()
            drained.quit()

    bridge.message_states_changed.connect(on_states)
    heartbeat = Heartbeat()
    watchdog = Watchdog(heartbeat, threading.get_ident())
    watchdog.start()

    print(f"baseline: idle window for {args.baseline_seconds:g} s...", flush=True)
    watchdog.samples.clear()
    heartbeat.start()
    spin(args.baseline_seconds)
    baseline = heartbeat.stop()
    baseline_samples = collections.Counter(watchdog.samples)

    print(f"load: the engine sends {args.messages:,} messages...", flush=True)
    watchdog.samples.clear()
    heartbeat.start()
    started = time.perf_counter()
    controller.start()
    spin(args.timeout, drained)
    # One more second of the live window: the last repaints and counts.
    spin(1.0)
    load = heartbeat.stop()
    load_samples = collections.Counter(watchdog.samples)
    watchdog.stop()

    window.quit()
    controller.stop()
    runtime.stop()
    app.processEvents()
    window.deleteLater()
    app.processEvents()
    counts = workspace.outbox_counts()
    workspace.close()

    if not finished_at:
        print(f"FAILED: only {sent:,} of {args.messages:,} reported sent in {args.timeout} s")
        print(f"outbox: {counts}")
        return 1
    seconds = finished_at - started
    report(args, seconds, counts.sent, baseline, load, baseline_samples, load_samples)
    return 0 if load.longest < TARGET_STALL_MS else 2


def report(
    args: argparse.Namespace,
    seconds: float,
    stored_sent: int,
    baseline: Gaps,
    load: Gaps,
    baseline_samples: collections.Counter[str],
    load_samples: collections.Counter[str],
) -> None:
    print()
    print(
        f"{args.messages:,} messages over {args.connections} connections to {args.sink}, "
        f"Outbox page visible, heartbeat every {HEARTBEAT_MS} ms"
    )
    print(f"  messages/s            {args.messages / seconds:10,.0f}   ({seconds:.1f} s)")
    print(f"  stored as sent        {stored_sent:10,}")
    print(f"{'':24}{'idle (baseline)':>16}{'sending':>12}")
    for label, pick in (
        ("ticks", lambda g: f"{len(g.values):,}"),
        ("median gap (ms)", lambda g: f"{g.median:.1f}"),
        ("p99 gap (ms)", lambda g: f"{g.percentile(0.99):.1f}"),
        ("longest gap (ms)", lambda g: f"{g.longest:.1f}"),
        (f"gaps > {LATE_MS:.0f} ms", lambda g: f"{g.over(LATE_MS):,}"),
        (f"gaps > {TARGET_STALL_MS:.0f} ms", lambda g: f"{g.over(TARGET_STALL_MS):,}"),
    ):
        print(f"  {label:22}{pick(baseline):>16}{pick(load):>12}")
    ratio = load.longest / baseline.longest if baseline.longest else float("inf")
    print(f"  longest stall / baseline longest gap: {ratio:.1f}x")
    verdict = "OK" if load.longest < TARGET_STALL_MS else "OVER TARGET"
    print(f"  target: longest stall < {TARGET_STALL_MS:.0f} ms -> {verdict}")
    for title, samples in (("idle", baseline_samples), ("sending", load_samples)):
        if samples:
            print(f"\nwhere the GUI thread was when a tick was > {LATE_MS:.0f} ms late ({title}):")
            total = sum(samples.values())
            for where, hits in samples.most_common(8):
                print(f"  {hits / total:6.1%}  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--messages", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--baseline-seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument(
        "--sink",
        choices=("smtp-sink", "aiosmtpd"),
        default="smtp-sink"
        if shutil.which("smtp-sink") or Path("/usr/sbin/smtp-sink").exists()
        else "aiosmtpd",
    )
    return run(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
