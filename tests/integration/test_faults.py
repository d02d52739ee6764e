"""The wire as it fails: for each fault class, a run that either succeeds
after retries or reports the step FAILED with the cause; the case record
matches what moto holds; a re-run completes the case without duplicates.

Faults come from fault_proxy.FaultProxy in front of moto.  The time limits
are cut for the tests through the environment (IRFW_AWS_LOW_SPEED_TIME,
IRFW_AWS_CALL_DEADLINE) and the site file (max_attempts), so a stall costs
seconds: see man/irfw.1, TIME LIMITS AND RETRIES.
"""
import json
import time

import pytest

from fault_proxy import Fault, FaultProxy, dump

FAST = {"IRFW_AWS_LOW_SPEED_TIME": "2"}


def step_of(p, name):
    (inst,) = p.json["instances"]
    return next(s for s in inst["steps"] if s["step"] == name)


def case_snapshots(world, case_id, iid):
    return world.client("ec2").describe_snapshots(Filters=[
        {"Name": "tag:irfw:case", "Values": [case_id]},
        {"Name": "tag:irfw:instance", "Values": [iid]}])["Snapshots"]


def volumes_of(world, iid):
    return {m["Ebs"]["VolumeId"]: m["DeviceName"] for m in world.instance(iid)["BlockDeviceMappings"]}


def assert_one_per_volume_and_recorded(world, case_id, iid):
    """moto holds exactly one snapshot of the case per volume, tagged with
    the step, and the manifest lists exactly those."""
    vols = volumes_of(world, iid)
    snaps = case_snapshots(world, case_id, iid)
    per_volume = {}
    for sn in snaps:
        per_volume.setdefault(sn["VolumeId"], []).append(sn["SnapshotId"])
        tags = {t["Key"]: t["Value"] for t in sn["Tags"]}
        assert tags["irfw:step"] == "snapshot" and tags["irfw:case"] == case_id, tags
    assert {v: len(s) for v, s in per_volume.items()} == {v: 1 for v in vols}, per_volume
    rec = world.manifest(case_id, iid)["steps"]["snapshot"]["records"]["snapshots"]
    assert sorted((r["volume"], r["snapshot"]) for r in rec) == \
        sorted((sn["VolumeId"], sn["SnapshotId"]) for sn in snaps)
    return snaps


def run_snapshot(world, iid, case_id, proxy=None, env=None, rc=None, args=(), **globals_):
    conf = world.write_conf(["snapshot"], **globals_)
    e = dict(FAST)
    e.update(env or {})
    if proxy:
        e["AWS_ENDPOINT_URL"] = proxy.url
    return world.irfw("--conf", conf, "-i", iid, "--case-id", case_id, "-o", "json", *args, env=e, check_rc=rc)


# ---------------------------------------------------------------------------
# Ridden out.

def test_throttle_burst_at_start_is_ridden_out(world):
    """4 s of RequestLimitExceeded on DescribeInstances, with the default 5
    attempts: throttling answers (nothing was done) are retried with backoff
    until the call's deadline, so the run goes on and snapshots once."""
    iid = world.vpc_world()["instances"][0]
    proxy = FaultProxy(world.moto.url, [Fault("throttle", action="DescribeInstances", seconds=4)])
    t0 = time.monotonic()
    try:
        p = run_snapshot(world, iid, "F-1", proxy, rc=0)
    finally:
        proxy.close()
    assert proxy.injected("throttle") >= 2, dump(proxy)
    assert time.monotonic() - t0 >= 4
    assert step_of(p, "snapshot")["status"] == "ok"
    assert_one_per_volume_and_recorded(world, "F-1", iid)
    # The run's own count of what it sent agrees with the wire's: every
    # request, each throttling answer, and a retry after each of them.
    calls = p.json["aws_calls"]
    assert calls == {"requests": len(proxy.log), "retries": proxy.injected("throttle"),
                     "throttled": proxy.injected("throttle")}, (calls, dump(proxy))


def test_a_clean_run_counts_its_calls_and_no_retry(world):
    """No fault: aws_calls in -o json and in the run-done event both say
    what went through the proxy, with no retry and no throttling."""
    iid = world.vpc_world()["instances"][0]
    proxy = FaultProxy(world.moto.url, [])
    events = world.tmp / "calls-events.jsonl"
    try:
        p = run_snapshot(world, iid, "F-1b", proxy, rc=0, args=("--events", str(events)))
    finally:
        proxy.close()
    want = {"requests": len(proxy.log), "retries": 0, "throttled": 0}
    assert want["requests"] > 0
    assert p.json["aws_calls"] == want, dump(proxy)
    done = [json.loads(line) for line in events.read_text().splitlines()][-1]
    assert done["event"] == "run-done" and done["aws_calls"] == want, done


READ_FAULTS = ["slowdown", "truncate", "reset_before", "html500_before"]


def test_read_faults_are_retried(world):
    """Four faults in a row on a read (DescribeInstances), one of each
    class: all retried (5 attempts), the run succeeds."""
    iid = world.vpc_world()["instances"][0]
    proxy = FaultProxy(world.moto.url, [Fault(READ_FAULTS, action="DescribeInstances")])
    try:
        p = run_snapshot(world, iid, "F-2", proxy, rc=0)
    finally:
        proxy.close()
    assert [k for a, k in proxy.log if a == "DescribeInstances"][:5] == READ_FAULTS + [None], dump(proxy)
    assert step_of(p, "snapshot")["status"] == "ok"
    assert_one_per_volume_and_recorded(world, "F-2", iid)


# ---------------------------------------------------------------------------
# A create AWS cannot deduplicate, its answer lost.

LOST = ["reset_after", "html500", "truncate", "stall_after"]


def test_create_snapshots_answer_lost_makes_no_second_set(world):
    """Four instances; each one's CreateSnapshots reaches moto and its
    answer is lost in one of four ways (reset, HTML 500, cut body, stall):
    the core does not re-send it, each step finds its set by the tags and
    adopts it; a forced re-run makes nothing new."""
    ids = world.vpc_world(n_instances=4, enis=1)["instances"]
    proxy = FaultProxy(world.moto.url, [Fault(LOST, action="CreateSnapshots", seconds=30)])
    conf = world.write_conf(["snapshot"])
    try:
        p = world.irfw("--conf", conf, *[x for i in ids for x in ("-i", i)], "--case-id", "F-3", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url, **FAST}, check_rc=0)
    finally:
        proxy.close()
    assert sorted(k for a, k in proxy.log if a == "CreateSnapshots") == sorted(LOST), dump(proxy)
    assert proxy.count("CreateSnapshot") == 0, dump(proxy)
    for inst in p.json["instances"]:
        s = next(x for x in inst["steps"] if x["step"] == "snapshot")
        assert s["status"] == "ok" and "answer lost" in s["detail"], s
    for iid in ids:
        assert_one_per_volume_and_recorded(world, "F-3", iid)
    p = world.irfw("--conf", conf, *[x for i in ids for x in ("-i", i)], "--case-id", "F-3", "-o", "json",
                   "--no-resume", check_rc=0)
    for inst in p.json["instances"]:
        s = next(x for x in inst["steps"] if x["step"] == "snapshot")
        assert "already snapshotted" in s["detail"], s
    for iid in ids:
        assert_one_per_volume_and_recorded(world, "F-3", iid)


def test_create_snapshots_reset_before_it_reached_aws_is_sent_again(world):
    """Reset before moto saw it: nothing carries the tags, so the step sends
    it again (once), and one set exists."""
    iid = world.vpc_world()["instances"][0]
    proxy = FaultProxy(world.moto.url, [Fault("reset_before", action="CreateSnapshots")])
    try:
        p = run_snapshot(world, iid, "F-4", proxy, rc=0)
    finally:
        proxy.close()
    assert proxy.count("CreateSnapshots") == 2, dump(proxy)
    s = step_of(p, "snapshot")
    assert s["status"] == "ok" and "sent again" in s["detail"], s
    assert_one_per_volume_and_recorded(world, "F-4", iid)


def test_throttled_create_is_retried_by_the_core(world):
    """A throttling answer says nothing was done: the core retries even a
    create it would not re-send after a lost answer."""
    iid = world.vpc_world()["instances"][0]
    proxy = FaultProxy(world.moto.url, [Fault("throttle", action="CreateSnapshots", seconds=1.5)])
    try:
        p = run_snapshot(world, iid, "F-5", proxy, rc=0)
    finally:
        proxy.close()
    assert proxy.injected("throttle", "CreateSnapshots") >= 1, dump(proxy)
    assert step_of(p, "snapshot")["status"] == "ok"
    assert_one_per_volume_and_recorded(world, "F-5", iid)


def test_every_create_failing_is_reported_then_completed_by_a_rerun(world):
    """CreateSnapshots and every CreateSnapshot answered with HTML 500 (not
    forwarded): the step FAILS naming the cause; the record holds nothing
    AWS lacks; a re-run without the fault completes the case with one
    snapshot per volume."""
    iid = world.vpc_world(volumes=1, enis=1)["instances"][0]
    proxy = FaultProxy(world.moto.url, [Fault("html500_before", action="CreateSnapshots", times=None),
                                        Fault("html500_before", action="CreateSnapshot", times=None)])
    try:
        p = run_snapshot(world, iid, "F-6", proxy, rc=1)
    finally:
        proxy.close()
    s = step_of(p, "snapshot")
    assert s["status"] == "failed", s
    assert "CreateSnapshot" in s["detail"] and "irfw.OutcomeUnknown" in s["detail"] and "500" in s["detail"], s
    assert case_snapshots(world, "F-6", iid) == []
    # Each create sent at most twice (once, then once more after a look).
    assert proxy.count("CreateSnapshots") == 1, dump(proxy)
    assert proxy.count("CreateSnapshot") <= 2 * len(volumes_of(world, iid)), dump(proxy)
    p = run_snapshot(world, iid, "F-6", rc=0)
    assert step_of(p, "snapshot")["status"] == "ok"
    assert_one_per_volume_and_recorded(world, "F-6", iid)


# ---------------------------------------------------------------------------
# Security group and network ACL.

def quarantine_groups(world, vpc):
    return [g for g in world.client("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
        if any(t["Key"] == "irfw:quarantine" for t in g.get("Tags", []))]


@pytest.mark.parametrize("kind", ["reset_after", "html500"])
def test_create_security_group_answer_lost(world, kind):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": "10.0.0.0/8"}})
    proxy = FaultProxy(world.moto.url, [Fault(kind, action="CreateSecurityGroup")])
    try:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "F-7", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url, **FAST}, check_rc=0)
    finally:
        proxy.close()
    # The quarantine group's create was not re-sent (the untracking group
    # has its own).
    assert proxy.count("CreateSecurityGroup", "GroupName=irfw-quarantine") == 1, dump(proxy)
    (g,) = quarantine_groups(world, vpc)
    assert g["IpPermissionsEgress"] == []
    tags = {t["Key"]: t["Value"] for t in g["Tags"]}
    assert tags["irfw:created-by-case"] == "F-7" and tags["irfw:created-by-step"] == "isolate"
    rec = world.manifest("F-7", iid)["steps"]["isolate"]["records"]
    assert rec["quarantine_sg"] == g["GroupId"]
    assert p.json["instances"][0]["containment"]["state"] == "contained"
    ec2 = world.client("ec2")
    for eni in ec2.describe_network_interfaces(Filters=[
            {"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"]:
        hold = ec2.describe_network_interfaces(Filters=[
            {"Name": "network-interface-id", "Values": [eni["NetworkInterfaceId"]]},
            {"Name": "group-id", "Values": [g["GroupId"]]}])["NetworkInterfaces"]
        assert hold, eni["NetworkInterfaceId"]
    # Re-run (another case): the same group, no second one.
    world.irfw("--conf", conf, "-i", iid, "--case-id", "F-8", "-o", "json", check_rc=0)
    assert [x["GroupId"] for x in quarantine_groups(world, vpc)] == [g["GroupId"]]


def test_create_network_acl_answer_lost_carries_a_client_token(world):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    conf = world.write_conf(["isolate"], {"isolate": {"nacl": "true"}})
    proxy = FaultProxy(world.moto.url, [Fault("reset_after", action="CreateNetworkAcl")])
    try:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "F-9", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url, **FAST}, check_rc=0)
    finally:
        proxy.close()
    assert proxy.count("CreateNetworkAcl") == 1, dump(proxy)
    assert proxy.count("CreateNetworkAcl", "ClientToken=irfw-nacl-") == 1, proxy.bodies
    acls = world.client("ec2").describe_network_acls(Filters=[
        {"Name": "vpc-id", "Values": [vpc]}, {"Name": "tag:irfw:quarantine", "Values": ["true"]}])["NetworkAcls"]
    assert len(acls) == 1, acls
    assert p.json["instances"][0]["containment"]["state"] == "contained"
    assert [a["SubnetId"] for a in acls[0]["Associations"]] == [w["subnet"]]


# ---------------------------------------------------------------------------
# Stalls and dead endpoints: within the stated bound.

def test_stalled_endpoint_fails_within_the_bound(world):
    """Every DescribeInstances stalls: each attempt is abandoned after the
    low-speed time (2 s here), 2 attempts: the run ends in well under 10 s
    with the cause, not after minutes of silence."""
    iid = world.vpc_world()["instances"][0]
    proxy = FaultProxy(world.moto.url, [Fault("stall", action="DescribeInstances", times=None, seconds=60)])
    t0 = time.monotonic()
    try:
        p = run_snapshot(world, iid, "F-10", proxy, max_attempts="2")
    finally:
        proxy.close()
    took = time.monotonic() - t0
    assert p.returncode != 0
    # 2 attempts x 2 s + backoff (< 0.2 s) + start-up.
    assert 4 <= took < 10, took
    assert "Timeout" in p.stderr and "stalled" in p.stderr, p.stderr
    assert "gave up after 2 attempts" in p.stderr, p.stderr
    assert proxy.count("DescribeInstances") == 2, dump(proxy)
    assert case_snapshots(world, "F-10", iid) == []


def test_call_deadline_bounds_a_stall(world):
    """With the call deadline at 3 s, 5 attempts of a 2-s stall stop at the
    deadline."""
    iid = world.vpc_world()["instances"][0]
    proxy = FaultProxy(world.moto.url, [Fault("stall", action="DescribeInstances", times=None, seconds=60)])
    t0 = time.monotonic()
    try:
        p = run_snapshot(world, iid, "F-11", proxy, env={"IRFW_AWS_CALL_DEADLINE": "3"})
    finally:
        proxy.close()
    took = time.monotonic() - t0
    assert p.returncode != 0
    assert took < 7, took
    assert "deadline" in p.stderr, p.stderr
    assert proxy.count("DescribeInstances") <= 2, dump(proxy)


def test_unreachable_sts_means_not_contained(world):
    """GetCallerIdentity cannot be sent (nothing listens on the STS
    endpoint): no step runs, and a pipeline that contains says so for each
    instance asked for, exit 4, as after any run that leaves one open; the
    instances are as they were.  A dry run, a check and a pipeline without
    a contain step exit 1."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    w = world.vpc_world(n_instances=2, enis=1, volumes=1)
    ids = w["instances"]
    env = {"AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1"}
    args = [x for i in ids for x in ("-i", i)]
    contain = world.write_conf(["isolate", "snapshot"], {"isolate": {}})
    events = world.tmp / "events.jsonl"
    p = world.irfw("--conf", contain, *args, "--case-id", "F-13", "--events", str(events), env=env, check_rc=4)
    assert "sts:GetCallerIdentity: ConnectionError" in p.stderr, p.stderr
    done = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in done] == ["run-done"] and done[0]["status"] == 4, done
    for iid in ids:
        assert f"[{iid}] error: NOT CONTAINED: the run stopped before its first step" in p.stderr, p.stderr
        assert [g["GroupId"] for g in world.instance(iid)["SecurityGroups"]] == [w["sg"]]
    assert "CONTAINED:" not in p.stdout
    for extra in (["-n"], ["check"]):
        p = world.irfw(*extra, "--conf", contain, *args, env=env, check_rc=1)
        assert "NOT CONTAINED" not in p.stderr, p.stderr
    preserve = world.write_conf(["snapshot"])
    p = world.irfw("--conf", preserve, *args, "--case-id", "F-14", env=env, check_rc=1)
    assert "NOT CONTAINED" not in p.stderr, p.stderr
    assert not (world.evidence / "F-13").exists() and not (world.evidence / "F-14").exists()
    # An events file that cannot be written is said before AWS is asked.
    p = world.irfw("--conf", contain, *args, "--events", str(world.tmp / "no" / "such" / "e.jsonl"), env=env,
                   check_rc=2)
    assert "--events" in p.stderr and "GetCallerIdentity" not in p.stderr, p.stderr


def test_dead_endpoint_is_reported_at_once(world):
    """Nothing listens: connecting fails at once; the run says so quickly."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = world.write_conf(["snapshot"])
    t0 = time.monotonic()
    p = world.irfw("--conf", conf, "-i", "i-0123456789abcdef0", "--case-id", "F-12", "-o", "json",
                   env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    assert p.returncode != 0
    assert time.monotonic() - t0 < 8
    assert "ConnectionError" in p.stderr or "connect" in p.stderr.lower(), p.stderr
