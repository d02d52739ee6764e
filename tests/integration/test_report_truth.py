"""What a responder reads at 3 a.m. says what AWS shows: the tags, the SNS
subject and first line, the Slack message, the exit status and the JSON
summary follow the instance's verified containment, and the report steps
reach resources in other regions than the run's.

The containment is set by the `contain` test fixture (tests/fixtures/contain.c)
as the pipeline's first step, so these tests do not depend on a real
isolation; the step under test follows it.  Everything is asserted in moto.

moto differs from AWS in ways that matter here, so two things are played by
a proxy in front of it (S3RegionProxy below): S3 is one global namespace in
moto, which answers a request for a bucket of another region as if it were
local (HeadBucket even answers 200 with x-amz-bucket-region); AWS answers 301
PermanentRedirect.  The proxy answers like AWS for the buckets it is told
about, and records the region each S3 request was signed for.  SNS topics
and KMS keys are regional in moto, so those tests are honest without it.
"""
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_proxy import ScreenshotProxy, _Handler  # noqa: E402

HERE = Path(__file__).resolve().parent
CASE = "case-truth-1"
WEST = "us-west-2"

STATUS = {"contained": "quarantined", "partially-contained": "partially-contained",
          "not-contained": "containment-failed", "none": "under-investigation"}
STATE = {"contained": "contained", "partially-contained": "partially-contained",
         "not-contained": "not-contained", "none": "not-attempted"}
OUTCOME = {"contained": "CONTAINED", "partially-contained": "PARTIALLY CONTAINED",
           "not-contained": "NOT CONTAINED", "none": "CONTAINMENT NOT ATTEMPTED"}
# Exit status: 4 when a found instance is not (fully) contained.
RC = {"contained": 0, "partially-contained": 4, "not-contained": 4, "none": 0}


def step(p, name):
    (inst,) = p.json["instances"]
    return next(s for s in inst["steps"] if s["step"] == name)


def tags_of(ec2, rid):
    r = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [rid]}])["Tags"]
    return {t["Key"]: t["Value"] for t in r}


def seeded(world):
    """One instance with two volumes and two ENIs; its resources; a cause
    naming one of its ENIs and the group it is still in."""
    w = world.vpc_world()
    iid = w["instances"][0]
    inst = world.instance(iid)
    vols = [m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]]
    enis = [n["NetworkInterfaceId"] for n in inst["NetworkInterfaces"]]
    assert len(vols) == 2 and len(enis) == 2
    return iid, vols, enis, f"{enis[1]} still in {w['sg']}"


def run(world, pipeline, sections, *args, rc=None, case=CASE, env=None, **globals_):
    conf = world.write_conf(pipeline, sections, **globals_)
    return world.irfw("--conf", conf, *args, "--case-id", case, "-o", "json", env=env, check_rc=rc)


# ---------------------------------------------------------------- tag ----

@pytest.mark.parametrize("report", ["contained", "partially-contained", "not-contained", "none"])
def test_tag_status_follows_containment(world, report):
    iid, vols, enis, cause = seeded(world)
    ec2 = world.client("ec2")
    p = run(world, ["contain", "tag"], {"contain": {"report": report, "cause": cause}}, "-i", iid,
            rc=RC[report])
    s = step(p, "tag")
    assert s["status"] == "ok", s
    assert f"status irfw:status={STATUS[report]} (instance {STATE[report]})" in s["detail"], s

    for rid in [iid, *vols, *enis]:
        t = tags_of(ec2, rid)
        assert t["irfw:case"] == CASE, (rid, t)
        assert t["irfw:status"] == STATUS[report], (rid, t)
        # The time tag's key claims a quarantine: only when it is true.
        if report == "contained":
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t["irfw:quarantined-at"]), t
        else:
            assert "irfw:quarantined-at" not in t, (rid, t)
        # The cause tag says why it is not contained, and only then.
        if report in ("partially-contained", "not-contained"):
            assert t["irfw:containment"] == cause, (rid, t)
        else:
            assert "irfw:containment" not in t, (rid, t)

    # The exit status and the JSON summary say the same.
    c = p.json["instances"][0]["containment"]
    assert c["state"] == STATE[report] and c["outcome"] == OUTCOME[report]
    assert c["cause"] == (cause if report in ("partially-contained", "not-contained") else "")
    rec = world.manifest(CASE, iid)["steps"]["tag"]["records"]["tags"]
    assert rec["containment"] == STATE[report]
    assert rec["tags"]["irfw:status"] == STATUS[report]


def test_not_contained_exits_4_with_the_cause_in_the_summary(world):
    iid, vols, enis, cause = seeded(world)
    p = run(world, ["contain"], {"contain": {"report": "not-contained", "cause": cause}}, "-i", iid)
    assert p.returncode == 4, p.stdout + p.stderr
    assert p.json["instances"][0]["containment"] == {"state": "not-contained", "outcome": "NOT CONTAINED",
                                                     "cause": cause}


def test_tag_removes_claims_an_earlier_run_left(world):
    """Run 1 contained: the time tag is set.  Run 2 (a new case) finds the
    instance not contained: the time tag is gone from every resource, the
    cause tag is there.  Run 3 contained again: the cause tag is gone."""
    iid, vols, enis, cause = seeded(world)
    ec2 = world.client("ec2")
    rids = [iid, *vols, *enis]
    run(world, ["contain", "tag"], {"contain": {"report": "contained"}}, "-i", iid, rc=0, case="IR-1")
    assert all("irfw:quarantined-at" in tags_of(ec2, r) for r in rids)

    p = run(world, ["contain", "tag"], {"contain": {"report": "not-contained", "cause": cause}}, "-i", iid,
            rc=4, case="IR-2")
    assert "removed irfw:quarantined-at, no longer true" in step(p, "tag")["detail"]
    for r in rids:
        t = tags_of(ec2, r)
        assert "irfw:quarantined-at" not in t, (r, t)
        assert t["irfw:status"] == "containment-failed" and t["irfw:containment"] == cause, (r, t)
        assert t["irfw:case"] == "IR-2"
    rec = world.manifest("IR-2", iid)["steps"]["tag"]["records"]["tags"]
    assert rec["removed"] == ["irfw:quarantined-at"]
    assert "irfw:quarantined-at" in rec["previous_instance_values"]

    p = run(world, ["contain", "tag"], {"contain": {"report": "contained"}}, "-i", iid, rc=0, case="IR-3")
    assert "removed irfw:containment, no longer true" in step(p, "tag")["detail"]
    for r in rids:
        t = tags_of(ec2, r)
        assert "irfw:containment" not in t, (r, t)
        assert t["irfw:status"] == "quarantined" and "irfw:quarantined-at" in t, (r, t)


def test_tag_site_values_and_long_cause(world):
    """The status values are the site's templates; a cause over 256
    characters is cut to what EC2 takes, with a note."""
    iid, vols, enis, _ = seeded(world)
    ec2 = world.client("ec2")
    case = "C" * 100  # the cause template repeats it: an INI line may not pass 199 characters
    long_cause = "sg-0123 still allows " + case * 3
    p = run(world, ["contain", "tag"], {
        "contain": {"report": "partially-contained", "cause": "sg-0123 still allows ${case_id}${case_id}${case_id}"},
        "tag": {"status_partial": "OPEN-${containment}", "cause_key": "acme:why", "resources": "instance"}},
        "-i", iid, rc=4, case=case)
    s = step(p, "tag")
    assert "value of tag acme:why cut to 256 characters" in s["detail"], s
    t = tags_of(ec2, iid)
    assert t["irfw:status"] == "OPEN-partially-contained"
    assert t["acme:why"] == long_cause[:256]
    assert "irfw:containment" not in t and "irfw:quarantined-at" not in t
    assert "irfw:status" not in tags_of(ec2, vols[0])


# ---------------------------------------------------------------- SNS ----

def topic_with_queue(world, name, region=None):
    """A topic and an SQS queue subscribed to it, both in `region`."""
    sns, sqs = world.client("sns", region), world.client("sqs", region)
    arn = sns.create_topic(Name=name)["TopicArn"]
    q = sqs.create_queue(QueueName=name + "-q")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
    return arn, q


def notifications(world, queue, region=None):
    msgs = world.client("sqs", region).receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                                       WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


@pytest.mark.parametrize("report", ["not-contained", "contained", "partially-contained"])
def test_sns_subject_and_first_line_state_the_outcome(world, report):
    iid, _, _, cause = seeded(world)
    arn, q = topic_with_queue(world, "oncall")
    p = run(world, ["contain", "notify_sns"], {"contain": {"report": report, "cause": cause},
                                               "notify_sns": {"topic": arn}}, "-i", iid, rc=RC[report])
    assert step(p, "notify_sns")["status"] == "ok"
    (n,) = notifications(world, q)
    assert n["Subject"] == f"{OUTCOME[report]}: {iid} (case {CASE})"
    first = n["Message"].splitlines()[0]
    if report == "contained":
        assert first == "CONTAINED"
    else:
        assert first == f"{OUTCOME[report]}: {cause}"
    assert "irfw incident response report" in n["Message"]


def test_sns_json_carries_the_containment(world):
    iid, _, _, cause = seeded(world)
    arn, q = topic_with_queue(world, "oncall")
    run(world, ["contain", "notify_sns"], {"contain": {"report": "not-contained", "cause": cause},
                                           "notify_sns": {"topic": arn, "format": "json"}}, "-i", iid, rc=4)
    (n,) = notifications(world, q)
    body = json.loads(n["Message"])
    assert body["containment"] == {"state": "not-contained", "outcome": "NOT CONTAINED", "cause": cause}
    assert n["Subject"].startswith("NOT CONTAINED: ")


def test_sns_topic_in_another_region(world):
    """A central on-call topic in us-west-2, the run in us-east-1: Publish
    goes to the topic's region (moto's topics are regional, so publishing
    in the run's region would answer NotFound)."""
    assert world.region == "us-east-1"
    iid, _, _, _ = seeded(world)
    arn, q = topic_with_queue(world, "central-oncall", region=WEST)
    assert f":{WEST}:" in arn
    p = run(world, ["contain", "notify_sns"], {"contain": {"report": "contained"}, "notify_sns": {"topic": arn}},
            "-i", iid, rc=0)
    s = step(p, "notify_sns")
    assert s["status"] == "ok", s
    (n,) = notifications(world, q, WEST)
    assert n["TopicArn"] == arn and n["Subject"] == f"CONTAINED: {iid} (case {CASE})"
    assert n["MessageId"] in s["detail"]


# -------------------------------------------------------------- Slack ----

@pytest.fixture
def slack():
    """tests/integration/slack_receiver.py in a subprocess: (url, received())."""
    proc = subprocess.Popen([sys.executable, str(HERE / "slack_receiver.py")], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    base = f"http://127.0.0.1:{int(line.split()[-1])}"

    def received():
        with urllib.request.urlopen(base + "/__received", timeout=5) as r:
            return json.loads(r.read())

    yield base + "/services/T0/B0/truth", received
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)
    proc.stdout.close()


@pytest.mark.parametrize("report,emoji", [("not-contained", ":rotating_light:"), ("contained", ":lock:"),
                                          ("partially-contained", ":warning:"),
                                          ("none", ":grey_question:")])
def test_slack_leads_with_the_outcome(world, slack, report, emoji):
    url, received = slack
    iid, _, _, cause = seeded(world)
    run(world, ["contain", "notify_slack"], {"contain": {"report": report, "cause": cause}}, "-i", iid,
        rc=RC[report], env={"IRFW_SLACK_WEBHOOK": url})
    (got,) = received()
    msg = got["body"]
    lead = f"{emoji} {OUTCOME[report]}: {iid}"
    assert msg["text"].startswith(lead), msg["text"]
    header = msg["blocks"][0]
    assert header["type"] == "header" and header["text"]["text"].startswith(lead)
    if report in ("partially-contained", "not-contained"):
        assert msg["text"].startswith(f"{lead}: {cause}")
        # The cause right under the header, before the facts and the steps.
        assert msg["blocks"][1]["type"] == "section"
        assert msg["blocks"][1]["text"]["text"] == f"{emoji} *{OUTCOME[report]}:* {cause}"
    else:
        assert [b["type"] for b in msg["blocks"]] == ["header", "section", "section", "context"]
        assert "fields" in msg["blocks"][1]


# ------------------------------------------------------------- upload ----

class _RegionHandler(_Handler):
    """Answers S3 like AWS for a bucket of another region than the request
    was signed for: 301 PermanentRedirect with x-amz-bucket-region, except
    GetBucketLocation, which S3 answers from any region."""

    def _handle(self):
        proxy = self.server.proxy
        body = self._body()
        m = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request", self.headers.get("Authorization", ""))
        region, service = m.groups() if m else (None, None)
        if service == "s3":
            path, _, query = self.path.partition("?")
            bucket, _, key = urllib.parse.unquote(path.lstrip("/")).partition("/")
            qs = urllib.parse.parse_qs(query, keep_blank_values=True)
            with proxy.lock:
                proxy.s3_requests.append({"method": self.command, "bucket": bucket, "key": key,
                                          "query": sorted(qs), "region": region})
            home = proxy.bucket_regions.get(bucket)
            if home and region != home and "location" not in qs:
                xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>PermanentRedirect</Code>"
                       "<Message>The bucket you are attempting to access must be addressed using the specified "
                       f"endpoint. Please send all future requests to this endpoint.</Message><Endpoint>{bucket}."
                       f"s3.{home}.amazonaws.com</Endpoint><Bucket>{bucket}</Bucket><RequestId>PROXY301"
                       "</RequestId></Error>").encode()
                return self._reply(301, [("Content-Type", "application/xml"), ("Content-Length", str(len(xml))),
                                         ("x-amz-bucket-region", home), ("x-amz-request-id", "PROXY301")], xml,
                                   head=self.command == "HEAD")
        self._forward(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


class S3RegionProxy(ScreenshotProxy):
    def __init__(self, upstream_url, bucket_regions):
        super().__init__(upstream_url)
        self.bucket_regions = bucket_regions
        self.s3_requests = []
        self.server.RequestHandlerClass = _RegionHandler

    def object_writes(self):
        return [r for r in self.s3_requests if r["key"] and r["method"] in ("PUT", "POST")]


def test_s3_region_proxy_refuses_like_aws(world):
    """The proxy itself: a request for a us-west-2 bucket signed for
    us-east-1 is redirected, GetBucketLocation is answered (raw requests:
    boto3 follows S3's redirects by itself)."""
    world.client("s3", WEST).create_bucket(Bucket="probe-west", CreateBucketConfiguration={"LocationConstraint": WEST})

    def send(proxy, method, path, region, data=None):
        auth = (f"AWS4-HMAC-SHA256 Credential=AKIAX/20240101/{region}/s3/aws4_request, SignedHeaders=host, "
                "Signature=00")
        req = urllib.request.Request(proxy.url + path, method=method, data=data,
                                     headers={"Authorization": auth, "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
                                              "Content-Type": "application/octet-stream"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    with S3RegionProxy(world.moto.url, {"probe-west": WEST}) as proxy:
        status, _, body = send(proxy, "GET", "/probe-west?location=", "us-east-1")
        assert status == 200 and WEST.encode() in body
        status, headers, body = send(proxy, "PUT", "/probe-west/k", "us-east-1", b"x")
        assert status == 301 and headers["x-amz-bucket-region"] == WEST and b"PermanentRedirect" in body
        status, headers, _ = send(proxy, "HEAD", "/probe-west", "us-east-1")
        assert status == 301 and headers["x-amz-bucket-region"] == WEST
        status, _, _ = send(proxy, "PUT", "/probe-west/k2", WEST, b"y")
        assert status == 200
    assert objects(world, "probe-west", WEST) == {"k2"}


def objects(world, bucket, region=None):
    r = world.client("s3", region).list_objects_v2(Bucket=bucket)
    return {o["Key"] for o in r.get("Contents", [])}


@pytest.mark.parametrize("prefix", ["${case_id}/${name_tag}/${instance_id}/", "/${name_tag}/${case_id}//${instance_id}",
                                    "${case_id}/${instance_id}/${name_tag}"])
def test_upload_without_name_tag_makes_no_empty_segment(world, prefix):
    iid, _, _, _ = seeded(world)
    ec2 = world.client("ec2")
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "Name"}])
    assert "Name" not in tags_of(ec2, iid)
    s3 = world.client("s3")
    s3.create_bucket(Bucket="evidence")
    key = world.client("kms").create_key(Description="ev")["KeyMetadata"]["Arn"]
    p = run(world, ["upload"], {"upload": {"bucket": "evidence", "prefix": prefix, "kms_key": key}}, "-i", iid,
            rc=0)
    s = step(p, "upload")
    assert s["status"] == "ok", s
    keys = objects(world, "evidence")
    assert keys and all("//" not in k and not k.startswith("/") for k in keys), keys
    assert keys == {f"{CASE}/{iid}/{a['name']}" for a in world.manifest(CASE, iid)["artifacts"]} | \
        {f"{CASE}/{iid}/manifest.json"}
    assert f"s3://evidence/{CASE}/{iid}/ " in s["detail"]


def west_bucket_and_key(world, bucket="evidence-west"):
    world.client("s3", WEST).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": WEST})
    kms = world.client("kms", WEST)
    key = kms.create_key(Description="evidence west")["KeyMetadata"]
    kms.create_alias(AliasName="alias/evidence", TargetKeyId=key["KeyId"])
    return bucket, key["Arn"]


@pytest.mark.parametrize("spec", ["arn", "alias"])
def test_upload_to_a_bucket_and_key_in_another_region(world, spec):
    """Bucket and key in us-west-2, the run in us-east-1: the objects land
    there under SSE-KMS with that key; every S3 request went to us-west-2,
    and an alias is resolved in the bucket's region (moto's keys are
    regional: the alias exists only there)."""
    assert world.region == "us-east-1"
    iid, _, _, _ = seeded(world)
    bucket, key_arn = west_bucket_and_key(world)
    assert f":{WEST}:" in key_arn
    kms_key = key_arn if spec == "arn" else "alias/evidence"
    with S3RegionProxy(world.moto.url, {bucket: WEST}) as proxy:
        p = run(world, ["upload"], {"upload": {"bucket": bucket, "kms_key": kms_key}}, "-i", iid, rc=0,
                env={"AWS_ENDPOINT_URL": proxy.url})
    s = step(p, "upload")
    assert s["status"] == "ok", s
    assert s["detail"].endswith(f"bucket in {WEST}"), s

    s3 = world.client("s3", WEST)
    man = world.manifest(CASE, iid)
    expected = {f"{CASE}/{iid}/{a['name']}" for a in man["artifacts"]} | {f"{CASE}/{iid}/manifest.json"}
    assert objects(world, bucket, WEST) == expected
    for k in expected:
        head = s3.head_object(Bucket=bucket, Key=k)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_arn, k
    assert all(a["kms_key"] == key_arn and a["uri"].startswith(f"s3://{bucket}/") for a in man["artifacts"])
    rec = man["steps"]["upload"]["records"]["manifest"]
    assert rec["region"] == WEST and rec["kms_key"] == key_arn

    writes = proxy.object_writes()
    assert writes and all(r["region"] == WEST for r in writes), proxy.s3_requests
    heads = [r for r in proxy.s3_requests if r["method"] == "HEAD" and r["key"]]
    assert heads and all(r["region"] == WEST for r in heads)


def test_upload_refuses_a_key_of_another_region_than_the_bucket(world):
    """Bucket in us-west-2, key ARN in us-east-1: S3 would refuse it; the
    step fails before anything is uploaded, naming both regions."""
    iid, _, _, _ = seeded(world)
    bucket, _ = west_bucket_and_key(world)
    east_key = world.client("kms").create_key(Description="evidence east")["KeyMetadata"]["Arn"]
    assert ":us-east-1:" in east_key
    with S3RegionProxy(world.moto.url, {bucket: WEST}) as proxy:
        p = run(world, ["upload"], {"upload": {"bucket": bucket, "kms_key": east_key}}, "-i", iid, rc=1,
                env={"AWS_ENDPOINT_URL": proxy.url})
    s = step(p, "upload")
    assert s["status"] == "failed"
    assert f"KMS key {east_key} is in us-east-1 but evidence bucket {bucket} is in {WEST}" in s["detail"], s
    assert "nothing uploaded" in s["detail"] and str(world.evidence / CASE / iid) in s["detail"]
    assert objects(world, bucket, WEST) == set()
    assert proxy.object_writes() == []
    assert all("uri" not in a for a in world.manifest(CASE, iid)["artifacts"])


def test_upload_dry_run_names_the_bucket_region_and_uploads_nothing(world):
    iid, _, _, _ = seeded(world)
    bucket, key_arn = west_bucket_and_key(world)
    with S3RegionProxy(world.moto.url, {bucket: WEST}) as proxy:
        p = run(world, ["upload"], {"upload": {"bucket": bucket, "kms_key": key_arn}}, "-i", iid, "--dry-run",
                rc=0, env={"AWS_ENDPOINT_URL": proxy.url})
    s = step(p, "upload")
    assert s["status"] == "ok" and s["detail"].startswith("dry run: would upload"), s
    assert f"bucket in {WEST}" in s["detail"], s
    assert proxy.object_writes() == [] and objects(world, bucket, WEST) == set()
