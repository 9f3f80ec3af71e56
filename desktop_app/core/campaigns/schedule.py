"""When a scheduled campaign starts: an ISO 8601 time, always resolved to one instant.

A time with an offset (``2026-12-01T09:00+01:00``, ``...Z``) means exactly that instant. A
time without one is read in a named IANA zone when one is given, else in the computer's
local zone, the way a calendar reads it; DST gaps and folds follow the zone's rules.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from desktop_app.core.errors import UserInputError

#: A start time this far in the past is a mistake, not "now" (clock skew aside).
PAST_TOLERANCE_SECONDS = 60.0


def parse_send_time(text: str, *, zone: str | None = None, now: float | None = None) -> float:
    """Epoch seconds of ``text``, or a one-line ``UserInputError``."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UserInputError(
            f"{value!r} is not an ISO 8601 date and time (e.g. 2026-12-01T09:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        if zone:
            try:
                moment = moment.replace(tzinfo=ZoneInfo(zone))
            except (ZoneInfoNotFoundError, ValueError):
                raise UserInputError(f"unknown time zone {zone!r}") from None
        else:
            moment = moment.astimezone()  # the local zone
    when = moment.timestamp()
    current = time.time() if now is None else now
    if when < current - PAST_TOLERANCE_SECONDS:
        raise UserInputError(f"{value} is in the past ({describe_time(when)})")
    return when


def describe_time(epoch: float) -> str:
    """A local time with its offset, for messages and lists: 2026-12-01 09:00 +0100."""
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M %z")
