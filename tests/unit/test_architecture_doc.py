"""Every section of desktop_app/ARCHITECTURE.md that the code or the tests cite exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "desktop_app" / "ARCHITECTURE.md"

#: ``ARCHITECTURE.md, "Section"`` or ``ARCHITECTURE.md ("Section")``, possibly across lines.
_CITATION = re.compile(r"ARCHITECTURE\.md(?:,\s*|\s*\(\s*)[\"']([^\"']+)[\"']")


def headings() -> set[str]:
    return {
        line.removeprefix("## ").strip()
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    }


def citations() -> dict[str, set[str]]:
    """{section cited: the files citing it}."""
    cited: dict[str, set[str]] = {}
    for folder in ("desktop_app", "tests"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if path.resolve() == Path(__file__).resolve():
                continue  # its examples are not citations
            text = " ".join(path.read_text(encoding="utf-8").split())
            for match in _CITATION.finditer(text):
                section = " ".join(match.group(1).split())
                cited.setdefault(section, set()).add(str(path.relative_to(REPO_ROOT)))
    return cited


def test_the_cited_sections_exist() -> None:
    cited = citations()
    assert cited, "no citation found: is the pattern still right?"
    missing = {section: sorted(files) for section, files in cited.items()}
    for section in headings():
        missing.pop(section, None)
    assert missing == {}, f"cited but not a '## ' heading of {DOC.name}: {missing}"
