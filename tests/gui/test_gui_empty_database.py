"""Issue 14: the window refuses a zero-length database the way it refuses a damaged one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from desktop_app import app as app_module
from desktop_app.core.storage import database as database_module
from desktop_app.core.storage.database import DATABASE_FILENAME


def test_an_empty_database_file_is_one_line_in_a_message_box(
    qapp: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "EMPTY_FILE_GRACE_SECONDS", 0.1)
    database = data_dir / DATABASE_FILENAME
    database.write_bytes(b"")
    shown: list[tuple[str, str]] = []

    def critical(_parent: Any, title: str, text: str, *_buttons: Any) -> Any:
        shown.append((title, text))
        return QMessageBox.StandardButton.Close

    monkeypatch.setattr(app_module.QMessageBox, "critical", critical)

    assert app_module.open_workspace_interactively(data_dir) is None
    [(title, text)] = shown
    assert title == "Relaydesk cannot open its data"
    first, *rest = text.split("\n\n")
    assert str(database) in first and "empty" in first and "afresh" in first
    assert "\n" not in first and "Traceback" not in text
    assert rest == ["Nothing queued so far has been changed."]
    assert database.read_bytes() == b""  # not quietly made a new database
