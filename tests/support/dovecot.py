"""A real Dovecot IMAP server on 127.0.0.1 for tests (Debian package ``dovecot-imapd``).

The server runs from a generated config in its own temporary directory (base_dir, state_dir,
log file, passwd-file, maildirs), so it never touches ``/etc/dovecot`` or a system instance.
Written for and checked against Dovecot 2.3 (Debian 12 ships 2.3.19.1); Dovecot 2.4 changed
the configuration language and is refused with a clear error until someone ports the config.

- ``port``: plaintext IMAP with STARTTLS available; ``tls_port``: implicit TLS (IMAPS).
  Both present a certificate from the :class:`~tests.support.tls.TestCA`, valid for
  ``localhost`` and ``127.0.0.1``; ``server.ssl_context()`` verifies it.
- Authentication: ``PLAIN`` and ``LOGIN``, allowed without TLS (loopback only). Users come
  from a passwd-file that Dovecot re-reads when it changes, so :meth:`DovecotServer.add_user`
  works before and after :meth:`~DovecotServer.start`.
- Mail: one maildir per user (Maildir++ on disk), IDLE/MOVE/UIDPLUS as Dovecot announces
  them by default. Hierarchy separator ``/`` (``separator="/"``, the default), or Dovecot's
  stock one for Maildir, ``.`` (``separator="."``: no ``separator`` line in the namespace,
  as in a default install, where ``Relaydesk/Processed`` is an invalid name).
  :meth:`~DovecotServer.restart` keeps the mail (and therefore UIDVALIDITY) and the ports.

Typical use::

    with DovecotServer(test_ca=test_ca) as imap:
        imap.add_user("alice", "secret")
        imap.append("alice", "INBOX", raw_message)
        with IMAPClient(imap.host, imap.port, ssl=False) as client:
            client.starttls(imap.ssl_context())
            client.login("alice", "secret")

As root (how CI runs) the master starts as root and the mail processes run as the ``dovecot``
system user (desktop_app/ARCHITECTURE.md, "Real servers in tests"); as another user
everything runs as that user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal

from imapclient import IMAPClient

from tests.support.servers import (
    LOOPBACK,
    free_port,
    port_accepts,
    read_log_tail,
    require_binary,
    wait_for_port_closed,
)
from tests.support.tls import TestCA

DEBIAN_PACKAGE = "dovecot-imapd"
MAIL_USER = "dovecot"  # owner of the maildirs when the master runs as root
SEPARATOR = "/"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_CLIENT_TIMEOUT = 10.0
_GRACE = 0.1  # seconds the master gets to log its children's exits before the SIGKILL
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)
# passwd-file fields are separated by ':'; user names also end up in paths (home=.../%u).
_USER_NAME = re.compile(r"^[A-Za-z0-9._@+-]+$")

Security = Literal["plain", "starttls", "tls"]


def dovecot_version(binary: str) -> tuple[int, ...]:
    """``(2, 3, 19, 1)`` from ``dovecot --version`` (``2.3.19.1 (9b53102964)``)."""
    output = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True, timeout=10
    ).stdout
    match = re.match(r"\s*(\d+(?:\.\d+)*)", output)
    if match is None:
        raise RuntimeError(f"cannot parse `{binary} --version` output {output!r}")
    return tuple(int(part) for part in match.group(1).split("."))


class DovecotServer:
    """Dovecot (``dovecot -F``) as a subprocess; restartable on the same ports and mail."""

    def __init__(
        self,
        *,
        test_ca: TestCA | None = None,
        host: str = LOOPBACK,
        port: int = 0,
        tls_port: int = 0,
        max_userip_connections: int = 1000,
        users: Mapping[str, str] | None = None,
        extra_config: str = "",
        binary: str | None = None,
        separator: Literal["/", "."] = "/",
    ) -> None:
        self.binary = binary or require_binary("dovecot", DEBIAN_PACKAGE)
        self.version = dovecot_version(self.binary)
        if self.version[:2] != (2, 3):
            raise RuntimeError(
                f"tests/support/dovecot.py writes a Dovecot 2.3 config; "
                f"{self.binary} is {'.'.join(map(str, self.version))}"
            )
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.max_userip_connections = max_userip_connections
        self.extra_config = extra_config
        if separator not in ("/", "."):
            raise ValueError(f"separator must be '/' or '.', not {separator!r}")
        self.separator = separator
        # Under the system temp dir, not pytest's 0700 tmp_path: the unprivileged mail and
        # login processes must be able to reach the sockets and maildirs in here.
        self.directory = Path(tempfile.mkdtemp(prefix="relaydesk-dovecot-"))
        self.directory.chmod(0o755)
        self.test_ca = test_ca or TestCA(self.directory / "ca")
        self.config_path = self.directory / "dovecot.conf"
        self.passwd_path = self.directory / "passwd"
        self.log_path = self.directory / "dovecot.log"
        self.base_dir = self.directory / "run"
        self.state_dir = self.directory / "state"
        self.mail_root = self.directory / "mail"
        self._users: dict[str, str] = {}
        self._passwd_mtime_ns = 0
        self._process: subprocess.Popen[bytes] | None = None
        root = os.geteuid() == 0
        account = pwd.getpwnam(MAIL_USER) if root else pwd.getpwuid(os.geteuid())
        self._uid, self._gid, self._account = account.pw_uid, account.pw_gid, account.pw_name
        self.mail_root.mkdir(mode=0o700)
        self.state_dir.mkdir(mode=0o700)
        os.chown(self.mail_root, self._uid, self._gid)
        for name, password in (users or {}).items():
            self._validate_user(name, password)
            self._users[name] = password
        self._write_passwd()

    # -- what clients need -----------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        """PEM bundle of the CA that signed the server certificate."""
        return self.test_ca.bundle_path

    def ssl_context(self) -> ssl.SSLContext:
        """A fresh verifying client context that trusts the test CA (hostname checked)."""
        return self.test_ca.client_context()

    @property
    def users(self) -> dict[str, str]:
        """A copy of ``{user: password}``."""
        return dict(self._users)

    # -- users -----------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add a user or change their password; takes effect on the next login.

        Free before :meth:`start` (or via ``users=``); while running it returns only once
        Dovecot is sure to see the change, which takes up to a second (see _write_passwd).
        """
        self._validate_user(name, password)
        self._users[name] = password
        self._write_passwd()

    def remove_user(self, name: str) -> None:
        """Make logins as ``name`` fail from now on (the maildir stays)."""
        self._users.pop(name, None)
        self._write_passwd()

    def _validate_user(self, name: str, password: str) -> None:
        if not _USER_NAME.match(name):
            raise ValueError(f"user name {name!r} must match {_USER_NAME.pattern}")
        if any(char in password for char in ":\r\n"):
            raise ValueError("a passwd-file password cannot contain ':' or a line break")

    # -- life cycle ------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The master's PID while running; also the process group of all its children."""
        return self._process.pid if self._process is not None else None

    def start(self) -> DovecotServer:
        """Start serving (on the same ports as before, after a :meth:`stop`). Idempotent."""
        if self.is_running:
            return self
        choose_ports = (self.port, self.tls_port)
        for _attempt in range(5):
            if choose_ports[0] == 0 or choose_ports[1] == 0:
                self.port = choose_ports[0] or free_port(self.host)
                self.tls_port = choose_ports[1] or free_port(self.host)
                if self.port == self.tls_port:
                    continue
            if self._spawn():
                return self
            if choose_ports[0] and choose_ports[1]:
                break
        raise RuntimeError(
            f"dovecot did not start on {self.host}:{self.port}/{self.tls_port} "
            f"(config {self.config_path}):\n{read_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Stop the master and every child; both ports refuse connections on return.

        Open IMAP connections are dropped. Dovecot 2.3's master sleeps a fixed second after
        signalling its children (keeping the listeners open meanwhile) and leaves the session
        processes of connected clients running until the client speaks; so a short grace
        after SIGTERM (children log their exit) is followed by a SIGKILL to the whole process
        group, which the master leads (``start_new_session``).
        """
        process, self._process = self._process, None
        if process is None:
            return
        group = process.pid  # start_new_session=True: the master leads its own group
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_GRACE)
            except subprocess.TimeoutExpired:
                pass
        _kill_group(group)
        process.wait(_STOP_TIMEOUT)
        deadline = time.monotonic() + _STOP_TIMEOUT
        while group_has_live_processes(group):
            if time.monotonic() >= deadline:
                raise RuntimeError(f"dovecot processes of group {group} survived SIGKILL")
            time.sleep(0.01)
        wait_for_port_closed(self.host, self.port, timeout=5.0)
        wait_for_port_closed(self.host, self.tls_port, timeout=5.0)

    def restart(self) -> DovecotServer:
        """Stop, then start again on the same ports with the same mail."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the temporary directory (config, mail, log)."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<DovecotServer {self.host}:{self.port} tls:{self.tls_port} {state}>"

    def log_tail(self, limit: int = 4000) -> str:
        """The end of Dovecot's log, for assertion messages."""
        return read_log_tail(self.log_path, limit)

    # -- IMAP helpers for tests --------------------------------------------------------------

    def client(self, security: Security = "plain", timeout: float = _CLIENT_TIMEOUT) -> IMAPClient:
        """A connected, not yet logged-in IMAPClient (``plain``, ``starttls`` or ``tls``)."""
        if security == "tls":
            return IMAPClient(
                self.host,
                self.tls_port,
                ssl=True,
                ssl_context=self.ssl_context(),
                timeout=timeout,
            )
        client = IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
        if security == "starttls":
            client.starttls(self.ssl_context())
        return client

    @contextmanager
    def session(self, user: str, security: Security = "plain") -> Iterator[IMAPClient]:
        """A client logged in as ``user`` (with the password given to :meth:`add_user`)."""
        client = self.client(security)
        try:
            client.login(user, self._password(user))
            yield client
        except BaseException:
            try:
                client.shutdown()
            except OSError:
                pass
            raise
        client.logout()

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Iterable[str | bytes] = (),
    ) -> int | None:
        """APPEND ``raw`` to ``folder`` (created if missing); returns the UID (APPENDUID)."""
        with self.session(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw, flags=tuple(flags))
        match = _APPENDUID.search(response if isinstance(response, bytes) else b"")
        return int(match.group(2)) if match else None

    def folder_uids(self, user: str, folder: str = "INBOX") -> list[int]:
        """UIDs in ``folder``, ascending."""
        with self.session(user) as client:
            client.select_folder(folder, readonly=True)
            return sorted(int(uid) for uid in client.search(["ALL"]))

    def fetch_all(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """Every message in ``folder`` as stored (CRLF line ends), in UID order."""
        with self.session(user) as client:
            client.select_folder(folder, readonly=True)
            uids = sorted(int(uid) for uid in client.search(["ALL"]))
            if not uids:
                return []
            data = client.fetch(uids, ["BODY.PEEK[]"])
            return [bytes(data[uid][b"BODY[]"]) for uid in uids]

    def folders(self, user: str) -> list[str]:
        """Names of the user's folders (``INBOX`` and anything created), as LISTed."""
        with self.session(user) as client:
            return [str(name) for _flags, _delimiter, name in client.list_folders()]

    def uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """The folder's UIDVALIDITY (from STATUS)."""
        with self.session(user) as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    # -- internals -------------------------------------------------------------------------

    def _password(self, user: str) -> str:
        try:
            return self._users[user]
        except KeyError:
            raise KeyError(f"no Dovecot user {user!r}; call add_user() first") from None

    def _write_passwd(self) -> None:
        """Rewrite the passwd-file atomically with a strictly newer mtime.

        Dovecot 2.3 re-reads a passwd-file when its mtime or size changed, but checks at most
        once per second of its ioloop clock: a lookup earlier in this second pins the old
        contents until the next second. So while running, wait for the next wall-clock second.
        """
        lines = "".join(
            f"{name}:{{PLAIN}}{password}::::::\n" for name, password in self._users.items()
        )
        temporary = self.passwd_path.with_suffix(".new")
        temporary.write_text(lines)
        temporary.chmod(0o600)
        os.chown(temporary, self._uid, self._gid)  # read by the auth process, not root
        mtime_ns = max(time.time_ns(), self._passwd_mtime_ns + 1_000_000_000)
        os.utime(temporary, ns=(mtime_ns, mtime_ns))
        temporary.replace(self.passwd_path)
        self._passwd_mtime_ns = mtime_ns
        if self.is_running:
            written_second = int(time.time())
            while int(time.time()) <= written_second:
                time.sleep(0.01)

    def _config(self) -> str:
        root = os.geteuid() == 0
        unprivileged = (
            ""
            if root
            else f"""
default_internal_user = {self._account}
default_login_user = {self._account}
service imap-login {{
  chroot =
}}
"""
        )
        # "." is Dovecot's own default for Maildir++: leave it unset, like a stock install.
        separator = "" if self.separator == "." else f"\n  separator = {self.separator}"
        return f"""\
# Generated by tests/support/dovecot.py for one test server; Dovecot 2.3 syntax.
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
auth_verbose = yes
protocols = imap
listen = {self.host}
shutdown_clients = yes
first_valid_uid = 1
# Tests log in with wrong passwords on purpose: no 2 s failure delay, no anvil auth penalty
# (which doubles the delay per failure from the same IP; mode = 0 turns it off).
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
# No stats service clients: on shutdown, login processes otherwise wait 5 s for a
# stats-writer handshake from a stats process that is already gone.
stats_writer_socket_path =
last_valid_uid = 0

ssl = yes
ssl_cert = <{self.test_ca.server_cert_chain_path}
ssl_key = <{self.test_ca.server_key_path}

disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = static
  args = uid={self._uid} gid={self._gid} home={self.mail_root}/%u
}}

mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = {self.max_userip_connections}
namespace inbox {{
  inbox = yes{separator}
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.tls_port}
    ssl = yes
  }}
}}
{unprivileged}
{self.extra_config}
"""

    def _spawn(self) -> bool:
        """Start the master and wait for both ports; False if it exited (e.g. port taken)."""
        self.config_path.write_text(self._config())
        # A master killed in its final sleep leaves its pid file behind.
        (self.base_dir / "master.pid").unlink(missing_ok=True)
        command = [self.binary, "-F", "-c", str(self.config_path)]
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                _kill_group(process.pid)  # children it may have forked before failing
                return False
            if port_accepts(self.host, self.port, timeout=0.5) and port_accepts(
                self.host, self.tls_port, timeout=0.5
            ):
                self._process = process
                return True
            time.sleep(0.02)
        _kill_group(process.pid)
        process.wait(5)
        return False


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass


def group_has_live_processes(group: int) -> bool:
    """True while a process of group ``group`` still runs (zombies do not count).

    SIGKILLed children of a SIGKILLed master are reaped by init, which may take a while
    (seconds in some containers); a zombie holds no ports, files or connections.
    """
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(group) and fields[0] not in ("Z", "X"):
            return True
    return False
