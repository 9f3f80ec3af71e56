"""``relaydesk health [--json] [--probe]`` end to end against real SMTP servers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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
    "latency_max_ms",
    "send_latency_p50_ms",
    "send_latency_p95_ms",
    "send_latency_max_ms",
    "latency_samples_24h",
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


def test_a_backup_that_carried_mail_has_a_latency_in_health_json(
    relaydesk: Relaydesk,
    scripted_smtp: Callable[..., ScriptedSMTPServer],
    body: Path,
    tmp_path: Path,
) -> None:
    # The primary refuses connections, so every message fails over to the backup; `run`
    # does not probe on start, so the backup's only measurements are the real sends.
    primary = scripted_smtp()
    backup = scripted_smtp()
    add(relaydesk, "primary", primary.port, 0)
    add(relaydesk, "backup", backup.port, 1)
    primary.stop()
    to_file = tmp_path / "readers.txt"
    to_file.write_text("".join(f"reader{i}@example.net\n" for i in range(25)), encoding="utf-8")
    relaydesk.ok(
        "send", "--from", "news@example.com", "--subject", "Hello",
        "--text-file", str(body), "--to-file", str(to_file),
    )  # fmt: skip
    relaydesk.ok("run", "--until-idle", "--timeout", "60")
    assert len(backup.messages) == 25
    assert backup.command_count("NOOP") == 0  # no probe: the latency is the sends'

    figures = {p["provider"]: p for p in json.loads(relaydesk.ok("health", "--json").out)}
    carried = figures["backup"]
    assert carried["sent_24h"] == 25
    latency = [carried[f"latency_{key}_ms"] for key in ("p50", "p95", "max")]
    assert all(isinstance(value, float | int) for value in latency), latency
    p50, p95, top = latency
    assert 0 < p50 <= p95 <= top
    sends = [carried[f"send_latency_{key}_ms"] for key in ("p50", "p95", "max")]
    assert sends == latency  # no probes in the window: the combined figure is the sends'
    assert carried["latency_samples_24h"] == {"probes": 0, "sends": 25}
