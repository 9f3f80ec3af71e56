"""Where Relaydesk keeps its data: ``--data-dir``, ``RELAYDESK_DATA_DIR``, or the OS default."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from desktop_app.core.errors import UserInputError

APP_NAME = "Relaydesk"
DATA_DIR_ENV = "RELAYDESK_DATA_DIR"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory to use, from the most to the least specific source.

    A path that exists but is not a folder is refused here, naming where the path came
    from: creating the folder later would only say "File exists", which reads as if the
    data directory were fine.
    """
    if explicit:
        return _folder(Path(explicit).expanduser().resolve(), "--data-dir")
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return _folder(Path(from_env).expanduser().resolve(), DATA_DIR_ENV)
    return _folder(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)), "data folder")


def _folder(path: Path, source: str) -> Path:
    if path.exists() and not path.is_dir():
        raise UserInputError(
            f"{source} {path} is a file, not a folder: give a folder (it is created if missing)"
        )
    return path
