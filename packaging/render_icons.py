"""Render the app icon's PNG sizes from its SVG, offscreen.

    python packaging/render_icons.py

The SVG (resources/icons/hicolor/scalable/apps/relaydesk.svg) is the source; the PNGs are
committed because Qt's window icon, the Linux icon theme and Windows/macOS icon formats all
want fixed sizes, and rendering at build time would make every build depend on QtSvg.
Run it again after changing the SVG.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Before Qt loads: no display is needed to draw into an image.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

REPO_ROOT = Path(__file__).resolve().parent.parent
HICOLOR = REPO_ROOT / "resources" / "icons" / "hicolor"
ICON_NAME = "relaydesk"
# The sizes desktops ask an icon theme for (freedesktop hicolor), plus 512 for app stores.
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def render(renderer: QSvgRenderer, size: int, target: Path) -> None:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    target.parent.mkdir(parents=True, exist_ok=True)
    # The format follows from the ".png" suffix (PySide6's stubs and runtime disagree on
    # the type of an explicit format argument).
    if not image.save(str(target)):
        raise OSError(f"could not write {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hicolor", type=Path, default=HICOLOR, help="icon theme directory")
    args = parser.parse_args(argv)
    source = args.hicolor / "scalable" / "apps" / f"{ICON_NAME}.svg"
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(source))
    if not renderer.isValid():
        print(f"render_icons: {source} is not a valid SVG", file=sys.stderr)
        return 1
    for size in SIZES:
        target = args.hicolor / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        render(renderer, size, target)
        print(f"wrote {os.path.relpath(target)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
