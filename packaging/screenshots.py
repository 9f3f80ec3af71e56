"""Regenerate the README screenshots from the real widgets, offscreen.

    QT_QPA_PLATFORM=offscreen python packaging/screenshots.py [--out resources/screenshots]

It starts demo mode (three local SMTP servers, throwaway data), lets mail flow for a few
seconds, then grabs the Providers page, the provider dialog and the Outbox to PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from desktop_app.core.demo import DemoProviders
from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.provider_dialog import ProviderDialog


def pump(app: QApplication, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="resources/screenshots")
    parser.add_argument("--seconds", type=float, default=6.0, help="let mail flow this long")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    app = QApplication(sys.argv)
    demo = DemoProviders.start()
    workspace = Workspace.open(demo.data_dir)
    demo.populate(workspace)
    runtime = LoopThread()
    runtime.start()
    bridge = CoreBridge(runtime)
    controller = DeliveryController(workspace, bridge)
    settings = QSettings(str(demo.data_dir / "screens.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workspace, bridge, controller, demo=True, settings=settings)
    window.resize(1200, 720)
    window.show()
    controller.start()
    try:
        pump(app, args.seconds)
        window.navigation.setCurrentRow(3)
        window.providers.table.selectRow(0)
        pump(app, 0.5)
        window.grab().save(str(out / "providers.png"))
        window.navigation.setCurrentRow(2)
        window.outbox.model.refresh()
        pump(app, 0.5)
        window.grab().save(str(out / "outbox.png"))
        window.navigation.setCurrentRow(0)
        pump(app, 1.2)
        window.grab().save(str(out / "dashboard.png"))
        provider = window.providers.model.provider_at(1)
        dialog = ProviderDialog(bridge, window.providers.model.names(), provider, parent=window)
        dialog.show()
        pump(app, 0.3)
        dialog.grab().save(str(out / "provider_dialog.png"))
        QTimer.singleShot(0, dialog.close)
        pump(app, 0.2)
    finally:
        window.quit()
        controller.stop()
        runtime.stop()
        workspace.close()
        demo.stop()
        window.deleteLater()
        app.processEvents()
    print(f"screenshots written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
