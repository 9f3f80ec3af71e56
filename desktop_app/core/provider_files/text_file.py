"""Reading a settings file a person named: bounded in size, UTF-8, one-line errors."""

from __future__ import annotations

from pathlib import Path

from desktop_app.core.errors import UserInputError

#: A prefs.js or settings file larger than this is refused unread (real ones are < 1 MB).
MAX_FILE_BYTES = 5 * 1024 * 1024


def one_line(text: str) -> str:
    return " ".join(text.split())


def read_text_file(path: Path, what: str) -> str:
    """A UTF-8 text file of at most ``MAX_FILE_BYTES``, or a one-line ``UserInputError``."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UserInputError(f"{what} {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise UserInputError(f"{what} {str(path)!r} is a directory, not a file") from None
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UserInputError(
            f"{what} {str(path)!r} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserInputError(
            f"{what} {str(path)!r} is not UTF-8 text (bad byte at offset {exc.start})"
        ) from None
