"""``relaydesk health [--json] [--probe]`` end to end against real SMTP servers."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.cli.cli_harness import Relaydesk
from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.smtp_sink import SmtpSink

JSON_KEYS = {
    "provider",
    "state",
    "breaker",
    "uptime_1h",
    "uptime_24h",
    "uptime_7d",
    "uptime_30d",
    "uptime_target",
    "latency_p50_ms",
    "latency_p95_ms",
    "error_rate_24h",
    "sent_24h",
    "incidents",
    "delivery_latency_p50_ms",
    "delivery_failures_24h",
}


def add(relaydesk: Relaydesk, name: str, port: int, priority: int) -> None:
    relaydesk.ok(
        "provider", "add", name, "--host", "127.0.0.1", "--port", str(port),
        "--security", "none", "--priority", str(priority),
    )  # fmt: skip


def test_health_json_has_one_object_per_provider_with_the_documented_keys(
    relaydesk: Relaydesk,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    smtp_sink: Callable[..., SmtpSink],
) -> None:
    up = scripted_smtp()
    down = smtp_sink()
    add(relaydesk, "alpha", up.port, 0)
    add(relaydesk, "beta", down.port, 1)
    down.stop()

    # Nothing measured yet: no app has watched, so every figure is "no data".
    before = json.loads(relaydesk.ok("health", "--json").out)
    assert [p["provider"] for p in before] == ["alpha", "beta"]
    assert all(set(p) >= JSON_KEYS for p in before)
    assert {p["state"] for p in before} == {"unknown"}
    assert {p["uptime_24h"] for p in before} == {None}
    assert {p["uptime_target"] for p in before} == {99.9}

    probed = json.loads(relaydesk.ok("health", "--json", "--probe").out)
    alpha, beta = probed
    assert (alpha["state"], alpha["breaker"]) == ("up", "closed")
    assert beta["state"] == "down"
    assert alpha["latency_p50_ms"] > 0
    assert beta["latency_p50_ms"] is None  # no successful probe to time
    assert alpha["sent_24h"] == 0 and alpha["error_rate_24h"] is None
    assert up.command_count("NOOP") == 1 and up.command_count("MAIL") == 0

    # The probes were recorded: a later plain `health` (no app running) still has them.
    again = json.loads(relaydesk.ok("health", "--json").out)
    assert again[0]["latency_p50_ms"] == alpha["latency_p50_ms"]


def test_health_text_names_each_provider_and_its_figures(
    relaydesk: Relaydesk, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    add(relaydesk, "alpha", server.port, 0)
    run = relaydesk.ok("health", "--probe")
    lines = run.out.splitlines()
    assert lines[0] == "alpha: up (breaker closed)"
    assert lines[1].startswith("  uptime   1h ")
    assert "p50" in lines[2] and "ms" in lines[2]


def test_health_without_providers_says_how_to_add_one(relaydesk: Relaydesk) -> None:
    assert "provider add" in relaydesk.ok("health").out
    assert json.loads(relaydesk.ok("health", "--json").out) == []
