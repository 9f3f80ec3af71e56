"""A list export escapes spreadsheet formulas, and imports back exactly as it was."""

from __future__ import annotations

import csv
import io
import itertools
import re
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from desktop_app.core.campaigns.csv_import import parse_subscribers
from desktop_app.core.csv_cells import FORMULA_STARTS
from desktop_app.core.errors import UserInputError
from desktop_app.core.storage.database import Database
from desktop_app.core.storage.lists import ListRepository

# Any text a CSV file can hold (the import refuses files with other control characters).
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
CELL = st.one_of(
    st.text(st.sampled_from([*"=+-@\t\r\n' \",;x中"]), max_size=10),
    st.text(
        st.characters(exclude_categories=["Cs", "Cc"], include_characters="\t\r\n\x0c\x85"),
        max_size=30,
    ),
).filter(lambda text: not _REFUSED.search(text))
EMAIL = st.tuples(st.sampled_from(["", "=", "+", "-", "'", "'=", "''-"]), st.emails()).map(
    lambda parts: parts[0] + str(parts[1])
)
FIELD = st.sampled_from(["note", "=note", "+plan", "'-y", "@z", "  city "])
_NAMES = itertools.count()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.tuples(EMAIL, CELL, CELL, CELL), min_size=1, max_size=6),
    fields=st.lists(FIELD, min_size=2, max_size=2, unique=True),
)
def test_an_escaped_export_imports_back_unchanged(
    database: Database, tmp_path: Path, rows: list[tuple[str, str, str, str]], fields: list[str]
) -> None:
    lists = ListRepository(database)
    source = io.StringIO(newline="")
    writer = csv.writer(source)
    writer.writerow(["email", "name", *fields])
    writer.writerows(rows)
    try:
        parsed = parse_subscribers(source.getvalue().encode("utf-8"))
    except UserInputError:
        assume(False)
        return
    original, copy = f"a{next(_NAMES)}", f"b{next(_NAMES)}"
    lists.create(original)
    lists.import_parsed(original, parsed)

    exported = tmp_path / "export.csv"
    lists.export_csv(original, exported)
    with exported.open(encoding="utf-8", newline="") as handle:
        for cell in itertools.chain.from_iterable(csv.reader(handle)):
            assert not cell.startswith(FORMULA_STARTS), cell
    lists.create(copy)
    lists.import_parsed(copy, parse_subscribers(exported.read_bytes()))

    def content(name: str) -> list[tuple[str, str, str, dict[str, str]]]:
        return [(s.email, s.name, s.status, s.fields) for s in lists.iter_subscribers(name)]

    assert content(copy) == content(original)
