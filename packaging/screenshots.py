"""Regenerate the README screenshots from the real widgets, offscreen.

    QT_QPA_PLATFORM=offscreen python packaging/screenshots.py [--out resources/screenshots]

It starts demo mode (three local SMTP servers, throwaway data), lets mail flow for a few
seconds, then grabs the Providers page, the provider dialog, the Outbox, the Campaigns page
with its composer and report, and the Lists page to PNG. For the
Dashboard it first writes a day of made-up health history for the demo providers into the
real rollup table (an outage, a maintenance window, errors; ``core/health/sample_history``),
since a demo that just started has only a few minutes of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QSettings, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from desktop_app.core.demo import DemoProviders
from desktop_app.core.health import maintenance
from desktop_app.core.health.sample_history import Event, SampleProvider, write_minutes
from desktop_app.core.runtime import LoopThread
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.campaign_editor import CampaignEditor
from desktop_app.ui.campaign_report import CampaignReportDialog
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.maintenance_dialog import MaintenanceDialog
from desktop_app.ui.provider_dialog import ProviderDialog


def pump(app: QApplication, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


HOUR = 3600.0


def write_demo_history(workspace: Workspace, hours: float = 24.0) -> None:
    """A day of health history for the demo providers, up to the minute before now."""
    now = time.time()
    end = now - now % 60 - 60  # the running monitor writes the current minute itself
    outage = end - 5.5 * HOUR
    window = (end - 14 * HOUR, end - 12.5 * HOUR)
    profiles = {
        "Flaky Mail (demo)": {
            "latency_ms": 140.0,
            "sends_per_minute": 30.0,
            "error_shares": {"transient_after_data": 0.01, "ambiguous": 0.003},
            "events": (Event("outage", outage, outage + 40 * 60),),
        },
        "Steady Mail (demo)": {
            "latency_ms": 85.0,
            "latency_noise": 0.12,
            "sends_per_minute": 24.0,
            "error_shares": {"recipient_permanent": 0.012, "recipient_transient": 0.004},
            "events": (Event("maintenance", *window),),
        },
        "Slow Mail (demo)": {
            "latency_ms": 420.0,
            "sends_per_minute": 6.0,
            "error_shares": {"content_rejected": 0.01},
            "events": (Event("unwatched", end - 20 * HOUR, end - 19 * HOUR),),
        },
    }
    samples = []
    for provider in workspace.list_providers():
        profile: dict[str, Any] = profiles.get(provider.name, {})
        samples.append(SampleProvider(uid=provider.uid, name=provider.name, **profile))
    workspace.add_maintenance(
        "Steady Mail (demo)", maintenance.once_window(*window, note="TLS certificate rotation")
    )
    write_minutes(workspace.database, samples, start=end - hours * HOUR, end=end)


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
    write_demo_history(workspace)
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
        dashboard = window.dashboard
        dashboard.refresh_figures()
        pump(app, 2.0)  # the charts' first read, the figures table
        # The pointer on the error chart during the outage: cursor and exact values shown.
        errors = dashboard.charts.errors
        _x, (bottom, top) = errors.view.viewRange()
        at = errors.view.mapViewToScene(QPointF(time.time() - 5.2 * HOUR, (bottom + top) / 2))
        QTest.mouseMove(dashboard.charts.viewport(), dashboard.charts.mapFromScene(at))
        pump(app, 0.3)
        window.grab().save(str(out / "dashboard.png"))
        provider = window.providers.model.provider_at(1)
        dialog = ProviderDialog(bridge, window.providers.model.names(), provider, parent=window)
        dialog.show()
        pump(app, 0.3)
        dialog.grab().save(str(out / "provider_dialog.png"))
        QTimer.singleShot(0, dialog.close)
        pump(app, 0.2)
        window.navigation.setCurrentRow(4)
        window.alerts.reload()
        pump(app, 0.5)
        window.grab().save(str(out / "alerts.png"))
        steady = window.providers.model.provider_at(2)
        maintenance = MaintenanceDialog(workspace, bridge, steady.name, parent=window)
        maintenance.show()
        pump(app, 0.5)
        maintenance.grab().save(str(out / "maintenance_dialog.png"))
        QTimer.singleShot(0, maintenance.close)
        pump(app, 0.2)
        window.navigation.setCurrentRow(1)
        pump(app, 20.0)  # the campaign's mail queues behind the demo's sample messages
        window.campaigns.reload()
        pump(app, 1.0)
        window.campaigns.table.selectRow(1)  # the campaign that is sending: its actions show
        pump(app, 0.3)
        window.grab().save(str(out / "campaigns.png"))
        editor = CampaignEditor(
            workspace, bridge, workspace.campaigns.get("Summer offers (draft)"), parent=window
        )
        editor.resize(1100, 700)
        editor.show()
        pump(app, 1.5)  # the list's columns, a sample subscriber, the first preview
        editor.grab().save(str(out / "campaign_editor.png"))
        QTimer.singleShot(0, editor.close)
        pump(app, 0.2)
        report = CampaignReportDialog(workspace, bridge, "Spring newsletter", parent=window)
        report.show()
        pump(app, 1.0)
        report.grab().save(str(out / "campaign_report.png"))
        QTimer.singleShot(0, report.close)
        pump(app, 0.2)
        window.navigation.setCurrentRow(5)
        window.lists.reload()
        pump(app, 1.0)
        window.grab().save(str(out / "lists.png"))
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
