"""How pages tell a person something went wrong: one line, in one red."""

from __future__ import annotations

from PySide6.QtGui import QColor

ERROR_RED = "#c62828"
#: Style sheet of a status label that shows an error.
ERROR_STYLE = f"color: {ERROR_RED};"
ERROR_COLOUR = QColor(ERROR_RED)


def one_line(error: BaseException) -> str:
    """An error as one line a person reads: the core's message, first letter capitalized."""
    text = (str(error).strip() or type(error).__name__).splitlines()[0]
    return text[:1].upper() + text[1:]
