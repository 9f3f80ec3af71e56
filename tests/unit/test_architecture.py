"""The core and the command line never load Qt, pyqtgraph or the GUI package.

Checked in a fresh interpreter: in this one, another test may already have imported Qt.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_PREFIXES = ("PySide6", "shiboken6", "pyqtgraph", "desktop_app.ui")

#: Not modules but scripts Alembic runs with its own context set up.
NOT_IMPORTABLE = ("desktop_app.core.storage.migrations.env",)

_PROBE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    import desktop_app.core

    skip = set(sys.argv[1:])
    imported = ["desktop_app.core"]
    errors = []

    def on_error(name):
        errors.append(name)

    for info in pkgutil.walk_packages(
        desktop_app.core.__path__, "desktop_app.core.", onerror=on_error
    ):
        if info.name in skip:
            continue
        importlib.import_module(info.name)
        imported.append(info.name)
    importlib.import_module("desktop_app.cli")
    imported.append("desktop_app.cli")
    json.dump({"imported": imported, "errors": errors, "loaded": sorted(sys.modules)}, sys.stdout)
    """
)


def _probe() -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *NOT_IMPORTABLE],
        cwd=REPO_ROOT,  # "-c" puts the working directory first: this checkout's desktop_app
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, list[str]] = json.loads(result.stdout)
    return report


def test_core_and_cli_import_without_qt() -> None:
    report = _probe()

    assert report["errors"] == []
    offenders = [
        name
        for name in report["loaded"]
        if any(name == p or name.startswith(p + ".") for p in FORBIDDEN_PREFIXES)
    ]
    assert offenders == []
    # The walk really reached the corners of the package, not just its top.
    imported = set(report["imported"])
    for expected in (
        "desktop_app.core.storage.outbox",
        "desktop_app.core.delivery.engine",
        "desktop_app.core.health.probe",
        "desktop_app.core.storage.migrations.versions.0001_initial",
        "desktop_app.cli",
    ):
        assert expected in imported
    assert set(NOT_IMPORTABLE).isdisjoint(imported)
