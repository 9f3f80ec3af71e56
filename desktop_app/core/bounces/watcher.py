"""Watches the bounce, unsubscribe and delivery-probe (seed) mailboxes while the app runs.

One thread per mailbox (imapclient blocks): connect, read what is new, then wait in IMAP
IDLE (RFC 2177) for the server to announce new mail, re-issuing IDLE every few minutes as
servers drop idle clients after 30; a server without IDLE is polled instead. Any failure
closes the connection and retries after a backoff (5 s doubling to 5 min), so a server that
restarts or a network that drops is picked up again by itself. Events go to the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from desktop_app.core.bounces.checker import MailboxChecker
from desktop_app.core.bounces.imap_session import MailboxError, close_mailbox, server_words
from desktop_app.core.bounces.mailboxes import MailboxConfig
from desktop_app.core.disk_space import log_failure
from desktop_app.core.events import BouncesRecorded, Event, EventSink, MailboxStatusChanged
from desktop_app.core.storage.bounces import Applied

log = logging.getLogger(__name__)

#: Re-issue IDLE this often (servers may end it after 30 minutes; NATs forget sooner).
IDLE_RENEW_SECONDS = 5 * 60
FIRST_BACKOFF = 5.0
MAX_BACKOFF = 300.0
RELOAD_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class WatchOptions:
    poll_seconds: float = 60.0
    idle_check_seconds: float = 1.0  # how quickly a watcher notices it should stop


class MailboxWatcher:
    """Run ``run()`` on the loop thread; ``request_stop()`` ends it and its threads."""

    def __init__(
        self,
        checker: MailboxChecker,
        events: EventSink,
        *,
        options: Callable[[], WatchOptions] = WatchOptions,
    ) -> None:
        self._checker = checker
        self._events = events
        self._options = options
        self._threads: dict[str, tuple[MailboxConfig, threading.Event, threading.Thread]] = {}
        self._finished: list[threading.Thread] = []  # told to stop, to join at the end
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                try:
                    configs = await asyncio.to_thread(self._checker.mailboxes.all)
                    self._reconcile(configs)
                except Exception:  # the database was busy: try again at the next reload
                    log_failure(log, "could not read the mailbox settings")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), RELOAD_SECONDS)
        finally:
            for name in list(self._threads):
                self._stop_thread(name)
            await asyncio.to_thread(self._join_all)

    def request_stop(self) -> None:
        self._stop.set()

    # -- threads -------------------------------------------------------------------------------

    def _reconcile(self, configs: list[MailboxConfig]) -> None:
        wanted = {c.name: c for c in configs if c.enabled}
        for name, (config, _stop, thread) in list(self._threads.items()):
            if name not in wanted or _settings_of(wanted[name]) != _settings_of(config):
                self._stop_thread(name)
            elif not thread.is_alive():
                self._threads.pop(name)
        for name, config in wanted.items():
            if name not in self._threads:
                stop = threading.Event()
                thread = threading.Thread(
                    target=self._watch, args=(config, stop), name=f"imap-{name}", daemon=True
                )
                self._threads[name] = (config, stop, thread)
                thread.start()

    def _stop_thread(self, name: str) -> None:
        entry = self._threads.pop(name, None)
        if entry is not None:
            entry[1].set()
            self._finished.append(entry[2])

    def _join_all(self) -> None:
        for thread in self._finished:
            thread.join(timeout=10)
        self._finished.clear()

    def _watch(self, mailbox: MailboxConfig, stop: threading.Event) -> None:
        backoff = FIRST_BACKOFF
        while not stop.is_set():
            client: IMAPClient | None = None
            try:
                client = self._checker.open(mailbox)
                self._publish(MailboxStatusChanged(mailbox.name, None))
                backoff = FIRST_BACKOFF
                self._read(client, mailbox)
                self._wait_and_read(client, mailbox, stop)
            except (MailboxError, IMAPClientError, OSError) as error:
                message = str(error) if isinstance(error, MailboxError) else server_words(error)
                log.warning("mailbox %s: %s (retrying in %.1f s)", mailbox.name, message, backoff)
                with contextlib.suppress(Exception):
                    assert mailbox.id is not None
                    self._checker.mailboxes.record_check(mailbox.id, message)
                self._publish(MailboxStatusChanged(mailbox.name, message))
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception:  # a bug must not kill the watcher for the whole session
                log_failure(log, "mailbox %s: unexpected error", mailbox.name)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            finally:
                if client is not None:
                    close_mailbox(client)

    def _wait_and_read(
        self, client: IMAPClient, mailbox: MailboxConfig, stop: threading.Event
    ) -> None:
        options = self._options()
        if not client.has_capability("IDLE"):
            while not stop.wait(options.poll_seconds):
                self._read(client, mailbox)
            return
        while not stop.is_set():
            client.idle()
            renew_at = time.monotonic() + IDLE_RENEW_SECONDS
            news = False
            quick_and_empty = 0
            try:
                while not stop.is_set() and time.monotonic() < renew_at:
                    started = time.monotonic()
                    responses = client.idle_check(timeout=options.idle_check_seconds)
                    if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                        news = True
                        break
                    # imapclient swallows EOF during IDLE: the socket polls readable and no
                    # response comes. A few of those in a row is a server that went away.
                    elapsed = time.monotonic() - started
                    quick = not responses and elapsed < options.idle_check_seconds / 2
                    quick_and_empty = quick_and_empty + 1 if quick else 0
                    if quick_and_empty >= 3:
                        raise ConnectionError("the server closed the connection")
            finally:
                with contextlib.suppress(IMAPClientError, OSError):
                    client.idle_done()
            if news:
                self._read(client, mailbox)

    def _read(self, client: IMAPClient, mailbox: MailboxConfig) -> None:
        report = self._checker.process(client, mailbox)
        applied = report.applied
        if applied.hard or applied.soft or applied.unsubscribed:
            self._publish(_recorded(mailbox.name, applied))

    def _publish(self, event: Event) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._events.publish, event)


def _recorded(name: str, applied: Applied) -> BouncesRecorded:
    return BouncesRecorded(
        mailbox=name,
        hard=len(applied.hard),
        soft=len(applied.soft),
        unsubscribed=len(applied.unsubscribed),
        suppressed=len(applied.suppressed),
    )


def _settings_of(config: MailboxConfig) -> tuple[object, ...]:
    return (
        config.host,
        config.port,
        config.security,
        config.username,
        config.folder,
        config.processed_folder,
        config.role,
    )
