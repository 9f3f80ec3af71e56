"""The wheel and the sdist: what goes in, what stays out, and that an installed wheel finds
its own resources."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import desktop_app
from desktop_app.resource_files import APP_ID, ICON_SIZES
from tests.support.servers import in_ci

REPO_ROOT = Path(__file__).resolve().parents[2]
ICONS = "desktop_app/resources/icons/hicolor"


def _listed_packages() -> list[str]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        packages: list[str] = tomllib.load(file)["tool"]["setuptools"]["packages"]
    return packages


def test_every_package_in_the_checkout_is_listed_in_pyproject() -> None:
    found = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for init in (REPO_ROOT / "desktop_app").rglob("__init__.py")
    }
    listed = set(_listed_packages())
    missing = sorted(found - listed)
    assert not missing, (
        f"add {missing} to [tool.setuptools] packages in pyproject.toml, "
        "or the wheel ships without them"
    )
    # The one package that is not a directory under desktop_app/: resources/, mapped.
    assert listed - found == {"desktop_app.resources"}


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, sdist) built from this checkout, as ``python -m build`` makes them."""
    if importlib.util.find_spec("build") is None:
        message = "the 'build' package is missing: pip install -e '.[test]'"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    outdir = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        # --no-isolation: the build backend comes from this environment (the test extra),
        # so the test needs no network. Without --sdist/--wheel, build makes the sdist and
        # then the wheel from the unpacked sdist, so the wheel proves the sdist is complete.
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (wheel,) = outdir.glob("*.whl")
    (sdist,) = outdir.glob("*.tar.gz")
    return wheel, sdist


@pytest.mark.slow
def test_the_wheel_carries_the_runtime_resources_and_no_screenshots(
    distributions: tuple[Path, Path],
) -> None:
    wheel, _sdist = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for size in ICON_SIZES:
        assert f"{ICONS}/{size}x{size}/apps/relaydesk.png" in names
    assert f"{ICONS}/scalable/apps/relaydesk.svg" in names
    assert f"desktop_app/resources/linux/{APP_ID}.desktop" in names
    assert f"desktop_app/resources/linux/{APP_ID}.metainfo.xml" in names
    assert "desktop_app/py.typed" in names
    assert "desktop_app/resource_files.py" in names
    migrations = "desktop_app/core/storage/migrations"
    assert f"{migrations}/env.py" in names
    revisions = {
        name
        for name in names
        if name.startswith(f"{migrations}/versions/0") and name.endswith(".py")
    }
    in_checkout = {
        f"{migrations}/versions/{path.name}"
        for path in (REPO_ROOT / migrations / "versions").glob("0*.py")
    }
    assert revisions == in_checkout
    # database.py configures Alembic in code; should an alembic.ini appear, it must ship.
    if (REPO_ROOT / "desktop_app/core/storage/alembic.ini").exists():
        assert "desktop_app/core/storage/alembic.ini" in names
    assert not [name for name in names if "screenshots" in name]
    assert not [name for name in names if name.startswith(("tests/", "packaging/"))]


@pytest.mark.slow
def test_the_sdist_can_rebuild_and_test(distributions: tuple[Path, Path]) -> None:
    _wheel, sdist = distributions
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for required in (
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "desktop_app/ARCHITECTURE.md",
        "pyproject.toml",
        "MANIFEST.in",
        f"resources/linux/{APP_ID}.desktop",
        f"resources/linux/{APP_ID}.metainfo.xml",
        "resources/icons/hicolor/scalable/apps/relaydesk.svg",
        "resources/icons/hicolor/256x256/apps/relaydesk.png",
        "tests/conftest.py",
        "tests/support/servers.py",
        "tests/packaging/test_distribution.py",
        "packaging/relaydesk.spec",
        "packaging/render_icons.py",
        "desktop_app/core/storage/migrations/script.py.mako",
    ):
        assert required in names, required
    # README pictures only: they would double the sdist and nothing builds or tests with them.
    assert not [name for name in names if name.startswith("resources/screenshots")]
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


@pytest.mark.slow
def test_an_installed_wheel_uses_its_own_resources(
    distributions: tuple[Path, Path], tmp_path: Path
) -> None:
    wheel, _sdist = distributions
    venv = tmp_path / "venv"
    # The dependencies (PySide6 and the rest) come from this environment; only Relaydesk
    # itself is installed from the wheel.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    check = (
        "import desktop_app, desktop_app.resource_files as r\n"
        "icon = r.app_icon_png(256)\n"
        "desktop = r.resource_path('linux', r.APP_ID + '.desktop')\n"
        "print(desktop_app.__file__, icon, desktop, icon.is_file(), desktop.is_file(), sep='\\n')\n"
    )
    # From outside the checkout, so the installed copy is the one imported.
    result = subprocess.run(
        [str(python), "-I", "-c", check],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    package, icon, desktop, icon_exists, desktop_exists = result.stdout.splitlines()
    site = str(venv.resolve())
    assert package.startswith(site), package
    assert icon.startswith(site), icon
    assert desktop.startswith(site), desktop
    assert (icon_exists, desktop_exists) == ("True", "True")
    version = subprocess.run(
        [str(venv / "bin" / "relaydesk"), "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    expected = f"relaydesk {desktop_app.__version__}"
    assert version.stdout.strip() == expected, version.stdout + version.stderr
