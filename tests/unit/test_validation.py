"""What users type is checked before anything is stored, queued or sent."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.core.errors import HeaderInjectionError, UserInputError
from desktop_app.core.models import ProviderConfig, RateLimits, Security
from desktop_app.core.validation import (
    check_no_line_breaks,
    is_loopback,
    validate_address,
    validate_provider_config,
)

#: CR, LF and NUL, and the other characters str.splitlines() (and so the email package)
#: treats as line breaks.
LINE_BREAKS = "\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

any_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
with_line_break = st.builds(
    lambda before, char, after: before + char + after,
    any_text,
    st.sampled_from(LINE_BREAKS),
    any_text,
)
without_line_break = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters=LINE_BREAKS), max_size=80
)

_ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
_atom = st.text(st.sampled_from(_ATEXT), min_size=1, max_size=12)
_label = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")
simple_addresses = st.builds(
    lambda local, labels: ".".join(local) + "@" + ".".join(labels),
    st.lists(_atom, min_size=1, max_size=3),
    st.lists(_label, min_size=1, max_size=4),
)


def _one_line(error: BaseException) -> str:
    message = str(error)
    assert message
    assert "\n" not in message
    assert "\r" not in message
    return message


# -- line breaks ------------------------------------------------------------------------------


@given(with_line_break)
def test_check_no_line_breaks_refuses_any_line_break(value: str) -> None:
    with pytest.raises(HeaderInjectionError) as caught:
        check_no_line_breaks("subject", value)
    assert isinstance(caught.value, UserInputError)
    assert isinstance(caught.value, ValueError)
    assert "subject" in _one_line(caught.value)


@given(without_line_break)
def test_check_no_line_breaks_returns_other_text_unchanged(value: str) -> None:
    assert check_no_line_breaks("subject", value) == value


@given(simple_addresses, with_line_break)
def test_an_address_with_a_line_break_anywhere_is_refused(address: str, noise: str) -> None:
    for value in (address + noise, noise + address, address.replace("@", noise + "@", 1)):
        with pytest.raises(HeaderInjectionError) as caught:
            validate_address("to", value)
        _one_line(caught.value)


def test_a_classic_header_injection_is_refused() -> None:
    with pytest.raises(HeaderInjectionError):
        validate_address("from", "me@example.com\r\nBcc: everyone@example.net")


# -- addresses --------------------------------------------------------------------------------


@given(simple_addresses)
def test_plain_addresses_are_accepted_as_typed(address: str) -> None:
    assert validate_address("to", address) == address


@given(st.emails())
def test_addresses_hypothesis_considers_valid_are_accepted(address: str) -> None:
    assert validate_address("to", address) == address


def test_surrounding_spaces_are_trimmed() -> None:
    assert validate_address("to", "  a@example.com\t") == "a@example.com"


@pytest.mark.parametrize(
    "address",
    [
        "a@[127.0.0.1]",
        '"john smith"@example.com',
        "first.last+tag@sub.example.co.uk",
        "x@localhost",
    ],
)
def test_less_common_valid_addresses(address: str) -> None:
    assert validate_address("to", address) == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "plain",
        "@example.com",
        "a@",
        "a@@example.com",
        "a b@example.com",
        "a.@example.com",
        "a@example..com",
        "a@-example.com",
        "a@exa_mple.com",
        "ä@example.com",
        "a@exämple.com",
        "<a@example.com>",
        "Name <a@example.com>",
        "a@example.com, b@example.com",
        "=?utf-8?q?a?=@example.com",
        "a@" + "x" * 64 + ".com",
    ],
)
def test_things_that_are_not_an_address_are_refused(address: str) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_address("to", address)
    assert _one_line(caught.value).startswith("to")


# -- providers --------------------------------------------------------------------------------


def _config(**changes: object) -> ProviderConfig:
    base = ProviderConfig(name="primary", host="smtp.example.com", port=587, security=Security.TLS)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.9.8.7", "::1", "[::1]", "localhost", "LocalHost", "a.localhost"]
)
def test_plaintext_to_loopback_needs_no_opt_in(host: str) -> None:
    assert is_loopback(validate_provider_config(_config(host=host)).host)
    config = validate_provider_config(_config(host=host, security=Security.NONE, port=25))
    assert config.security is Security.NONE


@pytest.mark.parametrize("host", ["smtp.example.com", "10.0.0.1", "192.168.1.5", "2001:db8::1"])
def test_plaintext_to_anything_else_is_refused_without_opt_in(host: str) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_provider_config(_config(host=host, security=Security.NONE))
    message = _one_line(caught.value)
    assert "--allow-insecure" in message

    allowed = validate_provider_config(
        _config(host=host, security=Security.NONE, allow_insecure=True)
    )
    assert allowed.security is Security.NONE


@pytest.mark.parametrize("security", [Security.TLS, Security.STARTTLS])
def test_encrypted_connections_go_anywhere(security: Security) -> None:
    assert validate_provider_config(_config(security=security)).security is security


@given(st.integers(min_value=1, max_value=65535))
def test_every_real_port_is_accepted(port: int) -> None:
    assert validate_provider_config(_config(port=port)).port == port


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=65536)))
def test_ports_outside_the_range_are_refused(port: int) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_provider_config(_config(port=port))
    assert "port" in _one_line(caught.value)


@pytest.mark.parametrize("port", ["abc", "", "25.5", None])
def test_ports_that_are_not_numbers_are_refused(port: object) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_provider_config(_config(port=port))
    assert "port" in _one_line(caught.value)


@pytest.mark.parametrize("window", ["per_second", "per_minute", "per_hour", "per_day"])
@given(rate=st.integers(min_value=1, max_value=10**9))
def test_rate_limits_of_one_or_more_are_accepted(window: str, rate: int) -> None:
    config = validate_provider_config(_config(rate_limits=RateLimits(**{window: rate})))
    assert getattr(config.rate_limits, window) == rate


@pytest.mark.parametrize("window", ["per_second", "per_minute", "per_hour", "per_day"])
@given(rate=st.integers(max_value=0))
def test_rate_limits_below_one_are_refused(window: str, rate: int) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_provider_config(_config(rate_limits=RateLimits(**{window: rate})))
    assert "rate" in _one_line(caught.value)


def test_no_rate_limit_means_unlimited() -> None:
    assert validate_provider_config(_config()).rate_limits == RateLimits()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weight": 0}, "weight"),
        ({"max_connections": 0}, "max connections"),
        ({"max_connections": 101}, "max connections"),
        ({"priority": -1}, "priority"),
        ({"name": ""}, "provider name"),
        ({"name": "a\nb"}, "provider name"),
        ({"name": "x" * 101}, "provider name"),
        ({"host": "smtp.example.com\r\nRCPT TO:<x@y>"}, "host"),
        ({"host": "not a host"}, "host"),
        ({"username": "me\r\nAUTH PLAIN"}, "username"),
        ({"sender_domains": ("example.com", "bad domain")}, "sender domain"),
    ],
)
def test_bad_provider_fields_are_named_in_one_line(changes: dict[str, object], field: str) -> None:
    with pytest.raises(UserInputError) as caught:
        validate_provider_config(_config(**changes))
    assert field in _one_line(caught.value)


def test_sender_domains_are_normalized_and_deduplicated() -> None:
    config = validate_provider_config(
        _config(sender_domains=("Example.COM.", " example.com", "Mail.Example.org", "b.example"))
    )
    assert config.sender_domains == ("example.com", "mail.example.org", "b.example")


def test_host_and_name_and_username_are_normalized() -> None:
    config = validate_provider_config(
        _config(host=" SMTP.Example.COM ", name="  Main relay ", username="  me@example.com ")
    )
    assert (config.host, config.name, config.username) == (
        "smtp.example.com",
        "Main relay",
        "me@example.com",
    )
    assert validate_provider_config(_config(host="[::1]")).host == "::1"


def test_validation_returns_a_copy_and_keeps_identity_fields() -> None:
    original = _config(id=4, uid="keyring-key", enabled=False)
    config = validate_provider_config(original)
    assert (config.id, config.uid, config.enabled) == (4, "keyring-key", False)
    assert original.host == "smtp.example.com"
