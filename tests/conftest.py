"""Shared fixtures: real servers on 127.0.0.1, a test CA and a private Secret Service."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before anything can import Qt: tests never open windows on the developer's screen.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

# `tests.support` is imported by package name. `python -m pytest` puts the working directory
# on sys.path, plain `pytest` does not (tests/ has no __init__.py, so pytest inserts tests/
# itself); make both work from any working directory.
_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

import pytest  # noqa: E402

from tests.support.dovecot import DovecotServer  # noqa: E402
from tests.support.scripted_smtp import ScriptedSMTPServer  # noqa: E402
from tests.support.secret_service import (  # noqa: E402
    PrivateSecretService,
    reset_keyring_backend,
)
from tests.support.smtp_sink import SmtpSink  # noqa: E402
from tests.support.tls import TestCA  # noqa: E402

_GUI_DIR = Path(__file__).resolve().parent / "gui"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/gui with ``gui`` so ``-m "not gui"`` runs the core alone."""
    for item in items:
        if _GUI_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    """One CA for the session; ``test_ca.server_context()`` for servers, ``test_ca.trust(mp)``
    or ``test_ca.client_env()`` for clients that use ``ssl.create_default_context()``."""
    return TestCA(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture
def scripted_smtp() -> Iterator[Callable[..., ScriptedSMTPServer]]:
    """Factory: ``server = scripted_smtp(**kwargs)`` returns a started ScriptedSMTPServer.

    Call it several times for several providers; all are closed after the test.
    """
    servers: list[ScriptedSMTPServer] = []

    def start(**kwargs: Any) -> ScriptedSMTPServer:
        server = ScriptedSMTPServer(**kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.close()


@pytest.fixture
def smtp_sink() -> Iterator[Callable[..., SmtpSink]]:
    """Factory: ``sink = smtp_sink(hard_reject=["rcpt"], dump=True)`` returns a running
    SmtpSink (Postfix smtp-sink); fails in CI / skips elsewhere when postfix is missing."""
    sinks: list[SmtpSink] = []

    def start(**kwargs: Any) -> SmtpSink:
        sink = SmtpSink(**kwargs)
        sinks.append(sink)
        return sink.start()

    yield start
    for sink in reversed(sinks):
        sink.close()


@pytest.fixture(scope="session")
def secret_service() -> Iterator[dict[str, str]]:
    """A private Secret Service for the whole session, applied to ``os.environ``.

    Yields the env entries for subprocesses (``env={**os.environ, **secret_service}`` is
    implied, since os.environ already holds them). python ``keyring`` re-detects its backend
    on next use, finding SecretService on the private bus.
    """
    service = PrivateSecretService()
    saved = {
        name: os.environ.get(name)
        for name in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND")
    }
    try:
        client_env = service.start()
        os.environ.update(client_env)
        # An explicit backend choice from the developer's shell would bypass the Secret Service.
        os.environ.pop("PYTHON_KEYRING_BACKEND", None)
        reset_keyring_backend()
        yield dict(client_env)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_keyring_backend()
        service.stop()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty directory for the app's data (database, logs) in this test."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def dovecot(test_ca: TestCA) -> Iterator[Callable[..., DovecotServer]]:
    """Factory: ``imap = dovecot()`` returns a running DovecotServer (Dovecot IMAP on
    127.0.0.1, STARTTLS on ``imap.port``, implicit TLS on ``imap.tls_port``, certificate
    from ``test_ca``); ``imap.add_user("alice", "pw")`` before or after. Keyword arguments
    go to DovecotServer. Fails in CI / skips elsewhere when dovecot-imapd is missing; every
    server is stopped and its directory removed after the test."""
    servers: list[DovecotServer] = []

    def start(**kwargs: Any) -> DovecotServer:
        kwargs.setdefault("test_ca", test_ca)
        server = DovecotServer(**kwargs)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.close()
