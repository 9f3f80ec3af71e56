"""Maintenance windows as policy: when one is active, merging, boundaries, and what people type.

Instants are written as wall-clock times in a named zone, so each test reads like the
calendar it is about (Europe/Berlin changes clocks on the last Sunday of March and October).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desktop_app.core.errors import UserInputError
from desktop_app.core.health.maintenance import (
    active_window,
    describe,
    format_duration,
    intervals,
    is_active,
    next_change,
    once_window,
    parse_datetime,
    parse_duration,
    parse_time_of_day,
    parse_weekday,
    validate_timezone,
    validate_window,
    weekly_window,
)
from desktop_app.core.models import MaintenanceKind, MaintenanceWindow

BERLIN = "Europe/Berlin"
UTC = "UTC"
MON, SAT, SUN = 0, 5, 6
HOUR = 3600.0
DAY = 86400.0


def at(text: str, zone: str = BERLIN) -> float:
    """``at("2025-03-30 03:30")``: that wall-clock time in ``zone`` as epoch seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, ZoneInfo(UTC)).strftime("%Y-%m-%d %H:%M")


def weekly(day: int, clock: str, duration: str, zone: str = BERLIN) -> MaintenanceWindow:
    return weekly_window(day, parse_time_of_day(clock), parse_duration(duration), zone)


# -- one-off windows ---------------------------------------------------------------------------


def test_a_one_off_window_covers_its_start_but_not_its_end() -> None:
    window = once_window(at("2025-06-01 02:00"), at("2025-06-01 04:00"))
    assert not is_active(window, at("2025-06-01 01:59"))
    assert is_active(window, at("2025-06-01 02:00"))
    assert is_active(window, at("2025-06-01 03:59"))
    assert not is_active(window, at("2025-06-01 04:00"))
    assert next_change([window], at("2025-06-01 00:00")) == at("2025-06-01 02:00")
    assert next_change([window], at("2025-06-01 02:00")) == at("2025-06-01 04:00")
    assert next_change([window], at("2025-06-01 04:00")) is None


def test_a_one_off_window_far_ahead_is_found() -> None:
    window = once_window(at("2027-01-01 00:00"), at("2027-01-02 00:00"))
    assert next_change([window], at("2025-01-01 00:00")) == at("2027-01-01 00:00")


# -- weekly windows and daylight saving time ----------------------------------------------


def test_a_weekly_window_keeps_its_wall_clock_time_across_dst() -> None:
    window = weekly(SUN, "02:00", "2h")
    winter = intervals([window], at("2025-01-10 00:00"), at("2025-01-14 00:00"))
    summer = intervals([window], at("2025-07-10 00:00"), at("2025-07-14 00:00"))
    assert [(utc(s), utc(e)) for s, e in winter] == [("2025-01-12 01:00", "2025-01-12 03:00")]
    assert [(utc(s), utc(e)) for s, e in summer] == [("2025-07-13 00:00", "2025-07-13 02:00")]


def test_a_start_the_clock_skips_begins_an_hour_later_and_lasts_its_real_duration() -> None:
    # 2025-03-30 in Berlin: 02:00 CET becomes 03:00 CEST, so 02:30 never shows on a clock.
    window = weekly(SUN, "02:30", "1h")
    (piece,) = intervals([window], at("2025-03-29 12:00"), at("2025-03-31 00:00"))
    assert piece == (at("2025-03-30 03:30"), at("2025-03-30 04:30"))
    assert utc(piece[0]) == "2025-03-30 01:30"


def test_a_window_over_the_spring_forward_night_lasts_its_real_duration() -> None:
    window = weekly(SUN, "01:00", "3h")  # 01:00 CET to 05:00 CEST: three real hours
    (piece,) = intervals([window], at("2025-03-29 12:00"), at("2025-03-31 00:00"))
    assert piece == (at("2025-03-30 01:00"), at("2025-03-30 05:00"))
    assert piece[1] - piece[0] == 3 * HOUR


def test_a_start_the_clock_shows_twice_is_the_first_of_the_two() -> None:
    # 2025-10-26 in Berlin: 03:00 CEST becomes 02:00 CET, so 02:30 happens twice.
    window = weekly(SUN, "02:30", "30m")
    (piece,) = intervals([window], at("2025-10-25 12:00"), at("2025-10-27 00:00"))
    assert utc(piece[0]) == "2025-10-26 00:30"  # 02:30 CEST
    assert piece[1] - piece[0] == 30 * 60


def test_a_window_can_cross_midnight() -> None:
    window = weekly(SAT, "23:00", "2h")
    assert is_active(window, at("2025-06-07 23:00"))  # a Saturday
    assert is_active(window, at("2025-06-08 00:59"))
    assert not is_active(window, at("2025-06-08 01:00"))
    assert not is_active(window, at("2025-06-07 22:59"))


def test_a_window_can_cross_the_end_of_the_week() -> None:
    window = weekly(SUN, "22:00", "4h")  # Sunday night into Monday morning
    assert is_active(window, at("2025-06-09 01:30"))  # Monday
    assert not is_active(window, at("2025-06-09 02:00"))
    assert next_change([window], at("2025-06-09 01:30")) == at("2025-06-09 02:00")
    assert next_change([window], at("2025-06-09 02:00")) == at("2025-06-15 22:00")


def test_a_week_long_window_in_utc_never_ends() -> None:
    window = weekly(MON, "00:00", "7d", UTC)
    assert is_active(window, at("2025-06-04 12:00", UTC))
    assert next_change([window], at("2025-06-04 12:00", UTC)) is None
    span = intervals([window], at("2025-06-01 00:00", UTC), at("2025-07-01 00:00", UTC))
    assert span == [(at("2025-06-01 00:00", UTC), at("2025-07-01 00:00", UTC))]


def test_a_week_long_window_in_berlin_has_an_hour_off_when_clocks_go_forward() -> None:
    # Monday 00:00 to Monday 00:00 is 167 real hours across the spring-forward Sunday, but
    # the window lasts 168: the week after that, it overlaps the next one by an hour. In
    # autumn, that week is 169 hours long: one hour without maintenance.
    window = weekly(MON, "00:00", "7d")
    gap_start = next_change([window], at("2025-10-22 12:00"))
    assert gap_start == at("2025-10-27 00:00") - HOUR
    assert next_change([window], gap_start) == at("2025-10-27 00:00")


# -- merging, clipping, several windows --------------------------------------------------


def test_overlapping_and_touching_windows_merge_and_are_clipped() -> None:
    windows = [
        once_window(at("2025-06-01 01:00"), at("2025-06-01 03:00")),
        once_window(at("2025-06-01 02:00"), at("2025-06-01 04:00")),  # overlaps
        once_window(at("2025-06-01 04:00"), at("2025-06-01 05:00")),  # touches
        once_window(at("2025-06-01 08:00"), at("2025-06-01 09:00")),
    ]
    assert intervals(windows, at("2025-06-01 00:00"), at("2025-06-02 00:00")) == [
        (at("2025-06-01 01:00"), at("2025-06-01 05:00")),
        (at("2025-06-01 08:00"), at("2025-06-01 09:00")),
    ]
    assert intervals(windows, at("2025-06-01 02:30"), at("2025-06-01 08:30")) == [
        (at("2025-06-01 02:30"), at("2025-06-01 05:00")),
        (at("2025-06-01 08:00"), at("2025-06-01 08:30")),
    ]
    # Where one window ends inside another, nothing changes.
    assert next_change(windows, at("2025-06-01 01:30")) == at("2025-06-01 05:00")
    assert next_change(windows, at("2025-06-01 05:00")) == at("2025-06-01 08:00")


def test_intervals_at_one_instant_say_whether_it_is_covered() -> None:
    window = once_window(at("2025-06-01 01:00"), at("2025-06-01 02:00"))
    inside, edge = at("2025-06-01 01:30"), at("2025-06-01 02:00")
    assert intervals([window], inside, inside) == [(inside, inside)]
    assert intervals([window], edge, edge) == []
    assert intervals([window], edge, inside) == []  # an empty range
    # A piece that only touches the range is not in it.
    assert intervals([window], edge, edge + HOUR) == []


def test_weekly_and_one_off_windows_mix() -> None:
    windows = [
        weekly(SUN, "02:00", "2h"),
        once_window(at("2025-06-08 03:00"), at("2025-06-08 06:00")),
    ]
    assert intervals(windows, at("2025-06-01 12:00"), at("2025-06-15 12:00")) == [
        (at("2025-06-08 02:00"), at("2025-06-08 06:00")),
        (at("2025-06-15 02:00"), at("2025-06-15 04:00")),
    ]
    assert active_window(windows, at("2025-06-08 05:00")) is windows[1]
    assert active_window(windows, at("2025-06-08 02:30")) is windows[0]
    assert active_window(windows, at("2025-06-08 07:00")) is None
    assert next_change([], at("2025-06-08 07:00")) is None


@settings(max_examples=150, deadline=None)
@given(
    day=st.integers(0, 6),
    start_minute=st.integers(0, 24 * 60 - 1),
    duration=st.integers(1, 7 * 24 * 60),
    zone=st.sampled_from([BERLIN, "America/New_York", "Australia/Lord_Howe", UTC]),
    moment=st.floats(at("2024-01-01 00:00"), at("2026-12-31 00:00")),
)
def test_is_active_intervals_and_next_change_agree(
    day: int, start_minute: int, duration: int, zone: str, moment: float
) -> None:
    window = weekly_window(day, start_minute, duration, zone)
    active = is_active(window, moment)
    pieces = intervals([window], moment - 8 * DAY, moment + 8 * DAY)
    assert active == any(s <= moment < e for s, e in pieces)
    assert active == bool(intervals([window], moment, moment))
    change = next_change([window], moment)
    if change is None:
        assert active  # only a window that never ends has no next change
        return
    assert change > moment
    # Constant up to the change, different from it on.
    for fraction in (0.0, 0.25, 0.5, 0.99):
        assert is_active(window, moment + (change - moment) * fraction) == active
    assert is_active(window, change) != active


# -- what people type --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [("mon", 0), ("Monday", 0), ("TUE", 1), ("wednesday", 2), ("Sun", 6), (" sat ", 5)],
)
def test_weekdays(text: str, day: int) -> None:
    assert parse_weekday(text) == day


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90m", 90), ("2h", 120), ("1h30m", 90), ("01:30", 90), ("1d", 1440), ("7d", 10080)],
)
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration(text) == minutes
    assert parse_duration(format_duration(minutes)) == minutes


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: parse_weekday("someday"), "is not a weekday"),
        (lambda: parse_time_of_day("24:00"), "is not HH:MM"),
        (lambda: parse_time_of_day("2pm"), "is not HH:MM"),
        (lambda: parse_duration("0m"), "at least one minute"),
        (lambda: parse_duration("90"), "is not like 90m"),
        (lambda: parse_duration("7d1m"), "7 days at most"),
        (lambda: parse_duration("01:75"), "is not like 90m"),
        (lambda: parse_datetime("next tuesday", "--start"), "--start: 'next tuesday' is not"),
        (lambda: parse_datetime("2025-06-01T02:00\n"), "line breaks"),
        (lambda: validate_timezone("Mars/Olympus_Mons"), "unknown time zone"),
        (lambda: validate_timezone("../../etc/passwd"), "unknown time zone"),
        (lambda: validate_timezone(""), "unknown time zone"),
        (lambda: once_window(at("2025-06-01 02:00"), at("2025-06-01 02:00")), "end after"),
        (lambda: once_window(at("2025-06-01 02:00"), at("2025-06-01 01:00")), "end after"),
        (lambda: weekly_window(SUN, 120, 0, BERLIN), "at least one minute"),
        (lambda: weekly_window(SUN, 120, 7 * 1440 + 1, BERLIN), "7 days at most"),
        (lambda: weekly_window(7, 120, 60, BERLIN), "day must be"),
        (lambda: weekly_window(SUN, 1440, 60, BERLIN), "time of day"),
        (lambda: weekly_window(SUN, 120, 60, "Nowhere/Land"), "unknown time zone"),
        (lambda: weekly_window(SUN, 120, 60, BERLIN, "a\r\nBcc: x"), "line breaks"),
        (lambda: weekly_window(SUN, 120, 60, BERLIN, "x" * 201), "at most 200"),
    ],
)
def test_bad_input_is_one_line_user_input_error(call: object, says: str) -> None:
    with pytest.raises(UserInputError) as caught:
        call()  # type: ignore[operator]
    message = str(caught.value)
    assert says in message
    assert "\n" not in message and "\r" not in message


def test_iso_times_with_an_offset_or_in_a_named_zone() -> None:
    assert parse_datetime("2025-06-01T02:00+02:00") == at("2025-06-01 02:00")
    assert parse_datetime("2025-06-01T00:00Z") == at("2025-06-01 02:00")
    assert parse_datetime("2025-06-01 02:00", timezone=BERLIN) == at("2025-06-01 02:00")
    assert parse_datetime("2025-01-01T02:00", timezone=BERLIN) == at("2025-01-01 01:00", UTC)


def test_naive_iso_times_are_local(monkeypatch: pytest.MonkeyPatch) -> None:
    import tzlocal

    monkeypatch.setattr(tzlocal, "get_localzone_name", lambda: "Asia/Tokyo")
    assert parse_datetime("2025-06-01T09:00") == at("2025-06-01 00:00", UTC)


def test_validate_window_normalizes_and_keeps_the_id() -> None:
    raw = MaintenanceWindow(
        MaintenanceKind.WEEKLY,
        weekday=SUN,
        start_minute=120,
        duration_minutes=90,
        timezone=" Europe/Berlin ",
        note="  upgrade  ",
        id=7,
    )
    checked = validate_window(raw)
    assert (checked.timezone, checked.note, checked.id) == (BERLIN, "upgrade", 7)
    assert describe(checked) == "weekly Sun 02:00 for 1h30m (Europe/Berlin): upgrade"
