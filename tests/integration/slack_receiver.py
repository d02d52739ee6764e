"""A stand-in for a Slack incoming webhook, for the notify_slack tests.

Listens on 127.0.0.1 and records every POST: its path, Content-Type and JSON
body (or the raw text when it is not JSON).  Answers 200 "ok" like Slack, or
500 when started with --fail.  What arrived is served as a JSON list by
GET /__received, and appended as JSON lines to --out FILE when given.

    python3 slack_receiver.py [--port N] [--fail] [--out FILE]

prints "listening on PORT" once it accepts connections.
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port=0, fail=False, out=None):
        super().__init__(("127.0.0.1", port), Handler)
        self.fail = fail
        self.out = out
        self.received = []
        self.lock = threading.Lock()

    @property
    def port(self):
        return self.server_address[1]

    def record(self, entry):
        with self.lock:
            self.received.append(entry)
            if self.out:
                with open(self.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def _answer(self, code, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        self.server.record({"path": self.path, "content_type": self.headers.get("Content-Type"), "body": body})
        if self.server.fail:
            self._answer(500, "internal_error")
        else:
            self._answer(200, "ok")

    def do_GET(self):
        if self.path != "/__received":
            self._answer(404, "not found")
            return
        with self.server.lock:
            data = json.dumps(self.server.received)
        self._answer(200, data, "application/json")

    def log_message(self, fmt, *args):
        pass  # keep test output clean


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fail", action="store_true", help="answer every POST with HTTP 500")
    ap.add_argument("--out", help="append each received POST as a JSON line to this file")
    args = ap.parse_args()
    srv = Receiver(args.port, args.fail, args.out)
    print(f"listening on {srv.port}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
