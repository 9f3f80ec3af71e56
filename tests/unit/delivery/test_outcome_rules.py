"""Outcome -> message state: one case per row of the table in outcome_rules.py."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from desktop_app.core.delivery.outcome_rules import (
    OutcomePolicy,
    deferral,
    finished_entry,
    rate_limit_give_back,
    transition_after,
)
from desktop_app.core.delivery.retry import BackoffPolicy
from desktop_app.core.delivery.smtp_connection import TransactionResult
from desktop_app.core.models import (
    AmbiguousPolicy,
    MessageState,
    OutboxMessage,
    OutcomeClass,
    SmtpPhase,
)
from desktop_app.core.storage.outbox import AttemptFinished, MessageTransition

NOW = 1_700_000_000.0
PROVIDER_ID = 7
PROVIDER_NAME = "Provider A"
NUMBER = 4  # this attempt's number
A, B, C = "a@example.net", "b@example.net", "c@example.net"
BOUNCE = "550 5.1.1 no such user"
# Bases double from 10 s: the message has 2 deferrals, so this one is the 3rd -> base 40 s,
# and with equal jitter the delay is in [20, 40] (never in the 2nd's [10, 20) or the 4th's).
BACKOFF = BackoffPolicy(min_seconds=10.0, max_seconds=1000.0, max_age_seconds=3600.0)
RETRY = OutcomePolicy(backoff=BACKOFF, ambiguous_policy=AmbiguousPolicy.RETRY)
HOLD = OutcomePolicy(backoff=BACKOFF, ambiguous_policy=AmbiguousPolicy.HOLD)
BACKOFF_RANGE = (NOW + 20.0, NOW + 40.0)


def _message(*, age: float = 60.0, recipients: tuple[str, ...] = (A, B, C)) -> OutboxMessage:
    return OutboxMessage(
        outbox_id=11,
        message_id="<m1@example.org>",
        envelope_from="sender@example.org",
        recipients=recipients,
        raw=b"Subject: hi\r\n\r\nhello\r\n",
        attempt_count=NUMBER - 1,
        deferral_count=2,
        created_at=NOW - age,
    )


FRESH = _message()
EXPIRED = _message(age=3600.0)  # exactly at max age counts as expired


def _result(
    outcome: OutcomeClass,
    *,
    phase: SmtpPhase = SmtpPhase.DATA_END,
    code: int | None = 250,
    detail: str = "250 2.0.0 queued",
    delivered: tuple[str, ...] = (),
    permanent: tuple[tuple[str, str], ...] = (),
    transient: tuple[str, ...] = (),
) -> TransactionResult:
    return TransactionResult(
        outcome=outcome,
        phase=phase,
        reply_code=code,
        enhanced_status=None,
        detail=detail,
        delivered_to=delivered,
        refused_permanently=permanent,
        refused_transiently=transient,
        latency_ms=12.5,
    )


@dataclass(frozen=True)
class Expected:
    state: MessageState
    remaining: tuple[str, ...]
    deferrals: int
    last_error: str | None
    #: None, "backoff" (somewhere in BACKOFF_RANGE) or an exact time
    next_at: float | str | None = None
    defer_reason: str | None = None
    sent_at: float | None = None
    possible_duplicate: bool = False


BACKOFF_DUE = "backoff"


def _check(transition: MessageTransition, expected: Expected, attempts: int = NUMBER) -> None:
    assert transition.outbox_id == FRESH.outbox_id
    assert transition.state is expected.state
    assert transition.remaining_recipients == expected.remaining
    assert transition.attempt_count == attempts
    assert transition.deferral_count == expected.deferrals
    assert transition.last_error == expected.last_error
    assert transition.defer_reason == expected.defer_reason
    assert transition.sent_at == expected.sent_at
    assert transition.possible_duplicate is expected.possible_duplicate
    if expected.next_at == BACKOFF_DUE:
        assert transition.next_attempt_at is not None
        low, high = BACKOFF_RANGE
        assert low <= transition.next_attempt_at <= high
    else:
        assert transition.next_attempt_at == expected.next_at


TRANSITION_ROWS = [
    pytest.param(
        FRESH,
        _result(OutcomeClass.DELIVERED, delivered=(A, B, C)),
        RETRY,
        Expected(MessageState.SENT, (), 2, None, sent_at=NOW),
        id="delivered",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.DELIVERED, delivered=(A, B), permanent=((C, BOUNCE),)),
        RETRY,
        Expected(MessageState.SENT, (), 2, f"refused: {C}: {BOUNCE}", sent_at=NOW),
        id="delivered-with-permanent-refusals",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.DELIVERED, delivered=(A,), transient=(B, C)),
        RETRY,
        Expected(
            MessageState.DEFERRED,
            (B, C),
            3,
            f"delivered to 1; waiting for {B}, {C}",
            next_at=BACKOFF_DUE,
            defer_reason="recipient",
        ),
        id="delivered-with-transient-refusals",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.DELIVERED, delivered=(A,), permanent=((C, BOUNCE),), transient=(B,)),
        RETRY,
        Expected(
            MessageState.DEFERRED,
            (B,),
            3,
            f"delivered to 1; waiting for {B}; refused: {C}: {BOUNCE}",
            next_at=BACKOFF_DUE,
            defer_reason="recipient",
        ),
        id="delivered-with-transient-and-permanent-refusals",
    ),
    pytest.param(
        FRESH,
        _result(
            OutcomeClass.RECIPIENT_TRANSIENT,
            phase=SmtpPhase.RCPT,
            code=451,
            detail="451 4.7.1 try later",
            transient=(A, B, C),
        ),
        RETRY,
        Expected(
            MessageState.DEFERRED,
            (A, B, C),
            3,
            "451 4.7.1 try later",
            next_at=BACKOFF_DUE,
            defer_reason="recipient",
        ),
        id="recipient-transient",
    ),
    pytest.param(
        FRESH,
        _result(
            OutcomeClass.RECIPIENT_TRANSIENT,
            phase=SmtpPhase.RCPT,
            code=451,
            detail="451 4.7.1 try later",
            permanent=((C, BOUNCE),),
            transient=(A, B),
        ),
        RETRY,
        Expected(
            MessageState.DEFERRED,
            (A, B),
            3,
            f"451 4.7.1 try later; refused: {C}: {BOUNCE}",
            next_at=BACKOFF_DUE,
            defer_reason="recipient",
        ),
        id="recipient-transient-with-permanent-refusals",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.TRANSIENT_AFTER_DATA, code=451, detail="451 4.3.0 queue full"),
        RETRY,
        Expected(
            MessageState.DEFERRED,
            (A, B, C),
            3,
            "451 4.3.0 queue full",
            next_at=BACKOFF_DUE,
            defer_reason="after_data",
        ),
        id="transient-after-data",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.AMBIGUOUS, code=None, detail="timed out after the final dot"),
        RETRY,
        Expected(
            MessageState.UNKNOWN,
            (A, B, C),
            3,
            f"{PROVIDER_NAME} may have accepted it: timed out after the final dot",
            next_at=BACKOFF_DUE,
            possible_duplicate=True,
        ),
        id="ambiguous-retry",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.AMBIGUOUS, code=None, detail="timed out after the final dot"),
        HOLD,
        Expected(
            MessageState.UNKNOWN,
            (A, B, C),
            3,
            f"{PROVIDER_NAME} may have accepted it: timed out after the final dot",
            next_at=None,
            possible_duplicate=True,
        ),
        id="ambiguous-hold",
    ),
    pytest.param(
        FRESH,
        _result(
            OutcomeClass.RECIPIENT_PERMANENT,
            phase=SmtpPhase.RCPT,
            code=550,
            detail="all recipients refused",
            permanent=((A, BOUNCE), (B, "553 5.1.3 bad address")),
        ),
        RETRY,
        Expected(MessageState.FAILED, (), 2, f"{A}: {BOUNCE}; {B}: 553 5.1.3 bad address"),
        id="recipient-permanent",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.RECIPIENT_PERMANENT, phase=SmtpPhase.RCPT, code=550, detail=BOUNCE),
        RETRY,
        Expected(MessageState.FAILED, (), 2, BOUNCE),
        id="recipient-permanent-without-refusal-list",
    ),
    pytest.param(
        FRESH,
        _result(OutcomeClass.CONTENT_REJECTED, code=554, detail="554 5.7.1 spam"),
        RETRY,
        Expected(MessageState.FAILED, (), 2, "554 5.7.1 spam"),
        id="content-rejected",
    ),
    # The engine fails over on a provider failure and never asks; this pins what the
    # rules (like the engine's old code) answer if asked anyway: final, like a rejection.
    pytest.param(
        FRESH,
        _result(OutcomeClass.PROVIDER_FAILURE, phase=SmtpPhase.MAIL, code=421, detail="421 bye"),
        RETRY,
        Expected(MessageState.FAILED, (), 2, "421 bye"),
        id="provider-failure-not-failed-over",
    ),
    # Past max age every deferral becomes final, with the reason it would have waited for.
    pytest.param(
        EXPIRED,
        _result(OutcomeClass.TRANSIENT_AFTER_DATA, code=451, detail="451 4.3.0 queue full"),
        RETRY,
        Expected(
            MessageState.FAILED,
            (A, B, C),
            3,
            "expired after 1 h without delivery: 451 4.3.0 queue full",
        ),
        id="transient-after-data-expired",
    ),
    pytest.param(
        EXPIRED,
        _result(OutcomeClass.DELIVERED, delivered=(A,), transient=(B, C)),
        RETRY,
        Expected(
            MessageState.FAILED,
            (B, C),
            3,
            f"expired after 1 h without delivery: delivered to 1; waiting for {B}, {C}",
        ),
        id="delivered-with-transient-refusals-expired",
    ),
    pytest.param(
        EXPIRED,
        _result(
            OutcomeClass.RECIPIENT_TRANSIENT,
            phase=SmtpPhase.RCPT,
            code=451,
            detail="451 4.7.1 try later",
            transient=(A,),
        ),
        RETRY,
        Expected(
            MessageState.FAILED,
            (A,),
            3,
            "expired after 1 h without delivery: 451 4.7.1 try later",
        ),
        id="recipient-transient-expired",
    ),
    # Ambiguous and final outcomes do not look at the message's age.
    pytest.param(
        EXPIRED,
        _result(OutcomeClass.AMBIGUOUS, code=None, detail="connection reset"),
        RETRY,
        Expected(
            MessageState.UNKNOWN,
            (A, B, C),
            3,
            f"{PROVIDER_NAME} may have accepted it: connection reset",
            next_at=BACKOFF_DUE,
            possible_duplicate=True,
        ),
        id="ambiguous-expired-is-still-unknown",
    ),
    pytest.param(
        EXPIRED,
        _result(OutcomeClass.DELIVERED, delivered=(A, B, C)),
        RETRY,
        Expected(MessageState.SENT, (), 2, None, sent_at=NOW),
        id="delivered-expired-is-still-sent",
    ),
]


@pytest.mark.parametrize(("message", "result", "policy", "expected"), TRANSITION_ROWS)
def test_transition_after(
    message: OutboxMessage, result: TransactionResult, policy: OutcomePolicy, expected: Expected
) -> None:
    transition = transition_after(message, NUMBER, PROVIDER_ID, PROVIDER_NAME, result, policy, NOW)

    _check(transition, expected)
    assert transition.provider_id == PROVIDER_ID


def _column(index: int) -> list[object]:
    return [row.values[index] for row in TRANSITION_ROWS]


def test_every_outcome_class_has_a_row() -> None:
    # If OutcomeClass grows, the table above must be extended deliberately.
    results = [value for value in _column(1) if isinstance(value, TransactionResult)]
    assert {result.outcome for result in results} == set(OutcomeClass)


def test_both_ambiguous_policies_have_a_row() -> None:
    policies = [value for value in _column(2) if isinstance(value, OutcomePolicy)]
    assert {policy.ambiguous_policy for policy in policies} == set(AmbiguousPolicy)


def test_backoff_follows_the_new_deferral_count() -> None:
    # The 1st deferral (none before) waits within [5, 10] s with a 10 s minimum.
    first = dataclasses.replace(FRESH, deferral_count=0)
    transition = transition_after(
        first,
        1,
        PROVIDER_ID,
        PROVIDER_NAME,
        _result(OutcomeClass.TRANSIENT_AFTER_DATA, code=451, detail="later"),
        RETRY,
        NOW,
    )
    assert transition.deferral_count == 1
    assert transition.next_attempt_at is not None
    assert NOW + 5.0 <= transition.next_attempt_at <= NOW + 10.0


# -- deferral() directly (the engine's "no usable provider" case) -------------------------


DEFERRAL_ROWS = [
    pytest.param(
        FRESH,
        None,
        None,
        Expected(
            MessageState.DEFERRED,
            (A, B, C),
            3,
            "no usable provider",
            next_at=BACKOFF_DUE,
            defer_reason="no_provider",
        ),
        id="backoff",
    ),
    pytest.param(
        FRESH,
        NOW + 900.0,
        None,
        Expected(
            MessageState.DEFERRED,
            (A, B, C),
            3,
            "no usable provider",
            next_at=NOW + 900.0,
            defer_reason="no_provider",
        ),
        id="due-at-overrides-backoff",
    ),
    pytest.param(
        FRESH,
        0.0,
        None,
        Expected(
            MessageState.DEFERRED,
            (A, B, C),
            3,
            "no usable provider",
            next_at=BACKOFF_DUE,
            defer_reason="no_provider",
        ),
        id="due-at-zero-counts-as-none",
    ),
    pytest.param(
        FRESH,
        None,
        (B,),
        Expected(
            MessageState.DEFERRED,
            (B,),
            3,
            "no usable provider",
            next_at=BACKOFF_DUE,
            defer_reason="no_provider",
        ),
        id="remaining-given",
    ),
    pytest.param(
        FRESH,
        None,
        (),
        Expected(
            MessageState.DEFERRED,
            (),
            3,
            "no usable provider",
            next_at=BACKOFF_DUE,
            defer_reason="no_provider",
        ),
        id="empty-remaining-is-kept-not-defaulted",
    ),
    pytest.param(
        EXPIRED,
        NOW + 900.0,
        None,
        Expected(
            MessageState.FAILED,
            (A, B, C),
            3,
            "expired after 1 h without delivery: no usable provider",
        ),
        id="expired-wins-over-due-at",
    ),
]


@pytest.mark.parametrize(("message", "due_at", "remaining", "expected"), DEFERRAL_ROWS)
def test_deferral(
    message: OutboxMessage,
    due_at: float | None,
    remaining: tuple[str, ...] | None,
    expected: Expected,
) -> None:
    transition = deferral(
        message,
        NUMBER - 1,  # no attempt was made: the number is not advanced
        reason="no_provider",
        error="no usable provider",
        provider_id=None,
        remaining=remaining,
        due_at=due_at,
        policy=RETRY,
        now=NOW,
    )

    _check(transition, expected, attempts=NUMBER - 1)
    assert transition.provider_id is None


@pytest.mark.parametrize(
    ("max_age_hours", "text"), [(1.0, "1 h"), (72.0, "72 h"), (0.5, "0.5 h"), (1.25, "1.25 h")]
)
def test_expiry_names_the_max_age_in_hours(max_age_hours: float, text: str) -> None:
    policy = OutcomePolicy(
        backoff=BackoffPolicy(min_seconds=10.0, max_age_seconds=max_age_hours * 3600.0)
    )
    message = _message(age=max_age_hours * 3600.0 + 1.0)

    transition = deferral(
        message, 1, reason="after_data", error="x", provider_id=1, policy=policy, now=NOW
    )

    assert transition.state is MessageState.FAILED
    assert transition.last_error == f"expired after {text} without delivery: x"


def test_just_under_max_age_is_still_deferred() -> None:
    message = _message(age=3599.9)

    transition = deferral(
        message, 1, reason="after_data", error="x", provider_id=1, policy=RETRY, now=NOW
    )

    assert transition.state is MessageState.DEFERRED


# -- rate-limit give back and the journal entry -------------------------------------------


def test_rate_limit_give_back_is_not_a_deferral() -> None:
    transition = rate_limit_give_back(EXPIRED, NUMBER - 1, NOW + 42.0)

    # Neither counted as a deferral nor subject to expiry: the message was not tried.
    _check(
        transition,
        Expected(
            MessageState.QUEUED,
            (A, B, C),
            2,
            "waiting for provider rate limits",
            next_at=NOW + 42.0,
            defer_reason="rate_limit",
        ),
        attempts=NUMBER - 1,
    )
    assert transition.provider_id is None


def test_finished_entry() -> None:
    result = TransactionResult(
        outcome=OutcomeClass.CONTENT_REJECTED,
        phase=SmtpPhase.DATA_END,
        reply_code=554,
        enhanced_status="5.7.1",
        detail="554 5.7.1 spam",
        latency_ms=33.0,
    )

    assert finished_entry(FRESH, NUMBER, result, NOW) == AttemptFinished(
        outbox_id=FRESH.outbox_id,
        number=NUMBER,
        finished_at=NOW,
        latency_ms=33.0,
        outcome=OutcomeClass.CONTENT_REJECTED,
        phase="data_end",
        reply_code=554,
        enhanced_status="5.7.1",
        detail="554 5.7.1 spam",
    )


def test_policy_defaults_match_the_engine() -> None:
    from desktop_app.core.delivery.engine import EngineOptions

    options = EngineOptions()
    policy = OutcomePolicy()
    assert (policy.backoff, policy.ambiguous_policy) == (options.backoff, options.ambiguous_policy)


def test_policy_is_frozen() -> None:
    with pytest.raises(AttributeError):
        RETRY.ambiguous_policy = AmbiguousPolicy.HOLD  # type: ignore[misc]
