"""Where log lines go: a rotating file in the data directory, and stderr when asked.

Nothing logged may contain a secret; passwords are never passed to a logger, and SMTP
replies are logged, never the commands we send (AUTH would carry credentials).

The log is a help, never a requirement: a log file that cannot be opened (a read-only data
folder) or written later (disk full) is dropped without a word, so reading the outbox
never fails because of it (issue 14).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

LOG_FILENAME = "relaydesk.log"


class QuietFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating log file, which goes quiet for good the first time writing it fails.

    ``logging.Handler.handleError`` would print a "--- Logging error ---" block with a
    traceback to stderr for every record once the disk is full or the file is gone; that
    would break the one-line error contract and bury the real output. An ``OSError``
    instead closes the file and drops this and every later record. Other errors (a bad
    format string: our bug) keep the standard report.
    """

    broken = False

    def emit(self, record: logging.LogRecord) -> None:
        if self.broken:
            return
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)
            return
        self.broken = True
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.close()  # flushing what is buffered may fail the same way
            except (OSError, ValueError):
                pass

    def flush(self) -> None:
        if not self.broken:
            super().flush()


def configure_logging(data_dir: Path, *, verbose: bool = False) -> Path:
    """Log to ``<data dir>/relaydesk.log`` (rotated at 2 MB, 5 files kept).

    When that file cannot be opened (read-only data folder, no such folder and no way to
    make it), nothing is written to a file and nothing is said, except on stderr with
    ``verbose``; whatever opens the data folder next reports a real problem with it.
    """
    path = data_dir / LOG_FILENAME
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for handler in list(root.handlers):
        if getattr(handler, "_relaydesk", False):
            root.removeHandler(handler)
            handler.close()
    file_handler: logging.Handler
    problem: OSError | None = None
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        file_handler = QuietFileHandler(path, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
    except OSError as exc:
        problem = exc
        # Not no handler at all: logging's last resort would print warnings on stderr.
        file_handler = logging.NullHandler()
    file_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    )
    file_handler._relaydesk = True  # type: ignore[union-attr]
    root.addHandler(file_handler)
    if verbose:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        stream._relaydesk = True  # type: ignore[attr-defined]
        root.addHandler(stream)
    if problem is not None:
        logging.getLogger(__name__).warning(
            "not logging to %s: %s", path, problem.strerror or problem
        )
    return path
