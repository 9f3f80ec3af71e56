"""Where Relaydesk keeps its data: ``--data-dir``, ``RELAYDESK_DATA_DIR``, or the OS default."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "Relaydesk"
DATA_DIR_ENV = "RELAYDESK_DATA_DIR"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory to use, from the most to the least specific source."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
