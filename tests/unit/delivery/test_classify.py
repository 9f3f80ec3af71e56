"""Outcome classification: one case per row of the table in desktop_app/ARCHITECTURE.md,
"Classifying SMTP outcomes"."""

from __future__ import annotations

import pytest

from desktop_app.core.delivery.classify import (
    classify,
    counts_against_provider,
    fails_over,
    parse_enhanced_status,
)
from desktop_app.core.models import OutcomeClass, SmtpPhase

PROVIDER_PHASES = [
    SmtpPhase.CONNECT,
    SmtpPhase.GREETING,
    SmtpPhase.EHLO,
    SmtpPhase.STARTTLS,
    SmtpPhase.AUTH,
    SmtpPhase.MAIL,
    SmtpPhase.DATA_COMMAND,
    SmtpPhase.RSET,
    SmtpPhase.QUIT,
]
NOT_DATA_END = [phase for phase in SmtpPhase if phase is not SmtpPhase.DATA_END]


def test_provider_phases_cover_all_but_rcpt_and_data_end() -> None:
    assert set(PROVIDER_PHASES) == set(SmtpPhase) - {SmtpPhase.RCPT, SmtpPhase.DATA_END}


@pytest.mark.parametrize("phase", NOT_DATA_END)
def test_no_reply_before_data_end_is_provider_failure(phase: SmtpPhase) -> None:
    assert classify(phase, None) is OutcomeClass.PROVIDER_FAILURE


def test_no_reply_after_final_dot_is_ambiguous() -> None:
    assert classify(SmtpPhase.DATA_END, None) is OutcomeClass.AMBIGUOUS


@pytest.mark.parametrize("phase", list(SmtpPhase))
def test_421_anywhere_is_provider_failure(phase: SmtpPhase) -> None:
    assert classify(phase, 421) is OutcomeClass.PROVIDER_FAILURE


@pytest.mark.parametrize("code", [250, 251, 200])
def test_2xx_at_data_end_is_delivered(code: int) -> None:
    assert classify(SmtpPhase.DATA_END, code) is OutcomeClass.DELIVERED


@pytest.mark.parametrize("phase", NOT_DATA_END)
@pytest.mark.parametrize("code", [220, 250, 334, 354])
def test_2xx_3xx_elsewhere_is_not_an_outcome(phase: SmtpPhase, code: int) -> None:
    with pytest.raises(ValueError):
        classify(phase, code)


def test_3xx_at_data_end_is_not_an_outcome() -> None:
    with pytest.raises(ValueError):
        classify(SmtpPhase.DATA_END, 354)


@pytest.mark.parametrize("code", [0, 99, 199, 600, 999])
def test_codes_outside_smtp_range_are_rejected(code: int) -> None:
    with pytest.raises(ValueError):
        classify(SmtpPhase.MAIL, code)


@pytest.mark.parametrize("phase", PROVIDER_PHASES)
@pytest.mark.parametrize("code", [450, 451, 454, 500, 530, 534, 535, 550, 554])
def test_4xx_5xx_outside_rcpt_and_data_end_is_provider_failure(phase: SmtpPhase, code: int) -> None:
    assert classify(phase, code) is OutcomeClass.PROVIDER_FAILURE


@pytest.mark.parametrize("code", [550, 551, 553, 554])
def test_5xx_to_rcpt_is_recipient_permanent(code: int) -> None:
    assert classify(SmtpPhase.RCPT, code) is OutcomeClass.RECIPIENT_PERMANENT


@pytest.mark.parametrize("code", [450, 451, 452])
def test_4xx_to_rcpt_is_recipient_transient(code: int) -> None:
    assert classify(SmtpPhase.RCPT, code) is OutcomeClass.RECIPIENT_TRANSIENT


@pytest.mark.parametrize("code", [550, 552, 554])
def test_5xx_after_data_is_content_rejected(code: int) -> None:
    assert classify(SmtpPhase.DATA_END, code) is OutcomeClass.CONTENT_REJECTED


@pytest.mark.parametrize("code", [450, 451, 452])
def test_4xx_after_data_is_transient_after_data(code: int) -> None:
    assert classify(SmtpPhase.DATA_END, code) is OutcomeClass.TRANSIENT_AFTER_DATA


@pytest.mark.parametrize(
    ("outcome", "counts", "over"),
    [
        (OutcomeClass.DELIVERED, False, False),
        (OutcomeClass.PROVIDER_FAILURE, True, True),
        (OutcomeClass.RECIPIENT_PERMANENT, False, False),
        (OutcomeClass.RECIPIENT_TRANSIENT, False, False),
        (OutcomeClass.CONTENT_REJECTED, False, False),
        (OutcomeClass.TRANSIENT_AFTER_DATA, True, False),
        (OutcomeClass.AMBIGUOUS, True, False),
    ],
)
def test_provider_consequences(outcome: OutcomeClass, counts: bool, over: bool) -> None:
    assert counts_against_provider(outcome) is counts
    assert fails_over(outcome) is over


def test_every_outcome_has_consequences_listed() -> None:
    # If OutcomeClass grows, the table above must be extended deliberately.
    assert len(OutcomeClass) == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.1.1 User unknown", "5.1.1"),
        ("2.0.0 Ok: queued as 4F2B", "2.0.0"),
        ("4.7.0 Try again later", "4.7.0"),
        ("5.7.1", "5.7.1"),
        ("5.123.456 three digits each", "5.123.456"),
        (" 5.1.1 leading space from a lenient parser", "5.1.1"),
        ("5.1.1\nsecond line", "5.1.1"),
        ("User unknown 5.1.1", None),
        ("3.1.1 not a status class", None),
        ("1.0.0", None),
        ("5.1 incomplete", None),
        ("5.1.1234 detail too long", None),
        ("5.1.1x glued", None),
        ("2.0.0.1 a version", None),
        ("", None),
        ("5.1.١ non-ASCII digit", None),
    ],
)
def test_parse_enhanced_status(text: str, expected: str | None) -> None:
    assert parse_enhanced_status(text) == expected
