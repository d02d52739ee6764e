"""The steps' prepares at once (SDK 1.9), seen from the wire.

A proxy in front of moto holds chosen requests for HOLD seconds and keeps
each one's span, so prepares that still ran one after another would show
no two of their calls in flight together.

- asg, elb, isolate, snapshot and upload prepare together, and no change
  is sent before every prepare has ended; the instance ends contained and
  snapshotted in moto.
- A module built for ABI 1.8 (the awscall_old fixture) is prepared alone;
  the same module built for 1.9 (awscall) alongside the others.
- isolate's original-groups tag, and the last isolate's read of who holds
  the untracking group, ride with its read-back, after the change.
- GetCallerIdentity in flight with DescribeInstances; a fresh VPC's two
  groups created at once.
- One prepare refusing the operator's input (isolate's -g group of another
  VPC) stops the run with status 2 before any step: nothing changed in
  moto, although the other prepares ran.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_concurrent_calls import HoldingProxy  # noqa: E402

HOLD = 0.4
CASE = "case-prep"


def overlap(a, b):
    return a[1] < b[2] and b[1] < a[2]


def first(spans, op):
    return next(s for s in spans if s[0] == op)


def seed(world):
    w = world.vpc_world(enis=1)
    bucket = f"s3-access-logs.{world.account_id}-{world.region}"
    world.client("s3").create_bucket(Bucket=bucket)
    world.client("kms").create_key(Description="test")
    return w


def run(world, proxy, pipeline, sections, iid, rc, extra=()):
    conf = world.write_conf(pipeline, sections)
    with proxy:
        return world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE, *extra,
                          env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=rc)


def test_prepares_run_together_before_any_change(world):
    w = seed(world)
    iid = w["instances"][0]
    ops = {"DescribeAutoScalingInstances", "DescribeTargetGroups", "DescribeSnapshots", "DescribeSecurityGroups",
           "ModifyNetworkInterfaceAttribute", "ModifyInstanceAttribute"}
    px = HoldingProxy(world.moto.url, ops, hold=HOLD)
    px.CHANGES = []  # hold every ModifyInstanceAttribute alike
    p = run(world, px, ["asg", "elb", "isolate", "snapshot", "upload"],
            {"upload": {"kms_key_description": "test"}}, iid, rc=0)
    (inst,) = p.json["instances"]
    assert inst["containment"]["state"] == "contained", inst

    spans = sorted(px.spans, key=lambda s: s[1])
    change = min(s[1] for s in spans if s[0].startswith("Modify"))
    prep = [s for s in spans if s[1] < change]
    # One call of each of the four prepares that call AWS at N = 1.
    firsts = [first(prep, op) for op in ("DescribeAutoScalingInstances", "DescribeTargetGroups",
                                         "DescribeSnapshots", "DescribeSecurityGroups")]
    together = max(sum(1 for b in firsts if overlap(a, b)) for a in firsts)
    assert together >= 3, firsts
    # No change before every prepare has ended.
    assert max(s[2] for s in prep) <= change, (prep, change)

    # moto: the instance holds only the quarantine group, both volumes
    # are snapshotted, and upload found its bucket and key (prepared).
    ec2 = world.client("ec2")
    eni = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]
    groups = [g["GroupName"] for g in ec2.describe_network_interfaces(
        NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"][0]["Groups"]]
    assert any(n.startswith("irfw-quarantine") for n in groups), groups
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:irfw:case", "Values": [CASE]}])
    assert len(snaps["Snapshots"]) == 2, snaps
    up = next(s for s in inst["steps"] if s["step"] == "upload")
    assert up["status"] == "ok", up


def test_old_module_prepared_alone(world):
    """awscall_old (ABI 1.8) makes DescribeAvailabilityZones in prepare:
    nothing else is in flight meanwhile.  awscall (1.9), the same code,
    overlaps asg's and snapshot's prepares."""
    w = seed(world)
    iid = w["instances"][0]
    ops = {"DescribeAvailabilityZones", "DescribeAutoScalingInstances", "DescribeSnapshots"}
    call = {"service": "ec2", "operation": "DescribeAvailabilityZones", "prepare_call": "true"}
    for plugin, alone in (("awscall_old", True), ("awscall", False)):
        px = HoldingProxy(world.moto.url, ops, hold=HOLD)
        run(world, px, ["call", "asg", "snapshot"], {"call": dict(call, plugin=plugin)}, iid, rc=0,
            extra=["--no-resume"])
        spans = sorted(px.spans, key=lambda s: s[1])
        daz = first(spans, "DescribeAvailabilityZones")
        others = [first(spans, "DescribeAutoScalingInstances"), first(spans, "DescribeSnapshots")]
        assert overlap(others[0], others[1]), (plugin, spans)
        assert all(not overlap(daz, o) for o in others) is alone, (plugin, spans)


def test_one_prepare_refusing_stops_every_step(world):
    """isolate refuses -g naming a group of another VPC (status 2) while
    asg, snapshot and upload prepare: no step runs, nothing changes."""
    w = seed(world)
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    other_vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    alien = ec2.create_security_group(GroupName="alien", Description="x", VpcId=other_vpc)["GroupId"]
    ops = {"DescribeAutoScalingInstances", "DescribeSnapshots", "DescribeSecurityGroups"}
    px = HoldingProxy(world.moto.url, ops, hold=HOLD)
    events = world.tmp / "events.jsonl"
    p = run(world, px, ["asg", "isolate", "snapshot", "upload"], {"upload": {"kms_key_description": "test"}},
            iid, rc=2, extra=["-g", alien, "--events", str(events)])
    assert "no step was started" in p.stderr, p.stderr
    # A reader of --events learns how the run ended.
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    assert seen and seen[-1]["event"] == "run-done" and seen[-1]["status"] == 2, seen
    assert not [e for e in seen if e["event"] == "step-begin"], seen
    # The other prepares did run (their reads are in the proxy's log).
    assert {s[0] for s in px.spans} >= {"DescribeAutoScalingInstances", "DescribeSnapshots"}, px.spans
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert [g["GroupId"] for g in inst["SecurityGroups"]] == [w["sg"]]
    names = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]]
    assert not any(n.startswith("irfw-") for n in names), names
    assert ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["irfw:case"]}])[
        "Snapshots"] == []
    assert not ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"]


def test_original_groups_tag_rides_with_the_read_back(world):
    """isolate's original-groups tag goes after the change (containment
    first) and with the read-back, not in a round trip of its own; so does
    the last isolate's read of who holds the untracking group, which is
    then deleted.  moto holds the tag and no longer the group."""
    w = seed(world)
    iid, web = w["instances"][0], w["sg"]
    ops = {"ModifyNetworkInterfaceAttribute", "CreateTags", "DescribeNetworkInterfaces"}
    px = HoldingProxy(world.moto.url, ops, hold=HOLD)
    run(world, px, ["isolate"], {}, iid, rc=0)
    spans = sorted(px.spans, key=lambda s: s[1])
    swap = first(spans, "ModifyNetworkInterfaceAttribute")
    tag = first(spans, "CreateTags")
    read = next(s for s in spans if s[0] == "DescribeNetworkInterfaces" and s[1] >= swap[2])
    assert tag[1] >= swap[2], spans
    assert overlap(tag, read), spans
    reads = [s for s in spans if s[0] == "DescribeNetworkInterfaces" and overlap(s, tag)]
    assert len(reads) == 2, spans  # the read-back and the untracking group's holders
    names = [g["GroupName"] for g in world.client("ec2").describe_security_groups()["SecurityGroups"]]
    assert not any(n.startswith("irfw-untrack") for n in names), names
    inst = world.client("ec2").describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
    assert web in tags.get("irfw:original-sgs", ""), tags


def test_caller_identity_and_describe_together(world):
    """GetCallerIdentity is on its way while the instances given by id are
    described; the run goes on as before (the case record names the
    caller)."""
    w = seed(world)
    iid = w["instances"][0]
    px = HoldingProxy(world.moto.url, {"GetCallerIdentity", "DescribeInstances"}, hold=HOLD)
    p = run(world, px, ["tag"], {}, iid, rc=0)
    spans = sorted(px.spans, key=lambda s: s[1])
    assert overlap(first(spans, "GetCallerIdentity"), first(spans, "DescribeInstances")), spans
    assert p.json["account_id"] == world.account_id, p.json.keys()
    tags = world.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    assert any(t["Key"] == "irfw:case" and t["Value"] == CASE for t in tags), tags


def test_fresh_vpc_groups_created_together(world):
    """A VPC with neither group: isolate's prepare sends both
    CreateSecurityGroup at once; each group ends as it must in moto (the
    quarantine group closed but for admin SSH; the untracking group gone
    after the run)."""
    w = seed(world)
    iid, vpc = w["instances"][0], w["vpc"]
    px = HoldingProxy(world.moto.url, {"CreateSecurityGroup"}, hold=HOLD)
    run(world, px, ["isolate"], {"isolate": {"admin_cidrs": "203.0.113.0/24"}}, iid, rc=0)
    made = [s for s in px.spans if s[0] == "CreateSecurityGroup"]
    assert len(made) == 2 and overlap(made[0], made[1]), px.spans
    ec2 = world.client("ec2")
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]}
    q = groups[f"irfw-quarantine-{vpc}"]
    assert q["IpPermissionsEgress"] == []
    assert [(r["IpProtocol"], r["FromPort"], [x["CidrIp"] for x in r["IpRanges"]]) for r in q["IpPermissions"]] == [
        ("tcp", 22, ["203.0.113.0/24"])]
    assert f"irfw-untrack-{vpc}" not in groups
