"""The change feed: providers, maintenance windows, settings and outbox counts changed.

Any process's change (the GUI, ``relaydesk provider add`` in a terminal, another instance)
reaches every running engine, monitor, alerter and window through one feed instead of each
re-reading on its own timer (desktop_app/ARCHITECTURE.md, "Change feed")::

    feed = workspace.changes
    unsubscribe = feed.subscribe(on_change, topics={Topic.PROVIDERS, Topic.MAINTENANCE})
    feed.start()
    ...
    unsubscribe()

Writers bump a counter per topic in the transaction of their change (storage/changes.py);
the feed watches the counters through a ``ChangeSource`` and tells its subscribers which
topics moved. Subscribers never learn which source it is: the SQLite one polls a no-I/O
``PRAGMA data_version`` every quarter second, and a PostgreSQL source on LISTEN/NOTIFY can
take its place later without a subscriber changing.

Callbacks run on the feed's thread (or on the thread that called ``poll_once``), one at a
time. They must return fast and must not touch Qt widgets: post to one's own loop or queue
(``loop.call_soon_threadsafe``, a queued Qt signal) and re-read there. A callback that
raises is logged; the feed and the other subscribers go on.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from desktop_app.core.storage.changes import Topic, open_change_source
from desktop_app.core.storage.database import Database

__all__ = ["DEFAULT_INTERVAL", "ChangeCallback", "ChangeFeed", "ChangeSource", "Topic"]

log = logging.getLogger(__name__)

#: Seconds between two looks at the source: a change is heard well within 2 s.
DEFAULT_INTERVAL = 0.25

#: Called with the topics (``Topic`` values) that changed since the last call.
ChangeCallback = Callable[[frozenset[str]], None]


class ChangeSource(Protocol):
    """Where a feed learns the change counters (storage/changes.py has the sources)."""

    def versions(self) -> Mapping[str, int] | None:
        """{topic: version} now, or None when nothing can have changed since the last
        answer (a cheap check said so) or the database cannot answer right now (busy)."""
        ...

    def wait(self, timeout: float) -> None:
        """Block until a change may have happened, ``timeout`` seconds passed, or
        ``interrupt`` was called (a polling source just sleeps; LISTEN waits on its socket)."""
        ...

    def interrupt(self) -> None:
        """Make a ``wait`` in progress (or the next one) return at once; any thread."""
        ...

    def close(self) -> None:
        """Release the source's connection; ``versions`` answers None from then on."""
        ...


class ChangeFeed:
    """Tells subscribers which topics changed, whichever process changed them.

    Nothing runs until ``start()``: a feed (and ``Workspace.changes``) costs one read of
    the counters to know where it starts from, and no thread.
    """

    def __init__(self, source: ChangeSource, *, interval: float = DEFAULT_INTERVAL) -> None:
        self._source = source
        self._interval = interval
        self._subscribers: dict[int, tuple[ChangeCallback, frozenset[str] | None]] = {}
        self._keys = itertools.count()
        self._subscribers_lock = threading.Lock()
        # One poll (and its callbacks) at a time, in order; reentrant so that a callback
        # may call poll_once.
        self._poll_lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: dict[str, int] | None = None
        self._poll()  # where it starts from: changes before now are not reported

    @classmethod
    def for_database(cls, database: Database, *, interval: float = DEFAULT_INTERVAL) -> ChangeFeed:
        """A feed over ``database`` with the cheapest source for its kind."""
        return cls(open_change_source(database), interval=interval)

    # -- subscribers ------------------------------------------------------------------------

    def subscribe(
        self, callback: ChangeCallback, topics: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(changed_topics)`` after each poll that saw a change (only of
        ``topics``, when given; it then receives just those). Returns the function that
        unsubscribes (calling it twice is harmless)."""
        wanted = None if topics is None else frozenset(str(topic) for topic in topics)
        with self._subscribers_lock:
            key = next(self._keys)
            self._subscribers[key] = (callback, wanted)

        def unsubscribe() -> None:
            with self._subscribers_lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    # -- polling ----------------------------------------------------------------------------

    def poll_once(self) -> frozenset[str]:
        """Look at the source now, tell the subscribers, and return the topics that changed.

        On the caller's thread. An error of the source (not of a callback) is raised.
        """
        with self._poll_lock:
            changed = self._poll()
            if changed:
                self._dispatch(changed)
            return changed

    def _poll(self) -> frozenset[str]:
        current = self._source.versions()
        if current is None:
            return frozenset()
        known, self._known = self._known, dict(current)
        if known is None:  # the first answer (the source was busy when the feed was made)
            return frozenset()
        return frozenset(topic for topic, version in current.items() if known.get(topic) != version)

    def _dispatch(self, changed: frozenset[str]) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers.values())
        for callback, wanted in subscribers:
            topics = changed if wanted is None else changed & wanted
            if not topics:
                continue
            try:
                callback(topics)
            except Exception:
                log.exception("change feed subscriber %r failed on %s", callback, sorted(topics))

    # -- the thread -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Poll on a daemon thread of its own every ``interval`` seconds (idempotent)."""
        self._stopping.clear()
        if self.running:
            return
        self._thread = threading.Thread(target=self._run, name="relaydesk-change-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait up to ``timeout`` s for it; ``start()`` may follow."""
        self._stopping.set()
        self._source.interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Stop, and release the source's connection (``Workspace.close`` does this)."""
        self.stop()
        self._source.close()

    def _run(self) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                if not failing:  # once per outage, not four times a second
                    log.exception("the change feed cannot read the changes; it keeps trying")
                failing = True
            else:
                if failing:
                    log.info("the change feed reads the changes again")
                failing = False
            self._source.wait(self._interval)
