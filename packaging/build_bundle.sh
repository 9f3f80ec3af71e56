#!/usr/bin/env bash
# Build the one-folder Linux bundle with PyInstaller, then smoke-test the bundle itself.
#
#     bash packaging/build_bundle.sh            # bundle in build/bundle/dist/relaydesk/
#
# Idempotent: every run rebuilds from scratch into build/bundle/ (git-ignored) and smoke-
# tests with fresh temporary data folders. Runs as part of .ci/run after the tests pass.
# Checks, with the bundled executable only (no Python from this checkout involved):
#   - `relaydesk --version`
#   - the command line: add a loopback provider (migrates a new database) and queue a message
#   - `relaydesk --smoke-test` (offscreen): the window opens, the outbox shows that message,
#     and the app quits through its normal path with exit 0
#   - if Postfix's smtp-sink is installed: a campaign is rendered in the "spawn" child
#     process and delivered, which only works in a frozen app thanks to freeze_support()
set -euo pipefail

cd "$(dirname "$0")/.."
REPO="$(pwd)"
OUT="$REPO/build/bundle"
export PIP_DISABLE_PIP_VERSION_CHECK=1

echo "== bundle: PyInstaller (the packaging extra)"
python -m pip install --quiet -e '.[packaging]'

echo "== bundle: build"
started=$(date +%s)
rm -rf "$OUT"
python -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$OUT/dist" --workpath "$OUT/work" packaging/relaydesk.spec
echo "bundle built in $(($(date +%s) - started)) s: $(du -sh "$OUT/dist/relaydesk" | cut -f1)"

APP="$OUT/dist/relaydesk/relaydesk"
SCRATCH="$(mktemp -d)"
SINK_PID=""
cleanup() {
    if [ -n "$SINK_PID" ]; then kill "$SINK_PID" 2>/dev/null || true; fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

fail() {
    echo "bundle smoke test FAILED: $*" >&2
    exit 1
}

# Away from the checkout, so nothing can be imported from it by accident; no keyring (the
# loopback providers need no password) and no display.
cd "$SCRATCH"
export PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring
export QT_QPA_PLATFORM=offscreen
unset RELAYDESK_DATA_DIR PYTHONPATH

echo "== bundle: --version"
version="$("$APP" --version)" || fail "--version exited $?"
[ "$version" = "relaydesk $(cd "$REPO" && python -c 'import desktop_app; print(desktop_app.__version__)')" ] \
    || fail "--version said: $version"
echo "$version"

echo "== bundle: command line and --smoke-test"
DATA="$SCRATCH/data"
echo "Hello from the bundle smoke test." >"$SCRATCH/body.txt"
# Nothing listens on the discard port of loopback: the message stays in the outbox.
"$APP" --data-dir "$DATA" provider add Loopback --host 127.0.0.1 --port 9 --security none \
    || fail "provider add exited $?"
"$APP" --data-dir "$DATA" send --from smoke@example.com --to someone@example.net \
    --subject "Bundle smoke test" --text-file "$SCRATCH/body.txt" || fail "send exited $?"
status=0
output="$(timeout 120 "$APP" --data-dir "$DATA" --smoke-test)" || status=$?
echo "$output"
[ "$status" -eq 0 ] || fail "--smoke-test exited $status"
[ "$output" = "smoke test: window open, outbox loaded (1 message)" ] \
    || fail "--smoke-test printed: $output"

SMTP_SINK="$(PATH="$PATH:/usr/sbin:/sbin" command -v smtp-sink || true)"
if [ -z "$SMTP_SINK" ]; then
    # CI installs postfix (.ci/run), so there a missing smtp-sink is a failure, not a skip.
    case "${CI:-}" in
        1 | true | yes) fail "smtp-sink not found: apt-get install postfix" ;;
    esac
    echo "== bundle: smtp-sink not found (apt-get install postfix): campaign check skipped"
else
    echo "== bundle: a campaign rendered in a spawn child, sent to smtp-sink"
    port="$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    sink_args=()
    if [ "$(id -u)" -eq 0 ]; then sink_args=(-u nobody); fi
    "$SMTP_SINK" "${sink_args[@]}" "127.0.0.1:$port" 16 >"$SCRATCH/smtp-sink.log" 2>&1 &
    SINK_PID=$!
    for _ in $(seq 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
        sleep 0.1
    done
    CAMPAIGN_DATA="$SCRATCH/campaign"
    printf 'email,name\nada@example.net,Ada\ngrace@example.net,Grace\n' >"$SCRATCH/list.csv"
    echo "<p>Hello {{ name }}</p>" >"$SCRATCH/body.html"
    run() { "$APP" --data-dir "$CAMPAIGN_DATA" "$@" || fail "$* exited $?"; }
    run provider add Sink --host 127.0.0.1 --port "$port" --security none
    run list create Friends
    run list import Friends "$SCRATCH/list.csv"
    run campaign create Hello --list Friends --from news@example.com --subject "Hello" \
        --html-file "$SCRATCH/body.html" --unsubscribe-mailto unsubscribe@example.com
    run campaign send Hello
    run run --until-idle --timeout 60
    counts="$("$APP" --data-dir "$CAMPAIGN_DATA" outbox --json)"
    echo "$counts"
    echo "$counts" | python -c 'import json, sys; c = json.load(sys.stdin); sys.exit(c["sent"] != 2)' \
        || fail "the campaign did not send both messages"
    # The renderer falls back to rendering in-process when its child keeps dying, which
    # would hide a broken spawn: the log must not say so.
    if grep -rqs "campaign renderer process" "$CAMPAIGN_DATA"; then
        fail "the campaign renderer's spawn child died (see the log in $CAMPAIGN_DATA)"
    fi
fi

echo "bundle OK: $OUT/dist/relaydesk"
