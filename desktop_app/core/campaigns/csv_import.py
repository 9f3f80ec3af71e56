"""Reading subscribers from a CSV file: encoding, delimiter, columns, addresses, duplicates.

Pure: bytes in, a ParsedCsv out, no database. Two kinds of trouble are kept apart:
- the file as a whole cannot be read as a subscriber list (binary, empty, no email column,
  one column because the delimiter is something else, a line too long, broken quoting):
  one UserInputError, and the caller imports nothing;
- single rows are wrong (bad address, too many cells, unknown status): each is a RejectedRow
  with its line number, value and reason, and the caller decides (``accept_valid``).

A cell our own export escaped against spreadsheet formulas (``'=...``, see ``csv_cells``)
has that apostrophe taken off, so an export imports back unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field

from desktop_app.core.campaigns.addresses import InvalidAddressError, normalize_address
from desktop_app.core.csv_cells import unescape_cell
from desktop_app.core.errors import UserInputError

#: A physical line longer than this is not a subscriber, it is a broken or hostile file.
MAX_LINE_CHARS = 64 * 1024
#: Longest display name stored (the column is String(200)).
MAX_NAME_CHARS = 200
#: Subscriber statuses, as stored.
STATUSES = ("active", "unsubscribed", "bounced", "complained")

# Header names (lower-cased, without spaces, dashes, underscores or dots) recognized
# without a mapping, the most specific first.
_EMAIL_HEADERS = (
    "email",
    "emailaddress",
    "mail",
    "mailaddress",
    "emails",
    "address",
    "emailadresse",
    "adressemail",
    "courriel",
    "correo",
    "correoelectronico",
)
_NAME_HEADERS = ("name", "fullname", "displayname", "contactname", "subscribername", "nom")
_STATUS_HEADERS = ("status",)
_DELIMITERS = ",;\t"
_SNIFF_CHARS = 16 * 1024
_LINE_BREAK = re.compile(r"\r\n?|\n")
# Control characters that never appear in a text CSV (tab, CR, LF and FF aside).
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which header is the address, which the name, and which become custom fields.

    ``fields`` maps a header to the custom field name it is stored under; None means
    "every other column, under its own header".
    """

    email: str
    name: str | None = None
    status: str | None = None
    fields: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ParsedSubscriber:
    """One valid, de-duplicated row."""

    line: int
    email: str
    email_key: str
    name: str
    status: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that was not imported: where it is, what it held, and why."""

    line: int
    value: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    """What a file holds: valid rows, duplicate rows and rejected rows, in file order."""

    encoding: str
    delimiter: str
    mapping: ColumnMapping
    subscribers: tuple[ParsedSubscriber, ...]
    duplicates: tuple[RejectedRow, ...]
    rejects: tuple[RejectedRow, ...]
    field_names: tuple[str, ...] = field(default=())


def parse_subscribers(
    data: bytes,
    *,
    mapping: ColumnMapping | None = None,
    existing_keys: Container[str] = frozenset(),
) -> ParsedCsv:
    """Parse a whole CSV file; raises UserInputError when the file itself is unusable.

    ``existing_keys`` (address keys already on the list) turns those rows into duplicates.
    """
    text, encoding = decode_text(data)
    _check_text(text)
    delimiter = sniff_delimiter(text)
    rows = _rows(text, delimiter)
    try:
        header_line, header = next(rows)
    except StopIteration:
        raise UserInputError("the file has no rows") from None
    header = [unescape_cell(cell.strip()) for cell in header]
    if len(header) == 1 and mapping is None and _header_key(header[0]) not in _EMAIL_HEADERS:
        raise UserInputError(_one_column_message(header_line, header[0]))
    chosen = mapping or detect_mapping(header)
    parsed = _parse_rows(rows, header, chosen, existing_keys, encoding, delimiter)
    if not (parsed.subscribers or parsed.duplicates or parsed.rejects):
        raise UserInputError("the file has a header but no rows below it")
    return parsed


def decode_text(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with.

    A BOM decides (UTF-8, UTF-16 LE/BE); without one, strict UTF-8, then cp1252 (what
    spreadsheets on Windows write), then latin-1, which reads any byte.
    """
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data[len(codecs.BOM_UTF8) :], "utf-8", "utf-8-sig")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(data, "utf-16", "utf-16")
    if b"\x00" in data:
        raise UserInputError("the file is not text (it contains NUL bytes); is it a CSV file?")
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon or tab, whichever the start of the file is made of (comma if unsure)."""
    sample = text[:_SNIFF_CHARS]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    first_line = _LINE_BREAK.split(sample, 1)[0]
    if sniffed and sniffed in first_line:
        return sniffed
    # The sniffer gives up on (or is fooled by) files whose rows differ: quoted fields, empty
    # cells, a stray ";" in a name. The header line decides then.
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def detect_mapping(header: list[str]) -> ColumnMapping:
    """Find the address, name and status columns by their usual names; raise if no address."""
    _check_header(header)
    keys = {_header_key(name): name for name in reversed(header)}  # first one wins
    email = next((keys[k] for k in _EMAIL_HEADERS if k in keys), None)
    if email is None:
        shown = ", ".join(repr(h) for h in header[:8])
        raise UserInputError(
            f"no email column among the headers ({shown}); name it 'email' or map it explicitly"
        )
    name = next((keys[k] for k in _NAME_HEADERS if k in keys), None)
    status = next((keys[k] for k in _STATUS_HEADERS if k in keys), None)
    return ColumnMapping(email=email, name=name, status=status)


def _decode(data: bytes, encoding: str, label: str) -> tuple[str, str]:
    try:
        return data.decode(encoding), label
    except UnicodeDecodeError as exc:
        raise UserInputError(
            f"the file starts like {label} but byte {exc.start} is not {label}"
        ) from None


def _check_text(text: str) -> None:
    if not text.strip():
        raise UserInputError("the file is empty")
    binary = _BINARY_CHARS.search(text)
    if binary is not None:
        line = text.count("\n", 0, binary.start()) + 1
        raise UserInputError(
            f"line {line}: control character {binary.group()!r}; the file does not look like "
            "a CSV text file"
        )
    start = 0
    line = 1
    for match in _LINE_BREAK.finditer(text):
        if match.start() - start > MAX_LINE_CHARS:
            break
        start = match.end()
        line += 1
    else:
        if len(text) - start <= MAX_LINE_CHARS:
            return
    raise UserInputError(
        f"line {line} is longer than {MAX_LINE_CHARS // 1024} KB; the file is not a subscriber list"
    )


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number where the row starts, cells), skipping blank lines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The row's first line: an unclosed quote is reported where it opens, not at EOF.
            raise UserInputError(f"line {line}: broken CSV ({exc})") from None
        if any(cell.strip() for cell in cells):
            yield line, cells
        line = reader.line_num + 1


def _check_header(header: list[str]) -> None:
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise UserInputError(f"the column {name!r} appears twice in the header")
        seen.add(name)


def _header_key(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name.lower())


def _one_column_message(line: int, header: str) -> str:
    return (
        f"line {line}: one column only ({header[:60]!r}) and it is not an email column; "
        "separate columns with a comma, a semicolon or a tab"
    )


def _parse_rows(
    rows: Iterator[tuple[int, list[str]]],
    header: list[str],
    mapping: ColumnMapping,
    existing_keys: Container[str],
    encoding: str,
    delimiter: str,
) -> ParsedCsv:
    index = {name: i for i, name in reversed(list(enumerate(header)))}
    for column in (mapping.email, mapping.name, mapping.status, *(mapping.fields or ())):
        if column is not None and column not in index:
            raise UserInputError(f"no column named {column!r} in the header")
    email_at = index[mapping.email]
    name_at = index[mapping.name] if mapping.name is not None else None
    status_at = index[mapping.status] if mapping.status is not None else None
    if mapping.fields is None:
        special = {email_at, name_at, status_at}
        field_columns = [
            (i, h or f"column{i + 1}") for i, h in enumerate(header) if i not in special
        ]
    else:
        field_columns = [(index[h], target) for h, target in mapping.fields.items()]
    width = len(header)

    subscribers: list[ParsedSubscriber] = []
    duplicates: list[RejectedRow] = []
    rejects: list[RejectedRow] = []
    first_line: dict[str, int] = {}
    for line, cells in rows:
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            rejects.append(
                RejectedRow(line, _shown(cells), f"{len(cells)} cells, the header has {width}")
            )
            continue
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        raw = unescape_cell(cells[email_at].strip())
        if not raw:
            rejects.append(RejectedRow(line, _shown(cells), "no email address"))
            continue
        try:
            email = normalize_address(raw)
        except InvalidAddressError as exc:
            rejects.append(RejectedRow(line, raw, str(exc)))
            continue
        key = email.lower()
        if key in first_line:
            duplicates.append(RejectedRow(line, raw, f"same address as line {first_line[key]}"))
            continue
        if key in existing_keys:
            duplicates.append(RejectedRow(line, raw, "already on the list"))
            continue
        name = unescape_cell(cells[name_at].strip()) if name_at is not None else ""
        if len(name) > MAX_NAME_CHARS:
            rejects.append(RejectedRow(line, raw, f"name longer than {MAX_NAME_CHARS} characters"))
            continue
        status = unescape_cell(cells[status_at].strip()).lower() if status_at is not None else ""
        if status and status not in STATUSES:
            rejects.append(
                RejectedRow(
                    line, raw, f"status {status[:40]!r} is not one of {', '.join(STATUSES)}"
                )
            )
            continue
        first_line[key] = line
        subscribers.append(
            ParsedSubscriber(
                line=line,
                email=email,
                email_key=key,
                name=name,
                status=status or "active",
                fields={target: unescape_cell(cells[i].strip()) for i, target in field_columns},
            )
        )
    return ParsedCsv(
        encoding=encoding,
        delimiter=delimiter,
        mapping=mapping,
        subscribers=tuple(subscribers),
        duplicates=tuple(duplicates),
        rejects=tuple(rejects),
        field_names=tuple(target for _, target in field_columns),
    )


def _shown(cells: list[str]) -> str:
    """A rejected row as the user would recognize it, cut to a readable length."""
    text = ",".join(cells)
    return text if len(text) <= 200 else text[:197] + "..."
