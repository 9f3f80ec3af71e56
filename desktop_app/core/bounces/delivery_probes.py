"""End-to-end delivery probes: SMTP acceptance is not delivery.

Every ``delivery_probes.interval_minutes`` (0: off) a small message goes through each enabled
provider, directly (not through the outbox: it must take that provider and no other), to
``delivery_probes.seed_address``, an inbox the ``seed`` mailbox reads. Its
``X-Relaydesk-Probe`` header carries a token; when the mailbox watcher sees it, the delivery
latency (sent -> the server's arrival time) is recorded next to the SMTP latency. A probe the
provider accepted that is not there after ``delivery_probes.timeout_minutes`` is lost: a
provider that silently drops mail. That raises a ``DeliveryProbeLost`` event (an alert) and
counts in ``delivery_failures_24h``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from desktop_app.core.compose import WIRE_POLICY
from desktop_app.core.delivery.smtp_connection import SmtpConnection, SmtpFailure
from desktop_app.core.disk_space import log_failure
from desktop_app.core.events import DeliveryProbeLost, EventSink
from desktop_app.core.health import maintenance
from desktop_app.core.models import OutcomeClass, ProviderConfig
from desktop_app.core.secrets import SecretStore
from desktop_app.core.settings import SettingsStore
from desktop_app.core.storage.delivery_probes import DeliveryProbeRepository
from desktop_app.core.storage.providers import ProviderRepository

log = logging.getLogger(__name__)

PROBE_HEADER = "X-Relaydesk-Probe"
_TOKEN = re.compile(rb"^x-relaydesk-probe:\s*([0-9a-f]{32})\s*$", re.IGNORECASE | re.MULTILINE)
#: Probes are kept this long (the charts and the 24 h figures need far less).
KEEP_SECONDS = 30 * 86400


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    interval_seconds: float  # 0: off
    timeout_seconds: float
    seed_address: str
    from_address: str

    @classmethod
    def from_settings(cls, settings: SettingsStore) -> ProbeOptions:
        return cls(
            interval_seconds=float(settings.get("delivery_probes.interval_minutes")) * 60,
            timeout_seconds=float(settings.get("delivery_probes.timeout_minutes")) * 60,
            seed_address=str(settings.get("delivery_probes.seed_address")),
            from_address=str(settings.get("delivery_probes.from_address")),
        )

    @property
    def enabled(self) -> bool:
        return self.interval_seconds > 0 and bool(self.seed_address and self.from_address)


def probe_message(token: str, sender: str, seed: str, provider_name: str) -> bytes:
    message = EmailMessage(policy=WIRE_POLICY)
    message["From"] = sender
    message["To"] = seed
    message["Subject"] = f"Relaydesk delivery probe via {provider_name}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message[PROBE_HEADER] = token
    message.set_content(
        "This message measures end-to-end delivery through one provider. It is read and\r\n"
        "filed by Relaydesk; there is nothing to do.\r\n"
    )
    return message.as_bytes()


def probe_token(raw: bytes) -> str | None:
    """The token of a probe message (header part only), or None."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = _TOKEN.search(head)
    return match.group(1).decode("ascii") if match else None


class DeliveryProber:
    """Run ``run()`` on the loop thread next to the engine; ``request_stop()`` ends it."""

    def __init__(
        self,
        probes: DeliveryProbeRepository,
        providers: ProviderRepository,
        settings: SettingsStore,
        secrets_store: SecretStore,
        events: EventSink,
        *,
        clock: Callable[[], float] = time.time,
        check_seconds: float = 5.0,
    ) -> None:
        self._probes = probes
        self._providers = providers
        self._settings = settings
        self._secrets = secrets_store
        self._events = events
        self._clock = clock
        self._check_seconds = check_seconds
        self._stop = asyncio.Event()
        self._next_round: float | None = None

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.check()
            except Exception:  # a bad round must not end probing for the session
                log_failure(log, "delivery probe round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._check_seconds)

    def request_stop(self) -> None:
        self._stop.set()

    async def check(self) -> None:
        """Expire overdue probes; send a round when one is due."""
        options = await asyncio.to_thread(ProbeOptions.from_settings, self._settings)
        now = self._clock()
        for lost in await asyncio.to_thread(self._probes.expire, now, options.timeout_seconds):
            log.warning("delivery probe via %s never arrived", lost.provider_name)
            self._events.publish(DeliveryProbeLost(lost.provider_name, lost.sent_at))
        if not options.enabled:
            return
        if self._next_round is None:
            last = await asyncio.to_thread(self._probes.last_sent_at)
            self._next_round = now if last is None else last + options.interval_seconds
        if now < self._next_round:
            return
        self._next_round = now + options.interval_seconds
        # A provider in maintenance takes no mail: probing it would report a failure that
        # is not one (and its uptime leaves the window out too).
        providers = [
            p
            for p in await asyncio.to_thread(self._providers.all)
            if p.enabled and maintenance.active_window(p.maintenance, now) is None
        ]
        await asyncio.gather(*(self.send_probe(p, options) for p in providers))
        await asyncio.to_thread(self._probes.prune, now - KEEP_SECONDS)

    async def send_probe(self, provider: ProviderConfig, options: ProbeOptions) -> None:
        token = secrets.token_hex(16)
        raw = probe_message(token, options.from_address, options.seed_address, provider.name)
        password = await asyncio.to_thread(self._secrets.get_password, provider.uid)
        sent_at = self._clock()
        await asyncio.to_thread(
            lambda: self._probes.add(
                token=token,
                provider_uid=provider.uid,
                provider_name=provider.name,
                sent_at=sent_at,
            )
        )
        connection = SmtpConnection(
            provider, password, timeout=30.0, helo_name=socket.gethostname()
        )
        accepted, latency, detail = False, None, ""
        try:
            await connection.open()
            result = await connection.send(options.from_address, (options.seed_address,), raw)
            accepted = result.outcome is OutcomeClass.DELIVERED
            latency = result.latency_ms
            detail = "" if accepted else result.detail
        except SmtpFailure as failure:
            detail = failure.detail
        finally:
            await connection.close()
        await asyncio.to_thread(
            lambda: self._probes.record_send(
                token, smtp_latency_ms=latency, accepted=accepted, detail=detail
            )
        )
