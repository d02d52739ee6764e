"""A fault-injecting HTTP proxy in front of moto: the wire as it fails.

    proxy = FaultProxy(world.moto.url, [Fault("reset_after", action="CreateSnapshots")])
    world.irfw(..., env={"AWS_ENDPOINT_URL": proxy.url})
    proxy.close()

Each Fault picks requests by action (the form body's Action, a JSON
service's X-Amz-Target operation, or "S3:<METHOD>"; None: every request),
skips the first `skip` matching ones, then acts on the next `times` of them
(None: all), or, for "throttle", on every matching request for `seconds`
from the first one it sees.  `kind` may also be a list: the n-th request
acted on gets the n-th kind (times defaults to its length).  Kinds:

    throttle      answer a throttling error (`code`, default RequestLimitExceeded,
                  HTTP 503 as EC2 sends it) without forwarding
    html500       forward (the upstream acts), then answer HTTP 500 with an
                  HTML page instead of its answer
    html500_before  answer HTTP 500 with an HTML page without forwarding
    slowdown      answer 503 SlowDown without forwarding
    reset_before  read the request, then reset the connection (TCP RST)
                  without forwarding
    reset_after   forward (the upstream acts), then reset the connection
    truncate      forward, then send the status line, headers and the full
                  Content-Length, but only half of the body, and close
    stall         read the request and never answer (until `seconds`, or
                  until the proxy is closed)
    stall_after   forward (the upstream acts), then never answer

proxy.log lists (action, kind or None) for every request seen, and
proxy.bodies (action, request body text);
proxy.injected(kind=None, action=None) counts the faults made.
"""
import http.server
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs

HTML_500 = b"<html><body><h1>500 Internal Server Error</h1></body></html>"


def ec2_error_doc(code, message, request_id="req-fault-1"):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
            f"</Response>").encode()


def query_error_doc(code, message, request_id="req-fault-1"):
    return (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()


class Fault:
    KINDS = ("throttle", "html500", "html500_before", "slowdown", "reset_before", "reset_after",
             "truncate", "stall", "stall_after")

    def __init__(self, kind, action=None, times=1, skip=0, seconds=None, code="RequestLimitExceeded",
                 status=503):
        self.kinds = list(kind) if isinstance(kind, (list, tuple)) else None
        if self.kinds:
            times = len(self.kinds) if times == 1 else times
            kind = self.kinds[0]
        for k in self.kinds or [kind]:
            assert k in self.KINDS, k
        self.kind, self.action, self.times, self.skip = kind, action, times, skip
        self.seconds, self.code, self.status = seconds, code, status
        self.seen = 0      # matching requests
        self.made = 0      # faults injected
        self.started = None

    def matches(self, action):
        return self.action is None or self.action == action

    def fires(self, now):
        """Called under the proxy's lock for a matching request."""
        self.seen += 1
        if self.kind == "throttle":
            if self.started is None:
                self.started = now
            return now - self.started < (self.seconds or 0)
        if self.seen <= self.skip:
            return False
        return self.times is None or self.made < self.times


class FaultProxy:
    def __init__(self, upstream, faults):
        proxy = self
        self.faults = list(faults)
        self.log = []
        self.bodies = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_one(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                action = proxy.action_of(method, self.path, self.headers, body)
                fault = None
                with proxy.lock:
                    now = time.monotonic()
                    for f in proxy.faults:
                        if f.matches(action) and f.fires(now):
                            kind = f.kinds[f.made % len(f.kinds)] if f.kinds else f.kind
                            f.made += 1
                            fault = (f, kind)
                            break
                    proxy.log.append((action, fault[1] if fault else None))
                    proxy.bodies.append((action, (body or b"").decode("utf-8", "replace")))
                if fault is None:
                    self.reply(*self.upstream(method, body), head=method == "HEAD")
                    return
                fault, k = fault
                if k in ("html500", "reset_after", "truncate", "stall_after"):
                    status, headers, data = self.upstream(method, body)
                if k == "throttle":
                    doc = ec2_error_doc if proxy.is_ec2(body) else query_error_doc
                    self.reply(fault.status, {"Content-Type": "text/xml"},
                               doc(fault.code, "Request limit exceeded."))
                elif k in ("html500", "html500_before"):
                    self.reply(500, {"Content-Type": "text/html"}, HTML_500)
                elif k == "slowdown":
                    doc = ec2_error_doc if proxy.is_ec2(body) else query_error_doc
                    self.reply(503, {"Content-Type": "text/xml"}, doc("SlowDown", "Please reduce your request rate."))
                elif k in ("reset_before", "reset_after"):
                    self.reset()
                elif k == "truncate":
                    self.send_response(status)
                    for h, v in headers.items():
                        if h.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                            self.send_header(h, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:  # stall, stall_after: say nothing
                    proxy.stop.wait(fault.seconds if fault.seconds else 3600)
                    self.close_connection = True

            def do_POST(self):
                self.handle_one("POST")

            def do_GET(self):
                self.handle_one("GET")

            def do_PUT(self):
                self.handle_one("PUT")

            def do_DELETE(self):
                self.handle_one("DELETE")

            def do_HEAD(self):
                self.handle_one("HEAD")

            def reset(self):
                # SO_LINGER 0: close() sends a RST, not a FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()

            def upstream(self, method, body):
                # The Host header stays as irfw signed it (SigV4 covers it).
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                req = urllib.request.Request(upstream + self.path, data=body, method=method, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        return r.status, dict(r.headers), r.read()
                except urllib.error.HTTPError as e:
                    return e.code, dict(e.headers), e.read()

            def reply(self, status, headers, data, head=False):
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                length = headers.get("Content-Length") if head else None
                self.send_header("Content-Length", length or str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                if not head:
                    self.wfile.write(data)
                self.close_connection = True

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # resets and stalls are the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def is_ec2(body):
        return bool(body) and b"Version=2016-11-15" in body

    @staticmethod
    def action_of(method, path, headers, body):
        target = headers.get("X-Amz-Target")
        if target:
            return target.rsplit(".", 1)[-1]
        if method == "POST" and body and headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            params = parse_qs(body.decode("utf-8", "replace"))
            if "Action" in params:
                return params["Action"][0]
        return f"S3:{method}"

    def count(self, action, containing=None):
        """Requests seen for `action`, faulted or not (with `containing` in
        the body)."""
        return sum(1 for a, b in self.bodies if a == action and (containing is None or containing in b))

    def injected(self, kind=None, action=None):
        return sum(1 for a, k in self.log if k and (kind is None or k == kind) and (action is None or a == action))

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def dump(proxy):
    """The log, for assertion messages."""
    return json.dumps(proxy.log)
