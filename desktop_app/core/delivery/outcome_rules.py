"""The outcome -> message-state table: what one SMTP attempt's result does to its message.

Plain functions (no engine, no I/O, no clock: ``now`` is passed in) that turn a classified
attempt (classify.py, ``TransactionResult``) into the ``MessageTransition`` the engine
commits, and the journal's ``AttemptFinished`` entry; only the backoff delay is random
(retry.py's jitter). A provider failure is not in the table: the engine fails over to the
next provider and carries the attempt's entry forward.

  outcome               state      remaining              deferrals  notes
  --------------------  ---------  ---------------------  ---------  ---------------------------
  delivered             sent       ()                     same       "refused: ..." if any were
  delivered, some 4xx   deferred*  the 4xx recipients     +1         reason "recipient"
  recipient_transient   deferred*  the 4xx recipients     +1         reason "recipient"
  transient_after_data  deferred*  all                    +1         reason "after_data"
  ambiguous             unknown    all                    +1         possible_duplicate; retried
                                                                     after backoff, or held
                                                                     (no next attempt); never
                                                                     expires
  recipient_permanent   failed     ()                     same       final, never tried elsewhere
  content_rejected      failed     ()                     same       final, never tried elsewhere
  no usable provider    deferred*  all                    +1         reason "no_provider"
  rate-limit give-back  queued     all                    same       reason "rate_limit"

  * deferred after a jittered backoff (or at ``due_at``), or failed with "expired after N h
    without delivery: ..." once the message is older than the backoff policy's max age.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from desktop_app.core.delivery.retry import BackoffPolicy
from desktop_app.core.delivery.smtp_connection import TransactionResult
from desktop_app.core.models import AmbiguousPolicy, MessageState, OutboxMessage, OutcomeClass
from desktop_app.core.storage.outbox import AttemptFinished, MessageTransition

__all__ = [
    "OutcomePolicy",
    "deferral",
    "finished_entry",
    "rate_limit_give_back",
    "transition_after",
]


@dataclass(frozen=True, slots=True)
class OutcomePolicy:
    """The settings the rules depend on (the engine's ``EngineOptions`` has both)."""

    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    ambiguous_policy: AmbiguousPolicy = AmbiguousPolicy.RETRY


def finished_entry(
    message: OutboxMessage, number: int, result: TransactionResult, now: float
) -> AttemptFinished:
    """The journal entry for attempt ``number``, finished at ``now``."""
    return AttemptFinished(
        outbox_id=message.outbox_id,
        number=number,
        finished_at=now,
        latency_ms=result.latency_ms,
        outcome=result.outcome,
        phase=result.phase.value,
        reply_code=result.reply_code,
        enhanced_status=result.enhanced_status,
        detail=result.detail,
    )


def transition_after(
    message: OutboxMessage,
    number: int,
    provider_id: int | None,
    provider_name: str,
    result: TransactionResult,
    policy: OutcomePolicy,
    now: float,
) -> MessageTransition:
    """The message's new state after attempt ``number`` through a provider ended in ``result``.

    Not for ``PROVIDER_FAILURE`` (the engine fails over instead); given one anyway, it is
    treated as final like a rejection, as the engine's code always did.
    """
    refused = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in result.refused_permanently)
    outcome = result.outcome
    if outcome is OutcomeClass.DELIVERED:
        if result.refused_transiently:
            # Delivered to some; the others said "later": keep only those.
            remaining = tuple(result.refused_transiently)
            return deferral(
                message,
                number,
                reason="recipient",
                error=f"delivered to {len(result.delivered_to)}; waiting for "
                + ", ".join(remaining)
                + (f"; refused: {refused}" if refused else ""),
                provider_id=provider_id,
                remaining=remaining,
                policy=policy,
                now=now,
            )
        return MessageTransition(
            outbox_id=message.outbox_id,
            state=MessageState.SENT,
            remaining_recipients=(),
            attempt_count=number,
            deferral_count=message.deferral_count,
            provider_id=provider_id,
            sent_at=now,
            last_error=f"refused: {refused}" if refused else None,
        )
    if outcome is OutcomeClass.RECIPIENT_TRANSIENT:
        # Permanently refused recipients leave the envelope here: name them (as "sent"
        # does), since nothing else records which addresses were refused.
        return deferral(
            message,
            number,
            reason="recipient",
            error=f"{result.detail}; refused: {refused}" if refused else result.detail,
            provider_id=provider_id,
            remaining=tuple(result.refused_transiently),
            policy=policy,
            now=now,
        )
    if outcome is OutcomeClass.TRANSIENT_AFTER_DATA:
        return deferral(
            message,
            number,
            reason="after_data",
            error=result.detail,
            provider_id=provider_id,
            policy=policy,
            now=now,
        )
    if outcome is OutcomeClass.AMBIGUOUS:
        # No expiry check here (unlike deferral()): it goes to "unknown" whatever its age.
        retry = policy.ambiguous_policy is AmbiguousPolicy.RETRY
        deferrals = message.deferral_count + 1
        return MessageTransition(
            outbox_id=message.outbox_id,
            state=MessageState.UNKNOWN,
            remaining_recipients=message.recipients,
            attempt_count=number,
            deferral_count=deferrals,
            provider_id=provider_id,
            next_attempt_at=now + policy.backoff.delay(deferrals) if retry else None,
            last_error=f"{provider_name} may have accepted it: {result.detail}",
            possible_duplicate=True,
        )
    # RECIPIENT_PERMANENT and CONTENT_REJECTED: final, never tried elsewhere.
    return MessageTransition(
        outbox_id=message.outbox_id,
        state=MessageState.FAILED,
        remaining_recipients=(),
        attempt_count=number,
        deferral_count=message.deferral_count,
        provider_id=provider_id,
        last_error=refused or result.detail,
    )


def deferral(
    message: OutboxMessage,
    number: int,
    *,
    reason: str,
    error: str,
    provider_id: int | None,
    remaining: tuple[str, ...] | None = None,
    due_at: float | None = None,
    policy: OutcomePolicy,
    now: float,
) -> MessageTransition:
    """Deferred with backoff (or until ``due_at``), or failed once past its lifetime.

    ``remaining`` defaults to all of the message's recipients. A ``due_at`` of 0 counts
    as none (the engine's ``due_at or ...``).
    """
    deferrals = message.deferral_count + 1
    remaining = message.recipients if remaining is None else remaining
    if policy.backoff.expired(message.created_at, now):
        hours = policy.backoff.max_age_seconds / 3600
        return MessageTransition(
            outbox_id=message.outbox_id,
            state=MessageState.FAILED,
            remaining_recipients=remaining,
            attempt_count=number,
            deferral_count=deferrals,
            provider_id=provider_id,
            last_error=f"expired after {hours:g} h without delivery: {error}",
        )
    return MessageTransition(
        outbox_id=message.outbox_id,
        state=MessageState.DEFERRED,
        remaining_recipients=remaining,
        attempt_count=number,
        deferral_count=deferrals,
        provider_id=provider_id,
        next_attempt_at=due_at or now + policy.backoff.delay(deferrals),
        last_error=error,
        defer_reason=reason,
    )


def rate_limit_give_back(message: OutboxMessage, attempts: int, due_at: float) -> MessageTransition:
    """Back to the queue untried, due when quota frees up; not counted as a deferral."""
    return MessageTransition(
        outbox_id=message.outbox_id,
        state=MessageState.QUEUED,
        remaining_recipients=message.recipients,
        attempt_count=attempts,
        deferral_count=message.deferral_count,
        provider_id=None,
        next_attempt_at=due_at,
        last_error="waiting for provider rate limits",
        defer_reason="rate_limit",
    )
