"""asg: detach the instance from its Auto Scaling group, or move it to Standby,
and when AWS refuses, fall back to Standby or to scale-in protection with the
group's health-check processes suspended.

State is asserted in moto: membership (describe_auto_scaling_instances),
lifecycle state, scale-in protection, suspended processes and desired
capacity.  moto accepts DetachInstances and EnterStandby below the minimum
size (AWS answers ValidationError), so AWS's refusals are played by a local
proxy answering Auto Scaling's query-protocol errors.
"""
import urllib.parse

import pytest

from conftest import AMI
from refusing_proxy import RefusingProxy

AS_NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
# What AWS answers DetachInstances with decrement at the minimum size.
MIN_DETACH = ("Currently, desiredSize equals minSize (1). Detaching instance(s) would reduce desiredSize "
              "below minSize")
# What AWS answers EnterStandby with decrement at the minimum size (the API
# reference: Standby with decrement only while desired - n >= min).
MIN_STANDBY = ("AutoScalingGroup web-asg has min-size=1, max-size=6, and desired-size=1. To place into "
               "standby 1 instances, please update the AutoScalingGroup sizes appropriately.")
DENIED = "User: arn:aws:iam::123456789012:user/ir is not authorized to perform: autoscaling:{op}"
MUTATIONS = {"DetachInstances", "EnterStandby", "ExitStandby", "SetInstanceProtection", "SuspendProcesses",
             "ResumeProcesses", "AttachInstances", "SetDesiredCapacity", "UpdateAutoScalingGroup"}


def asg_error(code, message, request_id, type_="Sender"):
    """Auto Scaling's (AWS query protocol) error reply."""
    return (f'<ErrorResponse xmlns="{AS_NS}"><Error><Type>{type_}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            f"</ErrorResponse>").encode()


class AsgProxy(RefusingProxy):
    """A proxy in front of moto that answers chosen Auto Scaling actions with
    an error.  refuse maps an action to (status, code, message, request id),
    or to a function of the form fields returning that or None (forward).
    Every Auto Scaling action seen is kept in .actions, with its fields."""

    def __init__(self, upstream, refuse):
        self.actions = []

        def rule(body):
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
            action = form.get("Action")
            if form.get("Version") != "2011-01-01" or not action:
                return None  # not Auto Scaling
            self.actions.append((action, form))
            r = refuse.get(action)
            if callable(r):
                r = r(form)
            if r is None:
                return None
            status, code, message, rid = r
            return status, "text/xml", asg_error(code, message, rid)

        super().__init__(upstream, rule)

    def sent(self, action):
        return [f for a, f in self.actions if a == action]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def asg_world(world, desired=3, min_size=1):
    w = world.vpc_world(n_instances=0)
    ec2 = world.client("ec2")
    asg = world.client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.micro", "SecurityGroupIds": [w["sg"]]})
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-asg", LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        MinSize=min_size, MaxSize=6, DesiredCapacity=desired, VPCZoneIdentifier=w["subnet"])
    ids = sorted(i["InstanceId"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"])
    assert len(ids) == desired
    return w, ids


def group(world):
    return world.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]


def membership(world, iid):
    return world.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[iid])["AutoScalingInstances"]


def step(p, iid, name):
    inst = next(i for i in p.json["instances"] if i["instance_id"] == iid)
    return next(s for s in inst["steps"] if s["step"] == name)


def test_not_in_group_is_skipped(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    conf = world.write_conf(["asg"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-none", "-o", "json", check_rc=0)
    s = step(p, iid, "asg")
    assert s["status"] == "skipped" and "not in an Auto Scaling group" in s["detail"]


def test_detach_decrement(world):
    _, ids = asg_world(world)
    iid = ids[0]
    conf = world.write_conf(["asg", "good"], {"good": {"needed": "x"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-det", "-o", "json", check_rc=0)
    s = step(p, iid, "asg")
    assert s["status"] == "ok" and "detached from" in s["detail"] and "3 -> 2" in s["detail"], s
    assert membership(world, iid) == []
    g = group(world)
    assert g["DesiredCapacity"] == 2
    assert iid not in {i["InstanceId"] for i in g["Instances"]}
    # Detached, not terminated.
    assert world.instance(iid)["State"]["Name"] == "running"
    rec = world.manifest("c-det", iid)["steps"]["asg"]["records"]["asg"]
    assert rec["group"] == "web-asg" and rec["mode"] == "detach" and rec["decrement"] is True
    assert rec["desired_capacity"] == 3 and rec["lifecycle_state"] == "InService"


def test_detach_keep_capacity(world):
    _, ids = asg_world(world)
    iid = ids[0]
    conf = world.write_conf(["asg"], {"asg": {"decrement": "false"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-keep", "-o", "json", check_rc=0)
    assert "replacement" in step(p, iid, "asg")["detail"]
    assert membership(world, iid) == []
    g = group(world)
    assert g["DesiredCapacity"] == 3
    # A replacement was launched in its place.
    members = {i["InstanceId"] for i in g["Instances"]}
    assert iid not in members and len(members) == 3


def test_standby(world):
    _, ids = asg_world(world)
    iid = ids[1]
    conf = world.write_conf(["asg"], {"asg": {"mode": "standby"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-sb", "-o", "json", check_rc=0)
    assert step(p, iid, "asg")["status"] == "ok"
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "Standby" and m["AutoScalingGroupName"] == "web-asg"
    assert group(world)["DesiredCapacity"] == 2
    rec = world.manifest("c-sb", iid)["steps"]["asg"]["records"]["asg"]
    assert rec["mode"] == "standby" and rec["desired_capacity"] == 3

    # Again, without resume: already in Standby, nothing more to do.
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-sb", "--no-resume", "-o", "json", check_rc=0)
    assert "already Standby" in step(p, iid, "asg")["detail"]
    assert group(world)["DesiredCapacity"] == 2


def test_dry_run_changes_nothing(world):
    _, ids = asg_world(world)
    conf = world.write_conf(["asg"])
    p = world.irfw("--conf", conf, "-i", ids[0], "--case-id", "c-dry", "-n", "-o", "json", check_rc=0)
    assert "dry run" in step(p, ids[0], "asg")["detail"]
    assert membership(world, ids[0])[0]["LifecycleState"] == "InService"
    assert group(world)["DesiredCapacity"] == 3


def test_several_instances_in_parallel(world):
    w, ids = asg_world(world, desired=4)
    loose = world.vpc_world(n_instances=1)["instances"][0]
    targets = ids[:3] + [loose]
    conf = world.write_conf(["asg"])
    args = [a for iid in targets for a in ("-i", iid)]
    p = world.irfw("--conf", conf, "--jobs", "2", "-v", "-v", *args, "--case-id", "c-many", "-o", "json",
                   check_rc=0)
    # One look-up for the whole batch (prepare), not one per instance; then
    # one read-back per detached instance, to verify it left the group.
    assert p.stderr.count("autoscaling DescribeAutoScalingInstances: HTTP 200") == 1 + 3, p.stderr
    for iid in ids[:3]:
        assert step(p, iid, "asg")["status"] == "ok"
        assert membership(world, iid) == []
    assert step(p, loose, "asg")["status"] == "skipped"
    g = group(world)
    assert g["DesiredCapacity"] == 1
    assert {i["InstanceId"] for i in g["Instances"]} == {ids[3]}


def detached_ids(form):
    return sorted(v for k, v in form.items() if k.startswith("InstanceIds.member."))


def test_group_detached_in_one_request(world):
    """Instances of one group in the same run leave it in one DetachInstances
    (up to 20 ids), each then read back on its own."""
    _, ids = asg_world(world, desired=5)
    targets = ids[:4]
    conf = world.write_conf(["asg"])
    args = [a for iid in targets for a in ("-i", iid)]
    with AsgProxy(world.moto.url, {}) as proxy:
        p = world.irfw("--conf", conf, "--jobs", "8", *args, "--case-id", "c-together", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        sent = proxy.sent("DetachInstances")
    assert len(sent) == 1, sent
    assert detached_ids(sent[0]) == sorted(targets)
    assert sent[0]["ShouldDecrementDesiredCapacity"] == "true"
    for iid in targets:
        assert membership(world, iid) == []
        d = step(p, iid, "asg")
        assert d["status"] == "ok", d
        assert "one request for 4 instances" in d["detail"], d
        assert "desired capacity lowered by 4" in d["detail"], d
    g = group(world)
    assert g["DesiredCapacity"] == 1
    assert {i["InstanceId"] for i in g["Instances"]} == {ids[4]}


def refuse_lists(form):
    """AWS refuses a whole list for one instance's reason: here any list."""
    if "InstanceIds.member.2" in form:
        return 400, "ValidationError", "The instance i-bad is not part of Auto Scaling group web-asg.", "req-list-1"
    return None


def test_refused_together_each_alone(world):
    """A refused list is the whole request's: each instance asks again alone
    and gets its own answer."""
    _, ids = asg_world(world, desired=4)
    targets = ids[:3]
    conf = world.write_conf(["asg"])
    args = [a for iid in targets for a in ("-i", iid)]
    with AsgProxy(world.moto.url, {"DetachInstances": refuse_lists}) as proxy:
        p = world.irfw("--conf", conf, "--jobs", "8", *args, "--case-id", "c-together-no", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        sent = [detached_ids(f) for f in proxy.sent("DetachInstances")]
    assert sent[0] == sorted(targets), sent
    assert sorted(sent[1:]) == [[iid] for iid in sorted(targets)], sent
    for iid in targets:
        assert membership(world, iid) == []
        d = step(p, iid, "asg")
        assert d["status"] == "ok", d
        assert "one request for" not in d["detail"], d
    assert group(world)["DesiredCapacity"] == 1


def protection(world, iid):
    (m,) = membership(world, iid)
    return m["ProtectedFromScaleIn"]


def suspended(world):
    return {p["ProcessName"] for p in group(world)["SuspendedProcesses"]}


def refuse_min_size_standby(form):
    """AWS refuses Standby with decrement at the minimum size only."""
    if form.get("ShouldDecrementDesiredCapacity") == "true":
        return 400, "ValidationError", MIN_STANDBY, "req-standby-1"
    return None


REFUSE_DETACH_MIN = (400, "ValidationError", MIN_DETACH, "req-detach-1")


def test_min_size_detach_refused_standby_without_decrement(world):
    """(a) At the minimum size AWS refuses DetachInstances and EnterStandby
    with decrement: irfw enters Standby without decrement (a replacement)."""
    _, ids = asg_world(world, desired=1, min_size=1)
    iid = ids[0]
    conf = world.write_conf(["asg"])
    with AsgProxy(world.moto.url, {"DetachInstances": REFUSE_DETACH_MIN,
                                   "EnterStandby": refuse_min_size_standby}) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-min-sb", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        standby_calls = [f["ShouldDecrementDesiredCapacity"] for f in proxy.sent("EnterStandby")]
    assert standby_calls == ["true", "false"]
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "Standby" and m["AutoScalingGroupName"] == "web-asg"
    g = group(world)
    assert g["DesiredCapacity"] == 1  # kept: the group launched a replacement
    assert {i["InstanceId"] for i in g["Instances"]} - {iid}
    assert suspended(world) == set() and m["ProtectedFromScaleIn"] is False
    s = step(p, iid, "asg")
    assert s["status"] == "ok", s
    d = s["detail"]
    assert "not detached (ValidationError: Currently, desiredSize equals minSize (1)" in d, d
    assert "request req-detach-1" in d and "request req-standby-1" in d, d
    assert "moved to Standby in Auto Scaling group web-asg without decrement" in d, d
    assert "replacement" in d, d
    recs = world.manifest("c-min-sb", iid)["steps"]["asg"]["records"]
    assert recs["asg"]["min_size"] == 1 and recs["asg"]["desired_capacity"] == 1
    assert recs["standby"] == {"decrement": False}
    assert "suspended_processes" not in recs and "protected_from_scale_in" not in recs


def test_detach_access_denied_standby_with_decrement(world):
    """Any refusal falls back, not only the minimum size: here AccessDenied,
    and Standby with the site's decrement is accepted."""
    _, ids = asg_world(world)
    iid = ids[0]
    conf = world.write_conf(["asg"])
    refuse = {"DetachInstances": (403, "AccessDenied", DENIED.format(op="DetachInstances"), "req-denied-1")}
    with AsgProxy(world.moto.url, refuse) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-deny-sb", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        assert [f["ShouldDecrementDesiredCapacity"] for f in proxy.sent("EnterStandby")] == ["true"]
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "Standby"
    assert group(world)["DesiredCapacity"] == 2
    d = step(p, iid, "asg")["detail"]
    assert "not detached (AccessDenied:" in d and "request req-denied-1" in d, d
    assert "moved to Standby in Auto Scaling group web-asg, desired capacity 3 -> 2, no replacement" in d, d


def test_detach_and_standby_refused_protect(world):
    """(b) Detach and Standby refused: scale-in protection on, and the group's
    health-check processes suspended; the record lists only what irfw
    suspended (AZRebalance was suspended already)."""
    _, ids = asg_world(world, desired=1, min_size=1)
    iid = ids[0]
    world.client("autoscaling").suspend_processes(AutoScalingGroupName="web-asg", ScalingProcesses=["AZRebalance"])
    conf = world.write_conf(["asg"])
    refuse = {"DetachInstances": REFUSE_DETACH_MIN,
              "EnterStandby": (400, "ValidationError", MIN_STANDBY, "req-standby-1")}
    with AsgProxy(world.moto.url, refuse) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-prot", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        (susp,) = proxy.sent("SuspendProcesses")
    # Only what was not suspended yet was asked for.
    assert sorted(v for k, v in susp.items() if k.startswith("ScalingProcesses.member.")) == \
        ["HealthCheck", "ReplaceUnhealthy"]
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "InService" and m["ProtectedFromScaleIn"] is True
    assert {"HealthCheck", "ReplaceUnhealthy", "AZRebalance"} <= suspended(world)
    assert group(world)["DesiredCapacity"] == 1
    s = step(p, iid, "asg")
    assert s["status"] == "ok", s
    d = s["detail"]
    assert d.startswith("not detached (ValidationError: "), d
    assert "not moved to Standby (ValidationError" in d and "without decrement (ValidationError" in d, d
    assert ("scale-in protection on, HealthCheck, ReplaceUnhealthy and AZRebalance suspended on group "
            "web-asg (the whole group)") in d, d
    assert "already suspended before: AZRebalance" in d, d
    assert "affects EVERY instance of the group" in p.stderr
    recs = world.manifest("c-prot", iid)["steps"]["asg"]["records"]
    assert sorted(recs["suspended_processes"]) == ["HealthCheck", "ReplaceUnhealthy"]
    assert recs["protected_from_scale_in"] is True
    assert recs["asg"]["protected_from_scale_in_before"] is False

    # Again without resume: nothing more to change, and the record still
    # lists what the first run suspended.
    with AsgProxy(world.moto.url, refuse) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-prot", "--no-resume", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        assert proxy.sent("SuspendProcesses") == [] and proxy.sent("SetInstanceProtection") == []
    assert "scale-in protection on" in step(p, iid, "asg")["detail"]
    recs = world.manifest("c-prot", iid)["steps"]["asg"]["records"]
    assert sorted(recs["suspended_processes"]) == ["HealthCheck", "ReplaceUnhealthy"]


def test_standby_mode_refused_falls_back_to_protect(world):
    _, ids = asg_world(world)
    iid = ids[0]
    conf = world.write_conf(["asg"], {"asg": {"mode": "standby", "decrement": "false"}})
    refuse = {"EnterStandby": (403, "AccessDenied", DENIED.format(op="EnterStandby"), "req-sb-denied")}
    with AsgProxy(world.moto.url, refuse) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-sb-prot", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        # Tried once (AccessDenied is not the minimum size), never detached.
        assert len(proxy.sent("EnterStandby")) == 1 and proxy.sent("DetachInstances") == []
    assert protection(world, iid) is True
    assert {"HealthCheck", "ReplaceUnhealthy", "AZRebalance"} <= suspended(world)
    d = step(p, iid, "asg")["detail"]
    assert "not moved to Standby (AccessDenied" in d and "scale-in protection on" in d, d


REFUSE_ALL = {
    "DetachInstances": REFUSE_DETACH_MIN,
    "EnterStandby": (400, "ValidationError", MIN_STANDBY, "req-standby-1"),
    "SetInstanceProtection": (403, "AccessDenied", DENIED.format(op="SetInstanceProtection"), "req-prot-1"),
    "SuspendProcesses": (403, "AccessDenied", DENIED.format(op="SuspendProcesses"), "req-susp-1"),
}


@pytest.mark.parametrize("contain_first", [False, True])
def test_everything_refused_fails(world, contain_first):
    """(c) Every way refused: FAILED with the first AWS error, each attempt
    named, the instance not reported contained, and left as it was."""
    _, ids = asg_world(world, desired=1, min_size=1)
    iid = ids[0]
    conf = world.write_conf(["contain", "asg"] if contain_first else ["asg"])
    with AsgProxy(world.moto.url, REFUSE_ALL) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-all", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=4)
    s = step(p, iid, "asg")
    assert s["status"] == "failed", s
    # The first AWS error of the step is the one reported.
    assert s["aws_error"].startswith("ValidationError: Currently, desiredSize equals minSize"), s
    assert s["request_id"] == "req-detach-1", s
    d = s["detail"]
    assert "Auto Scaling group web-asg can still terminate " + iid in d, d
    for part in ["not detached (ValidationError", "not moved to Standby (ValidationError",
                 "not moved to Standby without decrement (ValidationError",
                 "scale-in protection not set (AccessDenied", "request req-prot-1",
                 "processes not suspended (AccessDenied", "request req-susp-1", "minimum size"]:
        assert part in d, (part, d)
    inst = next(i for i in p.json["instances"] if i["instance_id"] == iid)
    assert inst["containment"]["state"] == ("partially-contained" if contain_first else "not-contained"), inst
    # Left in the group's hands, as AWS shows.
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "InService" and m["ProtectedFromScaleIn"] is False
    assert suspended(world) == set()
    assert group(world)["DesiredCapacity"] == 1


def test_protect_half_refused_fails_and_says_what_holds(world):
    """Scale-in protection refused but the processes suspended: not enough,
    so FAILED, and the detail says what is in place (the whole group)."""
    _, ids = asg_world(world, desired=1, min_size=1)
    iid = ids[0]
    conf = world.write_conf(["asg"])
    refuse = {k: v for k, v in REFUSE_ALL.items() if k != "SuspendProcesses"}
    with AsgProxy(world.moto.url, refuse) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-half", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=4)
    s = step(p, iid, "asg")
    assert s["status"] == "failed" and s["request_id"] == "req-detach-1", s
    assert "read back: scale-in protection off" in s["detail"], s
    assert "in place: HealthCheck, ReplaceUnhealthy, AZRebalance suspended on group web-asg (the whole group)" \
        in s["detail"], s
    assert protection(world, iid) is False
    assert {"HealthCheck", "ReplaceUnhealthy", "AZRebalance"} <= suspended(world)
    recs = world.manifest("c-half", iid)["steps"]["asg"]["records"]
    # Recorded before each change, so release knows what to undo.
    assert sorted(recs["suspended_processes"]) == ["AZRebalance", "HealthCheck", "ReplaceUnhealthy"]


def test_no_fallback_keeps_failing(world):
    """(d) fallback = (empty): the refusal fails the step, as before."""
    _, ids = asg_world(world, desired=1, min_size=1)
    iid = ids[0]
    conf = world.write_conf(["asg"], {"asg": {"fallback": ""}})
    with AsgProxy(world.moto.url, {"DetachInstances": REFUSE_DETACH_MIN}) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-nofb", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=4)
        assert [a for a, _ in proxy.actions if a in MUTATIONS] == ["DetachInstances"]
    s = step(p, iid, "asg")
    assert s["status"] == "failed" and s["aws_error"].startswith("ValidationError"), s
    assert "minimum size" in s["detail"] and "no fallback configured" in s["detail"], s
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "InService" and m["ProtectedFromScaleIn"] is False
    assert suspended(world) == set()


def test_detach_answered_but_not_shown_is_not_believed(world):
    """An OK answer that AWS does not show when read back is not success:
    the fallback runs."""
    _, ids = asg_world(world)
    iid = ids[0]
    conf = world.write_conf(["asg"])
    fake_ok = (f'<DetachInstancesResponse xmlns="{AS_NS}"><DetachInstancesResult><Activities/>'
               f"</DetachInstancesResult><ResponseMetadata><RequestId>req-fake-ok</RequestId>"
               f"</ResponseMetadata></DetachInstancesResponse>").encode()

    def rule(body):
        return (200, "text/xml", fake_ok) if b"Action=DetachInstances" in body else None

    proxy = RefusingProxy(world.moto.url, rule)
    try:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-fake", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    finally:
        proxy.close()
    assert proxy.refused == 1
    d = step(p, iid, "asg")["detail"]
    assert "DetachInstances answered OK (request req-fake-ok) but the group still holds it (InService)" in d, d
    assert "moved to Standby" in d, d
    assert membership(world, iid)[0]["LifecycleState"] == "Standby"


@pytest.mark.parametrize("how", [["-n"], ["check"]])
def test_dry_run_at_minimum_size_sends_nothing(world, how):
    _, ids = asg_world(world, desired=1, min_size=1)
    iid = ids[0]
    conf = world.write_conf(["asg"])
    args = ["check", "--conf", conf] if how == ["check"] else ["--conf", conf, "-n"]
    with AsgProxy(world.moto.url, {}) as proxy:
        p = world.irfw(*args, "-i", iid, "--case-id", "c-dry-min", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
        assert [a for a, _ in proxy.actions if a in MUTATIONS] == []
    s = step(p, iid, "asg")
    d = s["detail"]
    assert "dry run" in d and "would detach" in d, d
    assert "AWS refuses that: desired capacity 1 is at the minimum size 1" in d, d
    assert "EnterStandby" in d and "(the whole group)" in d, d
    assert "detached from" not in d and "suspended on" not in d, d
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "InService" and m["ProtectedFromScaleIn"] is False
    assert suspended(world) == set()


@pytest.mark.parametrize("keys, word", [({"fallback": "standby, pray"}, "pray"),
                                        ({"suspend_processes": "HealthCheck"}, "ReplaceUnhealthy"),
                                        ({"suspend_processes": "HealthCheck, ReplaceUnhealthy, Nap"}, "Nap")])
def test_bad_fallback_settings_are_config_errors(world, keys, word):
    _, ids = asg_world(world)
    conf = world.write_conf(["asg"], {"asg": keys})
    p = world.irfw("--conf", conf, "-i", ids[0], "--case-id", "c-bad", check_rc=2)
    assert word in p.stderr and "[asg]" in p.stderr, p.stderr
    assert membership(world, ids[0])[0]["LifecycleState"] == "InService"
