"""``relaydesk providers-file export|import`` and ``relaydesk provider import-thunderbird``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from tests.cli.cli_harness import Relaydesk

PREFS_JS = r"""// Mozilla User Preferences
user_pref("mail.smtpservers", "smtp2,smtp1,smtp3");
user_pref("mail.smtpserver.smtp1.hostname", "smtp.example.org");
user_pref("mail.smtpserver.smtp1.try_ssl", 3);
user_pref("mail.smtpserver.smtp1.username", "alice@example.org");
user_pref("mail.smtpserver.smtp1.description", "Work \"office\"");
user_pref("mail.smtpserver.smtp1.password", "hunter2-in-prefs");
user_pref("mail.smtpserver.smtp2.hostname", "mail.example.net");
user_pref("mail.smtpserver.smtp2.try_ssl", 2);
user_pref("mail.smtpserver.smtp2.port", 2525);
user_pref("mail.smtpserver.smtp3.hostname", "plain.example.com");
user_pref("mail.smtpserver.smtp3.try_ssl", 0);
not a pref at all ((
"""


def add_providers(relaydesk: Relaydesk) -> None:
    relaydesk.ok(
        "provider",
        "add",
        "primary",
        "--host",
        "smtp.example.com",
        "--port",
        "587",
        "--security",
        "starttls",
        "--username",
        "me@example.com",
        "--priority",
        "1",
        "--weight",
        "3",
        "--max-connections",
        "4",
        "--rate-per-minute",
        "60",
        "--sender-domain",
        "example.com",
    )
    relaydesk.ok(
        "provider",
        "add",
        "relay",
        "--host",
        "127.0.0.1",
        "--port",
        "2525",
        "--security",
        "none",
        "--priority",
        "0",  # in front of primary (without it, it would go behind)
    )
    relaydesk.ok("provider", "set", "relay", "--disable")
    relaydesk.ok(
        "provider",
        "maintenance",
        "add",
        "primary",
        "--weekly",
        "sun",
        "02:00",
        "1h30m",
        "--timezone",
        "Europe/Berlin",
        "--note",
        "backups",
    )


def test_export_then_import_into_a_fresh_data_dir_round_trips(
    relaydesk: Relaydesk, tmp_path: Path
) -> None:
    add_providers(relaydesk)
    exported = tmp_path / "providers.toml"
    run = relaydesk.ok("providers-file", "export", str(exported))
    assert run.out == f"exported 2 providers to {exported} (no passwords)\n"
    assert tomllib.loads(exported.read_text(encoding="utf-8"))["version"] == 1

    fresh = Relaydesk(tmp_path / "fresh", cwd=tmp_path)
    run = fresh.ok("providers-file", "import", str(exported))
    assert run.out.splitlines() == [
        "added relay: 127.0.0.1:2525, none",
        "added primary: smtp.example.com:587, starttls",
    ]
    assert fresh.json("provider", "list") == relaydesk.json("provider", "list")
    assert fresh.json("provider", "maintenance", "list") == relaydesk.json(
        "provider", "maintenance", "list"
    )

    # Importing again skips what is there; --replace overwrites it.
    again = fresh.json("providers-file", "import", str(exported))
    assert [(o["name"], o["action"]) for o in again] == [
        ("relay", "skipped"),
        ("primary", "skipped"),
    ]
    fresh.ok("provider", "set", "primary", "--weight", "9")
    replaced = fresh.ok("providers-file", "import", str(exported), "--replace")
    assert replaced.out.startswith("replaced relay")
    assert fresh.json("provider", "list") == relaydesk.json("provider", "list")
    windows = fresh.json("provider", "maintenance", "list")
    assert len(windows) == 1  # replaced, not doubled


def test_providers_without_a_priority_are_imported_behind_in_file_order(
    relaydesk: Relaydesk, tmp_path: Path
) -> None:
    relaydesk.ok(
        "provider", "add", "primary", "--host", "smtp.example.com", "--port", "465",
        "--security", "tls", "--priority", "3",
    )  # fmt: skip
    shared = tmp_path / "backups.toml"
    shared.write_text(
        "version = 1\n"
        '[[providers]]\nname = "zeta backup"\nhost = "z.example.com"\nport = 465\n'
        'security = "tls"\n'
        '[[providers]]\nname = "alpha backup"\nhost = "a.example.com"\nport = 465\n'
        'security = "tls"\n'
        '[[providers]]\nname = "pinned"\nhost = "p.example.com"\nport = 465\n'
        'security = "tls"\npriority = 1\n',
        encoding="utf-8",
    )
    relaydesk.ok("providers-file", "import", str(shared))
    listed = {p["name"]: p["priority"] for p in relaydesk.json("provider", "list")}
    # Behind the stored provider, one after the other in the file's order (not by name);
    # a priority the file gives is kept.
    assert listed == {"primary": 3, "zeta backup": 4, "alpha backup": 5, "pinned": 1}

    # --replace of a provider the file gives no priority keeps where it is.
    relaydesk.ok("provider", "set", "zeta backup", "--priority", "0")
    relaydesk.ok("providers-file", "import", str(shared), "--replace")
    listed = {p["name"]: p["priority"] for p in relaydesk.json("provider", "list")}
    assert listed == {"primary": 3, "zeta backup": 0, "alpha backup": 5, "pinned": 1}


def test_export_refuses_to_overwrite_without_force(relaydesk: Relaydesk, tmp_path: Path) -> None:
    target = tmp_path / "providers.toml"
    target.write_text("keep me", encoding="utf-8")
    error = relaydesk.fails("providers-file", "export", str(target))
    assert "already exists; pass --force" in error
    assert target.read_text(encoding="utf-8") == "keep me"
    relaydesk.ok("providers-file", "export", str(target), "--force")
    assert tomllib.loads(target.read_text(encoding="utf-8")) == {"version": 1, "providers": []}


def test_a_password_in_the_keyring_never_reaches_the_exported_file(
    relaydesk: Relaydesk, tmp_path: Path
) -> None:
    # A file keyring, chosen explicitly (the only way Relaydesk uses one), in tmp_path.
    keyring_env = {
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
    }
    relaydesk.env.update(keyring_env)
    relaydesk.ok(
        "provider",
        "add",
        "secretive",
        "--host",
        "smtp.example.com",
        "--port",
        "465",
        "--security",
        "tls",
        "--username",
        "me",
        "--password-stdin",
        stdin="s3cret-Pa55word\n",
    )
    assert list((tmp_path / "xdg-data").rglob("*.cfg")), "the password was not stored"
    exported = tmp_path / "providers.toml"
    relaydesk.ok("providers-file", "export", str(exported))
    text = exported.read_text(encoding="utf-8")
    assert "s3cret-Pa55word" not in text
    assert "password" not in text.lower()
    assert tomllib.loads(text)["providers"][0]["username"] == "me"


def test_import_thunderbird_prefs(relaydesk: Relaydesk, tmp_path: Path) -> None:
    prefs = tmp_path / "prefs.js"
    prefs.write_text(PREFS_JS, encoding="utf-8")
    relaydesk.ok(
        "provider", "add", "existing", "--host", "smtp.example.com", "--port", "465",
        "--security", "tls", "--priority", "4",
    )  # fmt: skip

    dry = relaydesk.ok("provider", "import-thunderbird", str(prefs), "--dry-run")
    assert (
        dry.out.splitlines()[0]
        == "would be added mail.example.net: mail.example.net:2525, starttls"
    )
    assert relaydesk.provider_names() == ["existing"]

    run = relaydesk.ok("provider", "import-thunderbird", str(prefs))
    lines = run.out.splitlines()
    assert lines[:2] == [
        "added mail.example.net: mail.example.net:2525, starttls",
        "added Work office: smtp.example.org:465, tls",
    ]
    assert lines[2].startswith("skipped (Thunderbird server smtp3): security 'none'")
    listed = {p["name"]: p for p in relaydesk.json("provider", "list")}
    # After the providers already there, in Thunderbird's order; never a password.
    assert listed["mail.example.net"]["priority"] == 5
    assert listed["Work office"]["priority"] == 6
    assert listed["Work office"]["username"] == "alice@example.org"
    assert "hunter2" not in relaydesk.database.read_bytes().decode("latin-1")

    again = relaydesk.json("provider", "import-thunderbird", "--profile", str(tmp_path))
    assert [o["action"] for o in again] == ["skipped", "skipped", "skipped"]

    insecure = relaydesk.ok("provider", "import-thunderbird", str(prefs), "--allow-insecure")
    assert "added plain.example.com: plain.example.com:25, none" in insecure.out.splitlines()


def test_import_thunderbird_finds_the_profile_in_home(relaydesk: Relaydesk, tmp_path: Path) -> None:
    home = tmp_path / "home"
    profile = home / ".thunderbird" / "abcd.default-release"
    profile.mkdir(parents=True)
    (profile / "prefs.js").write_text(PREFS_JS, encoding="utf-8")
    run = relaydesk("provider", "import-thunderbird", env={"HOME": str(home)})
    assert run.code == 0, str(run)
    assert "added Work office" in run.out

    (home / ".thunderbird" / "second").mkdir()
    (home / ".thunderbird" / "second" / "prefs.js").write_text("", encoding="utf-8")
    error = relaydesk.fails("provider", "import-thunderbird", env={"HOME": str(home)})
    assert error.startswith("several Thunderbird profiles found, choose one with --profile")
    error = relaydesk.fails(
        "provider", "import-thunderbird", env={"HOME": str(tmp_path / "nobody")}
    )
    assert error.startswith("no Thunderbird profile found")


def test_errors_are_one_line_with_exit_2(relaydesk: Relaydesk, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert "does not exist" in relaydesk.fails("providers-file", "import", str(missing))

    latin1 = tmp_path / "prefs.js"
    latin1.write_bytes(b'user_pref("mail.smtpserver.a.description", "B\xfcro");\n')
    assert "is not UTF-8 text" in relaydesk.fails("provider", "import-thunderbird", str(latin1))

    empty = tmp_path / "empty.js"
    empty.write_text("// nothing here\n", encoding="utf-8")
    assert "no SMTP servers found" in relaydesk.fails("provider", "import-thunderbird", str(empty))

    with_password = tmp_path / "with-password.toml"
    with_password.write_text(
        'version = 1\n[[providers]]\nname = "p"\nhost = "smtp.example.com"\nport = 465\n'
        'security = "tls"\npassword = "hunter2"\n',
        encoding="utf-8",
    )
    error = relaydesk.fails("providers-file", "import", str(with_password))
    assert "key 'password' refused" in error
    assert "hunter2" not in error

    not_toml = tmp_path / "bad.toml"
    not_toml.write_text("[[providers]\nname = ", encoding="utf-8")
    assert "not a valid TOML file" in relaydesk.fails("providers-file", "import", str(not_toml))

    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * (5 * 1024 * 1024 + 1))
    assert "larger than 5 MB" in relaydesk.fails("providers-file", "import", str(huge))

    relaydesk.fails("provider", "import-thunderbird", str(empty), "--profile", str(tmp_path))
    assert relaydesk.provider_names() == []
    assert json.loads(relaydesk.ok("provider", "list", "--json").out) == []
