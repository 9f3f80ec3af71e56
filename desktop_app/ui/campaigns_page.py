"""The Campaigns page: every campaign with its state and progress, and what can be done to
the selected one (which buttons are enabled follows the core's lifecycle rules).

The table is read off the GUI thread every couple of seconds while the page is shown, and
at once when the core says a campaign changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer, Slot
from PySide6.QtGui import QBrush, QColor, QHideEvent, QPainter, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.campaigns.lifecycle import (
    CampaignAction,
    CampaignState,
    CampaignStateError,
    check_action,
    check_edit,
)
from desktop_app.core.campaigns.report import CampaignReport
from desktop_app.core.campaigns.schedule import describe_time
from desktop_app.core.events import CampaignChanged
from desktop_app.core.storage.campaigns import Campaign
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge, is_shutdown_error
from desktop_app.ui.campaign_editor import CampaignEditor
from desktop_app.ui.campaign_report import CampaignReportDialog
from desktop_app.ui.delivery_controller import DeliveryController
from desktop_app.ui.feedback import ERROR_STYLE, one_line
from desktop_app.ui.provider_dialog import labelled
from desktop_app.ui.schedule_dialog import ScheduleDialog
from desktop_app.ui.table_model import FlatTableModel

_Index = QModelIndex | QPersistentModelIndex
REFRESH_MS = 2000
#: (done, total) of a row, for the progress bar delegate.
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1
_STATE_COLOURS = {
    CampaignState.SENDING: QColor("#1565c0"),
    CampaignState.PAUSED: QColor("#ef6c00"),
    CampaignState.COMPLETED: QColor("#2e7d32"),
    CampaignState.CANCELLED: QColor("#757575"),
}
_INACTIVE_BAR = QColor("#9e9e9e")


@dataclass(frozen=True, slots=True)
class CampaignLine:
    """One row of the table: the campaign and its figures."""

    campaign: Campaign
    done: int
    total: int
    sent: int
    failed: int


def load_campaign_lines(workspace: Workspace) -> list[CampaignLine]:
    """Every campaign with its counts (blocking; one short read per started campaign).

    ``CampaignManager.progress()`` gives (done, total) only; the table also shows sent and
    failed, so this reads the same counts the progress is computed from."""
    lines = []
    for campaign in workspace.campaigns.all():
        counts = workspace.campaign_store.counts(campaign.id) if campaign.started else {}
        report = CampaignReport(campaign, counts, {}, ())
        lines.append(
            CampaignLine(
                campaign,
                done=report.done,
                total=report.total,
                sent=counts.get("sent", 0),
                failed=counts.get("failed", 0) + counts.get("bounced", 0),
            )
        )
    return lines


def action_allowed(campaign: Campaign, action: CampaignAction) -> bool:
    """Whether the core's lifecycle rules let ``action`` happen to ``campaign`` now."""
    try:
        if action is CampaignAction.EDIT:
            check_edit(campaign.name, campaign.state, campaign.started)
        else:
            check_action(campaign.name, campaign.state, action)
    except CampaignStateError:
        return False
    return True


def when_of(campaign: Campaign) -> str:
    if campaign.started_at is not None:
        return f"started {describe_time(campaign.started_at)}"
    if campaign.scheduled_at is not None:
        return f"at {describe_time(campaign.scheduled_at)}"
    return ""


class CampaignsModel(FlatTableModel):
    """The campaigns, newest figures first read; rows keep their place across refreshes."""

    columns = ("Name", "List", "State", "When", "Progress", "Sent", "Failed", "Note")
    NAME, LIST, STATE, WHEN, PROGRESS, SENT, FAILED, NOTE = range(8)

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.lines: list[CampaignLine] = []

    def row_total(self) -> int:
        return len(self.lines)

    def replace(self, lines: list[CampaignLine]) -> None:
        if [line.campaign.id for line in lines] == [line.campaign.id for line in self.lines]:
            # Same rows: update in place, so the selection and scroll position stay.
            self.lines = list(lines)
            if lines:
                last = self.index(len(lines) - 1, len(self.columns) - 1)
                self.dataChanged.emit(self.index(0, 0), last)
            return
        self.beginResetModel()
        self.lines = list(lines)
        self.endResetModel()

    def row_of(self, name: str) -> int:
        for row, line in enumerate(self.lines):
            if line.campaign.name == name:
                return row
        return -1

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        line = self.lines[index.row()]
        campaign = line.campaign
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return (
                campaign.name,
                campaign.list_name,
                campaign.state.value,
                when_of(campaign),
                f"{line.done}/{line.total}" if campaign.started else "",
                str(line.sent) if campaign.started else "",
                str(line.failed) if campaign.started else "",
                self._note(campaign),
            )[column]
        if role == PROGRESS_ROLE and column == self.PROGRESS and campaign.started:
            # A cancelled campaign's recipients are all "done"; its bar is drawn greyed so
            # it does not read as a full, successful send.
            return (line.done, line.total, campaign.state is not CampaignState.CANCELLED)
        if role == Qt.ItemDataRole.ForegroundRole and column in (self.STATE, self.NOTE):
            colour = _STATE_COLOURS.get(campaign.state)
            return QBrush(colour) if colour is not None else None
        if role == Qt.ItemDataRole.ToolTipRole and column in (self.STATE, self.NOTE):
            return self._note(campaign) or None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.SENT, self.FAILED):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    @staticmethod
    def _note(campaign: Campaign) -> str:
        if campaign.state is CampaignState.PAUSED and campaign.pause_reason:
            return campaign.pause_reason
        return ""


class ProgressDelegate(QStyledItemDelegate):
    """Draws (done, total) as a progress bar with "done/total" on it."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        value = index.data(PROGRESS_ROLE)
        if value is None:
            super().paint(painter, option, index)
            return
        done, total, active = value
        style = option.widget.style() if option.widget else QApplication.style()
        # The selection highlight first, so a selected row reads as selected.
        style.drawPrimitive(
            QStyle.PrimitiveElement.PE_PanelItemViewItem,
            option,
            painter,
            option.widget,
        )
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(3, 3, -3, -3)
        bar.minimum = 0
        bar.maximum = max(total, 1)
        bar.progress = min(done, bar.maximum)
        bar.text = f"{done}/{total}"
        bar.textVisible = True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        if not active:
            # Styles draw the chunk in the highlight colour whatever the state flags say.
            palette = QPalette(option.palette)
            palette.setColor(QPalette.ColorRole.Highlight, _INACTIVE_BAR)
            bar.palette = palette
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter)

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(max(hint.width(), 140), hint.height())


class CampaignsPage(QWidget):
    """Create, edit, send, schedule, pause, resume, cancel, delete campaigns; open reports."""

    def __init__(
        self,
        workspace: Workspace,
        bridge: CoreBridge,
        controller: DeliveryController | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._workspace = workspace
        self._bridge = bridge
        self._controller = controller
        self._loading = False
        self._reload_again = False
        self.editor: CampaignEditor | None = None
        self.schedule_dialog: ScheduleDialog | None = None
        self.report_dialog: CampaignReportDialog | None = None

        self.model = CampaignsModel(self)
        self.table = labelled(QTableView(), "Campaigns")
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(CampaignsModel.PROGRESS, ProgressDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(CampaignsModel.PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(CampaignsModel.PROGRESS, 150)
        header.setStretchLastSection(True)
        self.table.doubleClicked.connect(self._on_table_double_clicked)

        self.new_button = labelled(QPushButton("New…"), "New campaign")
        self.edit_button = labelled(QPushButton("Edit…"), "Edit campaign")
        self.send_button = labelled(QPushButton("Send now"), "Send now")
        self.schedule_button = labelled(QPushButton("Schedule…"), "Schedule")
        self.pause_button = labelled(QPushButton("Pause"), "Pause campaign")
        self.resume_button = labelled(QPushButton("Resume"), "Resume campaign")
        self.cancel_button = labelled(QPushButton("Cancel…"), "Cancel campaign")
        self.delete_button = labelled(QPushButton("Delete…"), "Delete campaign")
        self.report_button = labelled(QPushButton("Report…"), "Campaign report")
        #: Each button and the lifecycle action it needs (None: any selected campaign).
        self._button_actions: dict[QPushButton, CampaignAction | None] = {
            self.edit_button: CampaignAction.EDIT,
            self.send_button: CampaignAction.SEND,
            self.schedule_button: CampaignAction.SCHEDULE,
            self.pause_button: CampaignAction.PAUSE,
            self.resume_button: CampaignAction.RESUME,
            self.cancel_button: CampaignAction.CANCEL,
            self.delete_button: CampaignAction.DELETE,
            self.report_button: None,
        }
        self.new_button.clicked.connect(self.new_campaign)
        self.edit_button.clicked.connect(self.edit_selected)
        self.send_button.clicked.connect(self.send_selected)
        self.schedule_button.clicked.connect(self.schedule_selected)
        self.pause_button.clicked.connect(self.pause_selected)
        self.resume_button.clicked.connect(self.resume_selected)
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.report_button.clicked.connect(self.open_report)

        self.detail_label = labelled(QLabel(), "Campaign detail")
        self.detail_label.setWordWrap(True)
        self.detail_label.setStyleSheet("color: #8a4b00; background: #fff3e0; padding: 6px;")
        self.detail_label.setVisible(False)
        self.status_label = labelled(QLabel(), "Campaign status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.empty_note = QLabel("No campaigns yet. Click New… to write one.")

        # A column beside the table, as on the Providers page: nine buttons in a row made
        # the page wider than a laptop screen.
        buttons = QVBoxLayout()
        for widget in (self.new_button, self.edit_button):
            buttons.addWidget(widget)
        buttons.addSpacing(12)
        for widget in (
            self.send_button,
            self.schedule_button,
            self.pause_button,
            self.resume_button,
            self.cancel_button,
        ):
            buttons.addWidget(widget)
        buttons.addSpacing(12)
        for widget in (self.report_button, self.delete_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.table, 1)
        body.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty_note)
        layout.addLayout(body, 1)
        layout.addWidget(self.detail_label)
        layout.addWidget(self.status_label)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.reload)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.model.dataChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        bridge.campaign_changed.connect(self._on_bridge_campaign_changed)
        self._update_buttons()
        self.reload()

    # -- reading ---------------------------------------------------------------------------

    @Slot()
    def reload(self, select: str | None = None) -> None:
        """Read the campaigns off the GUI thread; a reload asked for meanwhile runs after."""
        if self._loading:
            self._reload_again = True
            return
        self._loading = True
        chosen = select or self.selected_name()

        def loaded(lines: list[CampaignLine]) -> None:
            self._loading = False
            self.model.replace(lines)
            self.empty_note.setVisible(not lines)
            if chosen and self.selected_name() != chosen and self.model.row_of(chosen) >= 0:
                self.table.selectRow(self.model.row_of(chosen))
            self._update_buttons()
            self._reload_if_asked()

        def failed(error: BaseException) -> None:
            self._loading = False
            if not is_shutdown_error(error):
                self._report_error(f"Could not read the campaigns: {one_line(error)}")
                self._reload_if_asked()

        self._bridge.call(load_campaign_lines, self._workspace, on_success=loaded, on_error=failed)

    def _reload_if_asked(self) -> None:
        if self._reload_again:
            self._reload_again = False
            self.reload()

    def selected(self) -> Campaign | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.lines[rows[0].row()].campaign if rows else None

    def selected_name(self) -> str | None:
        campaign = self.selected()
        return campaign.name if campaign else None

    def select(self, name: str) -> None:
        row = self.model.row_of(name)
        if row >= 0:
            self.table.selectRow(row)

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        campaign = self.selected()
        for button, action in self._button_actions.items():
            if campaign is None:
                button.setEnabled(False)
            else:
                button.setEnabled(action is None or action_allowed(campaign, action))
        self._show_detail(campaign)

    def _show_detail(self, campaign: Campaign | None) -> None:
        # A paused campaign says why right under the table: an automatic pause (too many
        # failures, a template error) needs the person's attention before they resume.
        if campaign is not None and campaign.state is CampaignState.PAUSED:
            reason = campaign.pause_reason or "paused"
            self.detail_label.setText(f"{campaign.name} — {reason}")
            self.detail_label.setVisible(True)
        else:
            self.detail_label.setVisible(False)

    # -- live ------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._timer.start()
        self.reload()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        self._timer.stop()

    @Slot(object)
    def _on_bridge_campaign_changed(self, event: CampaignChanged) -> None:
        if event.auto:
            self._report_error(f"{event.name}: {event.detail}")
        elif event.state == CampaignState.COMPLETED:
            self._report(f"{event.name} has completed.")
        self.reload()

    # -- actions ---------------------------------------------------------------------------

    @Slot()
    def new_campaign(self) -> None:
        self._open_editor(None)

    @Slot()
    def edit_selected(self) -> None:
        campaign = self.selected()
        if campaign is not None and action_allowed(campaign, CampaignAction.EDIT):
            self._open_editor(campaign)

    def _open_editor(self, campaign: Campaign | None) -> None:
        wake = self._controller.wake if self._controller is not None else None
        editor = CampaignEditor(
            self._workspace, self._bridge, campaign, on_mail_queued=wake, parent=self
        )
        editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        editor.saved.connect(self._on_editor_saved)
        editor.destroyed.connect(self._on_editor_destroyed)
        self.editor = editor
        editor.open()

    def _on_editor_saved(self, campaign: Campaign) -> None:
        self._report(f"Saved {campaign.name}.")
        self.reload(select=campaign.name)

    def _on_editor_destroyed(self, *_args: Any) -> None:
        self.editor = None

    @Slot()
    def send_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._act(self._workspace.campaigns.send, name, done=f"{name} is sending.", wake=True)

    @Slot()
    def schedule_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        dialog = ScheduleDialog(name, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.schedule(name, dialog.epoch()))
        dialog.destroyed.connect(lambda *_args: setattr(self, "schedule_dialog", None))
        self.schedule_dialog = dialog
        dialog.open()

    def schedule(self, name: str, at: float) -> None:
        def send_at(campaign_name: str) -> Campaign:
            return self._workspace.campaigns.send(campaign_name, at=at)

        self._act(send_at, name, done=f"{name} is scheduled for {describe_time(at)}.", wake=True)

    @Slot()
    def pause_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._act(self._workspace.campaigns.pause, name, done=f"{name} is paused.")

    @Slot()
    def resume_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._act(self._workspace.campaigns.resume, name, done=f"{name} resumed.", wake=True)

    @Slot()
    def cancel_selected(self) -> None:
        name = self.selected_name()
        if name is None or not self._confirm(
            "Cancel campaign",
            f"Cancel {name}? Mail not yet sent is dropped; what was sent stays sent.",
        ):
            return

        def cancelled(stopped: int) -> str:
            return f"{name} is cancelled; {stopped} waiting messages were stopped."

        self._act(self._workspace.campaigns.cancel, name, done=cancelled, wake=True)

    @Slot()
    def delete_selected(self) -> None:
        name = self.selected_name()
        if name is not None and self._confirm(
            "Delete campaign", f"Delete {name} and its report? This cannot be undone."
        ):
            self._act(self._workspace.campaigns.delete, name, done=f"{name} was deleted.")

    @Slot()
    def open_report(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        dialog = CampaignReportDialog(self._workspace, self._bridge, name, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_args: setattr(self, "report_dialog", None))
        self.report_dialog = dialog
        dialog.show()

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _act(
        self,
        function: Callable[..., Any],
        name: str,
        *,
        done: str | Callable[[Any], str],
        wake: bool = False,
    ) -> None:
        """Run a campaign action off the GUI thread, then say what happened and refresh."""

        def succeeded(result: Any) -> None:
            self._report(done(result) if callable(done) else done)
            if wake and self._controller is not None:
                self._controller.wake_campaigns()
            self.reload(select=name)

        def failed(error: BaseException) -> None:
            if not is_shutdown_error(error):
                self._report_error(one_line(error))
                self.reload(select=name)

        self._bridge.call(function, name, on_success=succeeded, on_error=failed)

    def _report(self, text: str) -> None:
        self.status_label.setStyleSheet("")
        self.status_label.setText(text)

    def _report_error(self, text: str) -> None:
        self.status_label.setStyleSheet(ERROR_STYLE)
        self.status_label.setText(text)

    @Slot(QModelIndex)
    def _on_table_double_clicked(self, _index: QModelIndex) -> None:
        campaign = self.selected()
        if campaign is None:
            return
        if action_allowed(campaign, CampaignAction.EDIT):
            self.edit_selected()
        else:
            self.open_report()
