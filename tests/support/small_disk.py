"""A real small file system (tmpfs) that a test fills up: ENOSPC for real, not mocked.

Mounting needs root (CAP_SYS_ADMIN); ``small_disk_or_skip`` skips elsewhere, but under CI
(``CI=true``, root on the same machine kind) a disk that cannot be mounted is a failure.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.servers import in_ci

FILLER = "filler"


class SmallDisk:
    """A tmpfs of ``size`` mounted at ``mount_point``; ``fill()`` takes the room left."""

    def __init__(self, mount_point: Path, size: str = "16m") -> None:
        self.mount_point = mount_point
        self.size = size

    @property
    def filler(self) -> Path:
        return self.mount_point / FILLER

    def mount(self) -> None:
        self.mount_point.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs",
             str(self.mount_point)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip

    def unmount(self) -> None:
        result = subprocess.run(["umount", str(self.mount_point)], capture_output=True, check=False)
        if result.returncode != 0:  # a process of the test still has a file open there
            subprocess.run(
                ["umount", "-l", str(self.mount_point)], capture_output=True, check=False
            )

    def free(self) -> int:
        return shutil.disk_usage(self.mount_point).free

    def fill(self, leave: int = 0) -> None:
        """Write the filler until ENOSPC (or until only ``leave`` bytes are free)."""
        descriptor = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while (room := self.free() - leave) > 0:
                try:
                    os.write(descriptor, b"\0" * min(room, 1 << 20))
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
        finally:
            os.close(descriptor)

    def make_room(self) -> None:
        self.filler.unlink(missing_ok=True)


@contextmanager
def small_disk_or_skip(mount_point: Path, size: str = "16m") -> Iterator[SmallDisk]:
    """A mounted SmallDisk, unmounted afterwards; skipped (failed under CI) without root."""
    disk = SmallDisk(mount_point, size)
    why = None
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root"
    elif shutil.which("mount") is None:
        why = "no mount(8)"
    else:
        try:
            disk.mount()
        except subprocess.CalledProcessError as exc:
            why = f"cannot mount a tmpfs here: {exc.stderr.strip()}"
    if why is not None:
        if in_ci():
            pytest.fail(f"{why} (CI runs as root and must run this test)")
        pytest.skip(why)
    try:
        yield disk
    finally:
        disk.unmount()
