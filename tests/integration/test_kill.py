"""`kill -9` in the middle of a 20-instance run, at chosen points, then the
resume: the state left in moto must be the state an uninterrupted run
leaves on a fresh world (quarantine groups, each interface's groups,
snapshots per volume, tags, S3 objects, SNS messages), with nothing made twice.

The points are chosen by a proxy in front of moto that holds one chosen
request: before it reaches moto (the change is not made), or after moto
answered it (the change is made, irfw never hears of it).  irfw is killed
while the request is held.  The helpers here are shared with
test_signals.py.
"""
import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import IRFW_BIN

N = 20
CASE = "IR-KILL-1"
PIPELINE = ["isolate", "snapshot", "tag", "upload", "notify_sns"]


class HoldProxy:
    """moto behind a proxy.  `hold` is (match, nth, when): the nth request
    whose name match(name) accepts is held, `when` = "before" (never sent
    to moto) or "after" (moto acted, the answer is never sent).  `delay`
    maps request names to seconds to wait before forwarding.  A request's
    name is its Action (query APIs) or "s3:METHOD" (S3).  self.held is set
    once the request is held."""

    def __init__(self, upstream, hold=None, delay=None):
        proxy = self
        self.calls = []
        self.lock = threading.Lock()
        self.held = threading.Event()
        self.release = threading.Event()
        self.hold = hold
        self.delay = delay or {}
        self.seen = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                name = "s3:" + self.command
                if self.command == "POST" and body[:7] == b"Action=":
                    name = parse_qs(body.decode(), keep_blank_values=True).get("Action", [""])[0]
                verdict = proxy.decide(name)
                if name in proxy.delay:
                    time.sleep(proxy.delay[name])
                if verdict == "before":
                    proxy.held.set()
                    proxy.release.wait()
                    self.close_connection = True
                    return
                answer = self.upstream(body)
                if verdict == "after":
                    proxy.held.set()
                    proxy.release.wait()
                    self.close_connection = True
                    return
                self.reply(*answer)

            do_POST = do_GET = do_PUT = do_HEAD = do_DELETE = handle_any

            def upstream(self, body):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                req = urllib.request.Request(upstream + self.path, data=body if body else None,
                                             method=self.command, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=60) as r:
                        return r.status, dict(r.headers), r.read()
                except urllib.error.HTTPError as e:
                    return e.code, dict(e.headers), e.read()

            def reply(self, status, headers, data):
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        if k.lower() not in ("content-length", "connection", "transfer-encoding", "server",
                                             "date"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except OSError:
                    pass
                self.close_connection = True

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def decide(self, name):
        with self.lock:
            self.calls.append(name)
            if not self.hold or self.held.is_set():
                return None
            match, nth, when = self.hold
            if match(name):
                self.seen += 1
                if self.seen == nth:
                    return when
        return None

    def count(self, name):
        with self.lock:
            return sum(1 for c in self.calls if c == name)

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def seed(world, n=N):
    """n instances launched at once (root and one data volume, one
    interface each) in a VPC, an evidence bucket and KMS key, a topic with
    a queue."""
    from conftest import AMI
    ec2 = world.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    bdm = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
           {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "DeleteOnTermination": True}}]
    r = ec2.run_instances(ImageId=AMI, MinCount=n, MaxCount=n, InstanceType="t3.micro", SubnetId=subnet,
                          SecurityGroupIds=[sg], BlockDeviceMappings=bdm,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}])
    ids = [i["InstanceId"] for i in r["Instances"]]
    s3, kms, sns, sqs = (world.client(x) for x in ("s3", "kms", "sns", "sqs"))
    s3.create_bucket(Bucket="evidence-kill")
    key = kms.create_key(Description="irfw-evidence")["KeyMetadata"]["Arn"]
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    q = sqs.create_queue(QueueName="oncall-q")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    return {"vpc": vpc, "subnet": subnet, "sg": sg, "instances": ids, "bucket": "evidence-kill", "key": key,
            "topic": topic, "queue": q}


def conf(world, w, pipeline=PIPELINE, jobs=8, **extra):
    return world.write_conf(pipeline, {
        "isolate": {"admin_cidrs": "10.0.0.0/8"},
        "upload": {"bucket": w["bucket"], "kms_key": w["key"]},
        "notify_sns": {"topic": w["topic"]},
        "tag": {}, "snapshot": {},
    }, jobs=jobs, **extra)


def args_for(conf_path, ids, case=CASE, *extra):
    a = ["--conf", str(conf_path), "--case-id", case]
    for i in ids:
        a += ["-i", i]
    return a + list(extra)


def start(world, args, proxy=None, events=None):
    """irfw in the background (its own process group)."""
    env = world.env(**({"AWS_ENDPOINT_URL": proxy.url} if proxy else {}))
    cmd = [str(IRFW_BIN), *map(str, args)]
    if events:
        cmd += ["--events", str(events)]
    out = open(world.tmp / "bg.out", "w")
    err = open(world.tmp / "bg.err", "w")
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=world.tmp, start_new_session=True)
    p.out_path, p.err_path = world.tmp / "bg.out", world.tmp / "bg.err"
    out.close()
    err.close()
    return p


def messages(world, queue):
    """Every SNS envelope on the queue (read once: not made visible again)."""
    sqs, got = world.client("sqs"), []
    while True:
        r = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                WaitTimeSeconds=0, MessageAttributeNames=["All"])
        m = r.get("Messages", [])
        if not m:
            return got
        got += [json.loads(x["Body"]) for x in m]


TIME_TAGS = {"irfw:quarantined-at"}


def state(world, w, msgs, full=True):
    """What AWS holds, with the instances named by their position (so that
    runs on two fresh worlds compare): the VPC's irfw groups and their
    rules; per instance the groups that really hold its interface (by
    name), the snapshots of each volume, its tags (times left out), its
    S3 objects and the subjects of the SNS
    messages about it (`msgs`: every envelope read from the queue)."""
    ec2 = world.client("ec2")
    ids = w["instances"]
    pos = {iid: f"I{k}" for k, iid in enumerate(ids)}

    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [w["vpc"]]}])["SecurityGroups"]
    gname = {g["GroupId"]: g["GroupName"] for g in groups}

    def norm(s):
        for iid, p in pos.items():
            s = s.replace(iid, p)
        s = re.sub(r"sg-[0-9a-f]+", lambda m: gname.get(m.group(0), "SG"), s)
        s = re.sub(r"eni-[0-9a-f]+", "ENI", s)
        return re.sub(r"vpc-[0-9a-f]+", "VPC", s)

    quarantine = sorted((norm(g["GroupName"]), len(g["IpPermissionsEgress"]),
                         json.dumps(g["IpPermissions"], sort_keys=True)) for g in groups
                        if g["GroupName"].startswith("irfw-"))
    holders = {}  # ENI -> names of the groups that hold it (the group-id filter: MOTO-NOTES)
    for g in groups if full else ():
        r = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [g["GroupId"]]}])
        for n in r["NetworkInterfaces"]:
            holders.setdefault(n["NetworkInterfaceId"], set()).add(norm(g["GroupName"]))
    insts = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
             for i in r["Instances"]}
    vols = [b["Ebs"]["VolumeId"] for i in insts.values() for b in i["BlockDeviceMappings"]]
    snaps = {}
    for sn in ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": vols}])["Snapshots"]:
        snaps[sn["VolumeId"]] = snaps.get(sn["VolumeId"], 0) + 1
    objects = world.client("s3").list_objects_v2(Bucket=w["bucket"]).get("Contents", [])
    per = {}
    for iid in ids:
        inst = insts[iid]
        per[pos[iid]] = {
            "enis": [sorted(holders.get(n["NetworkInterfaceId"], ())) for n in inst["NetworkInterfaces"]],
            "snapshots": {b["DeviceName"]: snaps.get(b["Ebs"]["VolumeId"], 0) for b in inst["BlockDeviceMappings"]},
            "tags": {t["Key"]: norm(t["Value"]) for t in inst.get("Tags", []) if t["Key"] not in TIME_TAGS},
            # Each run keeps the instance as it found it: a resumed run
            # adds describe-instance.N.json (a new state, not a copy).
            "objects": sorted({re.sub(r"describe-instance\.\d+\.json$", "describe-instance.json", norm(o["Key"]))
                               for o in objects if iid in o["Key"]}),
            # One notification per instance, by its id; a copy with the
            # same id is the at-least-once window README states (killed
            # between Publish and the record of its answer).
            "messages": sorted({norm(m.get("Subject", "")) for m in msgs if iid in m.get("Message", "")}),
            "notifications": len({notification_id(m) for m in msgs if iid in m.get("Message", "")}),
        }
    return {"quarantine": quarantine, "instances": per}


def notification_id(m):
    """The id irfw put in the message's attributes (checked for its form)."""
    v = m.get("MessageAttributes", {}).get("irfw.notification_id", {}).get("Value", "")
    case, iid, run = (v.split("/") + ["", "", ""])[:3]
    assert case == CASE and iid.startswith("i-") and re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{12}", run), m
    return v


def failed_steps(p):
    return [(i["instance_id"], s["step"], s.get("detail"), s.get("aws_error"))
            for i in (p.json or {}).get("instances", []) for s in i["steps"] if s["status"] not in ("ok", "skipped")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, moto_server):
    """The state an uninterrupted run leaves, on a world of its own."""
    from conftest import World
    moto_server.reset()
    world = World(moto_server, tmp_path_factory.mktemp("reference"))
    w = seed(world)
    p = world.irfw(*args_for(conf(world, w), w["instances"]), "-o", "json", timeout=300)
    assert p.returncode == 0, (failed_steps(p), p.stderr[-3000:])
    ref = state(world, w, messages(world, w["queue"]))
    moto_server.reset()
    return ref


def is_(name):
    return lambda n: n == name


# The requests irfw is killed on, in the order a run reaches them (the
# whole fleet is contained before its evidence work starts): (name,
# match, nth in that run, before | after moto acted).
POINTS = [
    ("after-CreateSecurityGroup", is_("CreateSecurityGroup"), 1, "after"),
    ("before-egress-revoke", is_("RevokeSecurityGroupEgress"), 1, "before"),
    ("mid-swap", is_("ModifyNetworkInterfaceAttribute"), 7, "before"),
    ("swap-answer-lost", is_("ModifyNetworkInterfaceAttribute"), 12, "after"),
    ("after-CreateSnapshots", is_("CreateSnapshots"), 5, "after"),
    ("before-CreateTags", is_("CreateTags"), 4, "before"),
    ("mid-upload", is_("s3:PUT"), 6, "before"),
    ("upload-answer-lost", is_("s3:PUT"), 9, "after"),
    ("after-Publish", is_("Publish"), 3, "after"),
]


def assert_no_duplicates_yet(world, w, msgs, where):
    """Whatever a kill left: one quarantine group, at most one snapshot per
    volume, at most one message per instance; every journal line is JSON."""
    now = state(world, w, msgs, full=False)
    assert len(now["quarantine"]) <= 2, (where, now["quarantine"])  # the group, and its untracking twin
    assert len({q[0] for q in now["quarantine"]}) == len(now["quarantine"]), (where, now["quarantine"])
    for k, inst in now["instances"].items():
        assert all(n <= 1 for n in inst["snapshots"].values()), (where, k, inst["snapshots"])
        assert inst["notifications"] <= 1, (where, k, [
            (m.get("MessageAttributes"), m.get("Timestamp")) for m in msgs if w["instances"][int(k[1:])] in m["Message"]])
    case = world.evidence / CASE
    for d in case.iterdir() if case.exists() else ():
        data = (d / "journal.jsonl").read_bytes()
        for k, line in enumerate(data.splitlines()):
            try:
                json.loads(line.decode())
            except ValueError as e:
                raise AssertionError(f"{where}: {d.name} journal line {k + 1} is not JSON ({e}): {line[:300]!r}")


def test_kill_at_each_point_then_resume_equals_a_clean_run(world, reference):
    """One 20-instance case killed (SIGKILL) at every point in turn, each
    resumed run killed at the next; the last resume completes the case."""
    w = seed(world)
    args = args_for(conf(world, w), w["instances"])
    msgs = []
    for name, match, nth, when in POINTS:
        proxy = HoldProxy(world.moto.url, hold=(match, nth, when))
        try:
            p = start(world, args, proxy)
            held = proxy.held.wait(60)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        finally:
            proxy.close()
        assert held, f"{name}: never reached; rc={p.returncode}, last calls {proxy.calls[-15:]}\n" \
                     f"{p.err_path.read_text(errors='replace')[-3000:]}"
        assert p.returncode == -signal.SIGKILL
        msgs += messages(world, w["queue"])
        assert_no_duplicates_yet(world, w, msgs, name)
    r = world.irfw(*args, "-o", "json", timeout=300)
    assert r.returncode == 0, (failed_steps(r), r.stderr[-4000:])
    msgs += messages(world, w["queue"])
    assert_same_state(state(world, w, msgs), reference)


def assert_same_state(got, reference):
    """got (a resumed case) equals the clean run's state."""
    for k, ref in reference["instances"].items():
        assert got["instances"][k] == ref, f"instance {k}"
    left = set(got["quarantine"]) - set(reference["quarantine"])
    assert set(reference["quarantine"]) <= set(got["quarantine"])
    # No leftover: isolate removes its all-open untracking group after the
    # last isolate the run does, counting only the instances it does not
    # resume as done (irfw_step_resumed).
    assert got["quarantine"] == reference["quarantine"]
