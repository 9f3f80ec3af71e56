"""The Alerts page over a real workspace and loop thread: the log, and acknowledging."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QItemSelectionModel, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_app.core.runtime import LoopThread
from desktop_app.core.storage.alerts import AlertRepository
from desktop_app.core.workspace import Workspace
from desktop_app.ui.alerts_page import AlertLogModel, AlertsPage
from desktop_app.ui.bridge import CoreBridge
from tests.support.alert_log import log_two_alerts
from tests.support.qt_helpers import settle

WAIT_MS = 10_000


@pytest.fixture
def page(qtbot: QtBot, workspace: Workspace) -> Iterator[AlertsPage]:
    log_two_alerts(workspace)
    runtime = LoopThread()
    runtime.start()
    bridge = CoreBridge(runtime)
    shown = AlertsPage(workspace, bridge)
    shown.resize(1000, 400)
    qtbot.addWidget(shown)
    with qtbot.waitExposed(shown):
        shown.show()
    settle(qtbot, bridge)
    qtbot.waitUntil(lambda: shown.model.rowCount() == 2, timeout=WAIT_MS)
    yield shown
    runtime.stop()
    QApplication.processEvents()
    for owned in (shown, bridge):
        owned.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()


def _select(page: AlertsPage, row: int) -> None:
    page.table.selectionModel().select(
        page.shown.index(row, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )


def _cell(page: AlertsPage, row: int, column: int) -> str:
    """What the table shows (after the filters) in ``row``, ``column``."""
    return str(page.shown.data(page.shown.index(row, column), Qt.ItemDataRole.DisplayRole))


def _shown_providers(page: AlertsPage) -> list[str]:
    return [_cell(page, row, 3) for row in range(page.shown.rowCount())]


def test_an_alert_is_acknowledged_from_the_page(
    qtbot: QtBot, page: AlertsPage, workspace: Workspace
) -> None:
    assert not page.acknowledge_button.isEnabled()  # nothing selected
    assert _cell(page, 0, 3) == "bravo"  # newest first
    _select(page, 0)
    assert page.acknowledge_button.isEnabled()
    qtbot.mouseClick(page.acknowledge_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _cell(page, 0, AlertLogModel.ACKNOWLEDGED) != "", timeout=WAIT_MS)
    assert not page.acknowledge_button.isEnabled()  # once is enough
    assert "Acknowledged: bravo has been down" in page.status.text()
    [stored] = AlertRepository(workspace.database).recent(open_only=True)
    assert stored.subject == "bravo" and stored.acknowledged_at is not None
    assert stored.resolved_at is None  # still open until bravo is up again
    _select(page, 1)
    assert page.acknowledge_button.isEnabled()  # a cleared one can be acknowledged too


def test_the_log_is_filtered_by_provider_kind_and_state(qtbot: QtBot, page: AlertsPage) -> None:
    assert _shown_providers(page) == ["bravo", "alpha"]
    providers = page.provider_filter
    assert [providers.itemText(i) for i in range(providers.count())] == [
        "All providers",
        "alpha",
        "bravo",
    ]
    providers.setCurrentIndex(providers.findData("alpha"))
    assert _shown_providers(page) == ["alpha"]
    providers.setCurrentIndex(0)
    page.kind_filter.setCurrentIndex(page.kind_filter.findData("provider_down"))
    assert _shown_providers(page) == ["bravo"]
    page.kind_filter.setCurrentIndex(0)
    page.state_filter.setCurrentText("Cleared")
    assert _shown_providers(page) == ["alpha"]
    page.state_filter.setCurrentText("Open, not acknowledged")
    assert _shown_providers(page) == ["bravo"]
    _select(page, 0)
    qtbot.mouseClick(page.acknowledge_button, Qt.MouseButton.LeftButton)
    page.state_filter.setCurrentText("Acknowledged")
    qtbot.waitUntil(lambda: _shown_providers(page) == ["bravo"], timeout=WAIT_MS)
