"""The maintenance windows dialog as a person uses it, on the real stack (loop thread and all)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QDateTime, Qt
from PySide6.QtWidgets import QDialog
from pytestqt.qtbot import QtBot

from desktop_app.core.events import ProviderStateChanged
from desktop_app.core.health.maintenance import describe, weekly_window
from desktop_app.core.models import BreakerState, MaintenanceKind, ProviderLiveState
from desktop_app.core.provider_state import state_word
from desktop_app.core.workspace import Workspace
from desktop_app.ui.maintenance_dialog import MaintenanceDialog
from desktop_app.ui.providers_model import state_label
from tests.support.qt_helpers import settle

STORED = weekly_window(0, 5 * 60, 45, "UTC", "backups")


@pytest.fixture
def stack_with_provider(workspace: Workspace, gui_helpers: Any, make_stack: Any) -> Any:
    workspace.add_provider(gui_helpers.loopback_provider("primary", 2525))
    workspace.add_provider(gui_helpers.loopback_provider("backup", 2526, priority=1))
    workspace.add_maintenance("primary", STORED)
    return make_stack()


@pytest.fixture
def dialog(stack_with_provider: Any, qtbot: QtBot) -> MaintenanceDialog:
    stack = stack_with_provider
    form = MaintenanceDialog(stack.workspace, stack.bridge, "primary", parent=stack.window)
    qtbot.addWidget(form)
    with qtbot.waitActive(form):
        form.show()
        form.activateWindow()
    qtbot.waitUntil(lambda: len(form.windows) == 1)
    return form


def listed(dialog: MaintenanceDialog) -> list[str]:
    return [dialog.window_list.item(row).text() for row in range(dialog.window_list.count())]


def retype(qtbot: QtBot, line: Any, text: str) -> None:
    qtbot.keyClick(line, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(line, text)


def expect(dialog: MaintenanceDialog, *, valid: bool, says: str = "") -> None:
    assert dialog.add_button.isEnabled() is valid, dialog.error.text()
    if valid:
        assert dialog.error.text() == ""
    else:
        assert says and says in dialog.error.text(), dialog.error.text()
        assert "\n" not in dialog.error.text()


def test_add_one_off_and_weekly_windows_and_remove_one(
    dialog: MaintenanceDialog, stack_with_provider: Any, qtbot: QtBot, tmp_path: Path
) -> None:
    workspace = stack_with_provider.workspace
    changes: list[bool] = []
    dialog.windows_changed.connect(lambda: changes.append(True))
    assert listed(dialog) == [describe(workspace.list_maintenance("primary")["primary"][0])]
    assert not dialog.remove_button.isEnabled()  # nothing selected

    # One-off: the start and end rows show, the weekly ones do not.
    assert dialog.kind.currentText() == "One-off"
    assert dialog.start.isVisible() and dialog.end.isVisible()
    assert not dialog.duration.isVisible() and not dialog.timezone.isVisible()
    start = QDateTime.fromSecsSinceEpoch(1_900_000_000)
    dialog.start.setDateTime(start)
    dialog.end.setDateTime(start.addSecs(-60))
    expect(dialog, valid=False, says="the window must end after it starts")
    dialog.end.setDateTime(start.addSecs(2 * 3600))
    qtbot.keyClicks(dialog.note, "datacenter move")
    expect(dialog, valid=True)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialog.windows) == 2)
    once = workspace.list_maintenance("primary")["primary"][1]
    assert (once.kind, once.starts_at, once.ends_at, once.note) == (
        MaintenanceKind.ONCE,
        1_900_000_000.0,
        1_900_007_200.0,
        "datacenter move",
    )

    # Weekly: pick it with the keyboard, as a person would.
    qtbot.keyClick(dialog.kind, Qt.Key.Key_End)
    assert dialog.kind.currentText() == "Every week"
    assert not dialog.start.isVisible()
    assert dialog.weekday.isVisible() and dialog.duration.isVisible()
    retype(qtbot, dialog.duration, "9d")
    expect(dialog, valid=False, says="a weekly window can last 7 days at most")
    retype(qtbot, dialog.duration, "soon")
    expect(dialog, valid=False, says="'soon' is not like 90m")
    retype(qtbot, dialog.duration, "1h30m")
    # Set, not typed: typing opens the zone completer's popup, which the offscreen platform
    # cannot raise (a Qt warning, which fails the test).
    dialog.timezone.setText("Mars/Base")
    expect(dialog, valid=False, says="unknown time zone 'Mars/Base'")
    dialog.grab().save(str(tmp_path / "maintenance-dialog-error.png"))
    dialog.timezone.setText("Europe/Berlin")
    retype(qtbot, dialog.note, "kernel upgrade")
    expect(dialog, valid=True)
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialog.windows) == 3)
    weekly = workspace.list_maintenance("primary")["primary"][2]
    assert (weekly.weekday, weekly.start_minute, weekly.duration_minutes, weekly.timezone) == (
        6,  # Sunday, the default day
        120,  # 02:00, the default time
        90,
        "Europe/Berlin",
    )
    assert listed(dialog)[2] == "weekly Sun 02:00 for 1h30m (Europe/Berlin): kernel upgrade"
    dialog.grab().save(str(tmp_path / "maintenance-dialog.png"))

    # Remove the first one.
    dialog.window_list.setCurrentRow(0)
    assert dialog.remove_button.isEnabled()
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(dialog.windows) == 2)
    assert [w.id for w in workspace.list_maintenance("primary")["primary"]] == [
        once.id,
        weekly.id,
    ]
    assert len(changes) == 3
    # Windows of other providers were never touched.
    assert workspace.list_maintenance("backup") == {"backup": ()}


def test_the_providers_page_opens_it_for_the_selected_provider(
    stack_with_provider: Any, qtbot: QtBot, modal: Any
) -> None:
    stack = stack_with_provider
    page = stack.window.providers
    assert not page.maintenance_button.isEnabled()  # nothing selected yet
    page.table.selectRow(page.model.row_of("backup"))
    assert page.maintenance_button.isEnabled()
    reloads: list[bool] = []
    page.providers_changed.connect(lambda: reloads.append(True))
    seen: dict[str, Any] = {}

    def add_one_and_close(dialog: QDialog) -> None:
        assert isinstance(dialog, MaintenanceDialog)
        seen["title"] = dialog.windowTitle()
        qtbot.waitUntil(lambda: dialog.window_list.count() == 1)
        seen["empty"] = listed(dialog)
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)  # the default: next hour
        qtbot.waitUntil(lambda: len(dialog.windows) == 1)
        modal.click(dialog, "Close")

    modal.drive(add_one_and_close)
    qtbot.mouseClick(page.maintenance_button, Qt.MouseButton.LeftButton)
    modal.check()

    assert seen == {"title": "Maintenance windows of backup", "empty": ["No maintenance windows."]}
    (window,) = stack.workspace.list_maintenance("backup")["backup"]
    assert window.ends_at is not None and window.starts_at is not None
    assert window.ends_at - window.starts_at == 3600
    assert page.status.text() == "Maintenance windows of backup saved"
    assert reloads == [True]  # the engine is told to reload
    assert page.selected() is not None and page.selected().name == "backup"
    settle(qtbot, stack.bridge)
    qtbot.waitUntil(lambda: not page.findChildren(MaintenanceDialog))  # deleted, not hidden


def test_maintenance_shows_in_the_state_column_over_the_breaker(
    stack_with_provider: Any,
) -> None:
    primary = stack_with_provider.workspace.get_provider("primary")
    # The core decides the word (maintenance over an open breaker); the page only shows it.
    live = ProviderLiveState(
        primary.uid, "primary", breaker=BreakerState.OPEN, in_maintenance=True, updated_at=1.0
    )
    live = dataclasses.replace(live, state=state_word(live))
    event = ProviderStateChanged("primary", live.state, live.breaker, live=live)
    assert state_label(event.state) == "maintenance"
    model = stack_with_provider.window.providers.model
    model.apply_state(event)
    assert model.index(model.row_of("primary"), 1).data() == "maintenance"
