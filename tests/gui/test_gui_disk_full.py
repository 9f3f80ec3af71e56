"""Issue 14, item 2, in the window: a disk that fills up while sending is one banner.

The real stack (workspace, loop thread, bridge, controller, window) over a data folder on a
real tmpfs, sending to a loopback SMTP server; the test fills the file system. The engine
stops cleanly, the window shows one persistent banner naming the file system and the
database, no dialog at all, and once there is room everything goes out exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QMessageBox
from pytestqt.qtbot import QtBot

from desktop_app.core.models import MessageState
from desktop_app.core.storage.outbox_views import OutboxViews
from desktop_app.ui import main_window
from tests.support.small_disk import SmallDisk, small_disk_or_skip

MESSAGES = 200
TIMEOUT_MS = 60_000


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk_or_skip(tmp_path / "disk", size="16m") as disk:
        yield disk


@pytest.fixture
def data_dir(disk: SmallDisk) -> Path:
    """The workspace fixture's data folder, on the small disk."""
    path = disk.mount_point / "data"
    path.mkdir()
    return path


@pytest.fixture
def no_dialogs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every message box the window tries to show, recorded instead of shown."""
    shown: list[str] = []

    def record(kind: str) -> Any:
        def box(*args: Any, **_kwargs: Any) -> QMessageBox.StandardButton:
            shown.append(f"{kind}: {args[1:3]}")
            return QMessageBox.StandardButton.Ok

        return staticmethod(box)

    for kind in ("critical", "warning", "information", "question"):
        monkeypatch.setattr(QMessageBox, kind, record(kind))
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(f"exec: {self.text()}"))
    return shown


def full_disk_labels(window: Any) -> list[QLabel]:
    return [
        label
        for label in window.findChildren(QLabel)
        if label.isVisible() and "is full" in label.text()
    ]


def open_dialogs() -> list[QDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]


def test_a_disk_that_fills_up_while_sending_is_one_banner_and_nothing_is_lost(
    workspace: Any,
    gui_helpers: Any,
    scripted_smtp: Any,
    make_stack: Any,
    disk: SmallDisk,
    no_dialogs: list[str],
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A problem banner normally gives way after PROBLEM_MS; this one must not.
    monkeypatch.setattr(main_window, "PROBLEM_MS", 300)
    server = scripted_smtp(delay_seconds=0.002)
    workspace.add_provider(gui_helpers.loopback_provider("Primary", server.port))
    ids = gui_helpers.queue_messages(workspace, MESSAGES)
    stack = make_stack()
    window, controller = stack.window, stack.controller
    database = str(workspace.data_dir / "relaydesk.sqlite3")

    controller.start()
    qtbot.waitUntil(lambda: len(server.messages) >= 20, timeout=TIMEOUT_MS)
    disk.fill()
    qtbot.waitUntil(lambda: controller.state == "stopped", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(full_disk_labels(window)) == 1, timeout=TIMEOUT_MS)
    assert len(server.messages) < MESSAGES, "the disk did not fill up before sending ended"

    def check_one_banner(path: str) -> None:
        [label] = full_disk_labels(window)
        assert label is window.banner
        text = label.text()
        assert text.startswith("Sending stopped: the disk holding "), text
        assert f"(file system {disk.mount_point}, " in text, text
        assert f"cannot write {path};" in text, text
        assert no_dialogs == [] and open_dialogs() == []

    check_one_banner(database)
    qtbot.wait(1500)  # refreshes, and well past the (shortened) problem timeout
    check_one_banner(database)

    # Starting again while the disk is still full: the same banner, still no dialog. What
    # the reserve gave back is less than a new one needs, so that is the file named now.
    controller.start()
    qtbot.waitUntil(lambda: controller.state == "stopped", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(full_disk_labels(window)) == 1, timeout=TIMEOUT_MS)
    check_one_banner(str(workspace.data_dir / "relaydesk.reserve"))

    # Room again: sending resumes, the banner goes, every message goes out exactly once.
    disk.make_room()
    controller.start()
    qtbot.waitUntil(lambda: len(set(server.message_ids())) == MESSAGES, timeout=TIMEOUT_MS)
    views = OutboxViews(workspace.database)
    qtbot.waitUntil(
        lambda: {entry.state for entry in views.entries(ids)} == {MessageState.SENT},
        timeout=TIMEOUT_MS,
    )
    qtbot.waitUntil(lambda: full_disk_labels(window) == [], timeout=TIMEOUT_MS)
    assert len(server.message_ids()) == MESSAGES, "a message was sent twice"
    assert no_dialogs == [] and open_dialogs() == []
