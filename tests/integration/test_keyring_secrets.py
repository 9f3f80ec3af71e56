"""Provider passwords live in the OS keyring and nowhere else (desktop_app/ARCHITECTURE.md,
"Secrets").

The real CLI runs as a subprocess against a private Secret Service (gnome-keyring on its own
D-Bus, the ``secret_service`` fixture) and a real aiosmtpd server that requires AUTH. After
every step the password is looked for, raw and in the base64 forms AUTH PLAIN/LOGIN would
put on the wire, in everything Relaydesk wrote: the SQLite file, its WAL, the log, and the
command's own output.

Not covered here: keyrings.alt (a file store that must be used only when chosen through
PYTHON_KEYRING_BACKEND) is not in the test extras, so that case needs a manual check.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest

from desktop_app.core.secrets import resolve_backend
from tests.support.scripted_smtp import ScriptedSMTPServer
from tests.support.servers import LOOPBACK

REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASE = "relaydesk.sqlite3"
LOG_FILE = "relaydesk.log"
SERVICE = "relaydesk"
USERNAME = "user"
PASSWORD = "S3cret-pässword-xyz"
WRONG_PASSWORD = "Wr0ng-pässword-abc"
CLI_TIMEOUT = 120.0

ScriptedFactory = Callable[..., ScriptedSMTPServer]


# -- running the CLI -----------------------------------------------------------------------


class Cli:
    """Runs ``python -m desktop_app --data-dir D ...`` and keeps every output for the scans."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = env
        self.outputs: list[str] = []

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "desktop_app", "--data-dir", str(self.data_dir), *args],
            cwd=REPO_ROOT,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=self.env,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        self.outputs += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, (
            f"{args} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result.stdout


def subprocess_env(**changes: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


# Holds the database open in a process of its own: the CLI, then not being the last
# connection, leaves the WAL on disk at exit instead of checkpointing and deleting it. (Not
# in this process: reading the database file here and closing it would drop this process's
# POSIX locks on it, the SQLite reader's included.)
_HOLD_DATABASE = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT count(*) FROM providers").fetchall()
print("ready", flush=True)
sys.stdin.read()
connection.close()
"""


@pytest.fixture
def cli(secret_service: dict[str, str], data_dir: Path) -> Iterator[Cli]:
    """The CLI on this test's data dir, talking to the private Secret Service."""
    keyring_backend = resolve_backend()
    assert type(keyring_backend).__module__ == "keyring.backends.SecretService", keyring_backend
    runner = Cli(data_dir, subprocess_env(PYTHON_KEYRING_BACKEND=None, **secret_service))
    runner.ok("outbox")  # creates and migrates the database
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_DATABASE, str(data_dir / DATABASE)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
    try:
        yield runner
    finally:
        holder.communicate(timeout=30)


def add_provider(cli: Cli, server: ScriptedSMTPServer, password: str = PASSWORD) -> str:
    """``provider add P`` with the password on stdin; returns the provider's uid."""
    out = cli.ok(
        "provider",
        "add",
        "P",
        "--host",
        LOOPBACK,
        "--port",
        str(server.port),
        "--security",
        "none",
        "--username",
        USERNAME,
        "--password-stdin",
        stdin=password + "\n",
    )
    assert "added provider P" in out
    return provider_uid(cli.data_dir)


def provider_uid(data_dir: Path) -> str:
    connection = sqlite3.connect(data_dir / DATABASE)
    try:
        rows = connection.execute("SELECT uid FROM providers WHERE name = 'P'").fetchall()
    finally:
        connection.close()
    assert len(rows) == 1
    return str(rows[0][0])


def stored_password(uid: str) -> str | None:
    return keyring.get_password(SERVICE, f"smtp:{uid}")


# -- looking for secrets -------------------------------------------------------------------


def secret_forms(password: str) -> dict[str, bytes]:
    """The ways a password could end up in a file: raw, escaped, or as AUTH sends it."""
    raw = password.encode()
    plain_blob = b"\0" + USERNAME.encode() + b"\0" + raw
    forms = {
        "utf-8": raw,
        "latin-1": password.encode("latin-1"),
        "json-escaped": json.dumps(password).encode()[1:-1],
        "AUTH LOGIN base64": base64.b64encode(raw),
        "AUTH PLAIN base64": base64.b64encode(plain_blob),
        # The ASCII ends of it: catch partial or differently escaped copies too.
        "head": raw[:8],
        "tail": raw[-10:],
    }
    return {name: form.rstrip(b"=") for name, form in forms.items()}


def assert_nowhere(password: str, cli: Cli) -> None:
    """The password is in no file of the data dir and in no output of the CLI so far."""
    data_dir = cli.data_dir
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    names = {p.name for p in files}
    # The database, its write-ahead log (kept by the fixture's open connection) and the log.
    assert {DATABASE, f"{DATABASE}-wal", LOG_FILE} <= names, names
    assert (data_dir / LOG_FILE).stat().st_size > 0
    forms = secret_forms(password)
    for path in files:
        content = path.read_bytes()
        for name, form in forms.items():
            assert form not in content, f"password ({name}) found in {path.name}"
    output = "\n".join(cli.outputs).encode()
    for name, form in forms.items():
        assert form not in output, f"password ({name}) found in the CLI's output"


# -- tests ---------------------------------------------------------------------------------


def test_password_is_stored_in_the_keyring_and_used_for_auth(
    cli: Cli, scripted_smtp: ScriptedFactory, tmp_path: Path
) -> None:
    server = scripted_smtp(auth=(USERNAME, PASSWORD), auth_require_tls=False)
    uid = add_provider(cli, server)
    assert stored_password(uid) == PASSWORD
    assert_nowhere(PASSWORD, cli)

    listed = json.loads(cli.ok("provider", "list", "--json"))
    assert [(p["name"], p["username"]) for p in listed] == [("P", USERNAME)]
    assert_nowhere(PASSWORD, cli)

    out = cli.ok("provider", "test", "P")
    assert "P: OK" in out
    assert server.command_count("AUTH") >= 1
    assert_nowhere(PASSWORD, cli)

    body = tmp_path / "body.txt"
    body.write_text("sent with a password from the keyring\n")
    cli.ok(
        "send",
        "--from",
        "sender@example.test",
        "--to",
        "reader@example.test",
        "--subject",
        "keyring",
        "--text-file",
        str(body),
    )
    run = cli("-v", "run", "--until-idle", "--timeout", "60")
    assert run.returncode == 0, run
    [message] = server.wait_for_messages(1)
    assert message.auth_login == USERNAME
    assert message.rcpt_tos == ("reader@example.test",)
    assert json.loads(cli.ok("outbox", "--json"))["sent"] == 1
    assert_nowhere(PASSWORD, cli)


def test_wrong_password_fails_auth_and_is_stored_nowhere_else(
    cli: Cli, scripted_smtp: ScriptedFactory
) -> None:
    server = scripted_smtp(auth=(USERNAME, PASSWORD), auth_require_tls=False)
    uid = add_provider(cli, server)
    assert "P: OK" in cli.ok("provider", "test", "P")
    auth_before = server.command_count("AUTH")

    assert "updated provider P" in cli.ok(
        "provider", "set", "P", "--password-stdin", stdin=WRONG_PASSWORD + "\n"
    )
    assert stored_password(uid) == WRONG_PASSWORD

    result = cli("provider", "test", "P")
    assert result.returncode == 1, result
    assert "FAILED at auth" in result.stdout
    assert "535" in result.stdout
    assert "Traceback" not in result.stderr
    assert server.command_count("AUTH") > auth_before  # it did try, and was refused
    assert_nowhere(WRONG_PASSWORD, cli)
    assert_nowhere(PASSWORD, cli)


def test_remove_deletes_the_keyring_entry(cli: Cli, scripted_smtp: ScriptedFactory) -> None:
    server = scripted_smtp(auth=(USERNAME, PASSWORD), auth_require_tls=False)
    uid = add_provider(cli, server)
    assert stored_password(uid) == PASSWORD

    assert "removed provider P" in cli.ok("provider", "remove", "P")
    assert stored_password(uid) is None
    assert json.loads(cli.ok("provider", "list", "--json")) == []


def test_without_a_keyring_add_refuses_in_one_line_and_stores_nothing(
    data_dir: Path, tmp_path: Path, scripted_smtp: ScriptedFactory
) -> None:
    server = scripted_smtp(auth=(USERNAME, PASSWORD), auth_require_tls=False)
    empty = {name: tmp_path / name for name in ("home", "runtime", "xdg-config", "xdg-data")}
    for directory in empty.values():
        directory.mkdir(mode=0o700)
    # No bus to find a Secret Service on, and no other place keyring could find a backend
    # (a keyringrc.cfg, a running daemon under XDG_RUNTIME_DIR).
    env = subprocess_env(
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path / 'no-such-bus'}",
        PYTHON_KEYRING_BACKEND=None,
        HOME=str(empty["home"]),
        XDG_RUNTIME_DIR=str(empty["runtime"]),
        XDG_CONFIG_HOME=str(empty["xdg-config"]),
        XDG_DATA_HOME=str(empty["xdg-data"]),
    )
    cli = Cli(data_dir, env)

    result = cli(
        "provider",
        "add",
        "P",
        "--host",
        LOOPBACK,
        "--port",
        str(server.port),
        "--security",
        "none",
        "--username",
        USERNAME,
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 1, result
    [line] = result.stderr.splitlines()
    assert line.startswith("relaydesk: error: ")
    assert "keyring" in line.lower()
    assert "PYTHON_KEYRING_BACKEND" in line  # names the fix, not just the problem

    assert json.loads(cli.ok("provider", "list", "--json")) == []
    connection = sqlite3.connect(data_dir / DATABASE)
    try:
        assert connection.execute("SELECT count(*) FROM providers").fetchall() == [(0,)]
    finally:
        connection.close()
    output = "\n".join(cli.outputs).encode()
    for name, form in secret_forms(PASSWORD).items():
        assert form not in output, f"password ({name}) found in the CLI's output"
        assert form not in (data_dir / DATABASE).read_bytes()
    assert server.connections_opened == 0
