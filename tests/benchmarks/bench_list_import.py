"""How long does importing a 100,000-row CSV file into a subscriber list take?

Writes a CSV file (email, name and two custom columns; addresses over 200 domains, a few
mixed-case duplicates and invalid rows, as real exports have) into a fresh temp data
directory, then times ``Workspace.import_list(..., accept_valid=True)``: read, decode,
sniff, parse, validate every address, de-duplicate, and insert in one transaction
(SQLite, WAL, synchronous=FULL). The baseline, measured in the same run on the same file,
is plain ``csv.reader`` over the decoded text with nothing else: the ratio says what
validation and storage cost on top of reading the file.

    python tests/benchmarks/bench_list_import.py [-n 100000] [--repeat 3]

Prints seconds and rows/s for both and the ratio; the target is under 5 s for 100,000 rows.
Not collected by pytest, asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from desktop_app.core.workspace import Workspace  # noqa: E402


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "Name", "City", "Plan"])
        for i in range(rows):
            if i % 1000 == 999:
                email = f"broken-{i}-at-example.com"  # rejected: no @
            elif i % 1000 == 998:
                email = f"User{i - 1}@Domain{(i - 1) % 200}.Example.com"  # duplicate, other case
            else:
                email = f"user{i}@domain{i % 200}.example.com"
            writer.writerow([email, f"Subscriber Nº {i}", f"City {i % 97}", "pro"])


def time_baseline(path: Path) -> float:
    start = time.perf_counter()
    text = path.read_bytes().decode("utf-8")
    count = sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
    elapsed = time.perf_counter() - start
    assert count > 0
    return elapsed


def time_import(path: Path, work: Path, run: int) -> tuple[float, int, int, int]:
    workspace = Workspace.open(work / f"data-{run}")
    try:
        workspace.create_list("bench")
        start = time.perf_counter()
        report = workspace.import_list("bench", path, accept_valid=True)
        elapsed = time.perf_counter() - start
        stored = workspace.get_list("bench").total
    finally:
        workspace.close()
    if stored != report.imported:
        raise SystemExit(f"stored {stored} rows but the report says {report.imported}")
    return elapsed, report.imported, len(report.duplicates), len(report.rejects)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="relaydesk-bench-import-"))
    try:
        source = work / "subscribers.csv"
        write_file(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        baselines = [time_baseline(source) for _ in range(args.repeat)]
        imports = [time_import(source, work, run) for run in range(args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    baseline = statistics.median(baselines)
    seconds = statistics.median(t for t, *_ in imports)
    _, imported, duplicates, rejected = imports[0]
    print(f"{args.rows} rows, {size_mb:.1f} MB, median of {args.repeat}")
    print(f"  csv.reader baseline : {baseline:7.3f} s  {args.rows / baseline:12,.0f} rows/s")
    print(f"  import_list         : {seconds:7.3f} s  {args.rows / seconds:12,.0f} rows/s")
    print(f"  ratio               : {seconds / baseline:7.1f}x the baseline")
    print(f"  imported {imported}, duplicate {duplicates}, rejected {rejected}")
    verdict = "under" if seconds < 5 else "OVER"
    print(f"  target 5 s for 100,000 rows: {verdict} ({seconds:.2f} s for {args.rows})")


if __name__ == "__main__":
    main()
