"""Rendering campaign batches in a separate process.

Building a MIME message in the email package is pure Python (a millisecond or two each).
Done on a thread of the app's own process, it holds the GIL for long stretches: the window
then waits whole switch intervals to run a slot, and stalled for 60-380 ms while a campaign
rendered (tests/benchmarks/bench_campaign_enqueue.py). In a child process it competes for
a CPU core, not for the GIL, and on a machine with two cores or more it renders while the
engine sends.

The child is started with "spawn" on every platform (never fork: forking a process that
runs Qt and an asyncio loop on other threads copies locks in whatever state they are in).
It holds no state but compiled templates: if it dies, the batch is rendered again by a
new one, and the database never saw half of it. If the parent dies instead (killed, or
crashed), the child exits too (``_exit_with_parent``): an orphan would otherwise wait on
its queue for ever, and so would multiprocessing's resource tracker beside it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool

from desktop_app.core.campaigns.message import CampaignSettings
from desktop_app.core.campaigns.rendering import render_batch
from desktop_app.core.storage.campaigns import PendingRecipient, RenderedBatch

log = logging.getLogger(__name__)


class RenderPool:
    """One worker process, started on first use; ``close()`` stops it.

    When no child process can be started at all (an embedding program without the
    ``if __name__ == "__main__"`` guard that "spawn" needs, a sandbox without fork/exec),
    batches are rendered on the calling thread instead: slower for the window, but mail
    still goes out.
    """

    def __init__(self) -> None:
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._in_process = False

    def render(
        self, settings: CampaignSettings, campaign_id: int, pending: Sequence[PendingRecipient]
    ) -> RenderedBatch:
        """Blocking (call it from a worker thread)."""
        for attempt in (1, 2):
            if self._in_process:
                break
            try:
                future = self._started().submit(render_batch, settings, campaign_id, list(pending))
            except (RuntimeError, OSError) as error:
                log.warning("cannot start a renderer process, rendering in-process: %s", error)
                self._discard()
                self._in_process = True
                break
            try:
                return future.result()
            except BrokenProcessPool:
                # The child died (killed, out of memory, could not start): one more try.
                log.warning("the campaign renderer process died (attempt %d)", attempt)
                self._discard()
        else:
            log.warning("the campaign renderer process keeps dying; rendering in-process")
            self._in_process = True
        return render_batch(settings, campaign_id, pending)

    def close(self) -> None:
        self._discard()

    def _started(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
            )
        return self._executor

    def _discard(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent() -> None:
    """In the child: end this process as soon as the parent is gone.

    The parent's end of the pool's queues is not closed by its death (the child holds
    both ends of each pipe), so the child would never notice on its own. Waiting on the
    parent's sentinel works on every platform (a pipe on POSIX, the process handle on
    Windows).
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child: nothing to watch
        return

    def watch() -> None:
        parent.join()
        os._exit(0)  # no cleanup to do: the child's only state is compiled templates

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
