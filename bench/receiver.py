#!/usr/bin/env python3
"""A webhook receiver for bench/webhooks.sh (Python standard library only).

    python3 bench/receiver.py --port-file PATH [--port 0] [--secret whsec_...]

Answers every POST with 200 `{}` at once (keep-alive, one thread per
connection), checks the Stripe-Signature when --secret is given, and notes
for each delivery the time it arrived, the event's id, type and `created`, and
the email of the object it carries (the benchmark's join key for the lag).

    GET /count  -> "<unique customer.created events> <POSTs received>\n"
    GET /stats  -> JSON: counts by type, duplicates, bad signatures,
                   first and last arrival (Unix seconds)
    GET /dump   -> one tab-separated line per POST:
                   arrival  event_id  type  created  email  signature_ok

It binds 127.0.0.1 (port 0: a free one) and writes the port it got to
--port-file once it listens.
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
RECORDS = []            # (arrival, event_id, type, created, email, sig_ok)
SEEN = set()            # event ids
UNIQUE_BY_TYPE = {}     # type -> unique events
STATE = {"posts": 0, "duplicates": 0, "bad_signatures": 0, "unparsable": 0}
SECRET = None


def signature_ok(header, body):
    """Stripe's scheme: v1 = HMAC-SHA256(secret, "{t}.{body}")."""
    if SECRET is None:
        return True
    parts = {}
    for item in (header or "").split(","):
        key, _, value = item.partition("=")
        parts.setdefault(key.strip(), []).append(value.strip())
    stamps = parts.get("t")
    if not stamps:
        return False
    expected = hmac.new(SECRET, stamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v1) for v1 in parts.get("v1", []))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as the server's client pools connections
    # Headers and body go out as two writes: without this, Nagle holds the
    # body for the client's delayed ACK (~40 ms per delivery).
    disable_nagle_algorithm = True
    server_version = "bench-receiver"
    sys_version = ""

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        arrival = time.time()
        ok = signature_ok(self.headers.get("Stripe-Signature"), body)
        try:
            event = json.loads(body)
            event_id = str(event.get("id", ""))
            kind = str(event.get("type", ""))
            created = event.get("created", "")
            obj = (event.get("data") or {}).get("object") or {}
            email = (obj.get("email") or "") if isinstance(obj, dict) else ""
            parsed = True
        except ValueError:
            event_id, kind, created, email, parsed = "", "", "", "", False
        with LOCK:
            STATE["posts"] += 1
            if not ok:
                STATE["bad_signatures"] += 1
            if not parsed:
                STATE["unparsable"] += 1
            elif event_id in SEEN:
                STATE["duplicates"] += 1
            else:
                SEEN.add(event_id)
                UNIQUE_BY_TYPE[kind] = UNIQUE_BY_TYPE.get(kind, 0) + 1
            RECORDS.append((arrival, event_id, kind, created, email, ok))
        self._answer(200, "{}")

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/count":
            with LOCK:
                text = "%d %d\n" % (UNIQUE_BY_TYPE.get("customer.created", 0), STATE["posts"])
            self._answer(200, text, "text/plain")
        elif path == "/stats":
            with LOCK:
                stats = dict(STATE)
                stats["unique_events"] = len(SEEN)
                stats["unique_by_type"] = dict(UNIQUE_BY_TYPE)
                stats["first"] = RECORDS[0][0] if RECORDS else None
                stats["last"] = max((r[0] for r in RECORDS), default=None)
                stats["pid"] = os.getpid()
            self._answer(200, json.dumps(stats))
        elif path == "/dump":
            with LOCK:
                rows = list(RECORDS)
            text = "".join(
                "%.6f\t%s\t%s\t%s\t%s\t%d\n" % (a, i, k, c, e, 1 if ok else 0)
                for a, i, k, c, e, ok in rows
            )
            self._answer(200, text, "text/plain")
        else:
            self._answer(404, '{"error": "not found"}')


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    global SECRET
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--secret", default=None, help="verify Stripe-Signature with this whsec_ secret")
    args = parser.parse_args()
    if args.secret:
        SECRET = args.secret.encode()
    server = Server(("127.0.0.1", args.port), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
