"""Where a campaign is in its life, and which actions move it (pure policy).

::

    draft --send--> sending --(all done)--> completed
    draft --send --at--> scheduled --(due)--> sending
    scheduled/sending --pause--> paused --resume--> sending (or scheduled, if still ahead)
    draft/scheduled/sending/paused --cancel--> cancelled

Content can be edited while nothing has been queued (draft, scheduled, or paused before
it ever started); the recipients are copied from the list when sending starts, so
subscribers who join before then are included.
"""

from __future__ import annotations

from enum import StrEnum

from desktop_app.core.errors import UserInputError


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class CampaignAction(StrEnum):
    SEND = "send"
    SCHEDULE = "schedule"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    EDIT = "edit"
    DELETE = "delete"


#: What each action may start from.
_ALLOWED_FROM: dict[CampaignAction, frozenset[CampaignState]] = {
    CampaignAction.SEND: frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED}),
    CampaignAction.SCHEDULE: frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED}),
    CampaignAction.PAUSE: frozenset({CampaignState.SCHEDULED, CampaignState.SENDING}),
    CampaignAction.RESUME: frozenset({CampaignState.PAUSED}),
    CampaignAction.CANCEL: frozenset(
        {
            CampaignState.DRAFT,
            CampaignState.SCHEDULED,
            CampaignState.SENDING,
            CampaignState.PAUSED,
        }
    ),
    CampaignAction.EDIT: frozenset(
        {CampaignState.DRAFT, CampaignState.SCHEDULED, CampaignState.PAUSED}
    ),
    # A campaign with mail in the outbox keeps its report; cancel it first.
    CampaignAction.DELETE: frozenset(
        {
            CampaignState.DRAFT,
            CampaignState.SCHEDULED,
            CampaignState.COMPLETED,
            CampaignState.CANCELLED,
        }
    ),
}

#: States in which the runner has work: feeding the outbox, or watching it drain.
ACTIVE_STATES = frozenset({CampaignState.SENDING})
FINAL_STATES = frozenset({CampaignState.COMPLETED, CampaignState.CANCELLED})


class CampaignStateError(UserInputError):
    """An action the campaign's state does not allow (exit code 2 on the command line)."""


def check_action(name: str, state: CampaignState, action: CampaignAction) -> None:
    """Raise a one-line ``CampaignStateError`` unless ``action`` is allowed in ``state``."""
    if state not in _ALLOWED_FROM[action]:
        raise CampaignStateError(f"campaign {name!r} is {state.value}; it cannot {_verb(action)}")


def check_edit(name: str, state: CampaignState, started: bool) -> None:
    """Edits are allowed until the first message has been queued."""
    check_action(name, state, CampaignAction.EDIT)
    if started:
        raise CampaignStateError(
            f"campaign {name!r} has already queued mail; its content can no longer change"
        )


def state_after_resume(scheduled_at: float | None, started: bool, now: float) -> CampaignState:
    """A campaign paused before its time goes back to waiting for it."""
    if not started and scheduled_at is not None and scheduled_at > now:
        return CampaignState.SCHEDULED
    return CampaignState.SENDING


def _verb(action: CampaignAction) -> str:
    return {
        CampaignAction.SEND: "be sent",
        CampaignAction.SCHEDULE: "be scheduled",
        CampaignAction.PAUSE: "be paused",
        CampaignAction.RESUME: "be resumed",
        CampaignAction.CANCEL: "be cancelled",
        CampaignAction.EDIT: "be edited",
        CampaignAction.DELETE: "be deleted (cancel it first)",
    }[action]
