"""A small HTTP proxy in front of moto that answers EC2 GetConsoleScreenshot,
which moto does not implement (it answers HTTP 500 with an HTML page), and
forwards every other request to moto byte for byte, headers included
(Authorization and Host unchanged, so moto still routes by the credential
scope and the SigV4 signature stays valid).

    with ScreenshotProxy(world.moto.url) as proxy:
        world.irfw(..., env={"AWS_ENDPOINT_URL": proxy.url})
        assert proxy.screenshot_requests[0]["WakeUp"] == ["true"]

Set `proxy.error = ("UnsupportedOperation", "message")` to answer the
screenshot with an EC2 error instead, as AWS does for instance types
without screenshot support.
"""
import base64
import http.client
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

# A real 16x16 baseline JFIF image (CPython's Lib/test/imghdrdata/python.jpg).
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkI"
    "CQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/2wBDAQMDAwQDBAgEBAgQCwkLEBAQEBAQ"
    "EBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBD/wAARCAAQABADASIA"
    "AhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAABwQF/8QAJBAAAQQBBAICAwAAAAAAAAAAAQIDBAYF"
    "BwgSExEiABQJMTL/xAAVAQEBAAAAAAAAAAAAAAAAAAAABv/EACMRAAECBQMFAAAAAAAAAAAAAAEC"
    "EQMEBQYhABIxFRZhgeH/2gAMAwEAAhEDEQA/ABSm0mobc8HmExLUlRzzEWPkJWW+ulrsaUVAseUg"
    "slSlH9LKuPryIKuWPZdskzXmm3fX5m2nF4GlVxx/HOpx4ks51+MiU/Iaad7UcUo4tILoS4kqcWke"
    "zS0hO/HvuRp0rO6hWnWO1UisZVuFi4GFeyEpmGepa5S5SWVPuciFKRFLgSrwetnyPIB+Vb4N9mKh"
    "QMzo5po9XLdDs9d6ZVix2VEhiL9kuNPxw2gEKcDQ/rs8AuA8VAe0vdl7VOYn+27flGAUgmITjbhS"
    "mCg3BYlyeWDkMolvw4KOp1KM6iCNvngZHwetf//Z")
assert JPEG[:2] == b"\xff\xd8" and JPEG[-2:] == b"\xff\xd9"

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
# Not forwarded: they describe this hop, not the request.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "expect"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # so that curl's Expect: 100-continue is answered

    def log_message(self, fmt, *args):  # quiet: pytest shows failures, not traffic
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _reply(self, status, headers, body, head=False):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        if body and not head:
            self.wfile.write(body)
        self.close_connection = True

    def _screenshot(self, params):
        proxy = self.server.proxy
        with proxy.lock:
            proxy.screenshot_requests.append(params)
        rid = str(uuid.uuid4())
        if proxy.error:
            code, msg = proxy.error
            xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{escape(code)}"
                   f"</Code><Message>{escape(msg)}</Message></Error></Errors><RequestID>{rid}</RequestID>"
                   "</Response>")
            status = 400
        else:
            iid = params.get("InstanceId", [""])[0]
            xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetConsoleScreenshotResponse xmlns=\"{EC2_NS}\">"
                   f"<requestId>{rid}</requestId><instanceId>{escape(iid)}</instanceId>"
                   f"<imageData>{base64.b64encode(proxy.jpeg).decode()}</imageData>"
                   "</GetConsoleScreenshotResponse>")
            status = 200
        body = xml.encode()
        self._reply(status, [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body))),
                             ("x-amzn-RequestId", rid)], body)

    def _handle(self):
        body = self._body()
        ctype = self.headers.get("Content-Type", "")
        if self.command == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            params = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if params.get("Action") == ["GetConsoleScreenshot"]:
                return self._screenshot(params)
        self._forward(body)

    def _forward(self, body):
        up = self.server.proxy.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    conn.putheader(k, v)
            if body and "Content-Length" not in self.headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = b"" if self.command == "HEAD" else resp.read()
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            if self.command != "HEAD":
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(data))))
            self._reply(resp.status, headers, data, head=self.command == "HEAD")
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class ScreenshotProxy:
    def __init__(self, upstream_url, jpeg=JPEG):
        self.upstream = urllib.parse.urlsplit(upstream_url)
        self.jpeg = jpeg
        self.error = None
        self.screenshot_requests = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        if self.thread:
            self.thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
