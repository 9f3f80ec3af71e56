"""The main window: navigation, sending control, offline banner, tray and close behaviour."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QSystemTrayIcon,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.events import EngineStatusChanged
from desktop_app.core.models import OutboxCounts
from desktop_app.core.wording import count_of, waits
from desktop_app.core.workspace import Workspace
from desktop_app.ui.alerts_page import AlertsPage
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.campaigns_page import CampaignsPage
from desktop_app.ui.compose_page import ComposePage
from desktop_app.ui.dashboard_page import DashboardPage
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.lists_page import ListsPage
from desktop_app.ui.mailboxes_page import MailboxesPage
from desktop_app.ui.network_watch import NetworkWatch
from desktop_app.ui.outbox_page import OutboxPage
from desktop_app.ui.provider_states import ProviderStates
from desktop_app.ui.providers_page import ProvidersPage
from desktop_app.ui.tray import Tray, all_unusable, health_detail, overall_health

# Ctrl+1.. follow this order; new pages go last so the shortcuts people learned stay.
PAGES = (
    "Dashboard",
    "Campaigns",
    "Outbox",
    "Providers",
    "Alerts",
    "Lists",
    "Compose",
    "Mailboxes",
)
REFRESH_MS = 1000
#: How long a problem stays in the banner (and the status bar) before others may replace it.
PROBLEM_MS = 15000
#: How long the outbox must stay empty before the tray says so (one notice per backlog).
DRAIN_QUIET_MS = 20_000


class MainWindow(QMainWindow):
    """Dashboard, Campaigns, Outbox, Providers, Alerts, Lists, Compose and Mailboxes pages
    around one delivery service."""

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        controller: DeliveryController,
        *,
        demo: bool = False,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__()
        self._workspace = workspace
        self._bridge = bridge
        self._controller = controller
        self._settings = settings or QSettings()
        self._demo = demo
        self._counts = OutboxCounts()
        self._quitting = False
        self._refresh_pending = False
        title = "Relaydesk"
        if demo:
            title += " — DEMO (local test providers, throwaway data)"
        self.setWindowTitle(title)

        # One copy of the providers' live states for the Providers page, the Dashboard and
        # the tray, so that they say the same word; it follows the change feed, which this
        # window follows through the bridge (changes made by other processes too).
        self.provider_states = ProviderStates(workspace, bridge, self)
        self._unfollow_changes = bridge.follow_changes(workspace.changes)
        workspace.changes.start()
        self.dashboard = DashboardPage(workspace, bridge, states=self.provider_states)
        self.compose = ComposePage(workspace, bridge)
        self.outbox = OutboxPage(workspace, bridge)
        self.providers = ProvidersPage(workspace, bridge, states=self.provider_states)
        self.alerts = AlertsPage(workspace, bridge)
        self.lists = ListsPage(workspace, bridge)
        self.campaigns = CampaignsPage(workspace, bridge, controller)
        self.mailboxes = MailboxesPage(workspace, bridge)
        self.pages = QStackedWidget()
        self.navigation = QListWidget()
        self.navigation.setAccessibleName("Navigation")
        self.navigation.setMaximumWidth(170)
        for name, page in zip(
            PAGES,
            (
                self.dashboard,
                self.campaigns,
                self.outbox,
                self.providers,
                self.alerts,
                self.lists,
                self.compose,
                self.mailboxes,
            ),
            strict=True,
        ):
            self.navigation.addItem(name)
            self.pages.addWidget(page)
        self.navigation.currentRowChanged.connect(self.pages.setCurrentIndex)
        # In a narrow window the list was squeezed until "Campaigns" was cut off.
        self.navigation.setMinimumWidth(
            self.navigation.sizeHintForColumn(0) + 2 * self.navigation.frameWidth() + 8
        )
        self.navigation.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setAccessibleName("Status banner")
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setStyleSheet("padding: 6px; background: palette(alternate-base);")
        self.demo_banner = QLabel(
            "Demo mode: three local SMTP servers stand in for providers (one healthy, one slow, "
            "one that fails now and then). Nothing leaves this computer."
        )
        self.demo_banner.setObjectName("demo_banner")
        self.demo_banner.setWordWrap(True)
        self.demo_banner.setVisible(demo)
        self.demo_banner.setStyleSheet(
            "padding: 6px; background: palette(highlight); color: palette(highlighted-text);"
        )

        body = QHBoxLayout()
        body.addWidget(self.navigation)
        body.addWidget(self.pages, 1)
        central = QWidget()
        column = QVBoxLayout(central)
        column.addWidget(self.demo_banner)
        column.addWidget(self.banner)
        column.addLayout(body, 1)
        self.setCentralWidget(central)

        self.send_action = QAction("Pause sending", self)
        self.send_action.setShortcut(QKeySequence("Ctrl+P"))
        self.send_action.triggered.connect(self.toggle_sending)
        toolbar = QToolBar("Sending")
        toolbar.setObjectName("sending_toolbar")
        toolbar.addAction(self.send_action)
        self.addToolBar(toolbar)
        for number, name in enumerate(PAGES, start=1):
            action = QAction(name, self)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.triggered.connect(
                lambda _checked=False, row=number - 1: self.navigation.setCurrentRow(row)
            )
            self.addAction(action)
        quit_action = QAction("Quit", self)
        # The platform's Quit key where it has one; Windows (and offscreen) have none.
        quit_action.setShortcuts(
            QKeySequence.keyBindings(QKeySequence.StandardKey.Quit) or [QKeySequence("Ctrl+Q")]
        )
        quit_action.triggered.connect(self.quit)
        self.addAction(quit_action)

        self.engine_label = QLabel()
        self.engine_label.setAccessibleName("Sending state")
        self.statusBar().addPermanentWidget(self.engine_label)

        self.tray = Tray(self)
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray.show()
        self.network = NetworkWatch(self)
        self.network.changed.connect(self._update_health)

        self.provider_states.changed.connect(self._update_health)
        # A provider added, removed or reordered, here or elsewhere: the Dashboard follows now.
        self.providers.model.modelReset.connect(self._on_providers_shown)
        self.providers.model.rowsMoved.connect(self._on_providers_shown)
        # The tray speaks for the alert rules (thresholds, once until rearmed, rate-limited),
        # not for every raw failover or state change.
        bridge.alert_raised.connect(self.tray.on_alert)
        bridge.alert_resolved.connect(self.tray.on_alert_resolved)
        bridge.engine_status_changed.connect(self._on_bridge_engine_status_changed)
        controller.state_changed.connect(self._on_controller_state_changed)
        # The toolbar said "Pause sending" next to "Stopped" until the first change.
        self._show_controller_state(controller.state)
        controller.failed.connect(self.show_problem)
        controller.disk_full.connect(self.show_disk_full)
        controller.took_over.connect(self._on_controller_took_over)
        self.providers.providers_changed.connect(self._on_providers_changed)
        self.lists.lists_changed.connect(self.campaigns.reload)
        self.compose.message_queued.connect(controller.wake)
        self.compose.message_queued.connect(self.outbox.expect_new_messages)
        self.outbox.outbox_changed.connect(controller.wake)

        self._drain_timer = QTimer(self)
        self._drain_timer.setSingleShot(True)
        self._drain_timer.setInterval(DRAIN_QUIET_MS)
        self._drain_timer.timeout.connect(self._on_drain_timer_timeout)
        self._failed_before_backlog = 0
        self._counts_seen = False
        self._problem_timer = QTimer(self)
        self._problem_timer.setSingleShot(True)
        self._problem_timer.setInterval(PROBLEM_MS)
        self._problem_timer.timeout.connect(self._on_problem_timer_timeout)
        # While it runs, a notice ("Took over sending ...") is not replaced by "Engine started".
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.setInterval(PROBLEM_MS)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.navigation.setCurrentRow(int(str(self._settings.value("window/page", 0))))
        self._restore_geometry()
        self.refresh()

    # -- periodic refresh ------------------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        """Counts come from the database on the loop thread, never on this one."""
        if self._refresh_pending:
            return
        self._refresh_pending = True
        self._bridge.call(
            self._workspace.outbox_counts,
            on_success=self._show_counts,
            on_error=self._on_refresh_error,
        )

    def _show_counts(self, counts: OutboxCounts) -> None:
        self._refresh_pending = False
        if self._counts.waiting == 0 and counts.waiting > 0:
            if not self._drain_timer.isActive():  # a new backlog, not the next batch of one
                # The first counts have no "before": the failures so far are history.
                before = self._counts if self._counts_seen else counts
                self._failed_before_backlog = before.failed
            self._drain_timer.stop()
        self._counts_seen = True
        drained = self._counts.waiting > 0 and counts.waiting == 0
        self._counts = counts
        self.dashboard.show_counts(counts)
        self.dashboard.show_providers(self.providers.model.names())
        self.outbox.update_summary()
        if drained:
            # Said once the outbox stays empty for a while: a campaign goes out in batches,
            # and "Outbox empty" after each of them was noise.
            self._drain_timer.start()
        self._update_health()

    @Slot()
    def _on_drain_timer_timeout(self) -> None:
        if self._counts.waiting == 0:
            failed_meanwhile = self._counts.failed - self._failed_before_backlog
            self.tray.on_drained(self.tray.health, failed_meanwhile)

    def _on_refresh_error(self, error: BaseException) -> None:
        self._refresh_pending = False
        if is_shutdown_error(error):
            return  # the app is closing: cut-off requests are not a problem to show
        self.show_problem(str(error))

    @Slot()
    def _on_providers_shown(self) -> None:
        self.dashboard.show_providers(self.providers.model.names())
        self._update_health()

    @Slot()
    def _update_health(self) -> None:
        model = self.providers.model
        states = {
            provider.name: self.provider_states.word_for(provider)
            for provider in (model.provider_at(row) for row in range(model.rowCount()))
        }
        offline = not self.network.online
        all_down = all_unusable(states)
        health = overall_health(states, paused=self._controller.state == "paused", offline=offline)
        waiting = self._counts.waiting
        if offline:
            self._show_banner(
                f"Offline: {count_of(waiting, 'message')} {waits(waiting)} in the outbox and "
                "go out when the network returns."
            )
        elif all_down and waiting:
            self._show_banner(
                f"All providers are unreachable: {count_of(waiting, 'message')} "
                f"{waits(waiting)} in the outbox and go out as soon as one comes back."
            )
        elif not states:
            self._show_banner("No providers yet: add one on the Providers page (Ctrl+4).")
        else:
            self._show_banner("")
        self.tray.set_health(health, health_detail(health, waiting, states))

    def _show_banner(self, text: str) -> None:
        if self.banner.property("disk_full") or (text and self.banner.property("problem")):
            return  # a problem the user must read stays until they act
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    @Slot(str)
    def show_problem(self, text: str) -> None:
        """A clear message in the window; the app keeps running."""
        if self.banner.property("disk_full"):
            # The full disk is why sending stopped and stays the banner; this goes below.
            self.statusBar().showMessage(text, PROBLEM_MS)
            return
        self.banner.setProperty("problem", True)
        self.banner.setText(text)
        self.banner.setVisible(True)
        self.statusBar().showMessage(text, PROBLEM_MS)
        # One timer, restarted: a singleShot per problem let an older one clear the flag of
        # a newer problem early, and fired into a deleted window after it closed.
        self._problem_timer.start()

    @Slot(str)
    def show_disk_full(self, text: str) -> None:
        """Sending stopped on a full disk: one banner that stays (no dialog, no timer).

        Every writer meets a full disk at once, and again on each try to start sending;
        each time the same banner gets the newest text (the free space), never a second
        banner or a dialog (issue 14). It goes when sending starts again.
        """
        self._problem_timer.stop()
        self.banner.setProperty("problem", True)
        self.banner.setProperty("disk_full", True)
        self.banner.setText(f"{text}. Start sending again once there is room.")
        self.banner.setVisible(True)
        self.statusBar().clearMessage()

    def _on_problem_timer_timeout(self) -> None:
        self.banner.setProperty("problem", False)

    # -- sending control -------------------------------------------------------------------

    @Slot()
    def toggle_sending(self) -> None:
        # Pausing a watching window means: do not take over when the other Relaydesk stops.
        if self._controller.state in ("sending", "watching"):
            self._controller.pause()
        else:
            self._controller.start()

    @Slot(str)
    def _on_controller_state_changed(self, state: str) -> None:
        if state == "sending" and self.banner.property("disk_full"):
            # Started again (there may be room now): a full disk again says so again.
            self.banner.setProperty("disk_full", False)
            self.banner.setProperty("problem", False)
        if state != "sending" and self._notice_timer.isActive():
            self._notice_timer.stop()  # "Took over sending" would now be wrong
            self.statusBar().clearMessage()
        self._show_controller_state(state)
        self._update_health()

    @Slot(str)
    def _on_controller_took_over(self, text: str) -> None:
        self.statusBar().showMessage(text, PROBLEM_MS)
        self._notice_timer.start()

    def _show_controller_state(self, state: str) -> None:
        self.send_action.setText(
            "Pause sending" if state in ("sending", "watching") else "Start sending"
        )
        self.engine_label.setText(
            {
                "sending": "Sending",
                "paused": "Paused",
                "stopped": "Stopped",
                "watching": "Watching (another Relaydesk is sending)",
            }[state]
        )

    @Slot()
    def _on_providers_changed(self) -> None:
        self._controller.reload_providers()
        self._update_health()

    @Slot(object)
    def _on_bridge_engine_status_changed(self, event: EngineStatusChanged) -> None:
        if self._notice_timer.isActive():
            return  # "Engine started" right after a takeover would hide why it started
        self.statusBar().showMessage(f"Engine {event.detail}", 5000)

    # -- window life -----------------------------------------------------------------------

    def _restore_geometry(self) -> None:
        geometry = self._settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            # 1100 x 700 where it fits; on a small screen, most of it (never off its edges).
            available = self.screen().availableGeometry()
            self.resize(
                min(1100, available.width() * 9 // 10), min(700, available.height() * 9 // 10)
            )
        state = self._settings.value("window/state")
        if state is not None:
            self.restoreState(state)

    def _save_geometry(self) -> None:
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/state", self.saveState())
        self._settings.setValue("window/page", self.navigation.currentRow())
        self._settings.sync()

    def quit(self) -> None:
        self._quitting = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save_geometry()
        pending = self._counts.waiting
        sending = self._controller.state == "sending"
        if not self._quitting and pending and self._controller.state == "paused":
            # Paused with mail waiting: quitting loses nothing, but the person may have
            # forgotten the pause; the tray cannot "keep sending" what is paused.
            answer = QMessageBox.question(
                self,
                "Mail is waiting",
                f"{count_of(pending, 'message')} {waits(pending)} in the outbox and sending "
                "is paused. Quit anyway? Nothing is lost: it goes out when sending resumes.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        elif not self._quitting and pending and sending and self.tray.isVisible():
            box = QMessageBox(
                QMessageBox.Icon.Question,
                "Mail is still being sent",
                f"{count_of(pending, 'message')} {'is' if pending == 1 else 'are'} still waiting. "
                "Keep sending in the tray, or quit? "
                "Quitting loses nothing: the outbox resumes on the next start.",
                parent=self,
            )
            keep = box.addButton("Keep sending in the tray", QMessageBox.ButtonRole.AcceptRole)
            quit_button = box.addButton("Quit", QMessageBox.ButtonRole.DestructiveRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            clicked = box.clickedButton()
            box.deleteLater()
            if clicked is keep:
                event.ignore()
                self.hide()
                self.tray.notify("Still sending", "Relaydesk keeps sending from the tray")
                return
            if clicked is not quit_button:
                event.ignore()
                return
        self._timer.stop()
        self._notice_timer.stop()
        self._unfollow_changes()
        self._controller.stop()
        self.tray.hide()
        event.accept()
        app = QApplication.instance()
        if app is not None:
            app.quit()
