"""The Outbox page and its lazy model: model rules, paging, filters, retry and cancel."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt
from pytestqt.qtbot import QtBot

from desktop_app.core.models import MessageState
from desktop_app.core.storage.outbox_views import OutboxFilter, OutboxViews
from desktop_app.core.workspace import Workspace
from desktop_app.ui.outbox_model import PAGE_SIZE, OutboxModel
from desktop_app.ui.outbox_page import OutboxPage

OUTBOX_PAGE = 2


def show_outbox_page(qtbot: QtBot, stack: Any) -> OutboxPage:
    window = stack.window
    with qtbot.waitActive(window):
        window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.pages.currentWidget() is window.outbox
    return window.outbox


def column(model: OutboxModel, col: int) -> list[Any]:
    return [model.index(row, col).data() for row in range(model.rowCount())]


def states_in_db(workspace: Workspace, ids: list[int]) -> list[MessageState]:
    by_id = {entry.outbox_id: entry.state for entry in OutboxViews(workspace.database).entries(ids)}
    return [by_id[i] for i in ids]


# -- the model on its own --------------------------------------------------------------------


def test_model_passes_qt_model_tester(
    workspace: Workspace, gui_helpers: Any, qapp: Any, qtmodeltester: Any
) -> None:
    ids = gui_helpers.queue_messages(workspace, 300)
    workspace.outbox.cancel(ids[:20])
    model = OutboxModel(OutboxViews(workspace.database))
    assert model.rowCount() == 300
    qtmodeltester.check(model)
    # The tester stays attached: filtering and live updates must keep the model consistent.
    model.set_filter(OutboxFilter(states=(MessageState.CANCELLED,)))
    assert model.rowCount() == 20
    model.set_filter(OutboxFilter())
    workspace.outbox.cancel(ids[100:110])
    for outbox_id in ids[100:110]:
        model.note_changed(_changed(outbox_id))
    model._flush_updates()
    assert column(model, 0)[100:110] == ["cancelled"] * 10


def _changed(outbox_id: int) -> Any:
    from desktop_app.core.events import MessageStateChanged

    return MessageStateChanged(outbox_id=outbox_id, message_id="", state=MessageState.CANCELLED)


def test_model_loads_a_page_at_a_time(workspace: Workspace, gui_helpers: Any, qapp: Any) -> None:
    gui_helpers.queue_messages(workspace, 1200)
    model = OutboxModel(OutboxViews(workspace.database))
    assert model.rowCount() == PAGE_SIZE == 500
    assert model.canFetchMore(QModelIndex())
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 1000
    model.fetchMore(QModelIndex())
    assert model.rowCount() == 1200
    assert not model.canFetchMore(QModelIndex())
    assert column(model, 2)[:2] == ["Newsletter 0", "Newsletter 1"]
    assert column(model, 2)[-1] == "Newsletter 1199"


# -- the page, over the real stack -----------------------------------------------------------


def test_page_model_passes_model_tester_while_rows_arrive_from_the_loop_thread(
    workspace: Workspace, gui_helpers: Any, make_stack: Any, qtbot: QtBot, qtmodeltester: Any
) -> None:
    gui_helpers.queue_messages(workspace, 300)
    stack = make_stack()
    model = stack.window.outbox.model
    qtmodeltester.check(model)  # stays attached while the answers come in
    qtbot.waitUntil(lambda: model.rowCount() == 300)
    page = show_outbox_page(qtbot, stack)
    qtbot.waitUntil(lambda: page.summary.text() == "300 messages match")


def test_page_loads_more_only_when_scrolled_to_the_end(
    workspace: Workspace, gui_helpers: Any, make_stack: Any, qtbot: QtBot
) -> None:
    gui_helpers.queue_messages(workspace, 1200)
    stack = make_stack()
    page = show_outbox_page(qtbot, stack)
    model = page.model
    qtbot.waitUntil(lambda: model.rowCount() == 500)
    qtbot.waitUntil(lambda: page.summary.text() == "1,200 messages match")
    qtbot.wait(100)  # nothing else asks for more while the end is out of sight
    assert model.rowCount() == 500
    assert model.canFetchMore(QModelIndex())

    page.table.scrollToBottom()
    qtbot.waitUntil(lambda: model.rowCount() == 1000)
    page.table.scrollToBottom()
    qtbot.waitUntil(lambda: model.rowCount() == 1200)
    qtbot.waitUntil(lambda: not model.canFetchMore(QModelIndex()))
    assert column(model, 1)[-1] == "reader01199@example.test"


def test_filter_by_state_and_search_text(
    workspace: Workspace, gui_helpers: Any, make_stack: Any, qtbot: QtBot
) -> None:
    newsletters = gui_helpers.queue_messages(workspace, 40)
    invoices = gui_helpers.queue_messages(workspace, 5, subject="Invoice")
    workspace.outbox.cancel([*newsletters[:3], invoices[0]])
    stack = make_stack()
    page = show_outbox_page(qtbot, stack)
    qtbot.waitUntil(lambda: page.model.rowCount() == 45)

    # State: the combo box, by keyboard.
    page.state_filter.setFocus()
    qtbot.keyClick(page.state_filter, Qt.Key.Key_Home)
    while page.state_filter.currentText() != "Cancelled":
        qtbot.keyClick(page.state_filter, Qt.Key.Key_Down)
    qtbot.waitUntil(lambda: page.model.rowCount() == 4)
    assert set(column(page.model, 0)) == {"cancelled"}
    qtbot.waitUntil(lambda: page.summary.text() == "4 messages match")

    # Text, within the state: typed into the search box (applied once typing pauses).
    qtbot.keyClicks(page.search, "invoice")
    qtbot.waitUntil(lambda: page.model.rowCount() == 1)
    assert column(page.model, 2) == ["Invoice 0"]
    qtbot.waitUntil(lambda: page.summary.text() == "1 message matches")

    # Back to all states: every invoice, whatever its state; recipients are searched too.
    qtbot.keyClick(page.state_filter, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: page.model.rowCount() == 5)
    assert column(page.model, 2) == [f"Invoice {n}" for n in range(5)]
    page.search.clear()
    qtbot.keyClicks(page.search, "reader00007")
    qtbot.waitUntil(lambda: page.model.rowCount() == 1)
    assert column(page.model, 1) == ["reader00007@example.test"]


def test_cancel_then_retry_a_selection_changes_the_outbox(
    workspace: Workspace, gui_helpers: Any, make_stack: Any, qtbot: QtBot
) -> None:
    ids = gui_helpers.queue_messages(workspace, 10)
    stack = make_stack()
    page = show_outbox_page(qtbot, stack)
    qtbot.waitUntil(lambda: page.model.rowCount() == 10)
    assert not page.cancel_button.isEnabled()

    # Rows 2..4: a click, then a shift-click, as a person selects.
    table = page.table
    qtbot.mouseClick(
        table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=table.visualRect(page.model.index(2, 1)).center(),
    )
    qtbot.mouseClick(
        table.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.ShiftModifier,
        table.visualRect(page.model.index(4, 1)).center(),
    )
    assert page.selected_ids() == ids[2:5]
    assert page.cancel_button.isEnabled() and page.retry_button.isEnabled()

    with qtbot.wait_signal(page.outbox_changed):
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    assert states_in_db(workspace, ids[:6]) == [
        MessageState.QUEUED,
        MessageState.QUEUED,
        *[MessageState.CANCELLED] * 3,
        MessageState.QUEUED,
    ]
    qtbot.waitUntil(lambda: column(page.model, 0)[2:5] == ["cancelled"] * 3)
    assert column(page.model, 0)[5] == "queued"

    # Retry now works on the same selection; moving the selection meanwhile changes nothing.
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    table.selectionModel().select(
        page.model.index(8, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    qtbot.waitUntil(lambda: states_in_db(workspace, ids[2:5]) == [MessageState.QUEUED] * 3)
    qtbot.waitUntil(lambda: column(page.model, 0)[2:5] == ["queued"] * 3)
    assert states_in_db(workspace, ids) == [MessageState.QUEUED] * 10
