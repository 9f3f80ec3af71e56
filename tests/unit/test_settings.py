"""Settings: declared once with defaults and bounds, stored as JSON, read back typed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_app.core.errors import UnknownSettingError, UserInputError
from desktop_app.core.models import AmbiguousPolicy
from desktop_app.core.settings import SPECS, SettingsStore, spec_for
from desktop_app.core.storage.database import Database

DOCUMENTED_DEFAULTS = {
    "retry.min_backoff_seconds": 30.0,
    "retry.max_backoff_seconds": 3600.0,
    "retry.max_age_hours": 72.0,
    "breaker.failure_threshold": 3,
    "breaker.open_seconds": 30.0,
    "ambiguous.policy": "retry",
    "smtp.timeout_seconds": 30.0,
    "health.probe_interval_seconds": 60.0,
    "health.probe_interval_down_seconds": 5.0,
    "health.incident_after_failures": 2,
    "health.uptime_target_percent": 99.9,
    "alerts.down_after_seconds": 60.0,
    "alerts.backlog_minutes": 30.0,
    "alerts.repeat_minutes": 15.0,
    "alerts.email_to": "",
    "alerts.email_from": "",
    "campaigns.auto_pause_failure_percent": 10.0,
    "campaigns.auto_pause_min_messages": 50,
    "bounces.soft_limit": 3,
    "bounces.poll_seconds": 60.0,
    "delivery_probes.interval_minutes": 0.0,
    "delivery_probes.timeout_minutes": 15.0,
    "delivery_probes.seed_address": "",
    "delivery_probes.from_address": "",
    "identity.from_name": "",
    "identity.from_address": "",
}


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    return tmp_path / "relaydesk.sqlite3"


@pytest.fixture
def store(db_file: Path) -> Iterator[SettingsStore]:
    database = Database.open_file(db_file)
    yield SettingsStore(database)
    database.dispose()


def _one_line(error: BaseException) -> str:
    message = str(error)
    assert message
    assert "\n" not in message
    assert "\r" not in message
    return message


# -- defaults ---------------------------------------------------------------------------------


def test_an_empty_store_reads_the_documented_defaults(store: SettingsStore) -> None:
    assert store.all() == DOCUMENTED_DEFAULTS
    for key, value in DOCUMENTED_DEFAULTS.items():
        got = store.get(key)
        assert got == value
        assert type(got) is type(value)


def test_every_default_is_within_its_own_bounds() -> None:
    for spec in SPECS.values():
        assert spec.parse(str(spec.default)) == spec.default
        assert spec.title


# -- setting values ---------------------------------------------------------------------------


def test_set_text_parses_stores_and_survives_a_reopen(db_file: Path, store: SettingsStore) -> None:
    assert store.set_text("retry.min_backoff_seconds", " 2.5 ") == 2.5
    assert store.set_text("breaker.failure_threshold", "7") == 7
    assert store.set_text("ambiguous.policy", "hold") == AmbiguousPolicy.HOLD.value

    reopened = Database.open_file(db_file)
    try:
        again = SettingsStore(reopened)
        assert again.get("retry.min_backoff_seconds") == 2.5
        assert again.get("breaker.failure_threshold") == 7
        assert type(again.get("breaker.failure_threshold")) is int
        assert again.get("ambiguous.policy") == "hold"
        assert again.all() == {
            **DOCUMENTED_DEFAULTS,
            "retry.min_backoff_seconds": 2.5,
            "breaker.failure_threshold": 7,
            "ambiguous.policy": "hold",
        }
    finally:
        reopened.dispose()


def test_setting_a_key_twice_keeps_the_last_value(store: SettingsStore) -> None:
    store.set_text("smtp.timeout_seconds", "10")
    store.set_text("smtp.timeout_seconds", "20")
    assert store.get("smtp.timeout_seconds") == 20.0


def test_the_bounds_themselves_are_allowed(store: SettingsStore) -> None:
    assert store.set_text("breaker.failure_threshold", "1") == 1
    assert store.set_text("breaker.failure_threshold", "1000") == 1000
    assert store.set_text("retry.max_age_hours", "0.01") == 0.01


@pytest.mark.parametrize(
    ("key", "text", "fragment"),
    [
        ("retry.min_backoff_seconds", "soon", "must be a number"),
        ("retry.min_backoff_seconds", "", "must be a number"),
        ("retry.min_backoff_seconds", "0", "at least 0.1"),
        ("retry.min_backoff_seconds", "-3", "at least"),
        ("retry.max_backoff_seconds", "86401", "at most 86400"),
        ("retry.max_backoff_seconds", "inf", "finite"),
        ("retry.max_backoff_seconds", "-inf", "finite"),
        ("retry.min_backoff_seconds", "nan", "finite"),
        ("breaker.failure_threshold", "3.5", "must be a number"),
        ("breaker.failure_threshold", "0", "at least 1"),
        ("breaker.failure_threshold", "1001", "at most 1000"),
        ("ambiguous.policy", "maybe", "one of: retry, hold"),
        ("ambiguous.policy", "RETRY", "one of"),
        ("smtp.timeout_seconds", "1\n2", "must be a number"),
    ],
)
def test_bad_values_are_refused_in_one_line_and_not_stored(
    store: SettingsStore, key: str, text: str, fragment: str
) -> None:
    with pytest.raises(UserInputError) as caught:
        store.set_text(key, text)

    message = _one_line(caught.value)
    assert message.startswith(key)
    assert fragment in message
    assert store.get(key) == DOCUMENTED_DEFAULTS[key]


@pytest.mark.parametrize("key", sorted(SPECS))
@given(text=st.text(max_size=20))
def test_any_text_is_either_a_valid_value_or_a_one_line_error(key: str, text: str) -> None:
    spec = SPECS[key]
    try:
        value = spec.parse(text)
    except UserInputError as error:
        assert _one_line(error).startswith(key)
        return
    if spec.choices:
        assert value in spec.choices
        return
    assert type(value) is spec.kind
    if spec.check is not None:
        # Free text (an address): whatever was accepted is one clean line.
        assert value == value.strip() and "\n" not in value and "\r" not in value
        return
    assert isinstance(value, int | float)
    number = float(value)
    assert math.isfinite(number)
    assert spec.minimum is None or number >= spec.minimum
    assert spec.maximum is None or number <= spec.maximum


@pytest.mark.parametrize(
    "key", sorted(k for k, s in SPECS.items() if not s.choices and s.kind is not str)
)
@given(data=st.data())
def test_every_number_within_bounds_is_accepted(key: str, data: st.DataObject) -> None:
    spec = SPECS[key]
    assert spec.minimum is not None and spec.maximum is not None
    if spec.kind is int:
        number: float = data.draw(
            st.integers(min_value=int(spec.minimum), max_value=int(spec.maximum))
        )
    else:
        number = data.draw(st.floats(min_value=spec.minimum, max_value=spec.maximum))
    assert spec.parse(repr(number)) == number


# -- unknown keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        lambda store: store.get("retry.nope"),
        lambda store: store.set_text("retry.nope", "1"),
        lambda store: store.set("retry.nope", 1),
        lambda _store: spec_for("retry.nope"),
    ],
)
def test_an_unknown_key_names_every_known_key(store: SettingsStore, action: object) -> None:
    with pytest.raises(UnknownSettingError) as caught:
        action(store)  # type: ignore[operator]

    assert isinstance(caught.value, UserInputError)
    message = _one_line(caught.value)
    assert "'retry.nope'" in message
    for key in SPECS:
        assert key in message
    assert store.all() == DOCUMENTED_DEFAULTS


def test_an_alert_address_is_checked_and_may_be_empty(store: SettingsStore) -> None:
    assert store.set_text("alerts.email_to", " team@example.com ") == "team@example.com"
    assert store.set_text("alerts.email_to", "") == ""
    for bad in ("not an address", "a@b.example\r\nBcc: x@evil.example", "Team <t@example.com>"):
        with pytest.raises(UserInputError, match=r"alerts\.email_to"):
            store.set_text("alerts.email_to", bad)
    assert store.get("alerts.email_to") == ""


def test_the_sender_identity_is_one_line_and_a_valid_address(store: SettingsStore) -> None:
    assert store.set_text("identity.from_name", " Ada Lovelace ") == "Ada Lovelace"
    assert store.set_text("identity.from_name", "") == ""
    with pytest.raises(UserInputError, match=r"^identity\.from_name must not contain line"):
        store.set_text("identity.from_name", "Ada\r\nBcc: x@evil.example")
    assert store.set_text("identity.from_address", "ada@example.com") == "ada@example.com"
    for bad in ("ada@", "Ada <ada@example.com>", "ada@example.com\r\nBcc: x@evil.example"):
        with pytest.raises(UserInputError, match=r"identity\.from_address"):
            store.set_text("identity.from_address", bad)
    assert store.get("identity.from_name") == ""
    assert store.get("identity.from_address") == "ada@example.com"
