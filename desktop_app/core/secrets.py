"""Provider passwords, kept in the OS keyring and nowhere else.

The database stores a provider's ``uid``; the keyring stores the password under service
``relaydesk`` and user ``smtp:<uid>``. No silent fallback: when the OS has no usable
keyring the user is told how to fix it, and a file-based store is used only when they
choose one explicitly through keyring's own ``PYTHON_KEYRING_BACKEND`` variable.
"""

from __future__ import annotations

import os

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from desktop_app.core.errors import KeyringUnavailableError

SERVICE = "relaydesk"

NO_KEYRING_HINT = (
    "no OS keyring is available to store provider passwords; start or unlock your desktop's "
    "keyring (GNOME Keyring, KWallet, macOS Keychain, Windows Credential Manager), or opt in "
    "to a file store: pip install keyrings.alt and set "
    "PYTHON_KEYRING_BACKEND=keyrings.alt.file.EncryptedKeyring"
)


def _entry(uid: str) -> str:
    return f"smtp:{uid}"


def _backend() -> KeyringBackend:
    """The keyring backend to use, refusing ones the user did not knowingly choose."""
    backend = keyring.get_keyring()
    module = type(backend).__module__
    chosen_explicitly = bool(os.environ.get("PYTHON_KEYRING_BACKEND"))
    if module.startswith("keyring.backends.fail") or module.startswith("keyring.backends.null"):
        raise KeyringUnavailableError(NO_KEYRING_HINT)
    if module.startswith("keyring.backends.chainer") and not getattr(backend, "backends", None):
        raise KeyringUnavailableError(NO_KEYRING_HINT)
    # keyrings.alt stores secrets in files; picking it up just because it is installed
    # would be the silent fallback we promise never to do.
    if module.startswith("keyrings.alt") and not chosen_explicitly:
        raise KeyringUnavailableError(NO_KEYRING_HINT)
    return backend


class SecretStore:
    """Passwords of providers, by provider ``uid``."""

    def set_password(self, uid: str, password: str) -> None:
        try:
            _backend().set_password(SERVICE, _entry(uid), password)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailableError(f"{NO_KEYRING_HINT} ({type(exc).__name__})") from None

    def get_password(self, uid: str) -> str | None:
        try:
            return _backend().get_password(SERVICE, _entry(uid))
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailableError(f"{NO_KEYRING_HINT} ({type(exc).__name__})") from None

    def delete_password(self, uid: str) -> None:
        try:
            _backend().delete_password(SERVICE, _entry(uid))
        except keyring.errors.PasswordDeleteError:
            pass  # nothing stored: nothing to delete
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailableError(f"{NO_KEYRING_HINT} ({type(exc).__name__})") from None
