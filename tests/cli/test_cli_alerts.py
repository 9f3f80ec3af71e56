"""``relaydesk alerts list [--open] [--json]`` and ``relaydesk alerts ack ID`` over a real
data folder whose alert log the alerter wrote."""

from __future__ import annotations

from desktop_app.core.workspace import Workspace
from tests.cli.cli_harness import Relaydesk
from tests.support.alert_log import log_two_alerts


def _log_two_alerts(relaydesk: Relaydesk) -> tuple[int, int]:
    workspace = Workspace.open(relaydesk.data_dir)
    try:
        return log_two_alerts(workspace)
    finally:
        workspace.close()


def test_alerts_are_listed_and_acknowledged(relaydesk: Relaydesk) -> None:
    assert relaydesk.ok("alerts", "list").out == "no alerts\n"
    cleared, open_one = _log_two_alerts(relaydesk)

    listed = relaydesk.json("alerts", "list")
    assert [a["id"] for a in listed] == [open_one, cleared]  # newest first
    first = listed[0]
    assert first["kind"] == "provider_down" and first["provider"] == "bravo"
    assert first["cleared_at"] is None and first["acknowledged"] is False
    assert first["channels"] == {"email": {"queued": True}}
    assert listed[1]["cleared_at"] is not None
    assert [a["id"] for a in relaydesk.json("alerts", "list", "--open")] == [open_one]

    out = relaydesk.ok("alerts", "ack", str(open_one)).out
    assert out == f"acknowledged alert {open_one}: bravo has been down for 61 s\n"
    [acknowledged] = relaydesk.json("alerts", "list", "--open")  # open until bravo is up
    assert acknowledged["acknowledged"] is True and acknowledged["acknowledged_at"] > 0
    text = relaydesk.ok("alerts", "list").out.splitlines()
    assert "(open, acknowledged): bravo has been down for 61 s" in text[0]
    assert "(cleared): Circuit breaker opened for alpha" in text[1]


def test_acknowledging_an_unknown_alert_is_one_line(relaydesk: Relaydesk) -> None:
    assert relaydesk.fails("alerts", "ack", "99") == "no alert with id 99"
    assert "invalid int value" in relaydesk.fails("alerts", "ack", "x")
