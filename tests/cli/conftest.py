"""``relaydesk``: the command line as a subprocess over a fresh data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_harness import Relaydesk


@pytest.fixture
def relaydesk(tmp_path: Path) -> Relaydesk:
    return Relaydesk(tmp_path / "data", cwd=tmp_path)


@pytest.fixture
def body(tmp_path: Path) -> Path:
    """A plain text body file for ``send --text-file``."""
    path = tmp_path / "body.txt"
    path.write_text("Hello from the tests.\n", encoding="utf-8")
    return path
