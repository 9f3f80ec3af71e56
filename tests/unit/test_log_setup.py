"""The log file is a help, never a requirement (issue 14): it fails quietly, and only once."""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.core.log_setup import LOG_FILENAME, QuietFileHandler, configure_logging


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """Put the root logger back as it was (configure_logging replaces our handlers)."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


class FullDisk:
    """A file stream on a disk that has just filled up."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, _text: str) -> int:
        self.writes += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        self.flush()


def test_a_log_file_that_fills_up_goes_quiet_without_a_logging_error_block(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    handler = QuietFileHandler(tmp_path / LOG_FILENAME, encoding="utf-8")
    logger = logging.getLogger("relaydesk.test.full_disk")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("written")
        disk = FullDisk()
        assert handler.stream is not None
        handler.stream.close()
        handler.stream = disk  # type: ignore[assignment]

        for number in range(3):
            logger.warning("record %d", number)
        handler.flush()

        assert disk.writes == 1  # tried once, then dropped for good
        assert capfd.readouterr() == ("", "")  # no "--- Logging error ---", no traceback
        assert (tmp_path / LOG_FILENAME).read_text(encoding="utf-8") == "written\n"
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate = True


def test_a_formatting_bug_still_gets_the_standard_report(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", True)
    handler = QuietFileHandler(tmp_path / LOG_FILENAME, encoding="utf-8")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("not a number",), None)
    try:
        handler.handle(record)
        assert "--- Logging error ---" in capfd.readouterr().err
        assert not handler.broken
    finally:
        handler.close()


def test_an_unopenable_log_file_is_skipped_silently(
    root_handlers: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / LOG_FILENAME).mkdir()  # open() fails for root too, unlike a chmod

    path = configure_logging(tmp_path)
    logging.getLogger("relaydesk.test").warning("no file to go to, and not to stderr")

    assert path == tmp_path / LOG_FILENAME
    assert capfd.readouterr() == ("", "")  # not even logging's last resort on stderr


def test_with_verbose_the_unopenable_log_file_is_one_warning_line(
    root_handlers: None, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / LOG_FILENAME).mkdir()

    configure_logging(tmp_path, verbose=True)

    err = capfd.readouterr().err
    assert err.splitlines() == [
        f"WARNING desktop_app.core.log_setup: not logging to {tmp_path / LOG_FILENAME}: "
        "Is a directory"
    ]
