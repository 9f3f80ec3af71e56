"""Postfix's ``smtp-sink`` as a loopback SMTP server with fault injection.

Flag semantics, checked with smtplib against Debian's postfix 3.7 (``man smtp-sink``).
Command names are case-insensitive: ``connect`` (the greeting), ``helo``, ``ehlo``,
``mail``, ``rcpt``, ``data`` (the DATA command itself), ``.`` (the end of the content),
``rset``, ``noop``, ``quit``, ``vrfy``.

- ``hard_reject`` -> ``-f``: reply ``500 5.3.0 Error: command failed`` (text from
  ``hard_reply`` -> ``-B``). Implies ``-p``: PIPELINING is no longer announced.
- ``soft_reject`` -> ``-r``: reply ``450 4.3.0 Error: command failed`` (text from
  ``soft_reply`` -> ``-b``). Also implies ``-p``.
- ``disconnect`` -> ``-q``: close the connection without any reply after reading the
  command. For ``.`` the whole content has been read (and dumped) first: the ambiguous
  window. For ``data`` the connection closes before the 354.
- ``shutdown_421`` -> ``-Q``: reply ``421 4.0.0 Server closing connection``, then close.
- ``delays`` -> ``-W command:seconds``: wait before replying to that command (whole seconds).
  A delay longer than ``-t`` (``reply_timeout``, default 100 s) makes the sink give up on the
  session with "read timeout".
- ``dump_dir`` -> ``-d DIR/%Y%m%d%H%M%S.``: one file per transaction, smtp-sink's own
  ``X-Client-Addr``/``X-Mail-Args``/``X-Rcpt-Args``/``Received`` headers followed by the
  message with LF line ends. A transaction whose content reached the final ``.`` is dumped
  even when the reply to ``.`` was a rejection or a disconnect.

As root smtp-sink insists on ``-u user`` and drops to it after binding; the dump directory
must then be writable by that user (``nobody``), and every directory above it searchable.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path
from types import TracebackType

from tests.support.servers import (
    LOOPBACK,
    free_port,
    port_accepts,
    read_log_tail,
    require_binary,
    wait_for_port_closed,
)

DEBIAN_PACKAGE = "postfix"
UNPRIVILEGED_USER = "nobody"
_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class DumpedMessage:
    """One transaction as smtp-sink wrote it to its dump directory."""

    path: Path
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None
    raw: bytes
    """The whole file: smtp-sink's headers, then the message as received (LF line ends)."""


def _strip_angle(value: str) -> str:
    address = value.split()[0] if value.split() else ""
    return address[1:-1] if address.startswith("<") and address.endswith(">") else address


def _join(commands: Iterable[str]) -> str:
    names = [command.strip().lower() for command in commands]
    if not all(names):
        raise ValueError(f"empty smtp-sink command name in {names!r}")
    return ",".join(names)


class SmtpSink:
    """Runs ``smtp-sink`` on ``host:port`` as a subprocess; restartable on the same port."""

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        hard_reject: Iterable[str] = (),
        soft_reject: Iterable[str] = (),
        disconnect: Iterable[str] = (),
        shutdown_421: Iterable[str] = (),
        hard_reply: str | None = None,
        soft_reply: str | None = None,
        delays: Mapping[str, int] | None = None,
        dump: bool = False,
        dump_dir: Path | None = None,
        reply_timeout: int | None = None,
        backlog: int = 256,
        extra_args: Iterable[str] = (),
        binary: str | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.binary = binary or require_binary("smtp-sink", DEBIAN_PACKAGE)
        self.host = host
        self.port = port
        self.backlog = backlog
        self._owns_dump_dir = dump and dump_dir is None
        self.dump_dir = dump_dir
        if self._owns_dump_dir:
            # Under the system temp dir, which the unprivileged user can search.
            self.dump_dir = Path(tempfile.mkdtemp(prefix="relaydesk-smtp-sink-"))
        if self.dump_dir is not None:
            try:
                self._prepare_dump_dir(self.dump_dir)
            except BaseException:
                if self._owns_dump_dir:
                    shutil.rmtree(self.dump_dir, ignore_errors=True)
                raise

        args: list[str] = []
        if os.geteuid() == 0:
            args += ["-u", UNPRIVILEGED_USER]
        for flag, commands in (
            ("-f", hard_reject),
            ("-r", soft_reject),
            ("-q", disconnect),
            ("-Q", shutdown_421),
        ):
            joined = _join(commands)
            if joined:
                args += [flag, joined]
        if hard_reply is not None:
            args += ["-B", hard_reply]
        if soft_reply is not None:
            args += ["-b", soft_reply]
        for command, seconds in (delays or {}).items():
            args += ["-W", f"{command.strip().lower()}:{int(seconds)}"]
        if reply_timeout is not None:
            args += ["-t", str(int(reply_timeout))]
        if self.dump_dir is not None:
            args += ["-d", f"{self.dump_dir}/%Y%m%d%H%M%S."]
        args += list(extra_args)
        self.args = args
        self._scratch = Path(tempfile.mkdtemp(prefix="relaydesk-smtp-sink-log-"))
        self.log_path = (log_dir or self._scratch) / "smtp-sink.log"
        self._process: subprocess.Popen[bytes] | None = None

    # -- life cycle ------------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> SmtpSink:
        """Start listening (on the same port as before, after a :meth:`stop`). Idempotent."""
        if self.is_running:
            return self
        choose_port = self.port == 0
        for _attempt in range(5):
            if choose_port:
                self.port = free_port(self.host)
            if self._spawn():
                return self
            if not choose_port:
                break
        raise RuntimeError(
            f"smtp-sink did not start on {self.host}:{self.port} "
            f"(args {self.args}):\n{read_log_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Stop the process; the port refuses connections on return."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        wait_for_port_closed(self.host, self.port, timeout=5.0)

    def restart(self) -> SmtpSink:
        """Stop, then start again on the same port."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove the temporary files this object created."""
        self.stop()
        if self._owns_dump_dir and self.dump_dir is not None:
            shutil.rmtree(self.dump_dir, ignore_errors=True)
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> SmtpSink:
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
        return f"<SmtpSink {self.host}:{self.port} {state} {' '.join(self.args)}>"

    # -- dumps -----------------------------------------------------------------------------

    def dumps(self) -> list[DumpedMessage]:
        """Transactions dumped so far, oldest first. Needs ``dump=True`` or ``dump_dir``.

        A transaction still in progress may show up with its headers only.
        """
        if self.dump_dir is None:
            raise RuntimeError("SmtpSink was created without dump=True or dump_dir")
        files = [path for path in self.dump_dir.rglob("*") if path.is_file()]
        files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
        return [self._parse_dump(path) for path in files]

    def message_ids(self) -> list[str]:
        """Message-ID headers of the dumped messages, oldest first (ones without skipped)."""
        return [dump.message_id for dump in self.dumps() if dump.message_id is not None]

    # -- internals -------------------------------------------------------------------------

    def _spawn(self) -> bool:
        """Start the process and wait for the port; False if it exited (e.g. port taken)."""
        command = [self.binary, *self.args, f"{self.host}:{self.port}", str(self.backlog)]
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            if port_accepts(self.host, self.port, timeout=0.5):
                self._process = process
                return True
            time.sleep(0.02)
        process.kill()
        process.wait(5)
        return False

    @staticmethod
    def _prepare_dump_dir(directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        nobody = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(directory, nobody.pw_uid, nobody.pw_gid)
        for parent in directory.resolve().parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                raise ValueError(
                    f"smtp-sink drops to {UNPRIVILEGED_USER!r} and cannot reach {directory}: "
                    f"{parent} is not searchable by others (pytest's tmp_path is 0700). "
                    "Use dump=True to get a directory under the system temp dir."
                )

    @staticmethod
    def _parse_dump(path: Path) -> DumpedMessage:
        raw = path.read_bytes()
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        message_id = headers.get("Message-ID")
        return DumpedMessage(
            path=path,
            mail_from=_strip_angle(str(headers.get("X-Mail-Args", ""))),
            rcpt_tos=tuple(_strip_angle(str(v)) for v in headers.get_all("X-Rcpt-Args") or []),
            message_id=None if message_id is None else str(message_id).strip(),
            raw=raw,
        )
