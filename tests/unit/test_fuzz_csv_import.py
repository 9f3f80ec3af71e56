"""Fuzzing the CSV import, where strangers' bytes enter a list (the Lists page, `list import`).

The contract, through the public entry points (``Workspace.import_list`` / ``export_list``,
``preview_csv``, ``parse_subscribers``):

- accepted input round-trips: what a file says is what is stored, after the importer's
  documented normalisation (cells stripped, the export's formula apostrophe taken off,
  addresses normalised, status lower-cased, duplicates skipped), and an export imports back
  unchanged;
- rejected input gets one line (a ``UserInputError``; ``RejectedRowsError`` when rows were
  bad and the valid ones were not accepted);
- no other exception escapes;
- nothing already stored changes: a refused import leaves every row as it was, an accepted
  one only adds rows to its own list.

Bounded examples (``SETTINGS``): these run in the normal suite.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from desktop_app.core.campaigns.addresses import InvalidAddressError, normalize_address
from desktop_app.core.campaigns.csv_import import ColumnMapping, parse_subscribers
from desktop_app.core.campaigns.csv_preview import preview_csv
from desktop_app.core.csv_cells import FORMULA_STARTS, unescape_cell
from desktop_app.core.errors import RejectedRowsError, UserInputError
from desktop_app.core.storage.database import DATABASE_FILENAME
from desktop_app.core.storage.lists import ImportReport
from desktop_app.core.workspace import Workspace

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: What the importer refuses in a whole file (csv_import._BINARY_CHARS): no round trip there.
_REFUSED_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_LIST_NAMES = itertools.count()

# -- strategies -----------------------------------------------------------------------------

# Cells a spreadsheet or a stranger writes: delimiters, quotes, line breaks, formula starts,
# apostrophes, blanks around the text, any script.
_TRICKY = [*",;\t\"'\r\n =+-@|\\\x0c\x85\u2028\ufeff", "é", "ß", "中", "😀", "''", "'="]
CELL = st.one_of(
    st.lists(st.sampled_from(_TRICKY), max_size=8).map("".join),
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=20),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
).filter(lambda text: not _REFUSED_CONTROLS.search(text))
ADDRESS = st.one_of(
    st.emails().map(str),
    st.emails().map(lambda e: f"  {str(e).upper()} "),  # blanks and case: normalised away
    st.tuples(st.sampled_from(["=", "'=", "+", "-", "@"]), st.emails()).map(
        lambda parts: parts[0] + str(parts[1])  # formula-like: escaped by our export
    ),
    st.sampled_from(["", "not-an-address", "a@@example.com", "ä@exämple.de", "a@b", "@x.org"]),
)
STATUS = st.sampled_from(["", "active", "Unsubscribed", " BOUNCED ", "complained", "gone"])
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le-bom", "cp1252", "latin-1"])
DELIMITERS = st.sampled_from([",", ";", "\t"])
QUOTING = st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])
LINE_ENDS = st.sampled_from(["\r\n", "\n"])


#: The encoding the import reports for a file written in each (ASCII reads as UTF-8, and
#: latin-1's letters as cp1252's, which are the same there).
_LABELS = {
    "utf-8": {"utf-8"},
    "utf-8-sig": {"utf-8-sig"},
    "utf-16": {"utf-16"},
    "utf-16-le-bom": {"utf-16"},
    "cp1252": {"cp1252", "utf-8"},
    "latin-1": {"latin-1", "cp1252", "utf-8"},
}


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    return text.encode(encoding)


def _encodable(text: str, encoding: str) -> bool:
    if encoding == "latin-1" and re.search("[\x80-\x9f]", text):
        return False  # C1 controls: read back as cp1252 (as documented), not latin-1
    try:
        data = _encode(text, encoding)
    except UnicodeEncodeError:
        return False
    if encoding in ("cp1252", "latin-1"):
        # A legacy file whose bytes are also valid UTF-8 is read as UTF-8 (documented order).
        try:
            return data.decode("utf-8") == text
        except UnicodeDecodeError:
            return True
    return True


# -- the workspace and a raw view of what it stores -----------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.open(tmp_path / "ws")
    ws.create_list("kept")
    seed = tmp_path / "seed.csv"
    seed.write_text(
        "email,name,status,city\n"
        "ann@example.com,Ann,,Oslo\n"
        "'=bob@example.com,'=Bob,unsubscribed,'+Rome\n"
        "cy@example.com,Cy,bounced,\n",
        encoding="utf-8",
    )
    ws.import_list("kept", seed)
    yield ws
    ws.close()


def _stored(ws: Workspace) -> list[dict[str, Any]]:
    """Every subscriber row, read without the code under test."""
    with closing(sqlite3.connect(ws.data_dir / DATABASE_FILENAME)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute("SELECT * FROM subscribers ORDER BY id")]


def _fresh_list(ws: Workspace) -> str:
    name = f"fuzz-{next(_LIST_NAMES)}"
    ws.create_list(name)
    return name


def _assert_one_line(error: BaseException) -> str:
    message = str(error)
    assert message, repr(error)
    assert "\n" not in message and "\r" not in message, repr(message)
    return message


def _import_or_refuse(
    ws: Workspace,
    name: str,
    path: Path,
    *,
    accept_valid: bool,
    mapping: ColumnMapping | None = None,
) -> ImportReport | None:
    """The import's contract for any file: a report, or one line and nothing changed."""
    before = _stored(ws)
    try:
        report = ws.import_list(name, path, accept_valid=accept_valid, mapping=mapping)
    except UserInputError as error:
        _assert_one_line(error)
        if isinstance(error, RejectedRowsError):
            assert isinstance(error.report, ImportReport)
            assert error.report.rejects, "refused for rejected rows, but none listed"
            assert error.report.imported == 0
        assert _stored(ws) == before, "a refused import changed what was stored"
        return None
    after = _stored(ws)
    assert after[: len(before)] == before, "an import changed rows that were already stored"
    added = after[len(before) :]
    assert len(added) == report.imported
    list_id = ws.get_list(name).id
    assert all(row["list_id"] == list_id for row in added)
    assert accept_valid or not report.rejects
    for row in added:
        assert row["email_key"] == row["email"].lower()
        assert row["status"] in ("active", "unsubscribed", "bounced", "complained")
    return report


# -- accepted files round-trip ----------------------------------------------------------------


@SETTINGS
@given(
    rows=st.lists(st.tuples(ADDRESS, CELL, STATUS, CELL), min_size=1, max_size=8),
    encoding=ENCODINGS,
    delimiter=DELIMITERS,
    quoting=QUOTING,
    line_end=LINE_ENDS,
)
@example(
    rows=[("ann@example.com", "'=1+1", "", " \x0cx ")],
    encoding="utf-16",
    delimiter=";",
    quoting=csv.QUOTE_ALL,
    line_end="\r\n",
)
def test_a_written_file_reads_back_as_written(
    workspace: Workspace,
    tmp_path: Path,
    rows: list[tuple[str, str, str, str]],
    encoding: str,
    delimiter: str,
    quoting: int,
    line_end: str,
) -> None:
    if line_end == "\n" and any("\r" in cell for row in rows for cell in row):
        # The csv module quotes only the characters of its own line end: a bare CR would be
        # written as a line break, which is what the file would then say.
        quoting = csv.QUOTE_ALL
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end)
    writer.writerow(["email", "name", "status", "city"])
    writer.writerows(rows)
    text = buffer.getvalue()
    assume(_encodable(text, encoding))
    path = tmp_path / "written.csv"
    path.write_bytes(_encode(text, encoding))

    # What the README promises the import makes of each row, in file order.
    expected: dict[str, tuple[str, str, str, dict[str, str]]] = {}
    rejected = 0
    for address, name, status, city in rows:
        if not any(cell.strip() for cell in (address, name, status, city)):
            continue  # a blank row is skipped, not rejected
        try:
            email = normalize_address(unescape_cell(address.strip()))
        except InvalidAddressError:
            rejected += 1
            continue
        state = unescape_cell(status.strip()).lower() or "active"
        if email.lower() in expected:
            continue  # a duplicate of an earlier line: skipped, not stored
        if state not in ("active", "unsubscribed", "bounced", "complained"):
            rejected += 1
            continue
        person = unescape_cell(name.strip())
        if len(person) > 200:
            rejected += 1
            continue
        expected[email.lower()] = (email, person, state, {"city": unescape_cell(city.strip())})

    name = _fresh_list(workspace)
    report = _import_or_refuse(workspace, name, path, accept_valid=True)
    if not expected and not rejected:
        return  # blank rows only: "a header but no rows" is the one line then
    assert report is not None
    assert report.encoding in _LABELS[encoding]
    assert report.delimiter == delimiter
    stored = [(s.email, s.name, s.status, s.fields) for s in workspace.lists.iter_subscribers(name)]
    assert stored == list(expected.values())
    assert len(report.rejects) == rejected


# -- hostile files: a report or one line, and nothing already stored changes ----------------

_FRAGMENTS = st.one_of(
    st.sampled_from(
        [
            b"email,name\r\n",
            b"Email;Name;Status\n",
            b"e-mail\tname\n",
            b"ann@example.com,Ann\n",
            b"ann@example.com;Ann;active\n",
            b"=cmd|' /C calc'!A0,x\n",
            b"'=x@example.com,y\n",
            b'"unterminated,quote\n',
            b'"a""b@example.com",c\n',
            b'x"y@example.com,z\n',
            b"\xef\xbb\xbf",
            b"\xff\xfe",
            b"\xfe\xff",
            b"\x00",
            b"\x1b[31m",
            b"\x7f",
            b"\x0c",
            b"\r",
            b"\r\r\n",
            b"\n\n",
            b",,,,\n",
            b";;\t\t\n",
            b"caf\xe9@example.com,Z\xfcrich\n",  # cp1252
            b"\xc3\xa9l\xc3\xa8ve@example.fr,\xc3\x89\n",  # UTF-8
            b"\x80\x81\x8d\x9d",  # bytes cp1252 leaves undefined: latin-1 then
            b"bounced,ann@example.com\n",
            b"status\n",
        ]
    ),
    st.binary(max_size=24),
    st.text(max_size=16).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.emails().map(lambda e: f"{e},n\n".encode()),
)


@SETTINGS
@given(pieces=st.lists(_FRAGMENTS, max_size=10), accept_valid=st.booleans())
@example(pieces=[b"email\n", b"a" * (64 * 1024 + 1), b"\n"], accept_valid=True)
@example(pieces=[b"email,name\n", b"ann@example.com,\x00\n"], accept_valid=True)
@example(pieces=[b"\xff\xfee\x00m\x00a\x00i\x00l\x00\n\x00\x00\xd8"], accept_valid=False)
@example(pieces=[b"email,name\n", b"ann@example.com,Ann\n", b"bad,Bad\n"], accept_valid=False)
def test_hostile_bytes_give_a_report_or_one_line_and_change_nothing_stored(
    workspace: Workspace, tmp_path: Path, pieces: list[bytes], accept_valid: bool
) -> None:
    data = b"".join(pieces)
    path = tmp_path / "hostile.csv"
    path.write_bytes(data)
    name = _fresh_list(workspace)
    report = _import_or_refuse(workspace, name, path, accept_valid=accept_valid)

    # The wizard's first step reads the same file; it never accepts what the import's
    # whole-file checks refuse, and it too answers with one line.
    try:
        preview = preview_csv(data)
    except UserInputError as error:
        _assert_one_line(error)
        with pytest.raises(UserInputError):
            parse_subscribers(data)
        return
    assert "\n" not in preview.problem
    if report is not None:
        assert preview.delimiter == report.delimiter
        assert preview.encoding == report.encoding


HEADER_NAME = st.one_of(
    st.sampled_from(["email", "Name", "city", "=x", "'=y", "status", "E-Mail", "plan"]),
    CELL.map(str.strip).filter(bool),
)


@SETTINGS
@given(
    header=st.lists(HEADER_NAME, min_size=1, max_size=4, unique=True),
    rows=st.lists(st.lists(st.one_of(ADDRESS, CELL), max_size=5), min_size=1, max_size=5),
    tail=st.lists(_FRAGMENTS, max_size=3),
    delimiter=DELIMITERS,
    choice=st.integers(min_value=0, max_value=7),
    accept_valid=st.booleans(),
)
def test_a_mapping_picked_in_the_wizard_imports_or_refuses_in_one_line(
    workspace: Workspace,
    tmp_path: Path,
    header: list[str],
    rows: list[list[str]],
    tail: list[bytes],
    delimiter: str,
    choice: int,
    accept_valid: bool,
) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8") + b"".join(tail)
    try:
        preview = preview_csv(data)
    except UserInputError as error:
        _assert_one_line(error)
        return
    # The wizard offers the header as the preview read it; the person picks any column.
    columns = [h for h in preview.header if h]
    if not columns:
        return
    email = columns[choice % len(columns)]
    others = [h for h in columns if h != email]
    mapping = ColumnMapping(
        email=email,
        name=others[0] if others else None,
        fields={h: f"f_{h}" for h in others[1:]} or None,
    )
    path = tmp_path / "mapped.csv"
    path.write_bytes(data)
    name = _fresh_list(workspace)
    report = _import_or_refuse(workspace, name, path, accept_valid=accept_valid, mapping=mapping)
    if report is not None:
        for subscriber in workspace.lists.iter_subscribers(name):
            assert set(subscriber.fields) <= {f"f_{h}" for h in others[1:]}


# -- an export imports back unchanged -------------------------------------------------------

FORMULA_CELL = st.one_of(
    CELL,
    st.tuples(st.sampled_from(["", "'", "''", "' "]), st.sampled_from(FORMULA_STARTS), CELL).map(
        "".join
    ),
)


@SETTINGS
@given(
    rows=st.lists(
        st.tuples(st.emails().map(str), FORMULA_CELL, STATUS, FORMULA_CELL, FORMULA_CELL),
        min_size=1,
        max_size=6,
    ),
    raw=st.booleans(),
)
def test_an_export_imports_back_unchanged(
    workspace: Workspace, tmp_path: Path, rows: list[tuple[str, str, str, str, str]], raw: bool
) -> None:
    source = io.StringIO(newline="")
    writer = csv.writer(source)
    writer.writerow(["email", "name", "status", "city", "=plan"])
    writer.writerows(rows)
    path = tmp_path / "source.csv"
    path.write_text(source.getvalue(), encoding="utf-8", newline="")
    original = _fresh_list(workspace)
    if _import_or_refuse(workspace, original, path, accept_valid=True) is None:
        return

    exported = tmp_path / "export.csv"
    count = workspace.export_list(original, exported, raw=raw)
    stored = [
        (s.email, s.name, s.status, s.fields) for s in workspace.lists.iter_subscribers(original)
    ]
    assert count == len(stored)
    if not stored:
        return  # every row was rejected: a header alone does not import
    with exported.open(encoding="utf-8", newline="") as handle:
        cells = list(itertools.chain.from_iterable(csv.reader(handle)))
    if raw:
        # --raw writes the stored text verbatim (and then need not import back the same).
        values = {"email", "name", "status", "city", "=plan"}
        for email, name, status, fields in stored:
            values.update([email, name, status, *fields.values()])
        assert set(cells) <= values
        return
    for cell in cells:
        assert not cell.startswith(FORMULA_STARTS), cell

    copy = _fresh_list(workspace)
    report = _import_or_refuse(workspace, copy, exported, accept_valid=False)
    assert report is not None
    assert (report.imported, report.rejects, report.duplicates) == (len(stored), (), ())
    again = [(s.email, s.name, s.status, s.fields) for s in workspace.lists.iter_subscribers(copy)]
    assert again == stored
