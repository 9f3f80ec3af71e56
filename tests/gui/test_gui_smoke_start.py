"""``relaydesk --smoke-test`` from source: the packaging check the bundle also runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_harness import Relaydesk
from tests.support.servers import LOOPBACK, free_port


@pytest.mark.slow
def test_smoke_test_opens_the_window_loads_the_outbox_and_quits(tmp_path: Path) -> None:
    relaydesk = Relaydesk(tmp_path / "data", cwd=tmp_path)
    # A provider first: without one the first-run wizard opens instead of the window.
    # Nothing listens on the port, so the message stays in the outbox.
    relaydesk.ok(
        "provider", "add", "Loopback",
        "--host", LOOPBACK, "--port", str(free_port()), "--security", "none",
    )  # fmt: skip
    body = tmp_path / "body.txt"
    body.write_text("Hello from the smoke test.\n", encoding="utf-8")
    relaydesk.ok(
        "send", "--from", "smoke@example.com", "--to", "someone@example.net",
        "--subject", "Smoke", "--text-file", str(body),
    )  # fmt: skip

    run = relaydesk("--smoke-test", env={"QT_QPA_PLATFORM": "offscreen"})

    assert run.code == 0, str(run)
    assert run.out == "smoke test: window open, outbox loaded (1 message)\n", str(run)
    assert "Traceback" not in run.err, str(run)
