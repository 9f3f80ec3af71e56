"""The Campaigns page, its composer and its report, over a real workspace, loop thread and
files (no delivery: the state changes and counts come from the core's campaign store)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from desktop_app.core.events import CampaignChanged
from desktop_app.core.runtime import LoopThread
from desktop_app.core.storage.campaigns import CampaignDraft
from desktop_app.core.workspace import Workspace
from desktop_app.ui.bridge import CoreBridge
from desktop_app.ui.campaign_editor import CampaignEditor, parse_header_lines, placeholder_for
from desktop_app.ui.campaigns_page import PROGRESS_ROLE, CampaignsModel, CampaignsPage
from tests.support.qt_helpers import settle

WAIT_MS = 10_000
SUBSCRIBERS = (
    "email,name,first_name,city\n"
    "ann@example.com,Ann Lee,Ann,Oslo\n"
    "bob@example.com,Bob Ray,Bob,Rome\n"
    "cid@example.com,Cid Moe,Cid,Lima\n"
)


@pytest.fixture
def readers(workspace: Workspace, tmp_path: Path) -> str:
    """A list of three subscribers with custom columns first_name and city."""
    path = tmp_path / "readers.csv"
    path.write_text(SUBSCRIBERS, encoding="utf-8")
    workspace.create_list("Readers")
    workspace.import_list("Readers", path)
    return "Readers"


@dataclass
class Core:
    runtime: LoopThread
    bridge: CoreBridge


@pytest.fixture
def core() -> Core:
    """A started loop thread and its bridge; stopped by ``page`` (which needs them last)."""
    runtime = LoopThread()
    runtime.start()
    return Core(runtime, CoreBridge(runtime))


@pytest.fixture
def page(qtbot: QtBot, core: Core, workspace: Workspace, readers: str) -> Iterator[CampaignsPage]:
    """The page alone over the real workspace, with a running loop thread and bridge."""
    runtime, bridge = core.runtime, core.bridge
    shown = CampaignsPage(workspace, bridge, None)
    shown.resize(1000, 600)
    qtbot.addWidget(shown)
    with qtbot.waitExposed(shown):
        shown.show()
    settle(qtbot, bridge)
    yield shown
    if shown.editor is not None:
        shown.editor.discard_changes()  # the test is over: close without the unsaved prompt
    for dialog in (shown.editor, shown.report_dialog, shown.schedule_dialog):
        if dialog is not None:
            dialog.close()
    runtime.stop()
    # Answers cut short by the shutdown arrive as queued signals: deliver them while the
    # widgets exist, then delete the QObjects here, on the GUI thread (see conftest.py).
    QApplication.processEvents()
    for owned in (shown, bridge):
        owned.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def make_campaign(workspace: Workspace, name: str = "Spring") -> None:
    workspace.campaigns.create(
        CampaignDraft(
            name=name,
            list_name="Readers",
            from_address="news@example.com",
            subject="Hello {{ first_name }}",
            html="<p>Hi {{ first_name }} from {{ city }}</p>",
        )
    )


def click(qtbot: QtBot, button: QWidget) -> None:
    assert button.isEnabled(), f"{button.objectName()} is disabled"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def cell(page: CampaignsPage, name: str, column: int) -> Any:
    row = page.model.row_of(name)
    return page.model.index(row, column).data() if row >= 0 else None


def shown_and_selected(qtbot: QtBot, page: CampaignsPage, name: str) -> None:
    page.reload()
    qtbot.waitUntil(lambda: page.model.row_of(name) >= 0, timeout=WAIT_MS)
    page.select(name)
    assert page.selected_name() == name


def enabled_buttons(page: CampaignsPage) -> set[str]:
    buttons = {
        "edit": page.edit_button,
        "send": page.send_button,
        "schedule": page.schedule_button,
        "pause": page.pause_button,
        "resume": page.resume_button,
        "cancel": page.cancel_button,
        "delete": page.delete_button,
        "report": page.report_button,
    }
    return {key for key, button in buttons.items() if button.isEnabled()}


def wait_for_state(qtbot: QtBot, page: CampaignsPage, name: str, state: str) -> None:
    qtbot.waitUntil(lambda: cell(page, name, CampaignsModel.STATE) == state, timeout=WAIT_MS)


def open_editor(qtbot: QtBot, page: CampaignsPage) -> CampaignEditor:
    click(qtbot, page.new_button)
    editor = page.editor
    assert editor is not None and editor.isVisible()
    # The list is chosen and its columns read: the placeholders come from them.
    qtbot.waitUntil(lambda: "first_name" in editor.placeholder_names(), timeout=WAIT_MS)
    return editor


def test_a_campaign_is_written_with_a_live_preview(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace
) -> None:
    assert page.model.rowCount() == 0 and page.empty_note.isVisible()
    editor = open_editor(qtbot, page)
    assert editor.list_combo.currentText() == "Readers"
    assert editor.placeholder_names() == ["email", "name", "unsubscribe_url", "first_name", "city"]

    qtbot.keyClicks(editor.name_edit, "Spring")
    qtbot.keyClicks(editor.from_address_edit, "news@example.com")
    qtbot.keyClicks(editor.subject_edit, "Hello {{ first_name }}")
    editor.html_edit.setFocus()
    qtbot.keyClicks(editor.html_edit, "<p>Hi from ")
    # "Insert placeholder" goes where the cursor is, in the editor last focused.
    editor.insert_placeholder("city")
    assert editor.html_edit.toPlainText() == "<p>Hi from {{ city }}"
    qtbot.keyClicks(editor.html_edit, "</p>")

    # The preview follows the subscriber chosen in its combo.
    combo = editor.preview.subscriber_combo
    qtbot.waitUntil(lambda: combo.count() == 3, timeout=WAIT_MS)
    combo.setCurrentIndex(combo.findData("bob@example.com"))
    qtbot.waitUntil(
        lambda: editor.preview.subject_label.text() == "Subject: Hello Bob", timeout=WAIT_MS
    )
    assert "Hi from Rome" in editor.preview.html_view.toPlainText()
    assert "Hi from Rome" in editor.preview.text_view.toPlainText()
    assert editor.preview.error_text() == ""

    # A typo in a field name replaces the preview with the error and its line.
    qtbot.keyClick(editor.html_edit, Qt.Key.Key_Return)  # keyClicks aborts on "\n"
    qtbot.keyClicks(editor.html_edit, "<p>{{ frist_name }}</p>")
    qtbot.waitUntil(lambda: "frist_name" in editor.preview.error_text(), timeout=WAIT_MS)
    assert "line 2" in editor.preview.error_text()
    assert "<p>{{ frist_name }}</p>" in editor.preview.error_text()  # the line, quoted
    [tinted] = editor.html_edit.extraSelections()  # and tinted where it was written
    assert tinted.cursor.block().blockNumber() == 1
    assert editor.preview.stack.currentWidget() is editor.preview.error_label

    # Still saved as written: the error is in the preview, not a lock on the work.
    click(qtbot, editor.save_button)
    qtbot.waitUntil(lambda: cell(page, "Spring", CampaignsModel.STATE) == "draft", timeout=WAIT_MS)
    stored = workspace.campaigns.get("Spring")
    assert stored.subject == "Hello {{ first_name }}"
    assert stored.html == "<p>Hi from {{ city }}</p>\n<p>{{ frist_name }}</p>"
    assert cell(page, "Spring", CampaignsModel.LIST) == "Readers"


def test_a_hostile_template_in_the_live_preview_is_stopped_by_its_limit(
    qtbot: QtBot, page: CampaignsPage
) -> None:
    # Issue 14: the live preview runs under the same limits as the send; the window goes on.
    editor = open_editor(qtbot, page)
    qtbot.keyClicks(editor.subject_edit, "Hi")
    editor.html_edit.setPlainText(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    )
    qtbot.waitUntil(lambda: "steps" in editor.preview.error_text(), timeout=WAIT_MS)
    assert "the limit for one message" in editor.preview.error_text()
    editor.html_edit.setPlainText("<p>{{ '%999999999s'|format('x') }}</p>")
    qtbot.waitUntil(
        lambda: "more than the 10,000 a template may use" in editor.preview.error_text(),
        timeout=WAIT_MS,
    )
    editor.html_edit.setPlainText("<p>Hi {{ first_name }}</p>")
    qtbot.waitUntil(lambda: editor.preview.error_text() == "", timeout=WAIT_MS)
    assert "Hi Ann" in editor.preview.html_view.toPlainText()


def test_closing_the_composer_asks_before_discarding_unsaved_changes(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace, modal: Any
) -> None:
    # Issue 15: Close (and Escape) threw edits away without asking.
    editor = open_editor(qtbot, page)
    assert not editor.has_unsaved_changes()  # the list and sender filled in are no edits
    qtbot.keyClicks(editor.name_edit, "Autumn")
    qtbot.keyClicks(editor.subject_edit, "Hello {{ first_name }}")
    editor.html_edit.setPlainText("<p>Hi</p>")
    if not editor.from_address_edit.text():
        qtbot.keyClicks(editor.from_address_edit, "news@example.com")
    seen: dict[str, str] = {}

    def answer(button: str) -> Callable[[Any], None]:
        def press(box: Any) -> None:
            assert isinstance(box, QMessageBox)
            seen["text"] = box.text()
            modal.click(box, button)

        return press

    modal.drive(answer("Cancel"))  # Escape: asked, and Cancel keeps editing
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    modal.check()
    assert seen["text"] == "Save the changes to this campaign before closing?"
    assert editor.isVisible() and editor.name_edit.text() == "Autumn"

    modal.drive(answer("Save"))  # the window's close button: asked, and Save saves
    editor.close()
    modal.check()
    qtbot.waitUntil(lambda: page.editor is None or not page.editor.isVisible(), timeout=WAIT_MS)
    assert [c.name for c in workspace.campaigns.all()] == ["Autumn"]

    editor = open_editor(qtbot, page)  # a new one, edited, then Close and Discard
    qtbot.keyClicks(editor.name_edit, "Winter")
    modal.drive(answer("Discard"))
    click(qtbot, editor.close_button)
    modal.check()
    qtbot.waitUntil(lambda: page.editor is None or not page.editor.isVisible(), timeout=WAIT_MS)
    assert [c.name for c in workspace.campaigns.all()] == ["Autumn"]

    editor = open_editor(qtbot, page)  # untouched: closes without a word
    click(qtbot, editor.close_button)
    qtbot.waitUntil(lambda: page.editor is None or not page.editor.isVisible(), timeout=WAIT_MS)


def test_editing_keeps_headers_and_attachments(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace, tmp_path: Path
) -> None:
    make_campaign(workspace)
    shown_and_selected(qtbot, page, "Spring")
    click(qtbot, page.edit_button)
    editor = page.editor
    assert editor is not None
    assert editor.name_edit.text() == "Spring"
    qtbot.waitUntil(
        lambda: editor.preview.subject_label.text() == "Subject: Hello Ann", timeout=WAIT_MS
    )
    attachment = tmp_path / "menu.pdf"
    attachment.write_bytes(b"%PDF-1.4 menu")
    editor.attachments.add_files([attachment])
    qtbot.waitUntil(lambda: editor.attachments.list.count() == 1, timeout=WAIT_MS)
    editor.headers_edit.setPlainText("X-Campaign: spring\n")
    editor.body_tabs.setCurrentWidget(editor.text_edit)  # a person clicks the tab...
    editor.text_edit.setFocus()  # ...and the editor
    editor.insert_placeholder("first_name")
    assert editor.text_edit.toPlainText() == "{{ first_name }}"
    editor.headers_edit.setPlainText("no colon here")
    click(qtbot, editor.save_button)
    assert "Name: value" in editor.status_label.text()  # one line, nothing saved
    editor.headers_edit.setPlainText("X-Campaign: spring\n")
    click(qtbot, editor.save_button)
    qtbot.waitUntil(lambda: page.editor is None, timeout=WAIT_MS)
    stored = workspace.campaigns.get("Spring")
    assert stored.headers == {"X-Campaign": "spring"}
    assert stored.text == "{{ first_name }}"
    files = workspace.campaign_store.attachments(stored.id)
    assert [(a.filename, a.content, a.content_type) for a in files] == [
        ("menu.pdf", b"%PDF-1.4 menu", "application/pdf")
    ]


def test_buttons_follow_the_campaign_state(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace, modal: Any
) -> None:
    make_campaign(workspace)
    shown_and_selected(qtbot, page, "Spring")
    assert enabled_buttons(page) == {"edit", "send", "schedule", "cancel", "delete", "report"}

    click(qtbot, page.send_button)
    wait_for_state(qtbot, page, "Spring", "sending")
    # Sending began: the recipients were copied, none is done yet.
    assert cell(page, "Spring", CampaignsModel.PROGRESS) == "0/3"
    progress = page.model.index(0, CampaignsModel.PROGRESS).data(PROGRESS_ROLE)
    assert progress == (0, 3, True)
    assert enabled_buttons(page) == {"pause", "cancel", "report"}

    click(qtbot, page.pause_button)
    wait_for_state(qtbot, page, "Spring", "paused")
    assert enabled_buttons(page) == {"resume", "cancel", "report"}
    assert page.detail_label.isVisible()
    assert "paused by you" in page.detail_label.text()

    click(qtbot, page.resume_button)
    wait_for_state(qtbot, page, "Spring", "sending")
    assert not page.detail_label.isVisible()

    modal.drive(lambda dialog: modal.click(dialog, "Yes"))
    click(qtbot, page.cancel_button)
    modal.check()
    wait_for_state(qtbot, page, "Spring", "cancelled")
    assert enabled_buttons(page) == {"delete", "report"}
    assert "3 waiting messages were stopped" in page.status_label.text()

    modal.drive(lambda dialog: modal.click(dialog, "Yes"))
    click(qtbot, page.delete_button)
    modal.check()
    qtbot.waitUntil(lambda: page.model.rowCount() == 0, timeout=WAIT_MS)
    assert workspace.campaigns.all() == []


def test_a_refused_action_is_one_line_and_the_page_goes_on(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace
) -> None:
    make_campaign(workspace)
    shown_and_selected(qtbot, page, "Spring")
    workspace.campaigns.send("Spring")  # from elsewhere (the command line): the row is stale
    page.send_selected()
    qtbot.waitUntil(lambda: "cannot be sent" in page.status_label.text(), timeout=WAIT_MS)
    assert "\n" not in page.status_label.text()
    wait_for_state(qtbot, page, "Spring", "sending")


def test_an_automatic_pause_says_why(
    qtbot: QtBot, page: CampaignsPage, core: Core, workspace: Workspace
) -> None:
    make_campaign(workspace)
    campaign = workspace.campaigns.send("Spring")
    reason = "paused automatically: 3 of 3 messages failed permanently"
    workspace.campaign_store.pause(campaign.id, reason)
    # The runner's event makes the page read again at once (and say so in its status).
    core.bridge.publish(CampaignChanged(campaign.id, "Spring", "paused", reason, auto=True))
    wait_for_state(qtbot, page, "Spring", "paused")
    assert cell(page, "Spring", CampaignsModel.NOTE) == reason
    assert reason in page.status_label.text()
    page.select("Spring")
    assert reason in page.detail_label.text()


def test_scheduling_asks_for_a_future_local_time(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace
) -> None:
    make_campaign(workspace)
    shown_and_selected(qtbot, page, "Spring")
    click(qtbot, page.schedule_button)
    dialog = page.schedule_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.zone_label.text().startswith("Local time: ")
    when = dialog.epoch()
    dialog.accept()
    wait_for_state(qtbot, page, "Spring", "scheduled")
    assert workspace.campaigns.get("Spring").scheduled_at == when
    assert cell(page, "Spring", CampaignsModel.WHEN).startswith("at ")
    assert "pause" in enabled_buttons(page)


def test_the_report_shows_counts_and_exports_csv(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace, tmp_path: Path
) -> None:
    make_campaign(workspace)
    workspace.campaigns.send("Spring")
    workspace.campaigns.cancel("Spring")
    shown_and_selected(qtbot, page, "Spring")
    click(qtbot, page.report_button)
    dialog = page.report_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=WAIT_MS)
    assert dialog.counts_shown() == {"cancelled": 3}
    assert dialog.summary_labels["Progress"].text() == "3 of 3 recipients done"
    assert dialog.summary_labels["State"].text() == "cancelled"

    assert dialog.protect_check.isChecked()  # formulas escaped by default (csv_cells)
    target = tmp_path / "spring.csv"
    dialog.export_to(target)
    qtbot.waitUntil(lambda: "Exported 3" in dialog.status_label.text(), timeout=WAIT_MS)
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["email"] for row in rows) == [
        "ann@example.com",
        "bob@example.com",
        "cid@example.com",
    ]
    assert {row["state"] for row in rows} == {"cancelled"}

    dialog.export_to(tmp_path / "missing" / "spring.csv")  # a folder that does not exist
    qtbot.waitUntil(lambda: "Exported" not in dialog.status_label.text(), timeout=WAIT_MS)
    assert dialog.status_label.text()


def test_placeholders_and_headers_as_written() -> None:
    assert placeholder_for("first_name") == "{{ first_name }}"
    assert placeholder_for("first name") == "{{ fields['first name'] }}"
    assert parse_header_lines("X-A: 1\n\nX-B:two: three\n") == {"X-A": "1", "X-B": "two: three"}


def test_send_now_delivers_through_the_running_engine(
    qtbot: QtBot,
    workspace: Workspace,
    readers: str,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole way: the page's Send now, the runner woken, the engine, a real server."""
    server = scripted_smtp()
    workspace.add_provider(gui_helpers.loopback_provider("Local", server.port))
    make_campaign(workspace)
    stack = make_stack()
    stack.controller.start()
    # The runner would find the campaign at its next tick anyway; the page must not wait.
    woken: list[bool] = []
    wake = stack.controller.wake_campaigns
    monkeypatch.setattr(stack.controller, "wake_campaigns", lambda: (woken.append(True), wake()))
    shown = CampaignsPage(workspace, stack.bridge, stack.controller)
    # A window of its own, owned (and deleted) by the main window at the end of the test.
    shown.setParent(stack.window, Qt.WindowType.Window)
    with qtbot.waitExposed(shown):
        shown.show()
    shown_and_selected(qtbot, shown, "Spring")
    click(qtbot, shown.send_button)
    qtbot.waitUntil(
        lambda: cell(shown, "Spring", CampaignsModel.STATE) == "completed", timeout=30_000
    )
    assert woken == [True]
    assert cell(shown, "Spring", CampaignsModel.PROGRESS) == "3/3"
    assert cell(shown, "Spring", CampaignsModel.SENT) == "3"
    assert cell(shown, "Spring", CampaignsModel.FAILED) == "0"
    received = server.wait_for_messages(3)
    assert sorted(to for m in received for to in m.rcpt_tos) == [
        "ann@example.com",
        "bob@example.com",
        "cid@example.com",
    ]
    assert any(b"Subject: Hello Bob" in m.data for m in received)


def test_a_new_campaign_is_saved_before_its_test_send(
    qtbot: QtBot, page: CampaignsPage, workspace: Workspace
) -> None:
    editor = open_editor(qtbot, page)
    click(qtbot, editor.save_button)  # no name yet: refused in one line, nothing stored
    qtbot.waitUntil(lambda: "Campaign name must be" in editor.status_label.text(), timeout=WAIT_MS)
    assert workspace.campaigns.all() == []
    qtbot.keyClicks(editor.name_edit, "Trial")
    qtbot.keyClicks(editor.from_address_edit, "news@example.com")
    qtbot.keyClicks(editor.subject_edit, "Hi {{ name }}")
    qtbot.keyClicks(editor.text_edit, "Hello")
    editor.send_test_to(["me@example.com", " you@example.com"])

    def test_queued() -> None:
        assert "Test queued to 2 addresses" in editor.status_label.text()

    qtbot.waitUntil(test_queued, timeout=WAIT_MS)
    assert editor.isVisible()  # a test send keeps the composer open
    assert workspace.campaigns.get("Trial").state.value == "draft"
    assert workspace.outbox_counts().queued == 2
    editor.send_test_to(["not an address"])  # saved again (an update), then refused
    qtbot.waitUntil(lambda: "not an address" in editor.status_label.text())
    assert [c.name for c in workspace.campaigns.all()] == ["Trial"]
