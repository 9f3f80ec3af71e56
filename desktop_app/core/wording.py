"""Counts in words ("1 message", "2,500 messages") and times as people read them.

Every count a person reads (CLI lines, banners, prompts, tray text) goes through
``count_of`` so a singular never comes out as "1 messages" and large numbers keep their
thousands separators. English only: the app has no translations yet; when it gets them,
this is the one place that learns plural rules.
"""

from __future__ import annotations

from datetime import datetime


def count_of(count: int, singular: str, plural: str | None = None) -> str:
    """``count`` and the noun that agrees with it; ``plural`` defaults to singular + "s"."""
    noun = singular if count == 1 else (plural or f"{singular}s")
    return f"{count:,} {noun}"


def waits(count: int) -> str:
    """The verb that agrees with a count of messages: "1 message waits", "3 messages wait"."""
    return "waits" if count == 1 else "wait"


def local_time(epoch: float | None) -> str:
    """An instant in this computer's time zone, to the second; "" for none."""
    return "" if epoch is None else datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")
