"""A local HTTP proxy in front of moto that answers chosen requests itself
(to play an AWS refusal moto cannot produce) and forwards the rest.

    proxy = RefusingProxy(world.moto.url, rule)
    world.irfw(..., env={"AWS_ENDPOINT_URL": proxy.url})
    proxy.close()

rule(body: bytes) -> None to forward, or (status, content_type, body bytes).
proxy.refused counts the requests the rule answered.  Also a context
manager: `with RefusingProxy(url, rule) as proxy:` closes it after.
"""
import http.server
import threading
import urllib.error
import urllib.request


def ec2_error(code, message, request_id="req-proxy-1"):
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
            f"</Response>").encode()


def ec2_ok(action, request_id="req-proxy-ok"):
    """EC2's answer to a change it carried out (<return>true</return>), for
    playing an OK that did nothing: the read-back must catch it."""
    return (200, "text/xml",
            (f'<?xml version="1.0" encoding="UTF-8"?><{action}Response '
             f'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>{request_id}</requestId>'
             f"<return>true</return></{action}Response>").encode())


class RefusingProxy:
    def __init__(self, upstream, rule):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = rule(body)
                if answer is None:
                    self.forward("POST", body)
                    return
                proxy.refused += 1
                status, ctype, out = answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(out)

            def do_GET(self):
                self.forward("GET", None)

            # S3 and other REST calls are forwarded as they are.
            def do_PUT(self):
                self.forward("PUT", self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def do_DELETE(self):
                self.forward("DELETE", self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None)

            def do_HEAD(self):
                self.forward("HEAD", None)

            def forward(self, method, body):
                # The Host header stays as irfw signed it (SigV4 covers it).
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                req = urllib.request.Request(upstream + self.path, data=body, method=method, headers=headers)
                try:
                    r = urllib.request.urlopen(req, timeout=30)
                    status, data, rh = r.status, r.read(), r.headers
                except urllib.error.HTTPError as e:
                    status, data, rh = e.code, e.read(), e.headers
                self.send_response(status)
                for k, v in rh.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                # A HEAD answer's length is the object's, not its empty body's.
                length = rh.get("Content-Length") if method == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)

        self.refused = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
