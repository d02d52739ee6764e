"""The benchmark's loopback proxy: what stands between the client under test
and moto, playing the part of the distance to AWS and of EC2's throttling.

For each request it
  - waits half the round-trip delay (the way there),
  - for EC2, takes a token from the action's bucket (buckets.py) and, when
    the bucket is empty, answers RequestLimitExceeded (HTTP 503, EC2's error
    document) as EC2 does, without forwarding,
  - answers EC2 GetConsoleScreenshot itself (moto lacks it) with a tiny JPEG,
  - forwards everything else to moto byte for byte (headers unchanged, so
    moto still routes by the SigV4 credential scope), timing moto,
  - waits the other half of the delay, then answers.

It counts calls per service and action, throttled answers, retries, and
records when each call that matters for the phase times went through (see
README.md for the definitions).  Threaded: one thread per connection.
"""
import base64
import hashlib
import http.client
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import buckets

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "expect"}
# A real 16x16 baseline JPEG (the one tests/integration/screenshot_proxy.py serves).
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
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_IID_RE = re.compile(r"\bi-[0-9a-f]{8}(?:[0-9a-f]{9})?\b")
_ANY_ID_RE = re.compile(r"\b(?:i|eni|vol)-[0-9a-f]{8}(?:[0-9a-f]{9})?\b")
THROTTLE_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
                  "SlowDown", "RequestThrottled", "RequestThrottledException"}


def s3_action(method, host, path, query):
    """A name for an S3 REST request, from its method and target."""
    local = host.split(":")[0]
    virtual = local not in ("127.0.0.1", "localhost") and (local.endswith(".localhost") or
                                                           local.endswith(".127.0.0.1"))
    parts = [p for p in path.split("/") if p]
    has_key = len(parts) >= (1 if virtual else 2)
    q = set(query)
    if not parts and not virtual:
        return "ListBuckets"
    if has_key:
        if "uploadId" in q:
            return {"PUT": "UploadPart", "POST": "CompleteMultipartUpload", "DELETE": "AbortMultipartUpload",
                    "GET": "ListParts"}.get(method, method + " object?uploadId")
        if "uploads" in q and method == "POST":
            return "CreateMultipartUpload"
        return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject",
                "DELETE": "DeleteObject"}.get(method, method + " object")
    for sub, name in (("location", "GetBucketLocation"), ("versioning", "GetBucketVersioning"),
                      ("encryption", "GetBucketEncryption"), ("list-type", "ListObjectsV2")):
        if sub in q and method == "GET":
            return name
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "GET": "ListObjects",
            "DELETE": "DeleteBucket"}.get(method, method + " bucket")


class Call:
    __slots__ = ("t", "service", "action", "status", "code", "bucket", "moto_ms", "refs", "names", "retry", "repeat")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # so that Expect: 100-continue is answered
    # Headers and body go out in two writes: with Nagle's algorithm on a
    # kept-alive connection the body waits for the client's delayed ACK
    # (40 ms a call on Linux), which no AWS endpoint adds.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def _reply(self, status, headers, body, head=False):
        # Connections are kept open, as AWS's endpoints keep them: both
        # clients reuse theirs (one per thread), and a new connection per
        # call would charge them a setup real AWS does not ask for.
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _handle(self):
        px = self.server.proxy
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        m = _SCOPE_RE.search(self.headers.get("Authorization", ""))
        region, service = (m.group(1), m.group(2)) if m else ("", "?")
        params = {}
        if service == "s3":
            action = s3_action(self.command, self.headers.get("Host", ""), split.path, query)
        elif self.headers.get("X-Amz-Target"):
            action = self.headers["X-Amz-Target"].rsplit(".", 1)[-1]
        else:
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                params = {k: v[0] for k, v in
                          urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            else:
                params = {k: v[0] for k, v in query.items()}
            action = params.get("Action", self.command)
        if service == "elasticloadbalancing" and params.get("Version", "").startswith("2015"):
            service = "elbv2"

        half = px.delay / 2
        if half > 0:
            time.sleep(half)
        # Here the request reaches "AWS".
        bucket = None
        if service == "ec2":
            key, cap, rate = buckets.ec2_bucket(action, params, px.ids_are_filters)
            bucket = key
            if not px.take(key, cap, rate):
                return self._throttled(service, action, key, body)
        if service == "ec2" and action == "GetConsoleScreenshot":
            status, headers, data, moto_ms = self._screenshot(params)
        else:
            try:
                status, headers, data, moto_ms = self._forward(body)
            except (OSError, http.client.HTTPException) as e:  # moto gone or reset: say so, as a gateway would
                data = f"<Error><Code>BenchUpstreamError</Code><Message>{escape(repr(e))}</Message></Error>".encode()
                status, headers, moto_ms = 502, [("Content-Type", "text/xml"),
                                                 ("Content-Length", str(len(data)))], None
        t = time.monotonic()
        code = None
        if status >= 300:
            code = _err_code(data) or f"HTTP{status}"
            px.sample_error(f"{service}:{action} {code}", data)
        px.record(self.command, self.path, body, Call(
            t=t, service=service, action=action, status=status, code=code,
            bucket=bucket, moto_ms=moto_ms, refs=_refs(service, action, params), names=_names(params, split.path)))
        if half > 0:
            time.sleep(half)
        self._reply(status, headers, data, head=self.command == "HEAD")

    def _throttled(self, service, action, key, body):
        px = self.server.proxy
        rid = str(uuid.uuid4())
        xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
               "<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>"
               f"<RequestID>{rid}</RequestID></Response>").encode()
        px.record(self.command, self.path, body, Call(
            t=time.monotonic(), service=service, action=action, status=503, code="RequestLimitExceeded",
            bucket=key, moto_ms=0.0, refs=None, names=None))
        if px.delay > 0:
            time.sleep(px.delay / 2)
        self._reply(503, [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(xml)))], xml)

    def _screenshot(self, params):
        rid = str(uuid.uuid4())
        iid = params.get("InstanceId", "")
        xml = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetConsoleScreenshotResponse xmlns=\"{EC2_NS}\">"
               f"<requestId>{rid}</requestId><instanceId>{escape(iid)}</instanceId>"
               f"<imageData>{base64.b64encode(JPEG).decode()}</imageData>"
               "</GetConsoleScreenshotResponse>").encode()
        return 200, [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(xml)))], xml, 0.0

    def _forward(self, body):
        up = self.server.proxy.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
        try:
            t0 = time.monotonic()
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    conn.putheader(k, v)
            if body and "Content-Length" not in self.headers:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = b"" if self.command == "HEAD" else resp.read()
            moto_ms = (time.monotonic() - t0) * 1000
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
            if self.command != "HEAD":
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(data))))
            return resp.status, headers, data, moto_ms
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


def _err_code(data):
    m = re.search(rb"<Code>([^<]+)</Code>", data or b"") or re.search(rb'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"',
                                                                     data or b"")
    return m.group(1).decode("utf-8", "replace") if m else None


def _names(params, path):
    """Every instance, ENI and volume id the request names (in any field,
    filter values included, or in the path), for attributing it to
    instances."""
    found = set(_ANY_ID_RE.findall(path))
    for k, v in params.items():
        if k not in ("Action", "Version", "Message"):
            found.update(_ANY_ID_RE.findall(v))
    return tuple(sorted(found)) or None


def _refs(service, action, params):
    """What a call names, for the per-instance phase times: ENIs, volumes,
    instances."""
    if service == "ec2" and action == "ModifyNetworkInterfaceAttribute":
        return ("eni", params.get("NetworkInterfaceId", ""))
    if service == "ec2" and action == "ModifyInstanceAttribute" and "GroupId.1" in params:
        return ("instance-groups", params.get("InstanceId", ""))
    if service == "ec2" and action == "CreateSnapshots":
        return ("instance", params.get("InstanceSpecification.InstanceId", ""))
    if service == "ec2" and action == "CreateSnapshot":
        return ("volume", params.get("VolumeId", ""))
    if service == "sns" and action == "Publish":
        text = params.get("Subject", "") + "\n" + params.get("Message", "")
        return ("instances", tuple(sorted(set(_IID_RE.findall(text)))))
    return None


class BenchProxy:
    def __init__(self, upstream_url, delay=0.05, refill_scale=1.0, ids_are_filters=False):
        self.upstream = urllib.parse.urlsplit(upstream_url)
        self.delay = delay
        self.scale = refill_scale
        self.ids_are_filters = ids_are_filters
        self.lock = threading.Lock()
        self.buckets = {}  # key -> [tokens, last refill time, capacity, rate]
        self.calls = []
        self.seen = {}  # request digest -> (last status, whether it was a throttling error)
        self.specs = {}  # bucket key -> (capacity, documented rate)
        self.error_samples = {}  # "service:Action code" -> the first such answer's text
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self.server.request_queue_size = 256  # the default (5) drops bursts of connections
        self.server.server_bind()
        self.server.server_activate()
        self.server.daemon_threads = True
        self.server.proxy = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = None

    def take(self, key, cap, rate):
        """One token from bucket `key` (created full), refilled continuously
        at rate * refill_scale per second.  False when empty."""
        now = time.monotonic()
        with self.lock:
            self.specs[key] = (cap, rate)
            b = self.buckets.get(key)
            if b is None:
                b = self.buckets[key] = [float(cap), now]
            b[0] = min(float(cap), b[0] + (now - b[1]) * rate * self.scale)
            b[1] = now
            if b[0] >= 1.0:
                b[0] -= 1.0
                return True
            return False

    def sample_error(self, key, data):
        """Keep the first error answer of each kind, its text shortened (moto's
        500s are HTML pages naming the Python exception)."""
        with self.lock:
            if key not in self.error_samples:
                text = re.sub(r"<[^>]*>", " ", (data or b"")[:4000].decode("utf-8", "replace"))
                self.error_samples[key] = " ".join(text.split())[:300]

    def record(self, method, path, body, call):
        digest = hashlib.sha1(method.encode() + b" " + path.encode() + b"\n" + body).digest()
        with self.lock:
            prev = self.seen.get(digest)
            call.retry = prev is not None and prev[0] >= 300
            call.repeat = prev is not None and prev[0] < 300
            self.seen[digest] = (call.status, call.code in THROTTLE_CODES)
            self.calls.append(call)

    def exhausted_throttles(self):
        """Requests whose last answer was a throttling error: the client gave up."""
        with self.lock:
            return sum(1 for _, throttled in self.seen.values() if throttled)

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
