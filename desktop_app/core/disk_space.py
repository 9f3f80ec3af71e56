"""A full disk: saying which one, and keeping a little room to finish cleanly (issue 14).

When the file system holding the data folder fills up, every writer (the engine's journal,
the health monitor, the alerter, the campaign runner...) fails at once. What a person
needs is one line naming the file system and the file, and a clean stop; what the outbox
needs is that mail already on the wire gets its outcome committed, or the next run would
send it again (the crash-recovery rules make it ``unknown``: possibly sent).

``DiskReserve`` is that room: a small file the delivery engine keeps in the data folder
while it runs and deletes the moment a commit fails for want of space, so the outcomes of
the transactions in flight still fit (the "emergency ballast" of CockroachDB and others).
It is best effort: another program may take the freed space first.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys
from pathlib import Path

from desktop_app.core.errors import DiskFullError

log = logging.getLogger(__name__)

RESERVE_FILENAME = "relaydesk.reserve"
#: Room for the outcomes of the transactions in flight when the disk fills: every commit
#: appends the pages it changes to SQLite's write-ahead log, a few pages per message (more
#: for large messages, whose overflow pages are rewritten when their row changes).
RESERVE_BYTES = 2 * 1024 * 1024
#: SQLite says "disk I/O error", not "disk full", when it cannot grow its ``-shm`` file;
#: with less free space than this next to the database, that is taken for a full disk.
NEARLY_FULL_BYTES = 256 * 1024

_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing parent)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def free_bytes(path: Path) -> int | None:
    """Bytes free for us on the file system holding ``path``; None when that cannot be said."""
    try:
        return shutil.disk_usage(mount_point(path)).free
    except OSError:
        return None


def disk_full(path: Path) -> DiskFullError:
    """The error for "cannot write ``path``: its disk is full", with the figures now."""
    return DiskFullError(path, mount_point(path), free_bytes(path))


def is_no_space(error: BaseException) -> bool:
    """ENOSPC or EDQUOT (a quota counts as full for the person it belongs to)."""
    return isinstance(error, OSError) and error.errno in _NO_SPACE


def log_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """In an ``except`` block of a task that tries again later: a bug gets its traceback,
    a full disk one quiet line (the engine, told through ``Database.on_disk_full``, stops
    and says it once; a traceback per task and tick buried that line, issue 14)."""
    error = sys.exc_info()[1]
    if error is not None and (isinstance(error, DiskFullError) or is_no_space(error)):
        logger.debug(message + ": %s", *args, error)
    else:
        logger.exception(message, *args)


def nearly_full(path: Path) -> bool:
    free = free_bytes(path)
    return free is not None and free < NEARLY_FULL_BYTES


class DiskReserve:
    """A file of ``size`` bytes next to the database, given up when the disk is full.

    Call it on a thread that may block (the engine's database thread).
    """

    def __init__(self, folder: Path, size: int = RESERVE_BYTES) -> None:
        self.path = folder / RESERVE_FILENAME
        self.size = size

    def ensure(self) -> None:
        """Make sure the reserve exists; ``DiskFullError`` when there is no room for it.

        Refusing to start then is deliberate: a run that began on a disk too full for the
        reserve could not finish the transactions it puts on the wire.
        """
        try:
            if self.path.stat().st_size >= self.size:
                return
        except FileNotFoundError:
            pass
        try:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                _allocate(descriptor, self.size)
            finally:
                os.close(descriptor)
        except OSError as exc:
            if not is_no_space(exc):
                # Best effort: a folder where it cannot be made (a file system that refuses
                # fallocate in some odd way) must not stop sending; only a full disk does.
                log.warning("no disk reserve at %s: %s", self.path, exc.strerror or exc)
                return
            self.path.unlink(missing_ok=True)  # what was allocated is better left free
            raise disk_full(self.path) from exc

    def discard(self) -> None:
        """Delete the reserve quietly (the engine stopped; the next start makes it again)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("could not delete the disk reserve %s: %s", self.path, exc.strerror)

    def release(self) -> bool:
        """Delete the reserve; True when that freed room."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:  # nothing to gain: say so in the log, once
            log.warning("could not free the disk reserve %s: %s", self.path, exc.strerror)
            return False
        log.info("the disk is full: freed the %d-byte reserve %s", self.size, self.path)
        return True


def _allocate(descriptor: int, size: int) -> None:
    """Really allocate ``size`` bytes: a sparse file would free nothing when deleted."""
    if hasattr(os, "posix_fallocate"):  # Linux and the BSDs; not macOS or Windows
        try:
            os.posix_fallocate(descriptor, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # the file system cannot
                raise
    chunk = b"\0" * 65536
    os.lseek(descriptor, 0, os.SEEK_SET)
    for _ in range(0, size, len(chunk)):
        os.write(descriptor, chunk)
    os.fsync(descriptor)
