"""Helpers for driving the real delivery engine against real SMTP servers on loopback.

``workspace`` is a fresh data directory opened with ``Workspace.open``; ``engine_events``
collects what the engine publishes. The plain functions below are reached through the
``delivery`` fixture (conftest modules are not importable by name), so each test reads as
"configure servers, queue mail, run the engine, look at the servers and the outbox".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text

from desktop_app.core.compose import build_message
from desktop_app.core.delivery.engine import DeliveryEngine
from desktop_app.core.events import Event
from desktop_app.core.models import ProviderConfig, Security
from desktop_app.core.workspace import Workspace

T = TypeVar("T")
E = TypeVar("E")


class EventLog:
    """An event sink that keeps everything, for assertions after (or during) a run."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]


class Delivery:
    """What the engine tests do over and over, bound to one workspace and one event log."""

    def __init__(self, workspace: Workspace, events: EventLog) -> None:
        self.ws = workspace
        self.events = events

    # -- configuration ----------------------------------------------------------------------

    def add_provider(
        self,
        name: str,
        port: int,
        *,
        priority: int = 0,
        security: Security = Security.NONE,
        password: str | None = None,
        **fields: Any,
    ) -> ProviderConfig:
        """A provider on 127.0.0.1:``port`` (plaintext unless ``security`` says otherwise)."""
        return self.ws.add_provider(
            ProviderConfig(
                name=name,
                host="127.0.0.1",
                port=port,
                security=security,
                priority=priority,
                **fields,
            ),
            password=password,
        )

    def settings(self, **values: str) -> None:
        """``settings(breaker__open_seconds="0.5")`` sets ``breaker.open_seconds``."""
        for key, value in values.items():
            self.ws.set_setting(key.replace("__", "."), value)

    def queue(
        self,
        count: int,
        *,
        sender: str = "news@example.com",
        recipient: str | None = None,
        subject: str = "Hello",
    ) -> list[str]:
        """Queue ``count`` messages in one transaction; returns their Message-IDs in order."""
        messages = [
            build_message(
                sender=sender,
                recipients=[recipient or f"user{index}@example.net"],
                subject=f"{subject} {index}",
                text=f"message {index}\r\n.a line starting with a dot\r\n",
            )
            for index in range(count)
        ]
        self.ws.queue(messages)
        return [message.message_id for message in messages]

    # -- running ----------------------------------------------------------------------------

    def engine(self) -> DeliveryEngine:
        return self.ws.create_engine(self.events)

    async def run_until_idle(self, timeout: float = 20.0) -> DeliveryEngine:
        """Run an engine with ``until_idle=True``; fail the test if it does not get idle."""
        engine = self.engine()
        await asyncio.wait_for(engine.run(until_idle=True), timeout=timeout)
        return engine

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DeliveryEngine]:
        """An engine running in the background for the ``async with`` block, then stopped."""
        engine = self.engine()
        task = asyncio.create_task(engine.run(), name="engine-under-test")
        try:
            yield engine
        finally:
            engine.request_stop()
            await asyncio.wait_for(task, timeout=20.0)

    async def wait(
        self, predicate: Callable[[], T | None], timeout: float = 10.0, what: str = ""
    ) -> T:
        """Poll ``predicate`` (letting the engine run meanwhile) until it is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what or predicate!r}; "
                    f"outbox: {self.ws.outbox.counts()}"
                )
            await asyncio.sleep(0.02)

    def settled(self, total: int, **states: int) -> bool:
        """Whether the outbox counts are exactly ``states`` (for ``wait``)."""
        counts = self.ws.outbox.counts().as_dict()
        assert sum(counts.values()) == total, counts
        return all(counts[state] == number for state, number in states.items())

    # -- looking at the database ------------------------------------------------------------

    def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        with self.ws.database.read() as connection:
            return [dict(row._mapping) for row in connection.execute(text(query), params)]

    def outbox(self) -> list[dict[str, Any]]:
        return self.sql("SELECT * FROM outbox ORDER BY id")

    def message(self, message_id: str) -> dict[str, Any]:
        (row,) = self.sql("SELECT * FROM outbox WHERE message_id = :m", m=message_id)
        return row

    def attempts(self, message_id: str | None = None) -> list[dict[str, Any]]:
        if message_id is None:
            return self.sql("SELECT * FROM attempts ORDER BY started_at, id")
        return self.sql(
            "SELECT a.* FROM attempts a JOIN outbox o ON o.id = a.outbox_id "
            "WHERE o.message_id = :m ORDER BY a.number",
            m=message_id,
        )

    def attempts_through(self, provider_name: str) -> list[dict[str, Any]]:
        return self.sql(
            "SELECT * FROM attempts WHERE provider_name = :p ORDER BY started_at, id",
            p=provider_name,
        )


@pytest.fixture
def workspace(data_dir: Path) -> Iterator[Workspace]:
    ws = Workspace.open(data_dir)
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture
def engine_events() -> EventLog:
    return EventLog()


@pytest.fixture
def delivery(workspace: Workspace, engine_events: EventLog) -> Delivery:
    return Delivery(workspace, engine_events)
