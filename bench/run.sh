#!/usr/bin/env bash
# Hand-run benchmark of the release binary (not part of the test suite).
#
#   bash bench/run.sh
#
# For SQLite (a fresh temp file) and Postgres (a fresh database), it:
#   - times start-up until the first 200 from GET /healthz, reads the idle RSS,
#   - seeds 10,000 customers (16 keep-alive curl processes in parallel),
#   - runs wrk (-t2 -c16 -d10s --latency) on:
#       POST /v1/customers, GET /v1/customers/{id}, GET /v1/customers?limit=10
#   - reads the RSS after the load,
# then prints a Markdown table to stdout and writes it to BENCH_OUT
# (target/bench/last-results.md: untracked, the path is printed at the end).
# bench/last-results.md is the committed record README's Performance section
# quotes: copy the new results there by hand when updating the figures.
# Progress goes to stderr.
#
# Knobs (environment): BENCH_OUT (the results file, default
# ${CARGO_TARGET_DIR:-target}/bench/last-results.md), BENCH_PORT (12199),
# BENCH_DURATION (10s), BENCH_SEED (10000), BENCH_PG_HOST (127.0.0.1),
# BENCH_PG_PORT (5432), BENCH_PG_USER (postgres), BENCH_PG_DB
# (stripe_twin_bench), BENCH_NO_BUILD=1 (use the binaries as they are).
# The Postgres half is skipped, with a message, when psql cannot connect.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The wrk Lua scripts read BENCH_DIR to load stats.lua.
export BENCH_DIR
ROOT="$(dirname "$BENCH_DIR")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/stripe-twin"
PORT="${BENCH_PORT:-12199}"
DURATION="${BENCH_DURATION:-10s}"
THREADS=2
CONNS=16
SEED_N="${BENCH_SEED:-10000}"
KEY="sk_test_bench"
PG_HOST="${BENCH_PG_HOST:-127.0.0.1}"
PG_PORT="${BENCH_PG_PORT:-5432}"
PG_USER="${BENCH_PG_USER:-postgres}"
PG_DB="${BENCH_PG_DB:-stripe_twin_bench}"
RESULTS="${BENCH_OUT:-$TARGET/bench/last-results.md}"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/stripe-twin-bench.XXXXXX")"
SERVER_PID=""

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            kill -TERM "$SERVER_PID" 2>/dev/null || true
            for _ in $(seq 50); do
                kill -0 "$SERVER_PID" 2>/dev/null || break
                pause 0.1
            done
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fork-free sleep (read with a timeout on a FIFO nobody writes to), so the
# start-up poll loop is fine-grained without spawning a process per tick.
mkfifo "$TMP/pause.fifo"
exec {PAUSE_FD}<>"$TMP/pause.fifo"
pause() { read -r -t "$1" -u "$PAUSE_FD" _ || true; }

# --- tools -------------------------------------------------------------------

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk (apt-get)"
    if ! apt-get install -y wrk >"$TMP/apt.log" 2>&1; then
        if ! { apt-get update && apt-get install -y wrk; } >>"$TMP/apt.log" 2>&1; then
            cat "$TMP/apt.log" >&2
            die "cannot install wrk"
        fi
    fi
fi
for tool in curl jq awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done

FLOW_BENCH="$(dirname "$BIN")/examples/flow_bench"
if [[ "${BENCH_NO_BUILD:-}" == 1 ]]; then
    [[ -x "$BIN" && -x "$FLOW_BENCH" ]] || die "$BIN or $FLOW_BENCH not found (unset BENCH_NO_BUILD to build them)"
else
    log "building the release binary and the flow load generator (cargo build --release)"
    (cd "$ROOT" && cargo build --release --bin stripe-twin --example flow_bench >&2) || die "cargo build --release failed"
    [[ -x "$BIN" ]] || die "$BIN not found after the build"
fi
mkdir -p "$(dirname "$RESULTS")" || die "cannot create the folder of $RESULTS"

# --- helpers -------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 20); do
    port_in_use "$PORT" || break
    log "port $PORT is busy, trying $((PORT + 1))"
    PORT=$((PORT + 1))
done
port_in_use "$PORT" && die "no free port found"
BASE="http://127.0.0.1:$PORT"

# True when GET /healthz answers 200 (bash's /dev/tcp: no process per probe).
healthz_ok() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
        printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 5 line <&3 || exit 1
        [[ "$line" == HTTP/1.?" 200"* ]]
    ) 2>/dev/null
}

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# start_server LABEL [ENV=VALUE ...] -- [FLAGS ...]; sets SERVER_PID and STARTUP_MS.
start_server() {
    local label="$1"; shift
    local envs=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    local t0 t1
    t0=$(date +%s%N)
    env -u DATABASE_URL -u STRIPE_TWIN_IN_MEMORY -u STRIPE_TWIN_DB_PATH \
        RUST_LOG="${RUST_LOG:-stripe_twin=info,tower_http=warn}" "${envs[@]}" \
        "$BIN" --bind 127.0.0.1 --port "$PORT" "$@" >"$TMP/server-$label.log" 2>&1 &
    SERVER_PID=$!
    until healthz_ok; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$TMP/server-$label.log" >&2
            die "the server ($label) exited before answering /healthz"
        fi
        if (( ($(date +%s%N) - t0) > 60000000000 )); then
            cat "$TMP/server-$label.log" >&2
            die "the server ($label) did not answer /healthz within 60 s"
        fi
        pause 0.002
    done
    t1=$(date +%s%N)
    STARTUP_MS=$(( (t1 - t0) / 1000000 ))
}

# Seeds SEED_N customers over CONNS curl processes, each one reusing its
# connection for its share of requests (curl -K config, blocks joined by `next`).
seed_customers() {
    local label="$1"
    local dir="$TMP/seed-$label"
    mkdir -p "$dir"
    awk -v n="$SEED_N" -v c="$CONNS" -v url="$BASE/v1/customers" -v key="$KEY" -v dir="$dir" '
        BEGIN {
            for (i = 1; i <= n; i++) {
                f = sprintf("%s/part-%02d.cfg", dir, i % c)
                printf "url = \"%s\"\nheader = \"Authorization: Bearer %s\"\n", url, key > f
                printf "data = \"email=seed-%d%%40example.com&name=Seed+%d&metadata[seed]=%d\"\n", i, i, i > f
                printf "output = \"/dev/null\"\nwrite-out = \"%%{http_code}\\n\"\nsilent\nnext\n" > f
            }
        }'
    local t0 t1
    t0=$(date +%s%N)
    # shellcheck disable=SC2016 # $1 is expanded by sh -c, one config file per call.
    printf '%s\n' "$dir"/part-*.cfg |
        xargs -P "$CONNS" -n 1 sh -c 'curl -K "$1" > "$1.codes" 2>"$1.err" || true' _
    t1=$(date +%s%N)
    SEED_S=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }')
    SEED_OK=$(cat "$dir"/*.codes | grep -c '^2' || true)
    SEED_CODES=$(cat "$dir"/*.codes | sort | uniq -c | awk '{ printf "%s%s:%s", sep, $2, $1; sep="," }')
}

# Converts wrk's "1.23ms" / "456.00us" / "1.02s" / "1.50m" to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.2f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.2f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.2f", v * 60000 }
        else if (v ~ /h$/) { sub(/h$/, "", v); printf "%.2f", v * 3600000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.2f", v * 1000 }
        else printf "%s", v
    }'
}

ROWS=()      # Markdown rows of the throughput table
NOTES=()     # anomalies (non-2xx, socket errors, server log warnings)

# run_wrk BACKEND SCENARIO LUA PATH_AND_QUERY
run_wrk() {
    local backend="$1" scenario="$2" lua="$3" path="$4"
    local out="$TMP/wrk-$backend-${lua%.lua}-$RANDOM.txt"
    log "$backend: wrk $scenario"
    wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --timeout 5s --latency \
        -H "Authorization: Bearer $KEY" -s "$BENCH_DIR/$lua" "$BASE$path" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed ($backend, $scenario)"; }
    local rps p50 p99 reqs status non2xx codes sock sample_status sample_body
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    reqs=$(awk '/requests in/ { print $1 }' "$out")
    status=$(grep '^BENCH_STATUS ' "$out" || true)
    non2xx=$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$status")
    codes=$(sed -n 's/.* codes=\([^ ]*\).*/\1/p' <<<"$status")
    sample_status=$(sed -n 's/.* sample_status=\([0-9]*\).*/\1/p' <<<"$status")
    sample_body=$(sed -n 's/.* sample_body=\(.*\)$/\1/p' <<<"$status")
    sock=$(awk -F'[ ,]+' '/Socket errors:/ { print $4 + $6 + $8 + $10 }' "$out")
    sock=${sock:-0}
    ROWS+=("| $backend | $scenario | ${rps:-?} | ${p50:-?} | ${p99:-?} | ${reqs:-?} | ${non2xx:-?} | $sock |")
    if [[ "${non2xx:-0}" != 0 ]]; then
        NOTES+=("- $backend, $scenario: ${non2xx} non-2xx of ${reqs} (statuses ${codes}); first: HTTP ${sample_status} \`${sample_body}\`")
    fi
    if [[ "$sock" != 0 ]]; then
        NOTES+=("- $backend, $scenario: socket errors: $(grep 'Socket errors' "$out" | sed 's/^ *//')")
    fi
    log "$backend: $scenario: ${rps} req/s, p50 ${p50} ms, p99 ${p99} ms, ${reqs} requests, non-2xx ${non2xx:-?}, socket errors ${sock}"
}

FLOW_ROWS=() # Markdown rows of the Amazon Pay flow table

# run_flows BACKEND: whole Amazon Pay setup flows (customer, create+confirm
# SetupIntent, authorize on the page, retrieve) from 16 concurrent workers.
run_flows() {
    local backend="$1" out
    log "$backend: Amazon Pay setup flows"
    out=$("$FLOW_BENCH" "$BASE" "${DURATION%s}" "$CONNS") || die "flow_bench failed ($backend)"
    local total failed fps p50 p99 first
    total=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' <<<"$out")
    failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$out")
    fps=$(sed -n 's/.*flows_per_s=\([0-9]*\).*/\1/p' <<<"$out")
    p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$out")
    p99=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")
    first=$(sed -n 's/.*first_error=\(.*\)$/\1/p' <<<"$out")
    FLOW_ROWS+=("| $backend | $fps | $p50 | $p99 | $total | $failed |")
    if [[ "$failed" != 0 ]]; then
        NOTES+=("- $backend, flows: $failed failed; first: \`${first:0:300}\`")
    fi
    log "$backend: $fps flows/s, p50 ${p50} ms, p99 ${p99} ms, $total flows, $failed failed"
}

RES_ROWS=()  # Markdown rows of the start-up / memory table

# bench_backend LABEL [ENV=VALUE ...] -- [FLAGS ...]
bench_backend() {
    local label="$1"; shift
    log "$label: starting the server"
    start_server "$label" "$@"
    local startup="$STARTUP_MS" pid="$SERVER_PID"
    pause 1
    local rss_idle; rss_idle=$(rss_mb "$pid")
    log "$label: first 200 from /healthz after ${startup} ms; idle RSS ${rss_idle} MB"

    log "$label: seeding $SEED_N customers"
    seed_customers "$label"
    log "$label: seeded in ${SEED_S} s (statuses ${SEED_CODES})"
    if [[ "$SEED_OK" != "$SEED_N" ]]; then
        NOTES+=("- $label, seed: only $SEED_OK of $SEED_N creations answered 2xx (statuses $SEED_CODES); first curl error: $(cat "$TMP/seed-$label"/*.err | head -1)")
    fi
    local rss_seeded; rss_seeded=$(rss_mb "$pid")

    local id
    id=$(curl -sf -H "Authorization: Bearer $KEY" "$BASE/v1/customers?limit=1" | jq -r '.data[0].id // empty') ||
        die "$label: cannot list customers"
    [[ -n "$id" ]] || die "$label: no customer id after the seed"

    run_wrk "$label" "POST /v1/customers" post_customer.lua "/v1/customers"
    run_wrk "$label" "GET /v1/customers/{id}" get.lua "/v1/customers/$id"
    run_wrk "$label" "GET /v1/customers?limit=10" get.lua "/v1/customers?limit=10"
    run_flows "$label"

    local rss_load hwm
    rss_load=$(rss_mb "$pid")
    hwm=$(hwm_mb "$pid")
    RES_ROWS+=("| $label | $startup | $rss_idle | $rss_seeded | $rss_load | $hwm | $SEED_S |")
    log "$label: RSS after load ${rss_load} MB (peak ${hwm} MB)"

    stop_server
    local logf="$TMP/server-$label.log" nwarn
    nwarn=$(grep -Eci 'error|warn|panick' "$logf" || true)
    if [[ "$nwarn" != 0 ]]; then
        NOTES+=("- $label: the server log has $nwarn error/warning lines; first: \`$(grep -Ei 'error|warn|panick' "$logf" | head -1 | cut -c1-300)\`")
    fi
}

# --- SQLite ----------------------------------------------------------------------

bench_backend sqlite -- --db-path "$TMP/bench.db"

# --- Postgres --------------------------------------------------------------------

PG_STATUS=""
if PGCONNECT_TIMEOUT=5 psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    log "postgres: recreating database $PG_DB"
    psql -w -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
        -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >&2
    PG_VERSION=$(psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atc 'show server_version' | awk '{ print $1 }')
    bench_backend postgres "DATABASE_URL=postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB" --
    PG_STATUS="Postgres $PG_VERSION at $PG_HOST:$PG_PORT"
else
    log "postgres: psql cannot connect to $PG_USER@$PG_HOST:$PG_PORT; skipping the Postgres half"
    log "  (start it with: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)"
    PG_STATUS="Postgres skipped (psql could not connect to $PG_HOST:$PG_PORT)"
fi

# --- report ------------------------------------------------------------------------

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
    echo "Benchmark of stripe-twin ${REV} (release build), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "on $(nproc) CPUs (nproc; ${CPU:-unknown CPU}), $(uname -sr)."
    echo "Load: wrk $(wrk -v 2>&1 | awk 'NR==1 { print $2 }') -t${THREADS} -c${CONNS} -d${DURATION} --latency on 127.0.0.1,"
    echo "after seeding ${SEED_N} customers in one account; SQLite on a fresh temp file; ${PG_STATUS}."
    echo
    echo "| Backend | Scenario | Requests/s | p50 (ms) | p99 (ms) | Requests | Non-2xx | Socket errors |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Amazon Pay setup flows (4 requests each: create customer, create+confirm SetupIntent, authorize on the page, retrieve), 16 concurrent workers for ${DURATION}:"
    echo
    echo "| Backend | Flows/s | p50 per flow (ms) | p99 per flow (ms) | Flows | Failed |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${FLOW_ROWS[@]}"
    echo
    echo "| Backend | Start-up to first 200 /healthz (ms) | RSS idle (MB) | RSS after seed (MB) | RSS after load (MB) | Peak RSS (MB) | Seed ${SEED_N} customers, 16 curl workers (s) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${RES_ROWS[@]}"
    if [[ ${#NOTES[@]} -gt 0 ]]; then
        echo
        echo "Notes:"
        printf '%s\n' "${NOTES[@]}"
    fi
} >"$TMP/results.md"
cp "$TMP/results.md" "$RESULTS"
cat "$TMP/results.md"
log "written to $RESULTS (copy it to bench/last-results.md when updating README's figures)"
