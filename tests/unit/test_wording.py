"""Counts in words: every count a person reads agrees with its noun."""

from __future__ import annotations

from desktop_app.core.wording import count_of, waits


def test_one_is_singular_and_every_other_count_plural() -> None:
    assert count_of(1, "message") == "1 message"
    assert count_of(0, "message") == "0 messages"
    assert count_of(2, "message") == "2 messages"


def test_large_counts_keep_their_thousands_separators() -> None:
    assert count_of(2500, "message") == "2,500 messages"


def test_an_irregular_plural_is_given() -> None:
    assert count_of(2, "mailbox", "mailboxes") == "2 mailboxes"
    assert count_of(1, "mailbox", "mailboxes") == "1 mailbox"


def test_the_verb_agrees_too() -> None:
    assert (waits(1), waits(3)) == ("waits", "wait")
