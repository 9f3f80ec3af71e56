"""The DATA payload: the fast path for composer output equals the full rewrite."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from desktop_app.core.delivery.smtp_connection import _dot_stuffed

PIECES = st.lists(st.sampled_from([b"a", b"b", b".", b"..", b"\r", b"\n", b"\r\n", b" "]))


def rewritten(raw: bytes) -> bytes:
    """The obvious definition: normalize every line end to CRLF, double leading dots."""
    body = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    body = re.sub(rb"(?m)^\.", b"..", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


@given(PIECES)
def test_any_body_is_stuffed_like_the_full_rewrite(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert _dot_stuffed(raw) == rewritten(raw)


def test_a_composer_message_goes_out_unchanged_but_for_the_end() -> None:
    raw = b"Subject: hi\r\n\r\nline one\r\nline two\r\n"
    assert _dot_stuffed(raw) == raw + b".\r\n"


def test_leading_dots_and_bare_line_feeds_are_fixed() -> None:
    assert _dot_stuffed(b".first\n.second\rthird") == b"..first\r\n..second\r\nthird\r\n.\r\n"
