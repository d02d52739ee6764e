#!/usr/bin/env python3
"""A tiny stand-in for the EC2 instance metadata service (IMDSv2) and the
ECS/EKS container credentials endpoint, for tests on a machine that is
neither.  Standard library only.

    fake_metadata.py --port N --mode imds|container [--token T]
                     [--allow-v1] [--no-v2] [--expires-in S] [--lifetime S]

It binds 127.0.0.1 only.  With --port 0 it picks a free port.  Once it
listens it prints "READY <port>" on stdout, so a test can wait for that line
instead of polling.  It exits by itself after --lifetime seconds.

imds mode:
  PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds)
      -> the session token (--token, default below)
  GET /latest/meta-data/iam/security-credentials/        -> role name
  GET /latest/meta-data/iam/security-credentials/<role>  -> credentials JSON
  GET /latest/meta-data/placement/region                 -> region
  GET /latest/meta-data/instance-id                      -> instance id
  GET /latest/dynamic/instance-identity/document         -> identity JSON
  A GET without the right X-aws-ec2-metadata-token is refused with 401
  unless --allow-v1.  --no-v2 makes the token PUT answer 403 (an IMDS
  that only speaks v1) and implies --allow-v1.

container mode:
  GET <any path> -> credentials JSON; with --token, the Authorization header
  must equal it (401 otherwise).

Every reply is fixed fake data; GET /__stats gives the request counts.
"""

import argparse
import datetime
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "irfw-test-role"
REGION = "eu-west-3"
INSTANCE_ID = "i-0123456789abcdef0"
ACCOUNT_ID = "123456789012"
DEFAULT_TOKEN = "fake-imds-session-token"

IMDS_CREDS = {
    "AccessKeyId": "ASIAFAKEIMDS00000001",
    "SecretAccessKey": "fakeImdsSecretKey/ForTestsOnly0000000001",
    "Token": "fake-imds-credentials-session-token",
}
CONTAINER_CREDS = {
    "AccessKeyId": "ASIAFAKECONTAINER001",
    "SecretAccessKey": "fakeContainerSecretKey/ForTestsOnly00001",
    "Token": "fake-container-session-token",
}


def iso(ts):
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-metadata/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def reply(self, status, body, ctype="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def count(self, key):
        with self.server.lock:
            self.server.stats[key] = self.server.stats.get(key, 0) + 1

    def creds(self, base):
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        exp = now + datetime.timedelta(seconds=self.server.opts.expires_in)
        doc = {"Code": "Success", "LastUpdated": iso(now), "Type": "AWS-HMAC"}
        doc.update(base)
        doc["Expiration"] = iso(exp)
        return json.dumps(doc)

    def do_PUT(self):
        opts = self.server.opts
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if opts.mode != "imds" or self.path != "/latest/api/token":
            return self.reply(404, "Not Found")
        self.count("token")
        if opts.no_v2:
            return self.reply(403, "Forbidden")
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, "Missing TTL header")
        return self.reply(200, opts.token)

    def do_GET(self):
        opts = self.server.opts
        if self.path == "/__stats":
            with self.server.lock:
                return self.reply(200, json.dumps(self.server.stats), "application/json")
        if opts.mode == "container":
            return self.container()
        return self.imds()

    def container(self):
        opts = self.server.opts
        self.count("container")
        if opts.token is not None and self.headers.get("Authorization") != opts.token:
            return self.reply(401, json.dumps({"code": "Unauthorized"}), "application/json")
        return self.reply(200, self.creds(CONTAINER_CREDS), "application/json")

    def imds(self):
        opts = self.server.opts
        tok = self.headers.get("X-aws-ec2-metadata-token")
        if tok is None:
            self.count("v1_get")
            if not opts.allow_v1:
                return self.reply(401, "Unauthorized")
        elif tok != opts.token:
            return self.reply(401, "Unauthorized")
        prefix = "/latest/meta-data/iam/security-credentials/"
        if self.path == prefix:
            return self.reply(200, ROLE)
        if self.path == prefix + ROLE:
            self.count("credentials")
            return self.reply(200, self.creds(IMDS_CREDS), "application/json")
        if self.path == "/latest/meta-data/placement/region":
            return self.reply(200, REGION)
        if self.path == "/latest/meta-data/instance-id":
            return self.reply(200, INSTANCE_ID)
        if self.path == "/latest/dynamic/instance-identity/document":
            doc = {"accountId": ACCOUNT_ID, "region": REGION,
                   "instanceId": INSTANCE_ID, "availabilityZone": REGION + "a"}
            return self.reply(200, json.dumps(doc), "application/json")
        return self.reply(404, "Not Found")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="0 picks a free port")
    ap.add_argument("--mode", choices=("imds", "container"), required=True)
    ap.add_argument("--token", default=None,
                    help="IMDS session token / container Authorization value")
    ap.add_argument("--allow-v1", action="store_true",
                    help="imds: serve GETs without a session token")
    ap.add_argument("--no-v2", action="store_true",
                    help="imds: refuse token PUTs (403); implies --allow-v1")
    ap.add_argument("--expires-in", type=int, default=6 * 3600,
                    help="seconds until the served credentials expire")
    ap.add_argument("--lifetime", type=float, default=120.0,
                    help="exit after this many seconds")
    opts = ap.parse_args()
    if opts.mode == "imds" and opts.token is None:
        opts.token = DEFAULT_TOKEN
    if opts.no_v2:
        opts.allow_v1 = True

    srv = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    srv.daemon_threads = True
    srv.opts = opts
    srv.stats = {}
    srv.lock = threading.Lock()
    timer = threading.Timer(opts.lifetime, srv.shutdown)
    timer.daemon = True
    timer.start()
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
