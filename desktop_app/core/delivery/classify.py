"""What an SMTP attempt meant, decided from the phase and the reply code.

Policy looks at *where* the conversation stopped and *what* the server said, never at the
exception class a client library happened to raise (aiosmtplib reports a 421 to MAIL FROM as
``SMTPSenderRefused``, for instance). See desktop_app/ARCHITECTURE.md, "Classifying SMTP
outcomes".
"""

from __future__ import annotations

import re

from desktop_app.core.models import OutcomeClass, SmtpPhase

# RFC 3463: class "." subject "." detail, subject and detail 1-3 digits. It must be followed by
# whitespace or the end, so "5.1.10x" or a version string like "2.0.0.1" is not taken for one.
_ENHANCED_STATUS = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?=\s|$)", re.ASCII)

# Phases where nothing about the message itself has been judged yet: any 4xx/5xx is the
# provider's (or its account's) problem, and another provider may well take the message.
_PROVIDER_PHASES = frozenset(
    {
        SmtpPhase.CONNECT,
        SmtpPhase.GREETING,
        SmtpPhase.EHLO,
        SmtpPhase.STARTTLS,
        SmtpPhase.AUTH,
        SmtpPhase.MAIL,
        SmtpPhase.DATA_COMMAND,
        SmtpPhase.RSET,
        SmtpPhase.QUIT,
    }
)

_COUNTS_AGAINST_PROVIDER = frozenset(
    {OutcomeClass.PROVIDER_FAILURE, OutcomeClass.TRANSIENT_AFTER_DATA, OutcomeClass.AMBIGUOUS}
)


def parse_enhanced_status(text: str) -> str | None:
    """The RFC 3463 status ("5.1.1") that starts a reply's text, or None."""
    match = _ENHANCED_STATUS.match(text)
    return match.group(1) if match else None


def classify(phase: SmtpPhase, reply_code: int | None) -> OutcomeClass:
    """Classify one attempt that ended in ``phase`` with ``reply_code`` (None: no reply at all).

    Raises ValueError for a reply that is not an outcome: a 2xx/3xx before the end of DATA
    (the conversation simply goes on), a 3xx to the final ".", or a code outside 200-599.
    """
    if reply_code is None:
        # Silence after the final "." means the provider may already have the message.
        return (
            OutcomeClass.AMBIGUOUS if phase is SmtpPhase.DATA_END else OutcomeClass.PROVIDER_FAILURE
        )
    if not 200 <= reply_code <= 599:
        raise ValueError(f"{reply_code} is not an SMTP reply code")
    if reply_code == 421:
        # 421 is the server closing the channel, whatever it was answering.
        return OutcomeClass.PROVIDER_FAILURE
    reply_class = reply_code // 100
    if reply_class in (2, 3):
        if phase is SmtpPhase.DATA_END and reply_class == 2:
            return OutcomeClass.DELIVERED
        raise ValueError(f"{reply_code} in phase {phase.value} is not an outcome")
    permanent = reply_class == 5
    if phase in _PROVIDER_PHASES:
        return OutcomeClass.PROVIDER_FAILURE
    if phase is SmtpPhase.RCPT:
        return OutcomeClass.RECIPIENT_PERMANENT if permanent else OutcomeClass.RECIPIENT_TRANSIENT
    if phase is SmtpPhase.DATA_END:
        return OutcomeClass.CONTENT_REJECTED if permanent else OutcomeClass.TRANSIENT_AFTER_DATA
    raise ValueError(f"unknown SMTP phase {phase!r}")  # a phase added to the enum but not here


def counts_against_provider(outcome: OutcomeClass) -> bool:
    """Whether ``outcome`` feeds the provider's circuit breaker."""
    # CONTENT_REJECTED is only a weak signal (one bad template must not trip a healthy
    # provider); health records it, the breaker does not.
    return outcome in _COUNTS_AGAINST_PROVIDER


def fails_over(outcome: OutcomeClass) -> bool:
    """Whether the same message should go to the next usable provider at once."""
    # Everything else either settled the message or is about the message, not the provider:
    # sending it elsewhere would only repeat the verdict (or risk a duplicate, for AMBIGUOUS).
    return outcome is OutcomeClass.PROVIDER_FAILURE
