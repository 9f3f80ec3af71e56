"""The Linux desktop entry and AppStream metainfo: valid by the distributions' own tools,
and consistent with each other, the icons and the app."""

from __future__ import annotations

import configparser
import struct
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import desktop_app
from desktop_app.resource_files import APP_ID, ICON_NAME, ICON_SIZES, app_icon_png
from tests.support.servers import require_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
LINUX = REPO_ROOT / "resources" / "linux"
DESKTOP_FILE = LINUX / f"{APP_ID}.desktop"
METAINFO_FILE = LINUX / f"{APP_ID}.metainfo.xml"
HICOLOR = REPO_ROOT / "resources" / "icons" / "hicolor"


def _desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(DESKTOP_FILE, encoding="utf-8")
    return parser["Desktop Entry"]


def _console_script() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        scripts = tomllib.load(file)["project"]["scripts"]
    assert list(scripts) == ["relaydesk"], scripts
    return "relaydesk"


def test_the_desktop_entry_passes_desktop_file_validate() -> None:
    validator = require_binary("desktop-file-validate", "desktop-file-utils")
    result = subprocess.run(
        [validator, str(DESKTOP_FILE)], capture_output=True, text=True, timeout=60, check=False
    )
    # Warnings and hints come with exit status 0; they are not acceptable either.
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "", result.stdout


def test_the_metainfo_passes_appstreamcli_validate_offline() -> None:
    appstreamcli = require_binary("appstreamcli", "appstream")
    result = subprocess.run(
        [appstreamcli, "validate", "--no-net", "--no-color", str(METAINFO_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Errors and warnings fail; infos do not (AppStream 0.16 does not know <developer> yet,
    # which replaced <developer_name> in AppStream 1.0).
    problems = [line for line in result.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert problems == [], result.stdout


def test_desktop_entry_metainfo_and_app_name_the_same_things() -> None:
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == _console_script()
    assert entry["Icon"] == ICON_NAME

    component = ET.parse(METAINFO_FILE).getroot()  # noqa: S314 (a file of this checkout)
    assert component.findtext("id") == APP_ID
    assert component.findtext("name") == entry["Name"]
    launchable = component.find("launchable")
    assert launchable is not None
    assert launchable.get("type") == "desktop-id"
    assert launchable.text == DESKTOP_FILE.name
    assert component.findtext("provides/binary") == _console_script()
    assert component.findtext("project_license") == "MIT"
    # Newest release first, and it is this version.
    releases = [release.get("version") for release in component.iterfind("releases/release")]
    assert releases[0] == desktop_app.__version__


def test_the_icon_exists_at_every_size_and_as_svg() -> None:
    svg = HICOLOR / "scalable" / "apps" / f"{ICON_NAME}.svg"
    root = ET.parse(svg).getroot()  # noqa: S314 (a file of this checkout)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    for size in ICON_SIZES:
        png = HICOLOR / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png"
        header = png.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n", png
        # The IHDR chunk comes first: width and height, big-endian.
        assert struct.unpack(">II", header[16:24]) == (size, size), png
        # From a checkout the locator finds the same files.
        assert app_icon_png(size) == png


def test_the_user_install_script_names_the_same_app_id() -> None:
    script = (REPO_ROOT / "packaging" / "install_desktop_entry.sh").read_text(encoding="utf-8")
    assert f'APP_ID="{APP_ID}"' in script
    assert f'ICON_NAME="{ICON_NAME}"' in script
