"""The campaign state machine, the schedule parser and the auto-pause threshold (pure policy)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from desktop_app.core.campaigns.lifecycle import (
    CampaignAction,
    CampaignState,
    CampaignStateError,
    check_action,
    check_edit,
    state_after_resume,
)
from desktop_app.core.campaigns.runner import AutoPause
from desktop_app.core.campaigns.schedule import parse_send_time
from desktop_app.core.errors import UserInputError

S = CampaignState
A = CampaignAction

ALLOWED = {
    (A.SEND, S.DRAFT),
    (A.SEND, S.SCHEDULED),
    (A.SCHEDULE, S.DRAFT),
    (A.SCHEDULE, S.SCHEDULED),
    (A.PAUSE, S.SCHEDULED),
    (A.PAUSE, S.SENDING),
    (A.RESUME, S.PAUSED),
    (A.CANCEL, S.DRAFT),
    (A.CANCEL, S.SCHEDULED),
    (A.CANCEL, S.SENDING),
    (A.CANCEL, S.PAUSED),
    (A.EDIT, S.DRAFT),
    (A.EDIT, S.SCHEDULED),
    (A.EDIT, S.PAUSED),
    (A.DELETE, S.DRAFT),
    (A.DELETE, S.SCHEDULED),
    (A.DELETE, S.COMPLETED),
    (A.DELETE, S.CANCELLED),
}


@pytest.mark.parametrize("action", list(A))
@pytest.mark.parametrize("state", list(S))
def test_every_action_in_every_state(action: CampaignAction, state: CampaignState) -> None:
    if (action, state) in ALLOWED:
        check_action("c", state, action)
    else:
        with pytest.raises(CampaignStateError) as raised:
            check_action("c", state, action)
        message = str(raised.value)
        assert message.startswith(f"campaign 'c' is {state.value}; it cannot be ")
        assert "\n" not in message


def test_content_is_frozen_once_mail_was_queued() -> None:
    check_edit("c", S.PAUSED, started=False)  # paused while still scheduled
    with pytest.raises(CampaignStateError, match="already queued mail"):
        check_edit("c", S.PAUSED, started=True)


def test_resume_goes_back_to_waiting_only_when_the_time_is_still_ahead() -> None:
    assert state_after_resume(200.0, started=False, now=100.0) is S.SCHEDULED
    assert state_after_resume(50.0, started=False, now=100.0) is S.SENDING
    assert state_after_resume(200.0, started=True, now=100.0) is S.SENDING
    assert state_after_resume(None, started=True, now=100.0) is S.SENDING


NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("2026-12-01T09:00+01:00", None, datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2026-12-01T09:00Z", None, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01 09:00", "Europe/Paris", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
        ("2027-07-01T09:00", "Europe/Paris", datetime(2027, 7, 1, 7, 0, tzinfo=UTC)),  # DST
        ("2026-12-01T09:00", "America/New_York", datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("2026-12-01T09:00+01:00", "Asia/Tokyo", datetime(2026, 12, 1, 8, 0, tzinfo=UTC)),
    ],
)
def test_send_times_are_one_instant(text: str, zone: str | None, expected: datetime) -> None:
    assert parse_send_time(text, zone=zone, now=NOW) == expected.timestamp()


def test_a_time_without_offset_or_zone_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    local = datetime(2026, 12, 1, 9, 0).astimezone()
    assert parse_send_time("2026-12-01T09:00", now=NOW) == local.timestamp()


@pytest.mark.parametrize(
    ("text", "zone", "message"),
    [
        ("next tuesday", None, "is not an ISO 8601 date and time"),
        ("2026-11-29T11:00Z", None, "is in the past"),
        ("2026-12-01T09:00", "Nowhere/Atlantis", "unknown time zone"),
        ("2026-12-01T09:00", "../../etc/passwd", "unknown time zone"),
    ],
)
def test_bad_send_times_are_one_line(text: str, zone: str | None, message: str) -> None:
    with pytest.raises(UserInputError, match=message) as raised:
        parse_send_time(text, zone=zone, now=NOW)
    assert "\n" not in str(raised.value)


def test_the_auto_pause_threshold() -> None:
    threshold = AutoPause(percent=10.0, min_messages=50)
    assert threshold.reason({"sent": 30, "failed": 19}) is None  # too few to judge
    assert threshold.reason({"sent": 90, "failed": 10}) is None  # exactly 10 %: not past it
    reason = threshold.reason({"sent": 89, "failed": 11, "deferred": 500})
    assert reason is not None and "11 of 100" in reason and "11.0 %" in reason
    assert threshold.reason({"deferred": 1000, "pending": 5}) is None  # retries are not failures
