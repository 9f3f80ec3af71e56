"""One delivering Relaydesk per data directory.

Two engines on one SQLite outbox would each treat the other's leases as stale after a
restart. The lock is an OS file lock, so it disappears with the process, even on SIGKILL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import TracebackType

from desktop_app.core.errors import AlreadyRunningError

LOCK_FILENAME = "relaydesk.lock"


class InstanceLock:
    """An exclusive, non-blocking lock on ``<data dir>/relaydesk.lock``."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_FILENAME
        self._fd: int | None = None

    def acquire(self) -> None:
        if not self.try_acquire():
            raise AlreadyRunningError(
                f"another Relaydesk is already sending from {self._path.parent}"
            )

    def try_acquire(self) -> bool:
        """Take the lock if it is free: True if taken, False at once if another holds it.

        Never waits, and costs an open and a lock call, so a watching window can retry it
        every second. Other OS errors (an unreadable data folder) are raised.
        """
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows builds only
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
