"""Where Relaydesk's resource files are: icons, the desktop entry, the AppStream metainfo.

Qt-free, so that the command line, packaging scripts and tests can ask without loading Qt.
"""

from __future__ import annotations

from pathlib import Path

#: The reverse-DNS application id: the basename of the .desktop and .metainfo.xml files in
#: resources/linux, and what the window tells the desktop (QGuiApplication.desktopFileName)
#: so that the taskbar matches the running window to its launcher and icon.
APP_ID = "io.github.relaydesk.Relaydesk"
#: The icon's name in the hicolor theme (the desktop entry's ``Icon=``).
ICON_NAME = "relaydesk"
#: The PNG sizes rendered from the SVG by packaging/render_icons.py.
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

_HERE = Path(__file__).resolve().parent
# An installed wheel and a PyInstaller bundle carry the files next to this module
# (pyproject.toml maps the top-level resources/ to desktop_app/resources; the spec places
# them the same way). A checkout, run from source or installed editable, has them only in
# the top-level resources/, the one copy that is edited.
_PACKAGED = _HERE / "resources"
_CHECKOUT = _HERE.parent / "resources"


def resource_path(*parts: str) -> Path:
    """The path of a resource file, e.g. ``resource_path("linux", "x.desktop")``.

    The path is not checked: a caller that needs the file tests ``exists()`` itself.
    """
    base = _PACKAGED if _PACKAGED.is_dir() else _CHECKOUT
    return base.joinpath(*parts)


def app_icon_png(size: int) -> Path:
    """The app icon rendered at ``size`` x ``size`` pixels (one of ``ICON_SIZES``)."""
    return resource_path("icons", "hicolor", f"{size}x{size}", "apps", f"{ICON_NAME}.png")
