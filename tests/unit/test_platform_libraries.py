"""The window's system libraries are checked before Qt aborts over them (issue 15 item 9).

On a minimal Debian the window died with exit 134 and Qt's "xcb-cursor0 or libxcb-cursor0
is needed" while libxcb-icccm4 and libxcb-keysyms1 were what was missing. The loader
(``ldd``) is asked about the real plugin of the installed PySide6.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.platform_libraries import (
    DEBIAN_PACKAGES,
    debian_package,
    missing_libraries,
    uses_xcb,
    window_libraries_problem,
    xcb_plugin,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("library", "package"),
    [
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxcb-render-util.so.0", "libxcb-render-util0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
    ],
)
def test_a_library_names_its_debian_package(library: str, package: str) -> None:
    assert debian_package(library) == package


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
        ({"XDG_SESSION_TYPE": "wayland"}, "linux", False),
        ({}, "darwin", False),
        ({}, "win32", False),
    ],
)
def test_only_an_x11_start_is_checked(
    environ: dict[str, str], platform: str, expected: bool
) -> None:
    assert uses_xcb(environ, platform) is expected


def test_the_window_says_which_libraries_are_missing_in_one_line(tmp_path: Path) -> None:
    plugin = xcb_plugin()
    assert plugin is not None, "PySide6 without its xcb plugin"
    missing = missing_libraries(plugin)
    environ = {
        k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "XDG_SESSION_TYPE")
    }
    if not missing:
        # Everything is there (a desktop machine): nothing to say, the window may start.
        assert window_libraries_problem(environ) is None
        return
    # This machine lacks some (CI has no X11 libraries): the command says so and stops
    # before Qt, instead of Qt's abort and its hint about xcb-cursor0.
    result = subprocess.run(
        [sys.executable, "-m", "desktop_app", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
        env={**environ, "DISPLAY": ":77"},
    )  # fmt: skip
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("relaydesk: error: the window cannot start")
    for library in missing:
        assert library in lines[0] and debian_package(library) in lines[0]
        assert debian_package(library) in [*DEBIAN_PACKAGES.split(), "libx11-xcb1", "libxcb1"]
