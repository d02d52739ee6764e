"""What a responder reads at 3 a.m. says what AWS shows, end to end.

The ways irfw used to announce an open instance as quarantined, each run
through the chain that reports it: isolate (or asg) then tag and
notify_sns.  Each test asserts, in moto, the interfaces' own groups, the
quarantine group's rules or the Auto Scaling state, the instance's
irfw:status tag, and the Subject of the SNS message that reached an SQS
queue; and irfw's exit status and JSON summary.  AWS's refusals that moto
does not produce are played by the suites' proxies.
"""
import json

import pytest

from refusing_proxy import ec2_error

from test_asg import REFUSE_ALL, REFUSE_DETACH_MIN, AsgProxy, asg_world, membership, refuse_min_size_standby
from test_isolate import group_named, own_groups, tags_of
from test_notify import topic_with_queue as named_topic_with_queue
from test_isolate_truth import Proxy, proxy, unauthorized  # noqa: F401 (proxy is a fixture)

CASE = "IR-E2E-1"
CHAIN = ["isolate", "tag", "notify_sns"]


def topic_with_queue(world):
    return named_topic_with_queue(world, "oncall")


def subjects(world, q):
    msgs = world.client("sqs").receive_message(QueueUrl=q, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]).get("Subject") for m in msgs]


def conf_for(world, topic, pipeline=CHAIN, **isolate):
    return world.write_conf(pipeline, {"isolate": {"admin_cidrs": "10.0.0.0/8", **isolate},
                                       "notify_sns": {"topic": topic}, "tag": {}}, max_attempts=1)


def summary(p, iid):
    return next(i for i in p.json["instances"] if i["instance_id"] == iid)


def assert_told_not_contained(world, p, iid, q, state="not-contained"):
    c = summary(p, iid)["containment"]
    assert c["state"] == state, c
    assert tags_of(world, iid)["irfw:status"] == ("containment-failed" if state == "not-contained"
                                                  else "partially-contained")
    assert "irfw:quarantined-at" not in tags_of(world, iid)
    outcome = "NOT CONTAINED" if state == "not-contained" else "PARTIALLY CONTAINED"
    assert subjects(world, q) == [f"{outcome}: {iid} (case {CASE})"]
    return c


def test_contained_is_said_only_when_shown(world):
    """The baseline: a real isolation is told as such."""
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    topic, q = topic_with_queue(world)
    p = world.irfw("--conf", conf_for(world, topic), "-i", iid, "-o", "json", "--case-id", CASE, check_rc=0)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    for eni in [n["NetworkInterfaceId"] for n in world.instance(iid)["NetworkInterfaces"]]:
        assert own_groups(world, vpc, eni) == {qid}
    assert summary(p, iid)["containment"]["state"] == "contained"
    assert tags_of(world, iid)["irfw:status"] == "quarantined"
    assert subjects(world, q) == [f"CONTAINED: {iid} (case {CASE})"]


def test_sgid_of_another_vpc_changes_and_says_nothing(world):
    """Case 1, -g of another VPC: a usage error before any change; no tag,
    no message (it used to tag the untouched instance quarantined)."""
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    ec2 = world.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="q", Description="q", VpcId=other)["GroupId"]
    ec2.revoke_security_group_egress(GroupId=foreign, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    topic, q = topic_with_queue(world)
    p = world.irfw("--conf", conf_for(world, topic), "-i", iid, "-g", foreign, "--case-id", CASE, check_rc=2)
    assert foreign in p.stderr and other in p.stderr and vpc in p.stderr
    for eni in [n["NetworkInterfaceId"] for n in world.instance(iid)["NetworkInterfaces"]]:
        assert own_groups(world, vpc, eni) == {web}
    assert "irfw:status" not in tags_of(world, iid)
    assert subjects(world, q) == []


@pytest.mark.parametrize("how", ["modify-denied", "swap-refused", "swap-and-revert-refused"])
def test_refused_isolation_is_told_not_contained(world, proxy, how):
    """Case 1: ModifyNetworkInterfaceAttribute denied, the quarantine swap
    refused (revert works), the swap and its revert refused (the interface
    is left in the all-open untracking group): never 'quarantined'."""
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    topic, q = topic_with_queue(world)
    seen = []

    def rule(action, params, forward):
        if action == "ModifyInstanceAttribute" and "GroupId.1" in params and params.get("DryRun") != "true":
            # The whole swap through the interface API, whose refusals
            # this plays (the instance form: test_isolate_calls.py).
            return 400, ec2_error("UnsupportedOperation", "The instance form is not supported here.")
        if action != "ModifyNetworkInterfaceAttribute" or params.get("DryRun") == "true":
            return None
        seen.append(params)
        if how == "modify-denied":
            return unauthorized()
        # The first call puts the untracking group on; refuse what follows
        # (the quarantine group, and for the last case the revert too).
        if len(seen) == 1:
            return None
        if how == "swap-refused" and len(seen) > 2:
            return None
        return unauthorized()

    px = proxy(rule)
    p = world.irfw("--conf", conf_for(world, topic), "-i", iid, "-o", "json", "--case-id", CASE,
                   env={"AWS_ENDPOINT_URL": px.url}, check_rc=4)
    c = assert_told_not_contained(world, p, iid, q)
    eni = world.instance(iid)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    held = own_groups(world, vpc, eni)
    if how == "swap-and-revert-refused":
        u = group_named(world, vpc, f"irfw-untrack-{vpc}")
        assert u and held == {u["GroupId"]}, held
        assert "ALL-OPEN" in c["cause"] and eni in c["cause"], c
    else:
        assert held == {web}, held
    assert "UnauthorizedOperation" in c["cause"], c


def test_console_group_with_open_egress(world):
    """Case 2: a quarantine group made in the console keeps AWS's default
    allow-all egress.  Refused before any change by default; used as it is
    on request, and then told not contained (egress open)."""
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    ec2 = world.client("ec2")
    console = ec2.create_security_group(GroupName=f"irfw-quarantine-{vpc}", Description="by hand",
                                        VpcId=vpc)["GroupId"]
    topic, q = topic_with_queue(world)
    p = world.irfw("--conf", conf_for(world, topic), "-i", iid, "--case-id", CASE, check_rc=2)
    assert console in p.stderr and "existing_group" in p.stderr
    eni = world.instance(iid)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert own_groups(world, vpc, eni) == {web}
    assert subjects(world, q) == [] and "irfw:status" not in tags_of(world, iid)

    p = world.irfw("--conf", conf_for(world, topic, existing_group="use"), "-i", iid, "-o", "json",
                   "--case-id", CASE, check_rc=4)
    c = assert_told_not_contained(world, p, iid, q)
    assert "egress" in c["cause"] and console in c["cause"], c
    assert own_groups(world, vpc, eni) == {console}
    g = ec2.describe_security_groups(GroupIds=[console])["SecurityGroups"][0]
    assert g["IpPermissionsEgress"], "use must not change the group"


def test_auto_scaling_at_minimum_size(world):
    """Case 3: DetachInstances refused at the minimum size.  The instance
    goes to Standby, out of the group's hands, and is then contained."""
    w, ids = asg_world(world, desired=1, min_size=1)
    iid, vpc = ids[0], w["vpc"]
    topic, q = topic_with_queue(world)
    conf = conf_for(world, topic, pipeline=["asg"] + CHAIN)
    with AsgProxy(world.moto.url, {"DetachInstances": REFUSE_DETACH_MIN,
                                   "EnterStandby": refuse_min_size_standby}) as px:
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE,
                       env={"AWS_ENDPOINT_URL": px.url}, check_rc=0)
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "Standby"
    assert summary(p, iid)["containment"]["state"] == "contained"
    assert tags_of(world, iid)["irfw:status"] == "quarantined"
    assert subjects(world, q) == [f"CONTAINED: {iid} (case {CASE})"]


def test_auto_scaling_that_cannot_protect_the_instance(world):
    """Case 1, Auto Scaling: every way to take the instance out of the
    group's hands refused.  Isolated, but the group can still terminate
    it: partially contained, and told so."""
    w, ids = asg_world(world, desired=1, min_size=1)
    iid, vpc = ids[0], w["vpc"]
    topic, q = topic_with_queue(world)
    conf = conf_for(world, topic, pipeline=["asg"] + CHAIN)
    with AsgProxy(world.moto.url, REFUSE_ALL) as px:
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE,
                       env={"AWS_ENDPOINT_URL": px.url}, check_rc=4)
    (m,) = membership(world, iid)
    assert m["LifecycleState"] == "InService" and m["ProtectedFromScaleIn"] is False
    c = assert_told_not_contained(world, p, iid, q, state="partially-contained")
    assert "asg failed" in c["cause"], c
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    eni = world.instance(iid)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert own_groups(world, vpc, eni) == {qid}
