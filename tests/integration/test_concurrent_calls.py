"""Several calls of one instance at once (irfw_calls, SDK 1.8), seen from the
wire: a proxy in front of moto holds each chosen request for HOLD seconds
and records how many of each operation were in flight together, so a
plugin that still sends them one after another shows a maximum of 1.

upload: its artifacts' PutObjects together, then their HeadObjects
together, the manifest last; one PutObject refused (AccessDenied with a
request id) among them leaves the others uploaded and recorded, and the
step's failure names that artifact, the code and the request id.
capture: its reads together, the artifacts in the order they always had.
protect: its ModifyInstanceAttribute calls together, every attribute set
in moto, the record as before.

The proxy also answers GetConsoleScreenshot, which moto lacks
(screenshot_proxy), so capture leaves five artifacts.
"""
import base64
import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import IRFW_BIN  # noqa: E402
from screenshot_proxy import ScreenshotProxy, _Handler  # noqa: E402

HOLD = 0.3
CASE = "case-cc"
ARTIFACTS = ["describe-instance.json", "console-output.txt", "console-screenshot.jpg", "instance-attributes.json",
             "network-interfaces.json"]


class _HoldingHandler(_Handler):
    def _handle(self):
        proxy = self.server.proxy
        body = self._body()
        ctype = self.headers.get("Content-Type", "")
        params = {}
        if self.command == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            params = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        op, name = proxy.classify(self.command, self.path, self.headers, params)
        if op not in proxy.hold_ops:
            if params.get("Action") == ["GetConsoleScreenshot"]:
                return self._screenshot(params)
            return self._forward(body)
        self.label = proxy.label(op, params)
        with proxy.lock:
            proxy.in_flight[op] = proxy.in_flight.get(op, 0) + 1
            proxy.max_in_flight[op] = max(proxy.max_in_flight.get(op, 0), proxy.in_flight[op])
            proxy.total += 1
            proxy.max_total = max(proxy.max_total, proxy.total)
            proxy.seen.append((op, name))
        t0 = time.monotonic()
        try:
            time.sleep(proxy.hold_of(self.label))
            if op == "PutObject" and name == proxy.deny_put:
                return self._deny()
            if op == "GetConsoleScreenshot":
                return self._screenshot(params)
            return self._forward(body)
        finally:
            with proxy.lock:
                proxy.in_flight[op] -= 1
                proxy.total -= 1
                proxy.spans.append((op, t0, time.monotonic()))

    def _deny(self):
        rid = self.server.proxy.deny_request_id
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                f"<Message>Access Denied</Message><RequestId>{rid}</RequestId><HostId>h</HostId></Error>").encode()
        self._reply(403, [("Content-Type", "application/xml"), ("Content-Length", str(len(body))),
                          ("x-amz-request-id", rid)], body)

    def _reply(self, status, headers, body, head=False):
        # moto answers every ModifyInstanceAttribute with the request id
        # "request-id": give each its own, to see the order irfw records.
        label = getattr(self, "label", None)
        if label and body:
            body = re.sub(rb"<requestId>[^<]*</requestId>", f"<requestId>{label}</requestId>".encode(), body)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        super()._reply(status, headers, body, head)

    # The base class bound its own _handle to these.
    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class HoldingProxy(ScreenshotProxy):
    def __init__(self, upstream_url, hold_ops, bucket=None, deny_put=None, deny_request_id="REQ-DENIED-7",
                 hold=HOLD):
        super().__init__(upstream_url)
        self.hold = hold
        self.server.RequestHandlerClass = _HoldingHandler
        self.hold_ops = set(hold_ops)
        self.bucket = bucket
        self.deny_put = deny_put
        self.deny_request_id = deny_request_id
        self.in_flight, self.max_in_flight, self.seen = {}, {}, []
        self.spans = []  # (operation, start, end) of each held request
        self.total = self.max_total = 0  # held requests of any operation

    # ModifyInstanceAttribute by the change it makes, and how long it is
    # held: protect queues them in this order, and the later ones answer
    # first.
    CHANGES = [("DisableApiTermination.Value", "req-termination", 0.6), ("DisableApiStop.Value", "req-stop", 0.45),
               ("Attribute", "req-shutdown", 0.3), ("BlockDeviceMapping.1.DeviceName", "req-volumes", 0.15)]

    def label(self, op, params):
        if op != "ModifyInstanceAttribute":
            return None
        return next((label for key, label, _ in self.CHANGES if key in params), None)

    def hold_of(self, label):
        return next((hold for _, lb, hold in self.CHANGES if lb == label), self.hold)

    def classify(self, method, path, headers, params):
        """(operation, object name or "") of a request, as far as the tests need."""
        if "Action" in params:
            return params["Action"][0], ""
        if "/s3/aws4_request" not in headers.get("Authorization", ""):
            return None, ""
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        name = urllib.parse.unquote(url.path.rstrip("/").rsplit("/", 1)[-1])
        if not name or name == self.bucket or "uploadId" in query or "partNumber" in query:
            return None, ""
        if method == "PUT":
            return "PutObject", name
        if method == "HEAD":
            return "HeadObject", name
        return None, ""


def step(p, name):
    (inst,) = p.json["instances"]
    return next(s for s in inst["steps"] if s["step"] == name)


class Seeded:
    def __init__(self, world):
        self.world = world
        self.iid = world.vpc_world()["instances"][0]
        self.bucket = f"s3-access-logs.{world.account_id}-{world.region}"
        self.s3 = world.client("s3")
        self.s3.create_bucket(Bucket=self.bucket)
        self.key = world.client("kms").create_key(Description="test")["KeyMetadata"]
        self.prefix = f"{CASE}/{self.iid}/"

    def run(self, proxy, pipeline, rc, sections=None):
        conf = self.world.write_conf(pipeline, sections or {"upload": {"kms_key_description": "test"}})
        with proxy:
            return self.world.irfw("--conf", conf, "-i", self.iid, "-o", "json", "--case-id", CASE,
                                   env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=rc)

    def local(self, name):
        return (self.world.evidence / CASE / self.iid / name).read_bytes()

    def assert_object(self, name):
        """In moto, SSE-KMS with our key, its SHA-256 checksum the local file's."""
        head = self.s3.head_object(Bucket=self.bucket, Key=self.prefix + name, ChecksumMode="ENABLED")
        local = self.local(name)
        assert head["ServerSideEncryption"] == "aws:kms", name
        assert head["SSEKMSKeyId"] == self.key["Arn"], name
        assert head["ContentLength"] == len(local), name
        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(local).digest()).decode(), name
        body = self.s3.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
        assert body == local, name


def test_upload_sends_artifacts_together(world):
    w = Seeded(world)
    proxy = HoldingProxy(world.moto.url, {"PutObject", "HeadObject"}, bucket=w.bucket)
    p = w.run(proxy, ["capture", "upload"], rc=0)
    s = step(p, "upload")
    assert s["status"] == "ok", s

    puts = [n for op, n in proxy.seen if op == "PutObject"]
    assert sorted(puts[:-1]) == sorted(ARTIFACTS) and puts[-1] == "manifest.json", puts
    # The five artifacts' PutObjects were held together, then their
    # HeadObjects (each manifest call alone, last).
    assert proxy.max_in_flight["PutObject"] >= 3, proxy.max_in_flight
    assert proxy.max_in_flight["HeadObject"] >= 3, proxy.max_in_flight
    heads = [n for op, n in proxy.seen if op == "HeadObject"]
    assert heads[-1] == "manifest.json" and sorted(heads[:-1]) == sorted(ARTIFACTS), heads
    # Sequential, the 12 held calls alone would take 12 x HOLD.
    assert s["ms"] < 8 * HOLD * 1000, s["ms"]

    for name in ARTIFACTS:
        w.assert_object(name)
    # The manifest went up SSE-KMS too (the local one has grown since: the
    # step's end is recorded after it).
    head = w.s3.head_object(Bucket=w.bucket, Key=w.prefix + "manifest.json")
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == w.key["Arn"]
    man = world.manifest(CASE, w.iid)
    # Every location recorded, in the artifacts' order.
    assert [a["name"] for a in man["artifacts"]] == ARTIFACTS
    for a in man["artifacts"]:
        assert a["uri"] == f"s3://{w.bucket}/{w.prefix}{a['name']}", a
        assert a["kms_key"] == w.key["Arn"] and a.get("etag"), a
    rec = man["steps"]["upload"]["records"]["manifest"]
    assert rec["artifacts"] == len(ARTIFACTS) and rec["uri"] == f"s3://{w.bucket}/{w.prefix}manifest.json"
    # The step's request ids: one per call, none lost to the concurrency.
    ids = man["steps"]["upload"]["request_ids"]
    assert len(ids) >= 12 and len(set(ids)) == len(ids), ids


def test_one_refused_put_among_several(world):
    w = Seeded(world)
    proxy = HoldingProxy(world.moto.url, {"PutObject", "HeadObject"}, bucket=w.bucket,
                         deny_put="console-screenshot.jpg")
    p = w.run(proxy, ["capture", "upload"], rc=1)
    s = step(p, "upload")
    assert s["status"] == "failed", s
    assert "console-screenshot.jpg" in s["detail"], s
    assert "AccessDenied" in s["aws_error"] and "s3:PutObject" in s["aws_error"], s
    assert s["request_id"] == "REQ-DENIED-7", s
    assert "4 of 5 artifacts uploaded" in s["detail"], s
    assert proxy.max_in_flight["PutObject"] >= 3, proxy.max_in_flight

    keys = {o["Key"] for o in w.s3.list_objects_v2(Bucket=w.bucket).get("Contents", [])}
    others = [n for n in ARTIFACTS if n != "console-screenshot.jpg"]
    # The others are in S3 and recorded; the refused one is not; no
    # manifest in S3 that would list an object missing.
    assert keys == {w.prefix + n for n in others}, keys
    for name in others:
        w.assert_object(name)
    arts = {a["name"]: a for a in world.manifest(CASE, w.iid)["artifacts"]}
    for name in others:
        assert arts[name]["uri"] == f"s3://{w.bucket}/{w.prefix}{name}", arts[name]
    assert "uri" not in arts["console-screenshot.jpg"], arts["console-screenshot.jpg"]


def test_capture_reads_together(world):
    w = Seeded(world)
    ops = {"GetConsoleOutput", "GetConsoleScreenshot", "DescribeInstanceAttribute", "DescribeNetworkInterfaces"}
    proxy = HoldingProxy(world.moto.url, ops)
    p = w.run(proxy, ["capture"], rc=0, sections={})
    s = step(p, "capture")
    assert s["status"] == "ok", s
    held = [op for op, _ in proxy.seen]
    assert sorted(held) == sorted(ops), held
    # One of each, all four held at once: the step took about one hold.
    assert proxy.max_total == 4, proxy.max_in_flight
    assert s["ms"] < 3 * HOLD * 1000, s["ms"]
    man = world.manifest(CASE, w.iid)
    assert [a["name"] for a in man["artifacts"]] == ARTIFACTS
    assert "captured console-output.txt; console-screenshot.jpg; instance-attributes.json; " \
           "network-interfaces.json" in s["detail"], s


def test_protect_modifies_together(world):
    w = Seeded(world)
    # Not "stop" already (a new instance's default), so that all four changes go.
    world.client("ec2").modify_instance_attribute(InstanceId=w.iid, Attribute="instanceInitiatedShutdownBehavior",
                                                  Value="terminate")
    proxy = HoldingProxy(world.moto.url, {"ModifyInstanceAttribute"})
    p = w.run(proxy, ["protect"], rc=0, sections={})
    s = step(p, "protect")
    assert s["status"] == "ok", s
    assert proxy.max_in_flight["ModifyInstanceAttribute"] == 4, proxy.max_in_flight
    assert s["detail"] == ("set termination protection, stop protection, shutdown behaviour=stop, "
                           "DeleteOnTermination=false on 2 volumes"), s

    ec2 = world.client("ec2")

    def attr(name):
        return ec2.describe_instance_attribute(InstanceId=w.iid, Attribute=name)

    assert attr("disableApiTermination")["DisableApiTermination"]["Value"] is True
    assert attr("disableApiStop")["DisableApiStop"]["Value"] is True
    assert attr("instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    bdm = world.instance(w.iid)["BlockDeviceMappings"]
    assert len(bdm) == 2 and not any(m["Ebs"]["DeleteOnTermination"] for m in bdm), bdm

    man = world.manifest(CASE, w.iid)
    # (The reads before the changes carry moto's own ids.)
    ids = [i for i in man["steps"]["protect"]["request_ids"] if i.startswith("req-")]
    # In the order protect made the changes, not the order of the answers.
    assert ids == ["req-termination", "req-stop", "req-shutdown", "req-volumes"], ids
    rec = man["steps"]["protect"]["records"]["attributes"]
    assert sorted(rec) == sorted(["disableApiTermination", "disableApiStop", "instanceInitiatedShutdownBehavior",
                                  "instanceInitiatedShutdownBehaviorWas", "keptVolumes"]), rec
    assert rec["instanceInitiatedShutdownBehaviorWas"] == "terminate"
    assert rec["disableApiTermination"] is True and rec["disableApiStop"] is True
    assert rec["instanceInitiatedShutdownBehavior"] == "stop"
    assert sorted(v["device"] for v in rec["keptVolumes"]) == ["/dev/sda1", "/dev/sdf"]
    assert all(v["deleteOnTerminationWas"] is True for v in rec["keptVolumes"])


def test_second_sigint_ends_the_pool_calls_in_flight(world):
    """PutObjects that never answer (in flight on the pool's threads and the
    worker's own): the first SIGINT waits for them, the second abandons them
    all, and the step is recorded interrupted."""
    w = Seeded(world)
    proxy = HoldingProxy(world.moto.url, {"PutObject"}, bucket=w.bucket, hold=120)
    conf = world.write_conf(["capture", "upload"], {"upload": {"kms_key_description": "test"}})
    out, err = world.tmp / "out.json", world.tmp / "err.txt"
    with proxy, open(out, "w") as fo, open(err, "w") as fe:
        p = subprocess.Popen([str(IRFW_BIN), "--conf", str(conf), "-i", w.iid, "-o", "json", "--case-id", CASE],
                             env=world.env(AWS_ENDPOINT_URL=proxy.url), stdout=fo, stderr=fe, cwd=world.tmp)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and proxy.in_flight.get("PutObject", 0) < 3:
                time.sleep(0.05)
            assert proxy.in_flight.get("PutObject", 0) >= 3, proxy.in_flight
            p.send_signal(signal.SIGINT)
            time.sleep(1.0)
            assert p.poll() is None  # still waiting for the calls in flight
            t0 = time.time()
            p.send_signal(signal.SIGINT)
            p.wait(20)
            took = time.time() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert p.returncode == 130, (out.read_text(), err.read_text()[-3000:])
    assert took < 5, took
    doc = json.loads(out.read_text())
    assert doc["interrupted"]["abandoned"] is True, doc["interrupted"]
    s = step(type("P", (), {"json": doc}), "upload")
    assert s["status"] == "interrupted", s
    man = world.manifest(CASE, w.iid)
    assert man["steps"]["upload"]["status"] == "failed" and not man["steps"]["upload"].get("done")
    # Nothing reached S3, and no artifact claims a location.
    assert not w.s3.list_objects_v2(Bucket=w.bucket).get("Contents")
    assert not any(a.get("uri") for a in man["artifacts"])
