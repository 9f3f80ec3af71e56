"""Finding server binaries, picking loopback ports and waiting for things to happen."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

LOOPBACK = "127.0.0.1"

# Debian installs daemons such as smtp-sink into /usr/sbin, which is not on a normal
# user's PATH; look there too so a developer does not need root's PATH to run the tests.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")

T = TypeVar("T")


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where a missing server is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_binary(name: str, debian_package: str) -> str:
    """Return the absolute path of executable ``name``, or end the test.

    In CI a missing binary fails the test (CI must never silently skip the real server);
    elsewhere the test is skipped with a reason that names the Debian package to install.
    """
    search_path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_EXTRA_BIN_DIRS])
    found = shutil.which(name, path=search_path)
    if found is not None:
        return found
    message = (
        f"{name!r} not found: install the Debian package {debian_package!r} "
        f"(apt-get install {debian_package})"
    )
    if in_ci():
        pytest.fail(f"{message}; CI must provide it (.ci/run installs it)", pytrace=False)
    pytest.skip(message)


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The port is released before returning, so another process may take it before the caller
    binds it; servers that start from this number retry on a bind failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until ``host:port`` accepts TCP connections; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        if port_accepts(host, port, timeout=0.5):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout}s")
        time.sleep(0.02)


def wait_for_port_closed(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until ``host:port`` refuses connections; raise ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    while port_accepts(host, port, timeout=0.5):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} still accepts connections after {timeout}s")
        time.sleep(0.02)


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that value.

    Raises ``TimeoutError`` (with ``message``) when it stays falsy for ``timeout`` seconds.
    Blocking: inside an ``async def`` test use :func:`wait_for_async` so the loop keeps running.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout}s: {predicate!r}")
        time.sleep(interval)


async def wait_for_async(
    predicate: Callable[[], T | None],
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "",
) -> T:
    """Like :func:`wait_for`, but sleeps with ``asyncio.sleep`` between polls."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"condition not met within {timeout}s: {predicate!r}")
        await asyncio.sleep(interval)


def read_log_tail(path: Path, limit: int = 4000) -> str:
    """Return the end of a server's log file for an error message ('' if there is none)."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""
