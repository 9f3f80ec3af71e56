"""Regenerate the README screenshots from the real widgets, offscreen.

    QT_QPA_PLATFORM=offscreen python packaging/screenshots.py [--out resources/screenshots]

It starts demo mode (three local SMTP servers, throwaway data), lets mail flow for a few
seconds, then grabs the Providers page, the provider dialog, the Outbox, the Campaigns page
with its composer and report, the Lists page, the first-run wizard and the Mailboxes page to
PNG. For the Dashboard it first writes a day of made-up health history for the demo providers
into the real rollup table (an outage, a maintenance window, errors;
``core/health/sample_history``), since a demo that just started has only a few minutes of its
own.

The wizard is filled with example.com servers and never finished: nothing is saved, no
password reaches a keyring, and "Test connection" is not pressed (it would connect to the
example hosts). The Mailboxes page gets example mailboxes and bounces written straight into
the demo database once delivery has stopped, so no mailbox is ever opened and no keyring read.
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
from sqlalchemy import select

from desktop_app.core.bounces.mailboxes import MailboxConfig, MailboxRole
from desktop_app.core.bounces.reading import BouncedRecipient, BounceReading, UnsubscribeRequest
from desktop_app.core.demo import DemoProviders
from desktop_app.core.health import maintenance
from desktop_app.core.health.sample_history import Event, SampleProvider, write_minutes
from desktop_app.core.models import MessageState, Security
from desktop_app.core.runtime import LoopThread
from desktop_app.core.storage.schema import CampaignRow, OutboxRow
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.campaign_editor import CampaignEditor
from desktop_app.ui.campaign_report import CampaignReportDialog
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.first_run import FirstRunWizard
from desktop_app.ui.first_run.wizard import FINISH_PAGE
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.maintenance_dialog import MaintenanceDialog
from desktop_app.ui.provider_dialog import ProviderDialog, ProviderForm


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


def fill_provider(
    form: ProviderForm,
    name: str,
    host: str,
    security: Security,
    username: str,
    *,
    per_hour: int = 0,
    sender_domains: str = "",
) -> None:
    """Type a provider into the wizard's form (the port follows the security chosen)."""
    form.name.setText(name)
    form.host.setText(host)
    form.security.setCurrentIndex(form.security.findData(security))
    form.username.setText(username)
    form.password.setText("example-password")  # only in the field: Finish is never pressed
    form.rates["per_hour"].setValue(per_hour)
    form.sender_domains.setText(sender_domains)
    assert form.config() is not None, form.error.text()


def grab_first_run_wizard(
    app: QApplication, workspace: Workspace, bridge: CoreBridge, out: Path
) -> None:
    """The wizard's provider and finish pages, filled in and left without Finish."""
    wizard = FirstRunWizard(workspace, bridge)
    wizard.resize(800, 0)  # as tall as its pages need
    wizard.show()
    pump(app, 0.3)
    wizard.identity_page.from_name.setText("Ada Lovelace")
    wizard.identity_page.from_address.setText("ada@example.com")
    wizard.next()
    fill_provider(
        wizard.first_page.form,
        "Example Mail",
        "smtp.example.com",
        Security.STARTTLS,
        "ada@example.com",
        per_hour=500,
        sender_domains="example.com",
    )
    pump(app, 0.3)
    wizard.grab().save(str(out / "first_run_provider.png"))
    wizard.next()
    fill_provider(
        wizard.backup_page.form,
        "Backup relay",
        "mail.example.net",
        Security.TLS,
        "ada@example.com",
        sender_domains="example.com",
    )
    wizard.next()
    assert wizard.currentId() == FINISH_PAGE
    wizard.resize(800, 380)  # the summary is short: no tall empty page
    pump(app, 0.3)
    wizard.grab().save(str(out / "first_run_finish.png"))
    QTimer.singleShot(0, wizard.reject)  # Cancel: nothing was saved
    pump(app, 0.2)
    wizard.deleteLater()


def write_mailbox_sample(workspace: Workspace) -> None:
    """Example mailboxes, bounces, an unsubscribe and two messages left for a person, written
    into the demo database (only once delivery stopped: a running app would open them)."""
    now = time.time()
    mailboxes = [
        MailboxConfig(
            name="bounces",
            role=MailboxRole.BOUNCES,
            host="imap.example.com",
            port=993,
            security=Security.TLS,
            username="bounces@example.com",
        ),
        MailboxConfig(
            name="bounces:Steady Mail (demo)",
            role=MailboxRole.BOUNCES,
            host="imap.example.net",
            port=143,
            security=Security.STARTTLS,
            username="steady-bounces@example.net",
            provider_name="Steady Mail (demo)",
        ),
        MailboxConfig(
            name="unsubscribe",
            role=MailboxRole.UNSUBSCRIBE,
            host="imap.example.com",
            port=993,
            security=Security.TLS,
            username="unsubscribe@example.com",
        ),
        MailboxConfig(
            name="seed",
            role=MailboxRole.SEED,
            host="imap.example.com",
            port=993,
            security=Security.TLS,
            username="seed@example.com",
        ),
    ]
    stored = [workspace.mailboxes.save(mailbox) for mailbox in mailboxes]
    for mailbox in stored:
        if mailbox.role is not MailboxRole.SEED and mailbox.id is not None:
            workspace.mailboxes.record_check(mailbox.id, None, now=now - 40)
    ids = {mailbox.name: mailbox.id for mailbox in stored}
    with workspace.database.read() as connection:
        campaign_uid, campaign_id = connection.execute(
            select(CampaignRow.uid, CampaignRow.id).where(CampaignRow.name == "Spring newsletter")
        ).one()
        sent = connection.execute(
            select(OutboxRow.message_id, OutboxRow.recipients)
            .where(
                OutboxRow.campaign_id == campaign_id,
                OutboxRow.state == MessageState.SENT.value,
            )
            .order_by(OutboxRow.id)
            .limit(5)
        ).all()
    replies = (
        (True, "5.1.1", "smtp; 550 5.1.1 <{0}>: Recipient address rejected: User unknown"),
        (False, "4.2.2", "smtp; 452 4.2.2 <{0}>: Mailbox full"),
        (True, "5.1.1", "smtp; 550 5.1.1 The email account that you tried to reach does not exist"),
        (True, "5.7.1", "smtp; 554 5.7.1 <{0}>: Relay access denied"),
        (False, "4.4.7", "delivery time expired: the recipient's server did not answer"),
    )
    for number, ((message_id, recipients), (permanent, status, detail)) in enumerate(
        zip(sent, replies, strict=False)
    ):
        address = recipients[0]
        reading = BounceReading(
            recipients=(BouncedRecipient(address, permanent, status, detail.format(address)),),
            original_message_id=message_id,
            bounce_message_id=f"<bounce-{number}@mx.example.org>",
        )
        workspace.bounces.apply_bounce(
            reading,
            bounce_key=f"screenshot-bounce-{number}",
            mailbox_id=ids["bounces"],
            soft_limit=3,
            now=now - 3000 + number * 420,
        )
    workspace.bounces.apply_unsubscribe(
        UnsubscribeRequest("reader042@example.org", campaign_uid, None),
        bounce_key="screenshot-unsubscribe",
        mailbox_id=ids["unsubscribe"],
        now=now - 600,
    )
    for uid, (sender, subject) in enumerate(
        (
            ("reader019@example.org", "Automatic reply: out of office until Monday"),
            ("reader088@example.org", "Re: Reader 88, spring is here in Kraków"),
        ),
        start=1,
    ):
        mailbox_id = ids["bounces"] if uid == 1 else ids["unsubscribe"]
        assert mailbox_id is not None
        workspace.bounces.add_unrecognised(mailbox_id, 1, uid, sender, subject)


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
        grab_first_run_wizard(app, workspace, bridge, out)
        controller.stop()  # no mailbox watcher may open the example mailboxes below
        write_mailbox_sample(workspace)
        window.resize(1560, 720)  # the mailboxes table is wide: every column in view
        window.navigation.setCurrentRow(7)
        window.mailboxes.reload()
        pump(app, 5.5)  # the reload, and "Engine stopped" gone from the status bar
        window.mailboxes.mailboxes_table.selectRow(0)
        pump(app, 0.3)
        window.grab().save(str(out / "mailboxes.png"))
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
