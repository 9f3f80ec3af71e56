"""Before the window opens on Linux/X11: are the system libraries Qt's xcb plugin needs there?

When one is missing, Qt aborts (exit 134) with "xcb-cursor0 or libxcb-cursor0 is needed"
whatever is really missing (on a minimal Debian it was libxcb-icccm4 and libxcb-keysyms1).
This asks the dynamic loader (``ldd``) about the plugin Qt would load, before any Qt object
exists, so the person reads which libraries are missing and the one apt line that adds them.
No Qt import here: it runs first, and the command line never needs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path

#: Every Debian/Ubuntu package Qt 6's xcb platform plugin links against (README, "Set up").
DEBIAN_PACKAGES = (
    "libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
    "libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0"
)
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def xcb_plugin() -> Path | None:
    """Qt's xcb platform plugin inside the installed PySide6, if there is one."""
    spec = find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    plugin = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def uses_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt would pick its X11 (xcb) plugin: Linux, and no other platform asked for."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    return environ.get("XDG_SESSION_TYPE", "") != "wayland"


def missing_libraries(plugin: Path) -> list[str]:
    """The shared libraries ``plugin`` needs that the loader cannot find (``ldd``)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []  # not glibc: let Qt say what it says
    try:
        report = subprocess.run(
            [ldd, str(plugin)], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(dict.fromkeys(_NOT_FOUND.findall(report)))


def debian_package(library: str) -> str:
    """The Debian package of a library's soname: libxcb-icccm.so.4 -> libxcb-icccm4."""
    base, _, version = library.partition(".so.")
    base = base.lower()
    return f"{base}-{version}" if base[-1:].isdigit() else f"{base}{version}"


def window_libraries_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """One line saying what the window lacks, or None when it can start (or we cannot tell)."""
    if not uses_xcb(environ):
        return None
    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    if not missing:
        return None
    packages = " ".join(debian_package(library) for library in missing)
    return (
        "the window cannot start: Qt's X11 plugin needs system libraries that are missing "
        f"({', '.join(missing)}); on Debian/Ubuntu: sudo apt-get install {packages} "
        "(README, 'Set up', lists every library the window needs)"
    )
