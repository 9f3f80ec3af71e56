"""Command-line conventions a shell user relies on: whole option names only, quiet on a
closed pipe, counts in agreeing words, and a word when queued mail has nowhere to go."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.cli.cli_harness import Relaydesk
from tests.support.scripted_smtp import ScriptedSMTPServer

SENDER = "news@example.com"


def test_an_abbreviated_option_is_refused_not_guessed(relaydesk: Relaydesk) -> None:
    # argparse's default read `--text hi` as `--text-file hi` ("cannot read text file hi").
    error = relaydesk.fails(
        "send", "--from", SENDER, "--to", "a@example.net", "--subject", "s", "--text", "hi"
    )

    assert error == "unrecognized arguments: --text hi"
    assert relaydesk.outbox_rows() == []


def test_abbreviations_are_refused_in_nested_commands_too(relaydesk: Relaydesk) -> None:
    relaydesk.ok("list", "create", "news")

    error = relaydesk.fails("list", "show", "--js")

    assert error == "unrecognized arguments: --js"


def test_a_reader_that_closes_the_pipe_gets_silence(relaydesk: Relaydesk) -> None:
    relaydesk.ok("outbox")  # the database exists, so only the pipe can go wrong below
    process = subprocess.Popen(
        [sys.executable, "-m", "desktop_app", "--data-dir", str(relaydesk.data_dir), "outbox"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=relaydesk.cwd,
        env=relaydesk.env,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head -0`: nobody reads what comes
    errors = process.stderr.read()
    code = process.wait(timeout=120)

    assert errors == b""
    assert code == 141


def test_send_says_when_no_provider_is_enabled(relaydesk: Relaydesk, tmp_path: Path) -> None:
    recipients = tmp_path / "to.txt"
    recipients.write_text("a@example.net\nb@example.net\n")
    body = tmp_path / "body.txt"
    body.write_text("hi\n")

    run = relaydesk.ok("send", "--from", SENDER, "--to-file", str(recipients),
                       "--subject", "s", "--text-file", str(body))  # fmt: skip

    assert run.out == (
        "queued 2 messages\nno provider is enabled yet: they wait in the outbox until one is\n"
    )
    assert [row["state"] for row in relaydesk.outbox_rows()] == ["queued", "queued"]


def test_send_is_quiet_about_providers_when_one_is_enabled(
    relaydesk: Relaydesk, tmp_path: Path, scripted_smtp: Callable[..., ScriptedSMTPServer]
) -> None:
    server = scripted_smtp()
    relaydesk.ok("provider", "add", "primary", "--host", "127.0.0.1", "--port", str(server.port),
                 "--security", "none", "--allow-insecure")  # fmt: skip
    body = tmp_path / "body.txt"
    body.write_text("hi\n")

    run = relaydesk.ok("send", "--from", SENDER, "--to", "a@example.net",
                       "--subject", "s", "--text-file", str(body))  # fmt: skip

    assert run.out.count("\n") == 1
    assert run.out.startswith("queued 1 message <")


def test_run_timeout_says_why_mail_is_still_pending(relaydesk: Relaydesk, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text("hi\n")
    relaydesk.ok("send", "--from", SENDER, "--to", "a@example.net", "--subject", "s",
                 "--text-file", str(body))  # fmt: skip

    run = relaydesk("run", "--timeout", "1", "--quiet")

    assert run.code == 3, str(run)
    assert run.err == (
        "relaydesk: --timeout ran out with 1 message still waiting (no provider is enabled)\n"
    )
