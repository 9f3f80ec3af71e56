"""Shared fixtures of the health unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.core.storage.database import DATABASE_FILENAME, Database


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated database file for one test."""
    opened = Database.open_file(tmp_path / DATABASE_FILENAME)
    yield opened
    opened.dispose()
