"""Provider passwords, kept in the OS keyring and nowhere else.

The database stores a provider's ``uid``; the keyring stores the password under service
``relaydesk`` and user ``smtp:<uid>``. No silent fallback: when the OS has no usable
keyring the user is told how to fix it, and a file-based store is used only when they
choose one explicitly through keyring's own ``PYTHON_KEYRING_BACKEND`` variable.
"""

from __future__ import annotations

import os
import secrets

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


#: Keyring entry of the key that signs unsubscribe links (one per machine's keyring).
SIGNING_KEY_ENTRY = "unsubscribe-signing-key"


def _acceptable(backend: KeyringBackend, chosen_explicitly: bool) -> bool:
    module = type(backend).__module__
    if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
        return False
    # keyrings.alt stores secrets in files; picking it up just because it is installed
    # would be the silent fallback we promise never to do.
    return chosen_explicitly or not module.startswith("keyrings.alt")


def resolve_backend() -> KeyringBackend:
    """The one keyring backend to use, refusing ones the user did not knowingly choose.

    keyring may hand back a "chainer" that tries several backends in turn; a set_password
    that fails in the OS keyring would then land silently in the next one (a file). So the
    chainer is resolved here to its single best acceptable backend.
    """
    backend = keyring.get_keyring()
    chosen_explicitly = bool(os.environ.get("PYTHON_KEYRING_BACKEND"))
    if type(backend).__module__.startswith("keyring.backends.chainer"):
        candidates = list(getattr(backend, "backends", ()))
    else:
        candidates = [backend]
    for candidate in candidates:  # the chainer lists them best first
        if _acceptable(candidate, chosen_explicitly):
            return candidate
    raise KeyringUnavailableError(NO_KEYRING_HINT)


class SecretStore:
    """Passwords of providers (by provider ``uid``) and of IMAP mailboxes, and the key that
    signs unsubscribe links."""

    def set_password(self, uid: str, password: str) -> None:
        self._set(_entry(uid), password)

    def get_password(self, uid: str) -> str | None:
        return self._get(_entry(uid))

    def delete_password(self, uid: str) -> None:
        self._delete(_entry(uid))

    def set_mailbox_password(self, uid: str, password: str) -> None:
        self._set(f"imap:{uid}", password)

    def get_mailbox_password(self, uid: str) -> str | None:
        return self._get(f"imap:{uid}")

    def delete_mailbox_password(self, uid: str) -> None:
        self._delete(f"imap:{uid}")

    def _set(self, entry: str, password: str) -> None:
        try:
            resolve_backend().set_password(SERVICE, entry, password)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailableError(f"{NO_KEYRING_HINT} ({type(exc).__name__})") from None

    def _get(self, entry: str) -> str | None:
        try:
            return resolve_backend().get_password(SERVICE, entry)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailableError(f"{NO_KEYRING_HINT} ({type(exc).__name__})") from None

    def _delete(self, entry: str) -> None:
        try:
            resolve_backend().delete_password(SERVICE, entry)
        except keyring.errors.PasswordDeleteError:
            pass  # nothing stored: nothing to delete
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailableError(f"{NO_KEYRING_HINT} ({type(exc).__name__})") from None

    def signing_key(self) -> bytes:
        """The key that signs unsubscribe links, made on first use and kept in the keyring.

        A secret, so never in the database: whoever reads the database must not be able
        to forge unsubscribe links for other addresses.
        """
        try:
            backend = resolve_backend()
            stored = backend.get_password(SERVICE, SIGNING_KEY_ENTRY)
            if stored is None:
                stored = secrets.token_hex(32)
                backend.set_password(SERVICE, SIGNING_KEY_ENTRY, stored)
        except keyring.errors.KeyringError as exc:
            raise KeyringUnavailableError(f"{NO_KEYRING_HINT} ({type(exc).__name__})") from None
        return bytes.fromhex(stored)
