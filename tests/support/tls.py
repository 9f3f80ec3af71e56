"""A throw-away certificate authority for TLS tests.

The app under test builds its client contexts with ``ssl.create_default_context()``, which
loads OpenSSL's default verify paths. OpenSSL reads the ``SSL_CERT_FILE`` environment
variable each time those paths are loaded (checked on this Python: 3.11 with OpenSSL 3.0), so
pointing it at :attr:`TestCA.bundle_path` makes every context created *afterwards* trust the
test CA. It replaces the system bundle file instead of adding to it; the system hashed
directory (``SSL_CERT_DIR``, default ``/usr/lib/ssl/certs``) would still be consulted, so
:meth:`TestCA.client_env` points that at an empty directory too. Contexts created before the
variables were set keep their old trust.

- in-process: ``monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.bundle_path))``
  (or ``test_ca.trust(monkeypatch)``);
- subprocesses: ``env={**os.environ, **test_ca.client_env()}``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

SERVER_NAMES = ("localhost", "127.0.0.1")


@dataclass
class TestCA:
    """A CA plus one server certificate for ``localhost`` and ``127.0.0.1``."""

    __test__ = False  # not a test class, despite the name

    directory: Path
    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.server_cert = self.ca.issue_cert(*SERVER_NAMES)
        self.bundle_path = self.directory / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.bundle_path))
        self.server_cert_chain_path = self.directory / "server-chain.pem"
        self.server_key_path = self.directory / "server-key.pem"
        for index, blob in enumerate(self.server_cert.cert_chain_pems):
            blob.write_to_path(str(self.server_cert_chain_path), append=index > 0)
        self.server_cert.private_key_pem.write_to_path(str(self.server_key_path))
        # An empty hashed-certificate directory, so only the bundle above is trusted.
        self.empty_cert_dir = self.directory / "empty-cert-dir"
        self.empty_cert_dir.mkdir(exist_ok=True)

    def server_context(self) -> ssl.SSLContext:
        """A fresh server-side context presenting the test certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only the test CA (no env var needed)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context

    def client_env(self) -> dict[str, str]:
        """Environment entries that make a subprocess's default SSL contexts trust the CA."""
        return {"SSL_CERT_FILE": str(self.bundle_path), "SSL_CERT_DIR": str(self.empty_cert_dir)}

    def trust(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make ``ssl.create_default_context()`` in this process trust the CA for one test."""
        for name, value in self.client_env().items():
            monkeypatch.setenv(name, value)


def untrusted_server_context() -> ssl.SSLContext:
    """A server context whose certificate comes from a CA nobody trusts."""
    stranger = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    stranger.issue_cert(*SERVER_NAMES).configure_cert(context)
    return context
