"""`irfw check`: finds what a run would hit, and changes nothing.

Each broken resource (a missing evidence bucket, a disabled KMS key, a
missing SNS topic, a malformed Slack webhook, an open quarantine group
given with -g) is a ✗ in the table, naming the resource and the AWS error,
and makes the exit status non-zero; with everything in place every step is
checked and the status is 0.  Every test asserts in moto that nothing was
made, changed, uploaded or published.
"""
import json
import os
import subprocess

import pytest

from conftest import FIXTUREDIR, IRFW_BIN, PLUGINDIR

HOOK = "https://hooks.slack.com/services/T0CHECK00/B0CHECK00/xS3cr3tT0k3nCheck"
PIPELINE = ["isolate", "upload", "notify_sns", "notify_slack"]
UTF8 = {"LC_ALL": "C.UTF-8"}


def client(world, svc, _cache={}):
    """One boto3 client per service and moto (making one takes a while)."""
    key = (svc, world.moto.url)
    if key not in _cache:
        _cache[key] = world.client(svc)
    return _cache[key]


def seed(world):
    """An instance, the evidence bucket, a KMS key with an alias and an SNS
    topic with an SQS queue subscribed, to see whether anything was
    published."""
    w = world.vpc_world(enis=1, volumes=1)
    kms = client(world, "kms")
    key = kms.create_key(Description="evidence")["KeyMetadata"]
    kms.create_alias(AliasName="alias/ir-check", TargetKeyId=key["KeyId"])
    client(world, "s3").create_bucket(Bucket="ir-check-evidence")
    sqs = client(world, "sqs")
    queue = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    arn = client(world, "sns").create_topic(Name="ir-check")["TopicArn"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client(world, "sns").subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
    return {**w, "iid": w["instances"][0], "key_arn": key["Arn"], "topic": arn, "queue": queue}


def conf(world, s, hook=HOOK, extra=False, **upload):
    return world.write_conf(PIPELINE + (["good"] if extra else []), {
        "good": {"needed": "x"},
        "isolate": {},
        "upload": {"bucket": "ir-check-evidence", "kms_key": "alias/ir-check", **upload},
        "notify_sns": {"topic": s["topic"]},
        "notify_slack": {"webhook_url": hook},
    })


def check(world, site, s, *args, rc=None, env=None):
    text = world.irfw("check", "--conf", site, "-i", s["iid"], *args, env={**UTF8, **(env or {})},
                      check_rc=rc)
    js = world.irfw("check", "--conf", site, "-i", s["iid"], *args, "-o", "json", env=env, check_rc=rc)
    steps = {st["step"]: st for st in js.json["instances"][0]["steps"]}
    return text, steps


def table_line(p, step):
    return next(ln for ln in p.stdout.splitlines() if ln.split()[1:2] == [step])


def assert_nothing_changed(world, s):
    ec2 = client(world, "ec2")
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [s["vpc"]]}])["SecurityGroups"]
    assert not [g for g in groups if g["GroupName"].startswith("irfw-")], groups
    enis = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [s["iid"]]}])["NetworkInterfaces"]
    for eni in enis:
        held = ec2.describe_network_interfaces(Filters=[
            {"Name": "network-interface-id", "Values": [eni["NetworkInterfaceId"]]},
            {"Name": "group-id", "Values": [s["sg"]]}])["NetworkInterfaces"]
        assert held, f"{eni['NetworkInterfaceId']} left its group {s['sg']}"
    inst = ec2.describe_instances(InstanceIds=[s["iid"]])["Reservations"][0]["Instances"][0]
    tags = {t["Key"] for t in inst.get("Tags", [])}
    assert tags == {"Name"}, tags
    try:
        objects = client(world, "s3").list_objects_v2(Bucket="ir-check-evidence").get("Contents", [])
    except client(world, "s3").exceptions.NoSuchBucket:
        objects = []
    assert objects == [], objects
    if s["queue"]:
        msgs = client(world, "sqs").receive_message(QueueUrl=s["queue"], WaitTimeSeconds=0).get("Messages", [])
        assert msgs == [], msgs
    assert not world.evidence.exists(), "check wrote a case record"


def test_all_present_every_step_checked(world):
    """Everything in place: ✓ (or ~, partly checked) for every step, exit 0.
    A plugin without a preflight (the fixture `good`) is '?', never run,
    and not a failure."""
    s = seed(world)
    site = conf(world, s, extra=True)
    text, steps = check(world, site, s, rc=0)
    assert table_line(text, "good").split()[0] == "?", text.stdout
    assert steps["good"]["status"] == "not-checked", steps["good"]
    for step in PIPELINE:
        assert table_line(text, step).split()[0] in ("✓", "~"), text.stdout
        assert steps[step]["status"] == "ok", steps[step]
    # What S3, KMS and SNS cannot be asked without doing it is named, not
    # claimed: the step is partly checked.
    # PutObject has no DryRun; the data key S3 would ask KMS for is asked
    # for with DryRun (KMS checks the permission and the key).
    assert set(steps["upload"]["not_checked"]) == {"s3:PutObject"}, steps["upload"]
    assert s["key_arn"] in steps["upload"]["detail"] and "enabled" in steps["upload"]["detail"]
    assert steps["notify_sns"]["not_checked"] == ["sns:Publish"]
    assert "exists" in steps["notify_sns"]["detail"]
    assert table_line(text, "upload").split()[0] == "~"
    assert "not posted" in steps["notify_slack"]["detail"]
    assert "✗" not in text.stdout and "a run would fail" not in text.stdout
    assert "xS3cr3t" not in text.stdout + text.stderr
    assert_nothing_changed(world, s)


def test_each_missing_resource_is_a_cross_naming_it(world):
    s = seed(world)
    kms = client(world, "kms")
    off = kms.create_key(Description="disabled")["KeyMetadata"]
    kms.create_alias(AliasName="alias/ir-off", TargetKeyId=off["KeyId"])
    kms.disable_key(KeyId=off["KeyId"])
    gone_topic = s["topic"].replace(":ir-check", ":ir-nosuch")
    cases = [
        ("upload", "ir-nosuch-evidence", {"bucket": "ir-nosuch-evidence"}, {}),
        ("upload", off["Arn"], {"kms_key": "alias/ir-off"}, {}),
        ("notify_sns", gone_topic, {}, {"notify_sns": {"topic": gone_topic}}),
    ]
    for step, named, upload, sections in cases:
        site = world.write_conf(PIPELINE, {
            "isolate": {},
            "upload": {"bucket": "ir-check-evidence", "kms_key": "alias/ir-check", **upload},
            "notify_sns": {"topic": s["topic"]},
            "notify_slack": {"webhook_url": HOOK}, **sections})
        text, steps = check(world, site, s, rc=1)
        st = steps[step]
        assert st["status"] == "failed", st
        line = table_line(text, step)
        assert line.split()[0] == "✗", text.stdout
        assert named in st["detail"] and named in line, (st, line)
        assert f"a run would fail at: {step} (1)" in text.stdout
        # One ✗ does not hide the other steps' verdicts.
        assert [k for k, v in steps.items() if v["status"] != "ok"] == [step], steps
        if named == "ir-nosuch-evidence":
            assert st["aws_error"].startswith("NoSuchBucket") and st["request_id"], st
            # Outside a UTF-8 locale the marks are words: ok, part, FAIL.
            p = world.irfw("check", "--conf", site, "-i", s["iid"], env={"LC_ALL": "C"}, check_rc=1)
            assert "✓" not in p.stdout and "✗" not in p.stdout, p.stdout
            assert [table_line(p, x).split()[0] for x in ("isolate", "upload", "notify_sns")] == \
                ["ok", "FAIL", "part"], p.stdout
        elif named == off["Arn"]:
            assert "not enabled" in st["detail"] and "Disabled" in st["detail"], st
        else:
            assert "does not exist" in st["detail"] and st["aws_error"].startswith("NotFound"), st
            assert st["request_id"], st
    assert_nothing_changed(world, s)


def test_webhook_form_without_posting(world):
    """A malformed webhook is a ✗ saying why; another host than Slack's
    passes with a note; the URL's secret part is never shown."""
    s = seed(world)
    bad = [
        ("http://hooks.slack.com/services/T0CHECK00/B0CHECK00/xS3cr3tT0k3nCheck", "not an https URL"),
        ("hooks.slack.com/services/T0CHECK00/B0CHECK00/xS3cr3tT0k3nCheck", "not an https URL"),
        ("https://hooks.slack.com/workflows/T0CHECK00/xS3cr3tT0k3nCheck", "not an incoming webhook"),
        ("https://hooks.slack.com/services/T0CHECK00/xS3cr3tT0k3nCheck", "not an incoming webhook"),
        ("https://me:xS3cr3t@hooks.slack.com/services/T0CHECK00/B0CHECK00/x", "user part"),
    ]
    for n, (hook, why) in enumerate(bad):
        site = conf(world, s, hook=hook)
        p = world.irfw("check", "--conf", site, "-i", s["iid"], "-o", "json", check_rc=1)
        st = {x["step"]: x for x in p.json["instances"][0]["steps"]}["notify_slack"]
        assert st["status"] == "failed" and why in st["detail"], (hook, st)
        assert "xS3cr3t" not in p.stdout + p.stderr
        if n == 0:
            t = world.irfw("check", "--conf", site, "-i", s["iid"], env=UTF8, check_rc=1)
            assert table_line(t, "notify_slack").split()[0] == "✗"
            assert "xS3cr3t" not in t.stdout + t.stderr
    site = conf(world, s, hook="https://chat.example.org/hooks/xS3cr3tT0k3nCheck")
    p = world.irfw("check", "--conf", site, "-i", s["iid"], "-o", "json", check_rc=0)
    st = {x["step"]: x for x in p.json["instances"][0]["steps"]}["notify_slack"]
    assert st["status"] == "ok" and "chat.example.org" in st["detail"] and "not Slack's" in st["detail"], st
    assert "xS3cr3t" not in p.stdout + p.stderr
    assert_nothing_changed(world, s)


def test_open_quarantine_group_given_is_refused(world):
    """-g names a group with open egress: check refuses it as isolate's run
    would, before any step (the operator's input: exit 2), naming the group
    and what is open; the group is left as it is."""
    s = seed(world)
    ec2 = client(world, "ec2")
    q = ec2.create_security_group(GroupName="not-quite-quarantine", Description="q", VpcId=s["vpc"])["GroupId"]
    p = world.irfw("check", "--conf", conf(world, s), "-i", s["iid"], "-g", q, check_rc=2)
    assert f"quarantine group {q}" in p.stderr and "egress open" in p.stderr, p.stderr
    assert "nothing was changed" in p.stderr
    g = ec2.describe_security_groups(GroupIds=[q])["SecurityGroups"][0]
    assert g["IpPermissionsEgress"] and g["IpPermissionsEgress"][0]["IpRanges"][0]["CidrIp"] == "0.0.0.0/0"
    assert_nothing_changed(world, s)


def test_required_key_refuses_an_empty_value(tmp_path):
    """No AWS needed: the configuration is refused as it is read (--plan)."""
    site = tmp_path / "site.ini"
    site.write_text("[irfw]\npipeline = good\nregion = us-east-1\n\n[good]\nneeded =\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["IRFW_PLUGIN_PATH"] = f"{PLUGINDIR}:{FIXTUREDIR}"
    p = subprocess.run([str(IRFW_BIN), "--conf", str(site), "--plan", "-i", "i-0123456789abcdef0"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "needed" in p.stderr and "empty" in p.stderr, p.stdout + p.stderr
