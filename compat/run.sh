#!/usr/bin/env bash
# Runs the official SDKs' suites (compat/python with pytest, compat/node with
# node's test runner) against a freshly built server on a free port, then
# stops it. Needs python3 (venv) and node/npm; installs the pinned SDKs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"
cargo build --locked --bin stripe-twin
bin="${CARGO_TARGET_DIR:-$root/target}/debug/stripe-twin"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# --port 0: the OS picks a free port; the start-up line says which.
"$bin" --in-memory --bind 127.0.0.1 --port 0 > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
    url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/server.out" | head -1 || true)"
    [ -n "$url" ] && break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "compat: the server did not start" >&2
    cat "$work/server.err" >&2
    exit 1
fi
export STRIPE_TWIN_URL="$url"
echo "compat: server at $STRIPE_TWIN_URL"

venv="${COMPAT_VENV:-${TMPDIR:-/tmp}/stripe-twin-compat-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/python/requirements.txt"
"$venv/bin/python" -m pytest -q -p no:cacheprovider "$here/python"

(cd "$here/node" && npm ci --silent --no-audit --no-fund && npm test)
