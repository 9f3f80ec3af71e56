"""When the machine is in the way: a damaged database, no keyring, a broken Qt binding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QMessageBox
from pytestqt.qtbot import QtBot

from desktop_app import app as app_module
from desktop_app.core.storage.database import DATABASE_FILENAME
from desktop_app.core.workspace import Workspace
from desktop_app.ui.provider_dialog import ProviderDialog
from tests.support.secret_service import reset_keyring_backend

REPO_ROOT = Path(__file__).resolve().parents[2]


class CriticalBox:
    """Stands in for QMessageBox.critical: records what it was shown, answers as told."""

    def __init__(self, *answers: QMessageBox.StandardButton) -> None:
        self.answers = list(answers)
        self.shown: list[tuple[str, str]] = []
        self.on_show: list[Any] = []

    def __call__(self, _parent: Any, title: str, text: str, *_buttons: Any) -> Any:
        self.shown.append((title, text))
        if self.on_show:
            self.on_show.pop(0)()
        return self.answers.pop(0)


def test_damaged_database_is_explained_and_nothing_raises(
    qapp: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = data_dir / DATABASE_FILENAME
    garbage = b"this is not a database, it is a shopping list\n" * 100
    database.write_bytes(garbage)
    box = CriticalBox(QMessageBox.StandardButton.Close)
    monkeypatch.setattr(app_module.QMessageBox, "critical", box)

    assert app_module.open_workspace_interactively(data_dir) is None
    [(title, text)] = box.shown
    assert title == "Relaydesk cannot open its data"
    assert "is damaged" in text and str(database) in text
    assert "Nothing queued so far has been changed." in text
    assert database.read_bytes() == garbage  # left alone for the user to rescue


def test_retry_after_moving_the_damaged_file_aside_opens_a_fresh_workspace(
    qapp: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = data_dir / DATABASE_FILENAME
    database.write_bytes(b"\x00garbage" * 512)
    box = CriticalBox(QMessageBox.StandardButton.Retry)
    box.on_show.append(lambda: database.rename(data_dir / "damaged.sqlite3"))
    monkeypatch.setattr(app_module.QMessageBox, "critical", box)

    workspace = app_module.open_workspace_interactively(data_dir)
    try:
        assert isinstance(workspace, Workspace)
        assert len(box.shown) == 1
        assert workspace.list_providers() == []
    finally:
        if workspace is not None:
            workspace.close()


@pytest.fixture
def no_keyring(secret_service: dict[str, str]) -> Iterator[None]:
    """The user's keyring is unusable (keyring's own "fail" backend, chosen explicitly)."""
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    reset_keyring_backend()
    yield
    os.environ.pop("PYTHON_KEYRING_BACKEND", None)
    reset_keyring_backend()


def test_no_keyring_is_a_clear_message_and_nothing_is_stored(
    no_keyring: None, stack: Any, qtbot: QtBot, modal: Any
) -> None:
    page = stack.window.providers
    stack.window.navigation.setCurrentRow(3)

    def fill_and_save(dialog: QDialog) -> None:
        assert isinstance(dialog, ProviderDialog)
        qtbot.keyClicks(dialog.name, "Relay")
        qtbot.keyClicks(dialog.host, "smtp.example.com")
        qtbot.keyClicks(dialog.username, "mailer")
        qtbot.keyClicks(dialog.password, "secret")
        modal.click(dialog, "Save")

    modal.drive(fill_and_save)
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    modal.check()
    qtbot.waitUntil(lambda: page.status.text().startswith("Error:"))
    assert "no OS keyring is available to store provider passwords" in page.status.text()
    assert stack.workspace.list_providers() == []
    assert page.model.names() == []


def test_qt_binding_does_not_exhaust_none_true_false(tmp_path: Path) -> None:
    """PySide6 6.12 on Python 3.11 drops a reference to None/True/False per call.

    After a few thousand signals CPython aborted the app ("Fatal Python error: none_dealloc").
    Importing ``desktop_app.ui`` must make that harmless; here far more calls than the counts
    started with, in a child process so that a failure cannot take the test run down.
    """
    script = textwrap.dedent(
        """
        import sys
        import desktop_app.ui
        from PySide6.QtCore import QObject, Signal

        class Source(QObject):
            ticked = Signal(int)

        source = Source()
        source.ticked.connect(lambda value: None)
        calls = 4 * max(sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False))
        for n in range(min(calls, 1_000_000)):
            source.ticked.emit(n)            # True, on the affected versions
            source.setObjectName("s")        # None, on the affected versions
            source.blockSignals(False)
        print("done", desktop_app.ui.PYSIDE_REFCOUNT_WORKAROUND)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("done")
