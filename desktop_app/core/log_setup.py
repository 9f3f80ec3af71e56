"""Where log lines go: a rotating file in the data directory, and stderr when asked.

Nothing logged may contain a secret; passwords are never passed to a logger, and SMTP
replies are logged, never the commands we send (AUTH would carry credentials).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

LOG_FILENAME = "relaydesk.log"


def configure_logging(data_dir: Path, *, verbose: bool = False) -> Path:
    """Log to ``<data dir>/relaydesk.log`` (rotated at 2 MB, 5 files kept)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOG_FILENAME
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_relaydesk", False):
            root.removeHandler(handler)
            handler.close()
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2_000_000, backupCount=5, encoding="utf-8"
    )
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    file_handler._relaydesk = True  # type: ignore[attr-defined]
    root.addHandler(file_handler)
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream._relaydesk = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    return path
