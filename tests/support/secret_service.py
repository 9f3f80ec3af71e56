"""A private Secret Service (dbus-daemon + gnome-keyring) so tests never touch a real keyring.

:class:`PrivateSecretService` starts its own session ``dbus-daemon`` (a private config: socket
in a temporary directory, no D-Bus activation), then
``gnome-keyring-daemon --foreground --unlock --components=secrets`` on that bus with HOME,
XDG_DATA_HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME and XDG_RUNTIME_DIR in temporary directories.
Clients need only ``DBUS_SESSION_BUS_ADDRESS`` from :attr:`client_env`.

Gotchas met on Debian 12 (gnome-keyring 42.1, dbus 1.14):

- ``--unlock`` reads the password from stdin until EOF and, on a fresh XDG_DATA_HOME, creates
  the ``login`` collection with it and makes it the default. Without ``--unlock`` the first
  write needs a collection, and creating one asks gcr-prompter for a password: it hangs or
  fails without a display. DISPLAY and WAYLAND_DISPLAY are removed from the daemons' env so
  that on a developer desktop no prompt window pops up either.
- ``--foreground`` keeps the daemon as our child (otherwise it forks and we would have to hunt
  for its pid); it exits by itself when its bus goes away.
- A private XDG_RUNTIME_DIR (mode 0700) matters: gnome-keyring looks for a running daemon
  through ``$XDG_RUNTIME_DIR/keyring/control`` and would otherwise talk to the developer's.
- As root in a container dbus-daemon logs "Failed to set fd limit to 65536: Operation not
  permitted" (no CAP_SYS_RESOURCE): harmless. As a normal user gnome-keyring may log
  "couldn't lock ... insufficient process capabilities, insecure memory might get used"
  (no CAP_IPC_LOCK for mlock): harmless for tests. Both go to :attr:`log_path`.
- python ``keyring`` caches twice: the chosen backend (``keyring.core``) and the list of
  viable backends (``keyring.backend.get_all_keyring``, decorated with ``once``). If anything
  resolved a backend before the bus existed, SecretService was judged unavailable and stays
  excluded until both caches are reset: see :func:`reset_keyring_backend`.
- ``PYTHON_KEYRING_BACKEND`` or a ``keyringrc.cfg`` under ``$XDG_CONFIG_HOME/python_keyring``
  take precedence over detection; the conftest fixture removes the variable for the session.
"""

from __future__ import annotations

import os
import selectors
import shutil
import subprocess
import tempfile
import time
from contextlib import closing, suppress
from pathlib import Path
from types import TracebackType

from tests.support.servers import read_log_tail, require_binary

_START_TIMEOUT = 20.0
DEFAULT_PASSWORD = "relaydesk-test-keyring"

# Variables that would point the daemons (or a prompt) at the developer's real session.
_SESSION_VARIABLES = (
    "DBUS_SESSION_BUS_ADDRESS",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "GNOME_KEYRING_CONTROL",
    "SSH_AUTH_SOCK",
)


_SECRETS_NAME = "org.freedesktop.secrets"

# A session bus of our own, like session.conf but without service directories: nothing is
# D-Bus-activated on it. With the stock --session config, the first call to
# org.freedesktop.secrets racing our daemon's start made dbus-daemon activate a second,
# locked gnome-keyring-daemon from /usr/share/dbus-1/services, which nobody owned or stopped.
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>{listen}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class SecretServiceError(RuntimeError):
    """The private Secret Service could not be started."""


class PrivateSecretService:
    """Owns a dbus-daemon and a gnome-keyring-daemon; use as a context manager."""

    def __init__(self, base_dir: Path | None = None, password: str = DEFAULT_PASSWORD) -> None:
        self._owns_base_dir = base_dir is None
        # Unix socket paths are limited to 107 bytes: keep the bus directory short.
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="relaydesk-ss-"))
        self.password = password
        self.log_path = self.base_dir / "daemons.log"
        self.bus_address: str | None = None
        self.daemon_env: dict[str, str] = {}
        self._bus: subprocess.Popen[bytes] | None = None
        self._keyring: subprocess.Popen[bytes] | None = None

    @property
    def client_env(self) -> dict[str, str]:
        """Variables a client (this process or a subprocess) needs to use this service."""
        if self.bus_address is None:
            raise RuntimeError("the private Secret Service is not running")
        return {"DBUS_SESSION_BUS_ADDRESS": self.bus_address}

    def start(self) -> dict[str, str]:
        """Start both daemons, wait until the default collection is unlocked; return
        :attr:`client_env`."""
        dbus_daemon = require_binary("dbus-daemon", "dbus-daemon")
        keyring_daemon = require_binary("gnome-keyring-daemon", "gnome-keyring")
        env = self._make_daemon_env()
        try:
            self.bus_address = self._start_bus(dbus_daemon, env)
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
            self.daemon_env = env
            self._start_keyring(keyring_daemon, env)
            self._wait_until_unlocked()
        except BaseException:
            self.stop()
            raise
        return self.client_env

    def stop(self) -> None:
        """Stop both daemons (keyring first, then its bus) and remove the temporary files."""
        for attribute in ("_keyring", "_bus"):
            process: subprocess.Popen[bytes] | None = getattr(self, attribute)
            setattr(self, attribute, None)
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            if process.stdout is not None:
                process.stdout.close()
        self.bus_address = None
        if self._owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PrivateSecretService:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------

    def _make_daemon_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SESSION_VARIABLES}
        for variable, name in (
            ("HOME", "home"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_RUNTIME_DIR", "runtime"),
        ):
            directory = self.base_dir / name
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            env[variable] = str(directory)
        return env

    def _start_bus(self, dbus_daemon: str, env: dict[str, str]) -> str:
        bus_dir = self.base_dir / "bus"
        bus_dir.mkdir(mode=0o700, exist_ok=True)
        config = self.base_dir / "session-bus.conf"
        config.write_text(_BUS_CONFIG.format(listen=f"unix:dir={bus_dir}"))
        with self.log_path.open("ab") as log:
            self._bus = subprocess.Popen(
                [
                    dbus_daemon,
                    f"--config-file={config}",
                    "--nofork",
                    "--nopidfile",
                    "--print-address=1",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
            )
        assert self._bus.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._bus.stdout, selectors.EVENT_READ)
            if not selector.select(_START_TIMEOUT):
                raise SecretServiceError(self._failure("dbus-daemon printed no address"))
        address = self._bus.stdout.readline().decode().strip()
        if not address:
            raise SecretServiceError(self._failure("dbus-daemon exited before printing"))
        return address

    def _start_keyring(self, keyring_daemon: str, env: dict[str, str]) -> None:
        with self.log_path.open("ab") as log:
            self._keyring = subprocess.Popen(
                [keyring_daemon, "--foreground", "--unlock", "--components=secrets"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=env,
            )
        assert self._keyring.stdin is not None
        # The daemon reads the password until EOF; no trailing newline (it would be part of it).
        self._keyring.stdin.write(self.password.encode())
        self._keyring.stdin.close()

    def _wait_until_unlocked(self) -> None:
        import secretstorage
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        assert self.bus_address is not None
        deadline = time.monotonic() + _START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._keyring is None or self._keyring.poll() is not None:
                raise SecretServiceError(self._failure("gnome-keyring-daemon exited"))
            try:
                with closing(open_dbus_connection(bus=self.bus_address)) as connection:
                    # Ask the bus first: a call to the service before the daemon owns the name
                    # would fail (no activation on this bus) and only add noise.
                    reply = connection.send_and_get_reply(
                        message_bus.NameHasOwner(_SECRETS_NAME), timeout=5
                    )
                    if reply.body[0]:
                        collection = secretstorage.get_default_collection(connection)
                        if not collection.is_locked():
                            return
            except Exception as error:  # not up yet: keep polling until the deadline
                last_error = error
            time.sleep(0.05)
        raise SecretServiceError(
            self._failure(f"no unlocked default collection within {_START_TIMEOUT}s: {last_error}")
        )

    def _failure(self, what: str) -> str:
        return (
            f"private Secret Service: {what}\n--- {self.log_path}:\n{read_log_tail(self.log_path)}"
        )


def reset_keyring_backend() -> None:
    """Make python ``keyring`` detect its backend again on next use.

    Clears both caches (see the module docstring); call it after changing
    ``DBUS_SESSION_BUS_ADDRESS`` or ``PYTHON_KEYRING_BACKEND``.
    """
    import keyring.backend
    import keyring.core

    reset = getattr(keyring.backend.get_all_keyring, "reset", None)
    if reset is not None:
        with suppress(KeyError):  # jaraco's `once` raises KeyError if it never ran
            reset()
    # The only way to get lazy re-detection: set_keyring() does not accept None.
    keyring.core._keyring_backend = None
