"""``relaydesk provider add|set|list|remove`` end to end, and the errors people meet."""

from __future__ import annotations

import pytest

from tests.cli.cli_harness import Relaydesk

ADD_PRIMARY = ("provider", "add", "primary", "--host", "smtp.example.com", "--port", "587")


def test_a_provider_lifecycle(relaydesk: Relaydesk) -> None:
    added = relaydesk.ok(*ADD_PRIMARY, "--security", "starttls", "--username", "me")
    assert added.out == "added provider primary (smtp.example.com:587, starttls)\n"
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
        "1",
        "--weight",
        "3",
        "--max-connections",
        "4",
        "--rate-per-second",
        "5",
        "--rate-per-day",
        "1000",
        "--sender-domain",
        "Example.COM.",
        "--sender-domain",
        "example.org",
    )

    listing = relaydesk.json("provider", "list")
    assert [p["name"] for p in listing] == ["primary", "relay"]
    assert listing[0] == {
        "name": "primary",
        "state": "unknown",  # never probed or used
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "me",
        "priority": 0,
        "weight": 1,
        "max_connections": 2,
        "rate_per_second": None,
        "rate_per_minute": None,
        "rate_per_hour": None,
        "rate_per_day": None,
        "sender_domains": [],
        "enabled": True,
        "allow_insecure": False,
    }
    relay = listing[1]
    assert (relay["security"], relay["priority"], relay["weight"]) == ("none", 1, 3)
    assert (relay["max_connections"], relay["rate_per_second"], relay["rate_per_day"]) == (
        4,
        5,
        1000,
    )
    assert relay["sender_domains"] == ["example.com", "example.org"]

    text = relaydesk.ok("provider", "list").out.splitlines()
    assert len(text) == 2
    assert "primary" in text[0]
    assert "smtp.example.com:587" in text[0]
    assert "enabled" in text[0]

    changed = relaydesk.ok(
        "provider", "set", "primary", "--port", "465", "--security", "tls", "--disable",
        "--rate-per-minute", "60", "--priority", "2",
    )  # fmt: skip
    assert changed.out == "updated provider primary\n"
    listing = relaydesk.json("provider", "list")
    assert [p["name"] for p in listing] == ["relay", "primary"]  # priority 2 now sorts last
    primary = listing[1]
    assert (primary["port"], primary["security"], primary["enabled"]) == (465, "tls", False)
    assert primary["state"] == "disabled"
    assert primary["rate_per_minute"] == 60
    assert primary["username"] == "me"  # untouched fields stay
    assert "disabled" in relaydesk.ok("provider", "list").out.splitlines()[1]

    relaydesk.ok("provider", "set", "primary", "--enable")
    assert relaydesk.json("provider", "list")[1]["enabled"] is True

    assert relaydesk.ok("provider", "remove", "primary").out == "removed provider primary\n"
    assert [p["name"] for p in relaydesk.json("provider", "list")] == ["relay"]
    relaydesk.ok("provider", "remove", "relay")
    assert relaydesk.json("provider", "list") == []
    assert "no providers yet" in relaydesk.ok("provider", "list").out


def test_a_provider_added_without_priority_goes_behind_the_others(relaydesk: Relaydesk) -> None:
    def add(name: str, *options: str) -> None:
        relaydesk.ok("provider", "add", name, "--host", "smtp.example.com", "--port", "465",
                     "--security", "tls", *options)  # fmt: skip

    add("primary")  # the first one: priority 0
    add("pinned", "--priority", "5")
    add("backup")
    add("front", "--priority", "0")
    listing = relaydesk.json("provider", "list")
    # A backup added without --priority never becomes the primary; a given one is kept.
    assert [(p["name"], p["priority"]) for p in listing] == [
        ("front", 0),
        ("primary", 0),
        ("pinned", 5),
        ("backup", 6),
    ]


def test_a_duplicate_name_is_refused(relaydesk: Relaydesk) -> None:
    relaydesk.ok(*ADD_PRIMARY, "--security", "tls")

    error = relaydesk.fails("provider", "add", "primary", "--host", "b.example.com",
                            "--port", "25", "--security", "tls")  # fmt: skip

    assert "primary" in error
    assert "already exists" in error
    assert [p["host"] for p in relaydesk.json("provider", "list")] == ["smtp.example.com"]


@pytest.mark.parametrize(
    "command",
    [
        ("provider", "set", "ghost", "--port", "25"),
        ("provider", "remove", "ghost"),
        ("provider", "test", "ghost"),
    ],
)
def test_an_unknown_provider_is_bad_input(relaydesk: Relaydesk, command: tuple[str, ...]) -> None:
    error = relaydesk.fails(*command, code=2)
    assert "ghost" in error


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "1.5"])
def test_a_bad_port_is_refused(relaydesk: Relaydesk, port: str) -> None:
    error = relaydesk.fails("provider", "add", "p", "--host", "smtp.example.com",
                            "--port", port, "--security", "tls")  # fmt: skip
    assert "port" in error
    assert relaydesk.provider_names() == []


def test_a_bad_port_is_refused_on_set_too(relaydesk: Relaydesk) -> None:
    relaydesk.ok(*ADD_PRIMARY, "--security", "tls")
    assert "port" in relaydesk.fails("provider", "set", "primary", "--port", "99999")
    assert relaydesk.json("provider", "list")[0]["port"] == 587


def test_plaintext_to_a_remote_host_needs_allow_insecure(relaydesk: Relaydesk) -> None:
    error = relaydesk.fails(*ADD_PRIMARY, "--security", "none")
    assert "--allow-insecure" in error
    assert relaydesk.provider_names() == []

    relaydesk.ok(*ADD_PRIMARY, "--security", "none", "--allow-insecure")
    (provider,) = relaydesk.json("provider", "list")
    assert (provider["security"], provider["allow_insecure"]) == ("none", True)


def test_plaintext_to_loopback_needs_no_opt_in(relaydesk: Relaydesk) -> None:
    relaydesk.ok("provider", "add", "local", "--host", "localhost", "--port", "25",
                 "--security", "none")  # fmt: skip
    assert relaydesk.json("provider", "list")[0]["allow_insecure"] is False


def test_switching_to_plaintext_later_is_checked_too(relaydesk: Relaydesk) -> None:
    relaydesk.ok(*ADD_PRIMARY, "--security", "starttls")

    assert "--allow-insecure" in relaydesk.fails("provider", "set", "primary", "--security", "none")
    assert relaydesk.json("provider", "list")[0]["security"] == "starttls"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (("--security", "ssl"), "invalid choice"),
        (("--security", "tls", "--weight", "0"), "weight"),
        (("--security", "tls", "--rate-per-hour", "0"), "rate per hour"),
        (("--security", "tls", "--max-connections", "1000"), "max connections"),
        (("--security", "tls", "--sender-domain", "not a domain"), "sender domain"),
        (("--security", "tls", "--priority", "first"), "priority"),
        (("--security", "tls", "--username", "me\r\nRCPT TO:<x@y>"), "username"),
        (("--security", "tls", "--password-stdin"), "username"),  # a password needs a user
    ],
)
def test_bad_provider_options_are_refused(
    relaydesk: Relaydesk, extra: tuple[str, ...], fragment: str
) -> None:
    error = relaydesk.fails(*ADD_PRIMARY, *extra, stdin="secret\n")
    assert fragment in error
    assert relaydesk.provider_names() == []


def test_a_missing_required_option_is_one_line(relaydesk: Relaydesk) -> None:
    error = relaydesk.fails("provider", "add", "p", "--host", "smtp.example.com")
    assert "--port" in error or "--security" in error


def test_set_with_nothing_to_change_is_refused(relaydesk: Relaydesk) -> None:
    relaydesk.ok(*ADD_PRIMARY, "--security", "tls")
    assert "nothing to change" in relaydesk.fails("provider", "set", "primary")


def test_a_provider_name_with_a_line_break_is_refused(relaydesk: Relaydesk) -> None:
    relaydesk.fails("provider", "add", "evil\nname", "--host", "smtp.example.com",
                    "--port", "25", "--security", "tls")  # fmt: skip
    assert relaydesk.provider_names() == []
