"""When a provider is in a maintenance window, and the checks on windows people type in.

Pure policy, no Qt, no database: the engine asks whether a provider may take new mail, the
health figures cut windows out of uptime, the charts shade them.

A one-off window is ``starts_at <= t < ends_at`` in epoch seconds. A weekly window starts
every ``weekday`` at the wall-clock time ``start_minute`` (minutes after midnight, as a
person reads the clock) in its IANA ``timezone``, and lasts ``duration_minutes`` of real
time. Daylight saving time moves it with the clock: "Sunday 02:00 Europe/Berlin" is 01:00
UTC in winter and 00:00 UTC in summer. A start the clock skips (02:30 on the spring-forward
night) begins an hour later, at 03:30 local; a start the clock shows twice (02:30 on the
fall-back night) is the first of the two, as PEP 495's ``fold=0`` says. Windows may cross
midnight and the end of the week; overlapping or touching windows count as one.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal

from desktop_app.core.errors import UserInputError
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow
from desktop_app.core.validation import check_no_line_breaks

log = logging.getLogger(__name__)

MINUTES_PER_DAY = 24 * 60
#: A weekly window longer than a week would overlap its own next occurrence.
MAX_WEEKLY_MINUTES = 7 * MINUTES_PER_DAY
MAX_NOTE_LENGTH = 200  # the column's size
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_DAY = 86400.0
#: How far ahead next_change() looks for a boundary before it says "none": past a year,
#: only a weekly window that never ends (7 days long, no DST) is left, and it never changes.
_LOOKAHEAD_LIMIT = 400 * _DAY
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:in)?)?$")
_CLOCK = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2})$")


# -- when is a window active ---------------------------------------------------------------


def is_active(window: MaintenanceWindow, at: float) -> bool:
    """Whether ``window`` covers the instant ``at`` (epoch seconds)."""
    return any(start <= at < end for start, end in _pieces(window, at, at))


def active_window(windows: Iterable[MaintenanceWindow], at: float) -> MaintenanceWindow | None:
    """The first of ``windows`` that covers ``at``, or None."""
    for window in windows:
        if is_active(window, at):
            return window
    return None


def intervals(
    windows: Iterable[MaintenanceWindow], start: float, end: float
) -> list[tuple[float, float]]:
    """The time covered by ``windows`` inside [start, end], merged, clipped and sorted.

    Pieces of zero length are left out, except when ``start == end``: then the answer is
    ``[(start, start)]`` if a window covers that instant, so "is there maintenance at t?"
    can be asked as ``intervals(w, t, t)``.
    """
    if end < start:
        return []
    clipped: list[tuple[float, float]] = []
    for piece_start, piece_end in _merged(windows, start, end):
        low, high = max(piece_start, start), min(piece_end, end)
        if low < high or (start == end and piece_start <= start < piece_end):
            clipped.append((low, high))
    return clipped


def next_change(windows: Sequence[MaintenanceWindow], at: float) -> float | None:
    """The first instant after ``at`` where maintenance starts or ends, or None if never.

    A boundary between two windows that touch or overlap is not a change.
    """
    if not windows:
        return None
    weekly = any(w.kind is MaintenanceKind.WEEKLY for w in windows)
    furthest = max(
        (w.ends_at or 0.0 for w in windows if w.kind is MaintenanceKind.ONCE), default=at
    )
    limit = max(furthest + _DAY, at + _LOOKAHEAD_LIMIT if weekly else at)
    span = 15 * _DAY
    while True:
        horizon = at + span
        # Everything that overlaps [at, horizon] is in the merge, so any boundary strictly
        # inside it is final; an end at or past the horizon might still be extended.
        for piece_start, piece_end in _merged(windows, at, horizon):
            for boundary in (piece_start, piece_end):
                if at < boundary < horizon:
                    return boundary
        if horizon >= limit:
            return None
        span *= 2


def _merged(
    windows: Iterable[MaintenanceWindow], start: float, end: float
) -> list[tuple[float, float]]:
    """Every window's pieces that overlap or touch [start, end], merged, not clipped."""
    pieces = sorted(p for window in windows for p in _pieces(window, start, end))
    merged: list[tuple[float, float]] = []
    for piece_start, piece_end in pieces:
        if merged and piece_start <= merged[-1][1]:
            if piece_end > merged[-1][1]:
                merged[-1] = (merged[-1][0], piece_end)
        else:
            merged.append((piece_start, piece_end))
    return merged


def _pieces(window: MaintenanceWindow, start: float, end: float) -> Iterator[tuple[float, float]]:
    """The occurrences of one window that overlap or touch [start, end] (a few extra is fine)."""
    if window.kind is MaintenanceKind.ONCE:
        begins, ends = window.starts_at, window.ends_at
        if begins is None or ends is None:
            return
        if begins < ends and begins <= end and ends >= start:
            yield begins, ends
        return
    if (
        window.weekday is None
        or window.start_minute is None
        or not window.duration_minutes
        or window.timezone is None
    ):
        return
    zone = _zone(window.timezone)
    duration = window.duration_minutes * 60.0
    hour, minute = divmod(window.start_minute, 60)
    # An occurrence that reaches into [start, end] starts in [start - duration, end]. A day
    # of margin on each side covers local dates that step back (a fall-back at midnight).
    first = _local_date(start - duration, zone) - timedelta(days=1)
    last = _local_date(end, zone) + timedelta(days=1)
    day = first + timedelta(days=(window.weekday - first.weekday()) % 7)
    while day <= last:
        begins = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()
        if begins <= end and begins + duration >= start:
            yield begins, begins + duration
        day += timedelta(days=7)


def _local_date(at: float, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(at, zone).date()


@functools.lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# -- what people type ----------------------------------------------------------------------


def local_timezone() -> str:
    """This computer's IANA time zone name (``Europe/Berlin``), for weekly windows."""
    # tzlocal, because the stdlib knows only the abbreviation ("CET"), which no
    # zoneinfo lookup accepts and which would not follow DST rules if it did.
    try:
        name = tzlocal.get_localzone_name()
        if name:
            return validate_timezone(name)
    except (UserInputError, ZoneInfoNotFoundError, ValueError) as exc:
        log.warning("cannot tell this computer's time zone: %s", exc)
    raise UserInputError("cannot tell this computer's time zone; give one (e.g. Europe/Berlin)")


def validate_timezone(name: str) -> str:
    """An IANA time zone name that zoneinfo knows (``Europe/Berlin``, ``UTC``)."""
    check_no_line_breaks("time zone", name)
    text = name.strip()
    try:
        if not text:
            raise ValueError
        _zone(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserInputError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin or UTC"
        ) from None
    return text


def parse_datetime(text: str, field: str = "time", timezone: str | None = None) -> float:
    """An ISO 8601 date and time as epoch seconds.

    Without an offset it is in ``timezone`` (an IANA name), or else this computer's time.
    """
    check_no_line_breaks(field, text)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserInputError(
            f"{field}: {text!r} is not a date and time like 2025-06-01T02:00 "
            "or 2025-06-01T02:00+02:00"
        ) from None
    if moment.tzinfo is None:
        try:
            moment = moment.replace(tzinfo=_zone(validate_timezone(timezone or local_timezone())))
        except UserInputError:
            if timezone is not None:
                raise
            moment = moment.astimezone()  # the C library's idea of local time
    return moment.timestamp()


def parse_weekday(text: str) -> int:
    """``mon``..``sun`` or the full English name, any case; 0 is Monday."""
    check_no_line_breaks("day", text)
    word = text.strip().lower()
    for number, name in enumerate(WEEKDAYS):
        if word in (name, name[:3]):
            return number
    raise UserInputError(f"day: {text!r} is not a weekday (mon, tue, ... sun)")


def parse_time_of_day(text: str) -> int:
    """``HH:MM`` on a 24-hour clock, as minutes after midnight."""
    check_no_line_breaks("time of day", text)
    match = _CLOCK.match(text.strip())
    if match is None or int(match["h"]) > 23 or int(match["m"]) > 59:
        raise UserInputError(f"time of day: {text!r} is not HH:MM on a 24-hour clock")
    return int(match["h"]) * 60 + int(match["m"])


def parse_duration(text: str) -> int:
    """``90m``, ``2h``, ``1h30m``, ``1d`` or ``01:30``, as minutes (1 minute to 7 days)."""
    check_no_line_breaks("duration", text)
    word = text.strip().lower().replace(" ", "")
    clock = _CLOCK.match(word)
    units = _DURATION.match(word)
    if clock is not None and int(clock["m"]) < 60:
        minutes = int(clock["h"]) * 60 + int(clock["m"])
    elif word and units is not None:
        minutes = int(units["d"] or 0) * MINUTES_PER_DAY + int(units["h"] or 0) * 60
        minutes += int(units["m"] or 0)
    else:
        raise UserInputError(f"duration: {text!r} is not like 90m, 2h, 1h30m or 01:30")
    return _check_duration(minutes)


def _check_duration(minutes: int) -> int:
    if minutes < 1:
        raise UserInputError("duration must be at least one minute")
    if minutes > MAX_WEEKLY_MINUTES:
        raise UserInputError("a weekly window can last 7 days at most")
    return minutes


def once_window(starts_at: float, ends_at: float, note: str = "") -> MaintenanceWindow:
    """A checked one-off window."""
    return validate_window(
        MaintenanceWindow(MaintenanceKind.ONCE, starts_at=starts_at, ends_at=ends_at, note=note)
    )


def weekly_window(
    weekday: int, start_minute: int, duration_minutes: int, timezone: str, note: str = ""
) -> MaintenanceWindow:
    """A checked weekly window."""
    return validate_window(
        MaintenanceWindow(
            MaintenanceKind.WEEKLY,
            weekday=weekday,
            start_minute=start_minute,
            duration_minutes=duration_minutes,
            timezone=timezone,
            note=note,
        )
    )


def validate_window(window: MaintenanceWindow) -> MaintenanceWindow:
    """A normalized copy of ``window``, or a one-line ``UserInputError``."""
    check_no_line_breaks("note", window.note)
    note = window.note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise UserInputError(f"note must be at most {MAX_NOTE_LENGTH} characters")
    kind = MaintenanceKind(window.kind)
    if kind is MaintenanceKind.ONCE:
        start, end = window.starts_at, window.ends_at
        if start is None or end is None or not (math.isfinite(start) and math.isfinite(end)):
            raise UserInputError("a one-off window needs a start and an end")
        if end <= start:
            raise UserInputError("the window must end after it starts")
        # No upper bound: a provider may be off for weeks (a paused contract). A weekly
        # window is capped because it would overlap itself.
        return MaintenanceWindow(kind, starts_at=start, ends_at=end, note=note, id=window.id)
    if window.weekday is None or not 0 <= window.weekday <= 6:
        raise UserInputError("day must be Monday (0) to Sunday (6)")
    if window.start_minute is None or not 0 <= window.start_minute < MINUTES_PER_DAY:
        raise UserInputError("time of day must be from 00:00 to 23:59")
    if window.duration_minutes is None:
        raise UserInputError("a weekly window needs a duration")
    return MaintenanceWindow(
        kind,
        weekday=window.weekday,
        start_minute=window.start_minute,
        duration_minutes=_check_duration(window.duration_minutes),
        timezone=validate_timezone(window.timezone or ""),
        note=note,
        id=window.id,
    )


# -- what people read ----------------------------------------------------------------------


def format_duration(minutes: int) -> str:
    """``1h30m``, ``2h``, ``45m``, ``7d``: what parse_duration reads back."""
    days, rest = divmod(minutes, MINUTES_PER_DAY)
    hours, mins = divmod(rest, 60)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "")
    return text + (f"{mins}m" if mins or not text else "")


def format_local(at: float) -> str:
    """An instant as local ISO time to the minute, with its offset."""
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="minutes")


def describe(window: MaintenanceWindow) -> str:
    """One line for lists: ``weekly Sun 02:00 for 2h (Europe/Berlin)``."""
    if window.kind is MaintenanceKind.ONCE:
        start, end = format_local(window.starts_at or 0.0), format_local(window.ends_at or 0.0)
        text = f"once {start} to {end}"
    else:
        hours, minutes = divmod(window.start_minute or 0, 60)
        day = WEEKDAYS[window.weekday or 0][:3].capitalize()
        text = (
            f"weekly {day} {hours:02d}:{minutes:02d} "
            f"for {format_duration(window.duration_minutes or 0)} ({window.timezone})"
        )
    return f"{text}: {window.note}" if window.note else text
