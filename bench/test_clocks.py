#!/usr/bin/env python3
"""Hand-run benchmark: how long a test clock takes to advance one year.

    python3 bench/test_clocks.py            # SQLite on a fresh temp file
    DATABASE_URL=postgres://... python3 bench/test_clocks.py

Starts the release binary (target/release/stripe-twin; build it first with
`cargo build --release`) with --test-clock-limits none, then for 1, 3, 9
and 27 monthly subscriptions on one customer of a new clock, advances the
clock by one year (plus two hours, so the last renewal is paid) and times
the advance from the request until GET answers `ready`. Each subscription
bills 12 renewals: a renewal, its finalization an hour later and its
invoice.upcoming notice, and each charge's funds becoming available:
about 48 due items a year. Prints a Markdown
table and writes it to target/bench/last-clocks.md (never a tracked file).
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "stripe-twin")
PORT = int(os.environ.get("BENCH_PORT", "12198"))
BASE = f"http://127.0.0.1:{PORT}"
AUTH = "Basic " + base64.b64encode(b"sk_test_clockbench:").decode()
DAY, HOUR = 86400, 3600
T0 = 1767225600  # 2026-01-01


def call(method, path, **params):
    query = urllib.parse.urlencode(params)
    data = query.encode() if method == "POST" else None
    url = BASE + path + (f"?{query}" if method != "POST" and query else "")
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": AUTH})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def start(db_dir):
    args = [BIN, "--port", str(PORT), "--test-clock-limits", "none", "--no-fixtures"]
    if not os.environ.get("DATABASE_URL"):
        args += ["--db-path", os.path.join(db_dir, "bench.db")]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(BASE + "/healthz")
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit("stripe-twin did not start")


def one_year(subscriptions):
    clock = call("POST", "/v1/test_helpers/test_clocks", frozen_time=T0)["id"]
    customer = call("POST", "/v1/customers", test_clock=clock, payment_method="pm_card_visa",
                    **{"invoice_settings[default_payment_method]": "pm_card_visa"})["id"]
    for n in range(subscriptions):
        price = call("POST", "/v1/prices", currency="usd", unit_amount=1000 + n,
                     **{"recurring[interval]": "month", "product_data[name]": f"Plan {n}"})["id"]
        call("POST", "/v1/subscriptions", customer=customer, **{"items[0][price]": price})
    started = time.perf_counter()
    call("POST", f"/v1/test_helpers/test_clocks/{clock}/advance", frozen_time=T0 + 365 * DAY + 2 * HOUR)
    while call("GET", f"/v1/test_helpers/test_clocks/{clock}")["status"] == "advancing":
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    paid = call("GET", "/v1/invoices", customer=customer, status="paid", limit=100)
    return elapsed, len(paid["data"])


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} is missing: run `cargo build --release` first")
    backend = "postgres" if os.environ.get("DATABASE_URL") else "sqlite"
    rows = []
    with tempfile.TemporaryDirectory() as db_dir:
        server = start(db_dir)
        try:
            for subscriptions in (1, 3, 9, 27):
                elapsed, paid = one_year(subscriptions)
                rows.append((subscriptions, elapsed, paid))
                print(f"{subscriptions} subscriptions: {elapsed * 1000:.0f} ms", file=sys.stderr)
        finally:
            server.terminate()
            server.wait()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"Test clock advance of one year (release build {commit}, {backend}, {os.cpu_count()} CPUs), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:",
        "",
        "| Monthly subscriptions | Due items run (about) | Advance until ready (ms) | Paid invoices listed (lists stop at 100) |",
        "|---:|---:|---:|---:|",
    ]
    for subscriptions, elapsed, paid in rows:
        lines.append(f"| {subscriptions} | {subscriptions * 48} | {elapsed * 1000:.0f} | {paid} |")
    table = "\n".join(lines) + "\n"
    print(table)
    out = os.environ.get("BENCH_OUT", os.path.join(TARGET, "bench", "last-clocks.md"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as handle:
        handle.write(table)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
