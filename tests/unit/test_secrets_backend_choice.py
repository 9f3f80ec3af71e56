"""A file-based keyring is used only when the user chose it, never as a silent fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyrings.alt.file import PlaintextKeyring

from desktop_app.core.errors import KeyringUnavailableError
from desktop_app.core.secrets import SecretStore


@pytest.fixture
def plaintext_keyring(tmp_path: Path) -> Iterator[PlaintextKeyring]:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")  # type: ignore[misc]
    previous: KeyringBackend = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_file_keyring_picked_up_implicitly_is_refused(
    plaintext_keyring: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    with pytest.raises(KeyringUnavailableError) as caught:
        SecretStore().set_password("uid-1", "hunter2-secret")
    message = str(caught.value)
    assert "\n" not in message
    assert "PYTHON_KEYRING_BACKEND" in message
    assert "hunter2-secret" not in message
    assert not (tmp_path / "keyring_pass.cfg").exists()


def test_file_keyring_chosen_explicitly_is_used(
    plaintext_keyring: PlaintextKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    store = SecretStore()
    store.set_password("uid-2", "opted-in-secret")
    assert store.get_password("uid-2") == "opted-in-secret"
    store.delete_password("uid-2")
    assert store.get_password("uid-2") is None
