"""A real connection test: connect, EHLO, STARTTLS, AUTH, NOOP, QUIT, with timings.

Used by ``relaydesk provider test`` and the GUI's "Test connection" button. It sends no
mail, and its failure text is what a person needs: TLS error, auth refused, timeout...
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import aiosmtplib

from desktop_app.core.delivery.smtp_connection import SmtpConnection, SmtpFailure
from desktop_app.core.models import ProviderConfig, SmtpPhase


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """How a probe went. ``ok`` False comes with the phase and the server's words."""

    provider_name: str
    ok: bool
    latency_ms: float
    phases_ms: dict[str, float] = field(default_factory=dict)
    failed_phase: SmtpPhase | None = None
    reply_code: int | None = None
    detail: str = ""

    def summary(self) -> str:
        if self.ok:
            return f"{self.provider_name}: OK in {self.latency_ms:.0f} ms"
        phase = self.failed_phase.value if self.failed_phase else "probe"
        return f"{self.provider_name}: FAILED at {phase}: {self.detail}"


async def probe_provider(
    provider: ProviderConfig,
    password: str | None,
    *,
    timeout: float = 15.0,
    helo_name: str | None = None,
) -> ProbeResult:
    """Run the whole conversation once against ``provider``."""
    started = time.perf_counter()
    connection = SmtpConnection(
        provider, password, timeout=timeout, helo_name=helo_name or socket.gethostname()
    )
    try:
        phases = await connection.open()
        mark = time.perf_counter()
        try:
            await connection.noop()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            failure = SmtpFailure.from_exception(SmtpPhase.QUIT, exc)
            raise failure from None
        phases["noop"] = (time.perf_counter() - mark) * 1000
    except SmtpFailure as failure:
        await connection.close()
        return ProbeResult(
            provider_name=provider.name,
            ok=False,
            latency_ms=(time.perf_counter() - started) * 1000,
            failed_phase=failure.phase,
            reply_code=failure.reply_code,
            detail=failure.detail,
        )
    await connection.close()
    return ProbeResult(
        provider_name=provider.name,
        ok=True,
        latency_ms=(time.perf_counter() - started) * 1000,
        phases_ms=phases,
    )
