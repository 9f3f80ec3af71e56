"""A first look at a CSV file before importing it: encoding, delimiter, header, first rows.

Pure apart from ``read_csv_file``: the import wizard shows this so a person can check the
columns and map them before anything is parsed in full or stored. The file as a whole is
held to the same checks as the import (binary, control characters, overlong lines), so a
file the import would refuse is refused here, at the first step, with the same message.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

# _check_text is the import's own whole-file check; a copy here could drift from it.
from desktop_app.core.campaigns.csv_import import (
    ColumnMapping,
    _check_text,
    decode_text,
    detect_mapping,
    sniff_delimiter,
)
from desktop_app.core.csv_cells import unescape_cell
from desktop_app.core.errors import UserInputError

#: Data rows shown by default: enough to recognize the columns, cheap to lay out.
PREVIEW_ROWS = 20


@dataclass(frozen=True, slots=True)
class CsvPreview:
    """The start of a CSV file as the import would read it.

    ``suggested`` is the mapping found from the header names, or None when no column is
    recognizably the address (``problem`` then says why, and the person picks one).
    """

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]
    suggested: ColumnMapping | None
    problem: str = ""


def read_csv_file(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of ``path``; UserInputError when it is too large or cannot be read."""
    try:
        if path.stat().st_size > max_bytes:
            raise UserInputError(f"{path} is larger than {max_bytes // (1024 * 1024)} MB; split it")
        return path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from None


def preview_csv(data: bytes, *, max_rows: int = PREVIEW_ROWS) -> CsvPreview:
    """Header and the first ``max_rows`` non-blank rows; UserInputError for an unusable file.

    Rows are given as the file has them (not padded or cut to the header's width): the
    preview shows what is there, the dry run says what is wrong with it.
    """
    text, encoding = decode_text(data)
    _check_text(text)
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    line = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if header is None:
                    # Unescaped as the import does: a mapping names these headers.
                    header = [unescape_cell(cell.strip()) for cell in cells]
                else:
                    rows.append(tuple(cells))
                    lines.append(line)
                    if len(rows) >= max_rows:
                        break
            line = reader.line_num + 1
    except csv.Error as exc:
        raise UserInputError(f"line {line}: broken CSV ({exc})") from None
    if header is None:
        raise UserInputError("the file has no rows")
    if not rows:
        raise UserInputError("the file has a header but no rows below it")
    _check_unique(header)
    suggested: ColumnMapping | None
    try:
        suggested = detect_mapping(header)
        problem = ""
    except UserInputError as exc:
        suggested, problem = None, str(exc)
    return CsvPreview(
        encoding=encoding,
        delimiter=delimiter,
        header=tuple(header),
        rows=tuple(rows),
        lines=tuple(lines),
        suggested=suggested,
        problem=problem,
    )


def delimiter_name(delimiter: str) -> str:
    """How a person calls the delimiter ("comma", "semicolon", "tab")."""
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(delimiter, repr(delimiter))


def _check_unique(header: list[str]) -> None:
    # With a mapping chosen by hand the parser takes the first of two same-named columns
    # silently; refuse here instead, where the person can still fix the file.
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise UserInputError(f"the column {name!r} appears twice in the header")
        seen.add(name)
