"""Group commit: many deliveries share one database transaction, and so one fsync.

Each delivery awaits ``write(...)`` and continues only once its entries are durable (the
attempt row before MAIL FROM, the outcome before anyone is told). Entries that arrive
while a commit is running are collected and go into the next one, so batches grow with
load on their own and an idle engine still commits at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from desktop_app.core.errors import DiskFullError
from desktop_app.core.models import OutboxMessage
from desktop_app.core.storage.outbox import (
    AttemptFinished,
    AttemptStarted,
    AttemptWithdrawn,
    MessageTransition,
    OutboxRepository,
)

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    withdrawn: list[AttemptWithdrawn] = field(default_factory=list)
    started: list[AttemptStarted] = field(default_factory=list)
    finished: list[AttemptFinished] = field(default_factory=list)
    transitions: list[MessageTransition] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    claim: int = 0
    claim_waiter: asyncio.Future[list[OutboxMessage]] | None = None
    claimed: list[OutboxMessage] = field(default_factory=list)


class Journal:
    """Durable, batched writes of attempts and message transitions."""

    def __init__(
        self,
        outbox: OutboxRepository,
        owner: str,
        executor: concurrent.futures.Executor,
        *,
        lease_seconds: float = 300.0,
        on_full: Callable[[DiskFullError], Awaitable[bool]] | None = None,
    ) -> None:
        self._lease_seconds = lease_seconds
        # Told when a commit fails for want of space; True when it made room (the engine's
        # disk reserve), and the batch is then tried once more without its claim.
        self._on_full = on_full
        self._outbox = outbox
        self._owner = owner
        self._executor = executor
        self._pending = _Batch()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        # The journal's own database connection, opened and closed on the executor's thread.
        self._connection: Connection | None = None
        self.commits = 0  # how many transactions; entries/commits is the batching factor

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="journal")

    async def write(
        self,
        *,
        withdrawn: Sequence[AttemptWithdrawn] = (),
        started: Sequence[AttemptStarted] = (),
        finished: Sequence[AttemptFinished] = (),
        transitions: Sequence[MessageTransition] = (),
    ) -> None:
        """Return once these entries are committed; raise if the commit failed."""
        if not (withdrawn or started or finished or transitions):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        batch = self._pending
        batch.withdrawn.extend(withdrawn)
        batch.started.extend(started)
        batch.finished.extend(finished)
        batch.transitions.extend(transitions)
        batch.waiters.append(waiter)
        self._wakeup.set()
        await waiter

    async def claim(self, limit: int) -> list[OutboxMessage]:
        """Lease up to ``limit`` due messages, in the same transaction as pending entries."""
        batch = self._pending
        if batch.claim_waiter is not None:
            raise RuntimeError("only one claim may wait per commit")
        waiter: asyncio.Future[list[OutboxMessage]] = asyncio.get_running_loop().create_future()
        batch.claim = limit
        batch.claim_waiter = waiter
        self._wakeup.set()
        return await waiter

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            # Let the deliveries that are runnable right now add their entries too: one
            # loop turn costs microseconds, a separate commit costs a thread hop and an fsync.
            await asyncio.sleep(0)
            self._wakeup.clear()
            batch, self._pending = self._pending, _Batch()
            if not batch.waiters and batch.claim_waiter is None:
                continue
            self._busy = True
            try:
                await self._commit_or_make_room(batch)
            except Exception as exc:
                for waiter in batch.waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
                if batch.claim_waiter is not None and not batch.claim_waiter.done():
                    batch.claim_waiter.set_exception(exc)
            else:
                self.commits += 1
                for waiter in batch.waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                if batch.claim_waiter is not None and not batch.claim_waiter.done():
                    batch.claim_waiter.set_result(batch.claimed)
            finally:
                self._busy = False

    async def _commit_or_make_room(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._commit, batch)
        except DiskFullError as exc:
            # The disk is full. The engine stops taking work; what this batch holds (above
            # all the outcomes of mail already on the wire, which the next run would send
            # again if they were lost) gets one more try in the room the reserve leaves.
            # Not the claim: no new mail is leased now (its waiter gets none).
            if self._on_full is None or not await self._on_full(exc):
                raise
            batch.claim = 0
            await loop.run_in_executor(self._executor, self._commit, batch)

    def _commit(self, batch: _Batch) -> None:
        if self._connection is None:
            self._connection = self._outbox.open_writer()
        try:
            batch.claimed = self._outbox.record(
                withdrawn=batch.withdrawn,
                started=batch.started,
                finished=batch.finished,
                transitions=batch.transitions,
                owner=self._owner,
                claim=batch.claim,
                lease_seconds=self._lease_seconds,
                connection=self._connection,
            )
        except Exception:
            # Rolled back; the next commit starts on a fresh connection in case this one
            # is what broke.
            self._close_connection()
            raise

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # already broken: nothing more to release
                log.debug("closing the journal's connection failed", exc_info=True)

    async def close(self) -> None:
        """Finish what is pending, then stop the writer task."""
        while self._pending.waiters or self._pending.claim_waiter or self._busy:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_connection)
