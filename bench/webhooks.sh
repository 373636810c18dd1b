#!/usr/bin/env bash
# Hand-run benchmark of webhook delivery (not part of the test suite).
#
#   bash bench/webhooks.sh
#
# For SQLite (a fresh temp file) and Postgres (a fresh database), and for each
# --webhook-concurrency in BENCH_WH_CONCURRENCY, it:
#   - starts bench/receiver.py (Python standard library: answers 200 at once,
#     checks signatures, counts events) on a free port,
#   - starts the release binary with --forward-webhooks-to that receiver,
#   - creates N customers (16 keep-alive curl processes in parallel), so N
#     customer.created events are owed to the receiver,
#   - times from the first create until the receiver holds all N events, and
#     takes each event's lag: from the API answering the create (curl's
#     --trace-time) to the receiver getting its customer.created,
#   - checks the store's deliveries (all N succeeded, attempts) and
#     GET /_config/webhook_deliveries (the newest ones, up to 1,000),
# then prints a Markdown table to stdout and writes it to BENCH_OUT
# (target/bench/last-webhooks.md: untracked, the path is printed at the end).
# bench/last-webhooks.md is the committed record README's Performance section
# quotes: copy the new results there by hand when updating the figures.
# Progress goes to stderr.
#
# Knobs (environment): BENCH_OUT (the results file, default
# ${CARGO_TARGET_DIR:-target}/bench/last-webhooks.md), BENCH_WH_EVENTS
# (2000), BENCH_WH_CONCURRENCY ("8 64": one run per value),
# BENCH_WH_TIMEOUT (300, seconds to wait for the deliveries of one run),
# BENCH_WH_RETRY ("1s,5s", the retry schedule),
# BENCH_PORT (12299), BENCH_PG_HOST (127.0.0.1), BENCH_PG_PORT (5432),
# BENCH_PG_USER (postgres), BENCH_PG_DB (stripe_twin_webhooks_bench),
# BENCH_NO_BUILD=1 (use the binary as it is), BENCH_KEEP=1 (keep the temp
# directory: server logs, curl traces, the receiver's dump).
# The Postgres half is skipped, with a message, when psql cannot connect.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/stripe-twin"
PORT="${BENCH_PORT:-12299}"
N="${BENCH_WH_EVENTS:-2000}"
CONCURRENCIES="${BENCH_WH_CONCURRENCY:-8 64}"
WAIT_S="${BENCH_WH_TIMEOUT:-300}"
RETRY="${BENCH_WH_RETRY:-1s,5s}"
CONNS=16
KEY="sk_test_webhooks_bench"
SECRET="whsec_bench_webhooks_0123456789abcdef"
PG_HOST="${BENCH_PG_HOST:-127.0.0.1}"
PG_PORT="${BENCH_PG_PORT:-5432}"
PG_USER="${BENCH_PG_USER:-postgres}"
PG_DB="${BENCH_PG_DB:-stripe_twin_webhooks_bench}"
RESULTS="${BENCH_OUT:-$TARGET/bench/last-webhooks.md}"

log() { printf '[webhooks] %s\n' "$*" >&2; }
die() { printf '[webhooks] error: %s\n' "$*" >&2; exit 1; }

[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "BENCH_WH_EVENTS must be a positive integer (got '$N')"
[[ "$WAIT_S" =~ ^[1-9][0-9]*$ ]] || die "BENCH_WH_TIMEOUT must be a positive integer (got '$WAIT_S')"
for c in $CONCURRENCIES; do
    [[ "$c" =~ ^[1-9][0-9]*$ ]] || die "BENCH_WH_CONCURRENCY must list positive integers (got '$CONCURRENCIES')"
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/stripe-twin-webhooks.XXXXXX")"
SERVER_PID=""
RECEIVER_PID=""
CURRENT_LOGS=()   # shown when the run dies

# stop_pid PID: TERM, up to 5 s, then KILL; only the process this script started.
stop_pid() {
    local pid="$1"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            pause 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
stop_server() { stop_pid "$SERVER_PID"; SERVER_PID=""; }
stop_receiver() { stop_pid "$RECEIVER_PID"; RECEIVER_PID=""; }
cleanup() {
    local rc=$?
    if [[ $rc != 0 ]]; then
        for f in "${CURRENT_LOGS[@]}"; do
            [[ -s "$f" ]] || continue
            printf '[webhooks] --- last lines of %s ---\n' "$(basename "$f")" >&2
            tail -n 15 "$f" >&2
        done
    fi
    stop_server
    stop_receiver
    if [[ "${BENCH_KEEP:-}" == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fork-free sleep (read with a timeout on a FIFO nobody writes to).
mkfifo "$TMP/pause.fifo"
exec {PAUSE_FD}<>"$TMP/pause.fifo"
pause() { read -r -t "$1" -u "$PAUSE_FD" _ || true; }

# --- tools -------------------------------------------------------------------

for tool in curl jq awk python3 xargs; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 7))' || die "python3 >= 3.7 is required (ThreadingHTTPServer)"

if [[ "${BENCH_NO_BUILD:-}" == 1 ]]; then
    [[ -x "$BIN" ]] || die "$BIN not found (unset BENCH_NO_BUILD to build it)"
else
    log "building the release binary (cargo build --release; minutes when it is not built yet)"
    (cd "$ROOT" && cargo build --release --bin stripe-twin >&2) || die "cargo build --release failed"
    [[ -x "$BIN" ]] || die "$BIN not found after the build"
fi
mkdir -p "$(dirname "$RESULTS")" || die "cannot create the folder of $RESULTS"
# The source the binary was built from (-dirty: tracked files differ from HEAD).
REV=$(git -C "$ROOT" describe --always --dirty --abbrev=7 2>/dev/null || echo unknown)
HELP=$("$BIN" --help 2>&1) || die "$BIN --help failed: $HELP"
[[ "$HELP" == *--forward-webhooks-to* ]] || die "$BIN has no --forward-webhooks-to flag (an old build?)"

# --- helpers -------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 20); do
    port_in_use "$PORT" || break
    log "port $PORT is busy, trying $((PORT + 1))"
    PORT=$((PORT + 1))
done
port_in_use "$PORT" && die "no free port found"
BASE="http://127.0.0.1:$PORT"

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }
CLK_TCK=$(getconf CLK_TCK)
# CPU seconds (user + system) a live process has used so far.
cpu_s() {
    awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo "?"
}

# True when GET /healthz answers 200 (bash's /dev/tcp: no process per probe).
healthz_ok() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
        printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 5 line <&3 || exit 1
        [[ "$line" == HTTP/1.?" 200"* ]]
    ) 2>/dev/null
}

# start_receiver LABEL; sets RECEIVER_PID and RECV (its base URL).
start_receiver() {
    local label="$1" pf="$TMP/receiver-$1.port" t0
    rm -f "$pf"
    python3 -u "$BENCH_DIR/receiver.py" --port-file "$pf" --secret "$SECRET" \
        >"$TMP/receiver-$label.log" 2>&1 &
    RECEIVER_PID=$!
    CURRENT_LOGS+=("$TMP/receiver-$label.log")
    t0=$(now_ns)
    until [[ -s "$pf" ]]; do
        kill -0 "$RECEIVER_PID" 2>/dev/null || die "the receiver ($label) exited at start-up"
        (( ($(now_ns) - t0) < 10000000000 )) || die "the receiver ($label) did not start within 10 s"
        pause 0.02
    done
    RECV="http://127.0.0.1:$(cat "$pf")"
    curl -sf --max-time 5 "$RECV/count" >/dev/null || die "the receiver ($label) does not answer at $RECV"
}

# start_server LABEL CONCURRENCY [ENV=VALUE ...] -- [FLAGS ...]; sets SERVER_PID.
start_server() {
    local label="$1" conc="$2"; shift 2
    local envs=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    local t0
    t0=$(now_ns)
    env -u DATABASE_URL -u STRIPE_TWIN_IN_MEMORY -u STRIPE_TWIN_DB_PATH \
        -u STRIPE_TWIN_WEBHOOK_URL -u STRIPE_TWIN_WEBHOOK_SECRET -u STRIPE_TWIN_WEBHOOK_TIMEOUT \
        -u STRIPE_TWIN_WEBHOOK_RETRY_SCHEDULE -u STRIPE_TWIN_WEBHOOK_CONCURRENCY \
        RUST_LOG="${RUST_LOG:-stripe_twin=info,tower_http=warn}" "${envs[@]}" \
        "$BIN" --bind 127.0.0.1 --port "$PORT" \
        --forward-webhooks-to "$RECV/" --webhook-secret "$SECRET" \
        --webhook-concurrency "$conc" --webhook-timeout 10s --webhook-retry-schedule "$RETRY" \
        "$@" >"$TMP/server-$label.log" 2>&1 &
    SERVER_PID=$!
    CURRENT_LOGS+=("$TMP/server-$label.log")
    until healthz_ok; do
        kill -0 "$SERVER_PID" 2>/dev/null || die "the server ($label) exited before answering /healthz"
        (( ($(now_ns) - t0) < 60000000000 )) || die "the server ($label) did not answer /healthz within 60 s"
        pause 0.01
    done
}

# Writes the CONNS curl config files: N creates, customer i has the email
# wh-i@example.com (the join key with what the receiver gets).
write_create_configs() {
    local dir="$1"
    mkdir -p "$dir"
    awk -v n="$N" -v c="$CONNS" -v url="$BASE/v1/customers" -v key="$KEY" -v dir="$dir" '
        BEGIN {
            for (i = 1; i <= n; i++) {
                f = sprintf("%s/part-%02d.cfg", dir, i % c)
                if (f in started) printf "next\n" > f
                started[f] = 1
                printf "url = \"%s\"\nheader = \"Authorization: Bearer %s\"\n", url, key > f
                printf "data = \"email=wh-%d%%40example.com&name=Webhook+%d&metadata[seq]=%d\"\n", i, i, i > f
                printf "output = \"/dev/null\"\nwrite-out = \"%%{http_code}\\n\"\nmax-time = 30\nsilent\n" > f
            }
        }'
}

# Reads curl --trace-ascii --trace-time files (UTC) and prints, per create,
# "i seconds-of-day" of the first response header after its body was sent.
answer_times() {
    awk '
        / => Send data/ { want = 1; next }
        want && /^0000: email=wh-/ {
            s = $0; sub(/^0000: email=wh-/, "", s); sub(/%40.*/, "", s); cur = s; want = 0; next
        }
        / <= Recv header/ && cur != "" {
            split($1, t, ":"); printf "%s %.6f\n", cur, t[1] * 3600 + t[2] * 60 + t[3]; cur = ""
        }
    ' "$@"
}

# deliveries_by_status LABEL: "status count" lines from the store.
deliveries_by_status() {
    local label="$1"
    case "$label" in
        sqlite*)
            python3 - "$DB_FILE" <<'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
for status, count in con.execute("SELECT status, count(*) FROM webhook_deliveries GROUP BY status ORDER BY status"):
    print(status, count)
EOF
            ;;
        postgres*)
            psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -AtF ' ' \
                -c "SELECT status, count(*) FROM webhook_deliveries GROUP BY status ORDER BY status"
            ;;
    esac
}

# deliveries_retried LABEL: how many deliveries took more than one attempt.
deliveries_retried() {
    local label="$1"
    case "$label" in
        sqlite*)
            python3 - "$DB_FILE" <<'EOF'
import sqlite3, sys
con = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
print(con.execute("SELECT count(*) FROM webhook_deliveries WHERE json_array_length(data, '$.attempts') > 1").fetchone()[0])
EOF
            ;;
        postgres*)
            psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -At \
                -c "SELECT count(*) FROM webhook_deliveries WHERE jsonb_array_length((data::jsonb)->'attempts') > 1"
            ;;
    esac
}

ROWS=()
NOTES=()

# bench_run LABEL CONCURRENCY [ENV=VALUE ...] -- [FLAGS ...]
bench_run() {
    local label="$1" conc="$2"; shift 2
    local run="$label-c$conc"
    CURRENT_LOGS=()
    log "$run: starting the receiver and the server (--webhook-concurrency $conc)"
    start_receiver "$run"
    start_server "$run" "$conc" "$@"
    local dir="$TMP/create-$run"
    write_create_configs "$dir"
    local srv_cpu0 rcv_cpu0
    srv_cpu0=$(cpu_s "$SERVER_PID"); rcv_cpu0=$(cpu_s "$RECEIVER_PID")

    log "$run: creating $N customers (16 keep-alive curl processes)"
    local t0 t1
    t0=$(now_ns)
    # shellcheck disable=SC2016 # $1 is expanded by sh -c, one config file per call.
    printf '%s\n' "$dir"/part-*.cfg |
        TZ=UTC xargs -P "$CONNS" -n 1 sh -c \
            'curl -K "$1" --trace-ascii "$1.trace" --trace-time >"$1.codes" 2>"$1.err" || true' _
    t1=$(now_ns)
    local create_ns=$((t1 - t0))
    local ok codes
    ok=$(cat "$dir"/*.codes | grep -c '^2' || true)
    codes=$(cat "$dir"/*.codes | sort | uniq -c | awk '{ printf "%s%s:%s", sep, $2, $1; sep="," }')
    log "$run: $N creates in $(secs $create_ns) s (statuses $codes); waiting for the deliveries"
    [[ "$ok" == "$N" ]] ||
        NOTES+=("- $run: only $ok of $N creates answered 2xx (statuses $codes); first curl error: \`$(cat "$dir"/*.err | head -1)\`")

    # Wait until the receiver holds all the customer.created events of the creates that succeeded.
    local got=0 posts=0 last_log=0 elapsed
    while :; do
        read -r got posts < <(curl -sf --max-time 5 "$RECV/count" || echo "? ?")
        [[ "$got" =~ ^[0-9]+$ ]] || die "$run: the receiver stopped answering"
        (( got >= ok )) && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "$run: the server exited while delivering"
        elapsed=$(( ($(now_ns) - t0) / 1000000000 ))
        if (( elapsed >= WAIT_S )); then
            NOTES+=("- $run: timed out after ${WAIT_S} s with $got of $ok events at the receiver ($posts POSTs)")
            log "$run: timed out after ${WAIT_S} s with $got of $ok events ($posts POSTs)"
            break
        fi
        if (( elapsed >= last_log + 10 )); then
            last_log=$elapsed
            log "$run: ${elapsed} s: $got of $ok events at the receiver ($posts POSTs)"
        fi
        pause 0.05
    done
    local srv_cpu rcv_cpu
    srv_cpu=$(awk -v a="$srv_cpu0" -v b="$(cpu_s "$SERVER_PID")" 'BEGIN { printf "%.1f", b - a }')
    rcv_cpu=$(awk -v a="$rcv_cpu0" -v b="$(cpu_s "$RECEIVER_PID")" 'BEGIN { printf "%.1f", b - a }')

    local stats last_recv total_s rate
    stats=$(curl -sf --max-time 10 "$RECV/stats") || die "$run: no /stats from the receiver"
    curl -sf --max-time 30 "$RECV/dump" >"$TMP/dump-$run.tsv" || die "$run: no /dump from the receiver"
    last_recv=$(jq -r '.last // 0' <<<"$stats")
    total_s=$(awk -v l="$last_recv" -v t0="$t0" 'BEGIN { printf "%.2f", l - t0 / 1e9 }')
    rate=$(awk -v n="$got" -v s="$total_s" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "?" }')
    local dups bad others
    dups=$(jq -r '.duplicates' <<<"$stats")
    bad=$(jq -r '.bad_signatures' <<<"$stats")
    others=$(jq -r '[.unique_by_type | to_entries[] | select(.key != "customer.created") | "\(.key):\(.value)"] | join(",")' <<<"$stats")
    [[ -z "$others" ]] || NOTES+=("- $run: the receiver also got other events: $others")

    # Lag: from the API's answer to the create (curl trace, UTC seconds of
    # the day) to the receiver's arrival of that customer's customer.created.
    answer_times "$dir"/*.trace >"$TMP/answers-$run.txt"
    local lag
    lag=$(awk -F'\t' '
        NR == FNR { split($0, a, " "); ans[a[1]] = a[2]; next }
        $3 == "customer.created" && $5 ~ /^wh-[0-9]+@/ {
            i = $5; sub(/^wh-/, "", i); sub(/@.*/, "", i)
            if (!(i in ans) || (i in seen)) next
            seen[i] = 1
            sod = $1 - 86400 * int($1 / 86400)
            d = sod - ans[i]; if (d < -43200) d += 86400
            printf "%.3f\n", d * 1000
        }' "$TMP/answers-$run.txt" "$TMP/dump-$run.tsv" | sort -n |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "? ? ? 0"; exit }
            i50 = int(NR * 0.50 + 0.5); if (i50 < 1) i50 = 1
            i95 = int(NR * 0.95 + 0.5); if (i95 < 1) i95 = 1
            printf "%.0f %.0f %.0f %d\n", v[i50], v[i95], v[NR], NR
        }')
    local p50 p95 pmax nlag
    read -r p50 p95 pmax nlag <<<"$lag"
    [[ "$nlag" == "$got" ]] || NOTES+=("- $run: lag measured for $nlag of $got events (the rest could not be matched to a create in the curl traces)")

    # The store: every delivery succeeded? (the attempt is recorded just
    # after the receiver answers, so give the last ones a moment.)
    local by_status succeeded retried t_check
    t_check=$(now_ns)
    while :; do
        by_status=$(deliveries_by_status "$label" | awk '{ printf "%s%s:%s", sep, $1, $2; sep="," }')
        succeeded=$(sed -n 's/.*succeeded:\([0-9]*\).*/\1/p' <<<"$by_status")
        [[ "${succeeded:-0}" -ge "$got" && "$by_status" != *pending* ]] && break
        (( ($(now_ns) - t_check) < 30000000000 )) || break
        pause 0.2
    done
    retried=$(deliveries_retried "$label")
    [[ "$by_status" == "succeeded:$ok" ]] ||
        NOTES+=("- $run: deliveries in the store by status: $by_status (expected succeeded:$ok)")

    # The API: the newest deliveries (it lists up to 1,000).
    local api_n api_ok api_limit=$(( N < 1000 ? N : 1000 ))
    read -r api_n api_ok < <(curl -sf --max-time 30 -H "Authorization: Bearer $KEY" \
        "$BASE/_config/webhook_deliveries?limit=$api_limit" |
        jq -r --arg url "$RECV/" '[(.data | length), ([.data[] | select(.status == "succeeded" and .last_status_code == 200 and .url == $url)] | length)] | @tsv' ||
        echo "? ?")
    [[ "$api_n" == "$api_ok" && "$api_n" == "$api_limit" ]] ||
        NOTES+=("- $run: GET /_config/webhook_deliveries?limit=$api_limit listed $api_n, of which $api_ok succeeded with 200")

    local create_rate
    create_rate=$(awk -v n="$N" -v ns="$create_ns" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
    ROWS+=("| $label | $conc | $got/$N | $(secs $create_ns) ($create_rate/s) | $total_s | **$rate** | $p50 | $p95 | $pmax | ${succeeded:-0} | $api_ok/$api_limit | $retried | $dups | $bad | $srv_cpu | $rcv_cpu |")
    log "$run: $got events in $total_s s: $rate deliveries/s; lag p50 $p50 ms, p95 $p95 ms, max $pmax ms; store $by_status; API $api_ok/$api_limit succeeded; retried $retried, duplicates $dups, bad signatures $bad; CPU server $srv_cpu s, receiver $rcv_cpu s"

    stop_server
    stop_receiver
    local logf="$TMP/server-$run.log" nwarn
    nwarn=$(grep -Eci 'error|warn|panick' "$logf" || true)
    if [[ "$nwarn" != 0 ]]; then
        NOTES+=("- $run: the server log has $nwarn error/warning lines; first: \`$(grep -Ei 'error|warn|panick' "$logf" | head -1 | cut -c1-300)\`")
    fi
}

# --- SQLite ----------------------------------------------------------------------

for conc in $CONCURRENCIES; do
    DB_FILE="$TMP/webhooks-c$conc.db"
    bench_run sqlite "$conc" -- --db-path "$DB_FILE"
done

# --- Postgres --------------------------------------------------------------------

PG_STATUS=""
if PGCONNECT_TIMEOUT=5 psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    PG_VERSION=$(psql -w -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Atc 'show server_version' | awk '{ print $1 }')
    for conc in $CONCURRENCIES; do
        log "postgres: recreating database $PG_DB"
        psql -w -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres \
            -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >&2 ||
            die "cannot recreate the database $PG_DB"
        bench_run postgres "$conc" "DATABASE_URL=postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB" --
    done
    PG_STATUS="Postgres $PG_VERSION at $PG_HOST:$PG_PORT (a fresh database per run)"
else
    log "postgres: psql cannot connect to $PG_USER@$PG_HOST:$PG_PORT; skipping the Postgres half"
    log "  (start it with: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)"
    PG_STATUS="Postgres skipped (psql could not connect to $PG_HOST:$PG_PORT)"
fi

# --- report ------------------------------------------------------------------------

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
    echo "Webhook delivery benchmark of stripe-twin ${REV} (release build), $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "on $(nproc) CPUs (nproc; ${CPU:-unknown CPU}), $(uname -sr)."
    echo "Each run: a fresh store (SQLite temp file; ${PG_STATUS}), the server with"
    echo "\`--forward-webhooks-to\` a local receiver (bench/receiver.py, Python $(python3 -c 'import platform; print(platform.python_version())'),"
    echo "answering 200 at once and checking signatures), \`--webhook-retry-schedule $RETRY\`; ${N} customers created"
    echo "by ${CONNS} keep-alive curl processes, so ${N} customer.created events. \"Delivered in\" runs from"
    echo "the first create to the receiver's last arrival; lag is from the API answering a create"
    echo "to the receiver getting its event; \"Store\" counts succeeded deliveries in the database,"
    echo "\"API\" the succeeded (HTTP 200) ones among the newest listed by GET /_config/webhook_deliveries."
    echo
    echo "| Backend | --webhook-concurrency | Events received | Creates (s) | Delivered in (s) | Deliveries/s | Lag p50 (ms) | Lag p95 (ms) | Lag max (ms) | Store: succeeded | API: succeeded | Retried | Duplicates | Bad signatures | Server CPU (s) | Receiver CPU (s) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]}"
    if [[ ${#NOTES[@]} -gt 0 ]]; then
        echo
        echo "Notes:"
        printf '%s\n' "${NOTES[@]}"
    fi
} >"$TMP/results.md"
cp "$TMP/results.md" "$RESULTS"
cat "$TMP/results.md"
log "written to $RESULTS (copy it to bench/last-webhooks.md when updating README's figures)"
