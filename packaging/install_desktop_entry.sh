#!/usr/bin/env bash
# Put Relaydesk in this user's application menu: the desktop entry, the icons and the
# AppStream metainfo under ~/.local/share (or $XDG_DATA_HOME). Run it again to update;
# --uninstall removes exactly what it installed.
#
#     bash packaging/install_desktop_entry.sh                      # `relaydesk` on PATH
#     bash packaging/install_desktop_entry.sh --exec ~/relaydesk/relaydesk   # a bundle
#
# The files come from the installed package (or this checkout) through
# desktop_app/resource_files.py; with --resources DIR from a bundle's
# _internal/desktop_app/resources instead.
set -euo pipefail

APP_ID="io.github.relaydesk.Relaydesk"
ICON_NAME="relaydesk"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
EXEC=""
RESOURCES=""
UNINSTALL=0

while [ $# -gt 0 ]; do
    case "$1" in
        --exec) EXEC="$2"; shift 2 ;;
        --resources) RESOURCES="$2"; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        *) echo "usage: $0 [--exec PATH] [--resources DIR] [--uninstall]" >&2; exit 2 ;;
    esac
done

DESKTOP="$DATA_HOME/applications/$APP_ID.desktop"
METAINFO="$DATA_HOME/metainfo/$APP_ID.metainfo.xml"
ICONS="$DATA_HOME/icons/hicolor"

refresh_caches() {
    # Menus pick up the change on their own on most desktops; these make it immediate.
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database "$DATA_HOME/applications" || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$ICONS/index.theme" ]; then
        gtk-update-icon-cache --quiet "$ICONS" || true
    fi
}

if [ "$UNINSTALL" -eq 1 ]; then
    rm -f "$DESKTOP" "$METAINFO" "$ICONS"/*/apps/"$ICON_NAME".png "$ICONS/scalable/apps/$ICON_NAME.svg"
    refresh_caches
    echo "removed Relaydesk's desktop entry, icons and metainfo from $DATA_HOME"
    exit 0
fi

if [ -z "$RESOURCES" ]; then
    RESOURCES="$(python3 -c 'from desktop_app.resource_files import resource_path; print(resource_path())')"
fi
[ -f "$RESOURCES/linux/$APP_ID.desktop" ] || { echo "no $APP_ID.desktop in $RESOURCES/linux" >&2; exit 1; }

mkdir -p "$(dirname "$DESKTOP")" "$(dirname "$METAINFO")"
if [ -n "$EXEC" ]; then
    # A bundle is not on PATH: point the launcher at its executable (absolute, quoted).
    exec_path="$(cd "$(dirname "$EXEC")" && pwd)/$(basename "$EXEC")"
    sed "s|^Exec=relaydesk|Exec=\"$exec_path\"|" "$RESOURCES/linux/$APP_ID.desktop" >"$DESKTOP"
else
    install -m 644 "$RESOURCES/linux/$APP_ID.desktop" "$DESKTOP"
fi
install -m 644 "$RESOURCES/linux/$APP_ID.metainfo.xml" "$METAINFO"
for png in "$RESOURCES"/icons/hicolor/*/apps/"$ICON_NAME".png; do
    size_dir="$(basename "$(dirname "$(dirname "$png")")")"
    install -D -m 644 "$png" "$ICONS/$size_dir/apps/$ICON_NAME.png"
done
install -D -m 644 "$RESOURCES/icons/hicolor/scalable/apps/$ICON_NAME.svg" \
    "$ICONS/scalable/apps/$ICON_NAME.svg"
refresh_caches
echo "installed $DESKTOP, its icons and metainfo"
