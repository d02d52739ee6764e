"""irfw release: quarantine, then release, and moto shows the instance as it
was before (groups per interface, target registrations, Auto Scaling
membership, capacity and suspended processes, instance profile, Elastic IP,
tags).  A release is refused without a case record and while the case is
open elsewhere, writes nothing in a dry run, and resumes after a failure.

moto lists an attached interface's groups mixed with the instance's launch
groups; `own_groups()` reads what an interface really holds through the
group-id filter (as test_isolate.py does).
"""
import fcntl
import json

import pytest

from conftest import AMI
from refusing_proxy import RefusingProxy, ec2_error

CASE = "C-rel"


def run(world, conf, *iids, case=CASE, extra=(), rc=0, env=None):
    args = ["--conf", conf, "-o", "json", "--case-id", case, *extra]
    for i in iids:
        args += ["-i", i]
    return world.irfw(*args, check_rc=rc, env=env)


def release(world, conf, *iids, case=CASE, extra=(), rc=0, env=None):
    args = ["release", "--conf", conf, "-o", "json", "--case-id", case, *extra]
    for i in iids:
        args += ["-i", i]
    return world.irfw(*args, check_rc=rc, env=env)


def steps(p, iid):
    inst = next(i for i in p.json["instances"] if i["instance_id"] == iid)
    return {s["step"]: s for s in inst["steps"]}


def outcome(p, iid):
    return next(i for i in p.json["instances"] if i["instance_id"] == iid)["outcome"]


def vpc_groups(world, vpc):
    ec2 = world.client("ec2")
    return ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]


def own_groups(world, vpc, eni):
    ec2 = world.client("ec2")
    own = set()
    for g in vpc_groups(world, vpc):
        hits = ec2.describe_network_interfaces(Filters=[
            {"Name": "network-interface-id", "Values": [eni]},
            {"Name": "group-id", "Values": [g["GroupId"]]}])["NetworkInterfaces"]
        if hits:
            own.add(g["GroupId"])
    return own


def enis_of(world, iid):
    return [n["NetworkInterfaceId"] for n in world.instance(iid)["NetworkInterfaces"]]


def groups_by_eni(world, vpc, iid):
    return {eni: own_groups(world, vpc, eni) for eni in enis_of(world, iid)}


def tags_of(world, iid):
    return {t["Key"]: t["Value"] for t in world.instance(iid).get("Tags", [])}


ISO = {"isolate": {"admin_cidrs": "10.0.0.0/8"}}


def test_isolate_release_restores_every_interface(world):
    w = world.vpc_world(enis=3)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    ec2 = world.client("ec2")
    other = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    enis = enis_of(world, iid)
    ec2.modify_network_interface_attribute(NetworkInterfaceId=enis[1], Groups=[web, other])
    before = groups_by_eni(world, vpc, iid)
    assert before[enis[1]] == {web, other}
    conf = world.write_conf(["isolate", "tag"], ISO)
    run(world, conf, iid)
    after_q = groups_by_eni(world, vpc, iid)
    assert all(len(g) == 1 and web not in g for g in after_q.values())
    assert tags_of(world, iid)["irfw:status"] == "quarantined"

    p = release(world, conf, iid)
    assert outcome(p, iid) == "released"
    assert steps(p, iid)["isolate"]["status"] == "ok", p.stdout
    assert groups_by_eni(world, vpc, iid) == before
    tags = tags_of(world, iid)
    assert tags["irfw:status"] == "released"
    assert "irfw:quarantined-at" not in tags and "irfw:original-sgs" not in tags
    assert tags["irfw:case"] == CASE
    # Journaled in the case: the release steps and their outcome.
    m = world.manifest(CASE, iid)
    assert m["steps"]["release:isolate"]["status"] == "ok"
    assert m["steps"]["release:tag"]["status"] == "ok"
    assert m["steps"]["release"]["records"]["outcome"]["outcome"] == "released"


def test_quarantine_again_after_a_release(world):
    """A case released and then quarantined again (the instance misbehaves
    once more) is isolated and tagged again: the released steps are not
    resumed as done."""
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    conf = world.write_conf(["isolate", "tag"], ISO)
    run(world, conf, iid)
    release(world, conf, iid)
    assert groups_by_eni(world, vpc, iid) == {e: {web} for e in enis_of(world, iid)}
    p = run(world, conf, iid)
    assert steps(p, iid)["isolate"]["status"] == "ok", p.stdout
    assert "not repeated" not in (steps(p, iid)["isolate"]["detail"] or ""), p.stdout
    again = groups_by_eni(world, vpc, iid)
    assert all(len(g) == 1 and web not in g for g in again.values()), again
    assert tags_of(world, iid)["irfw:status"] == "quarantined"
    # And a plain re-run after that resumes: tag is not repeated, while
    # isolate, which verified containment, reads AWS back again (it is never
    # taken as done: test_isolate_truth.py) and changes nothing.
    p = run(world, conf, iid)
    assert "not repeated" in steps(p, iid)["tag"]["detail"], p.stdout
    assert steps(p, iid)["isolate"]["status"] == "ok" and not steps(p, iid)["isolate"].get("resumed")
    assert groups_by_eni(world, vpc, iid) == again


# ---- Auto Scaling ------------------------------------------------------

def asg_world(world, desired=3):
    w = world.vpc_world(n_instances=0)
    ec2 = world.client("ec2")
    asg = world.client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.micro", "SecurityGroupIds": [w["sg"]]})
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-asg", LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        MinSize=1, MaxSize=6, DesiredCapacity=desired, VPCZoneIdentifier=w["subnet"])
    ids = sorted(i["InstanceId"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"])
    return w, ids


def asg_state(world, iid):
    asg = world.client("autoscaling")
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web-asg"])["AutoScalingGroups"][0]
    m = asg.describe_auto_scaling_instances(InstanceIds=[iid])["AutoScalingInstances"]
    return {"desired": g["DesiredCapacity"], "min": g["MinSize"], "max": g["MaxSize"],
            "suspended": sorted(p["ProcessName"] for p in g["SuspendedProcesses"]),
            "member": [(x["AutoScalingGroupName"], x["LifecycleState"], x["ProtectedFromScaleIn"]) for x in m]}


@pytest.mark.parametrize("mode", ["standby", "detach"])
def test_asg_release_puts_it_back_in_its_group(world, mode):
    w, ids = asg_world(world)
    iid = ids[0]
    before = asg_state(world, iid)
    conf = world.write_conf(["asg", "isolate"], {"asg": {"mode": mode, "decrement": "true"}, **ISO})
    run(world, conf, iid)
    during = asg_state(world, iid)
    assert during["desired"] == before["desired"] - 1
    assert during["member"] != before["member"]

    p = release(world, conf, iid)
    assert outcome(p, iid) == "released", p.stdout
    assert asg_state(world, iid) == before
    # isolate was released too (reverse order: isolate first, asg last).
    assert [s["step"] for s in p.json["instances"][0]["steps"]] == ["isolate", "asg"]


def test_asg_release_resumes_suspended_processes_and_protection(world):
    from test_asg import AsgProxy, MIN_DETACH, MIN_STANDBY  # AWS's refusals at the minimum size
    w, ids = asg_world(world, desired=1)
    iid = ids[0]
    before = asg_state(world, iid)
    refuse = {"DetachInstances": (400, "ValidationError", MIN_DETACH, "rid-d"),
              "EnterStandby": (400, "ValidationError", MIN_STANDBY, "rid-s")}
    with AsgProxy(world.moto.url, refuse) as proxy:
        conf = world.write_conf(["asg"], {"asg": {"decrement": "true"}})
        run(world, conf, iid, env={"AWS_ENDPOINT_URL": proxy.url})
    during = asg_state(world, iid)
    assert during["suspended"] and during["member"][0][2] is True
    p = release(world, conf, iid)
    assert outcome(p, iid) == "released", p.stdout
    assert asg_state(world, iid) == before


# ---- load balancers, profile, Elastic IP --------------------------------

def test_elb_profile_eip_release(world):
    w = world.vpc_world(volumes=1, enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    ec2, elbv2, elb, iam = (world.client(s) for s in ("ec2", "elbv2", "elb", "iam"))
    tgs = [elbv2.create_target_group(Name=n, Protocol="HTTP", Port=port, VpcId=vpc, TargetType="instance")
           ["TargetGroups"][0]["TargetGroupArn"] for n, port in (("web", 80), ("admin", 8080))]
    elbv2.register_targets(TargetGroupArn=tgs[0], Targets=[{"Id": iid, "Port": 80}])
    elbv2.register_targets(TargetGroupArn=tgs[1], Targets=[{"Id": iid, "Port": 9000}])
    elb.create_load_balancer(LoadBalancerName="classic-web", Subnets=[w["subnet"]], Listeners=[
        {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
    elb.register_instances_with_load_balancer(LoadBalancerName="classic-web", Instances=[{"InstanceId": iid}])
    iam.create_role(RoleName="web-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                   "Action": "sts:AssumeRole"}]}))
    prof = iam.create_instance_profile(InstanceProfileName="web-prof")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="web-prof", RoleName="web-role")
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": prof["Arn"]}, InstanceId=iid)
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(InstanceId=iid, AllocationId=alloc)

    def state():
        regs = {arn: sorted((d["Target"]["Id"], d["Target"].get("Port")) for d in
                            elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                            if d["TargetHealth"]["State"] != "draining") for arn in tgs}
        lb = elb.describe_load_balancers(LoadBalancerNames=["classic-web"])["LoadBalancerDescriptions"][0]
        assoc = ec2.describe_iam_instance_profile_associations(Filters=[
            {"Name": "instance-id", "Values": [iid]}, {"Name": "state", "Values": ["associated"]}])
        addr = ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]
        return {"tg": regs, "classic": sorted(i["InstanceId"] for i in lb["Instances"]),
                "profile": [a["IamInstanceProfile"]["Arn"] for a in assoc["IamInstanceProfileAssociations"]],
                "eip": addr.get("NetworkInterfaceId"), "groups": groups_by_eni(world, vpc, iid)}

    before = state()
    assert before["profile"] == [prof["Arn"]] and before["eip"] and before["classic"] == [iid]
    conf = world.write_conf(["iam_profile", "eip", "elb", "isolate"], ISO)
    run(world, conf, iid)
    during = state()
    assert during["profile"] == [] and not during["eip"] and during["classic"] == []
    assert all(iid not in {t for t, _ in r} for r in during["tg"].values())

    p = release(world, conf, iid)
    assert outcome(p, iid) == "released", p.stdout
    st = steps(p, iid)
    assert all(st[s]["status"] == "ok" for s in ("iam_profile", "eip", "elb", "isolate")), p.stdout
    assert state() == before


# ---- dry run, refusals, resume -------------------------------------------

def test_dry_run_changes_nothing_and_writes_nothing(world):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    conf = world.write_conf(["isolate", "tag"], ISO)
    run(world, conf, iid)
    quarantined = groups_by_eni(world, vpc, iid)
    tags = tags_of(world, iid)
    case_dir = world.evidence / CASE / iid
    files = {f.name: f.read_bytes() for f in case_dir.iterdir()}
    p = release(world, conf, iid, extra=["--dry-run"])
    assert outcome(p, iid) == "dry-run", p.stdout
    assert "would put the original groups back" in steps(p, iid)["isolate"]["detail"]
    # With --restore-groups it says those, as the release itself would.
    p = release(world, conf, iid, extra=["--dry-run", "--restore-groups", w["sg"]])
    assert "would put the groups of --restore-groups on" in steps(p, iid)["isolate"]["detail"], p.stdout
    assert groups_by_eni(world, vpc, iid) == quarantined
    assert tags_of(world, iid) == tags
    assert {f.name: f.read_bytes() for f in case_dir.iterdir()} == files


def test_refused_without_a_record(world):
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    conf = world.write_conf(["isolate", "tag"], ISO)
    p = release(world, conf, iid, case="never", rc=2)
    assert "no record of case never" in p.stderr
    assert not (world.evidence / "never").exists()
    release(world, conf, iid, case="never", extra=["--force"], rc=2)
    # --force with explicit groups: the given groups go on every interface.
    ec2 = world.client("ec2")
    other = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    p = release(world, conf, iid, case="never", extra=["--force", "--restore-groups", f"{web},{other}"])
    assert outcome(p, iid) == "released", p.stdout
    assert list(groups_by_eni(world, vpc, iid).values()) == [{web, other}]
    assert world.manifest("never", iid)["steps"]["release:isolate"]["status"] == "ok"


def test_refused_while_the_case_is_open_elsewhere(world):
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    conf = world.write_conf(["isolate"], ISO)
    run(world, conf, iid)
    quarantined = groups_by_eni(world, vpc, iid)
    with open(world.evidence / CASE / iid / "journal.jsonl", "rb") as j:
        fcntl.flock(j, fcntl.LOCK_EX)
        p = release(world, conf, iid, rc=2)
        assert "open in another process" in p.stderr
        release(world, conf, iid, extra=["--dry-run"], rc=2)
    assert groups_by_eni(world, vpc, iid) == quarantined


def test_resume_after_a_failed_release_call(world):
    w = world.vpc_world(enis=2)
    iid, vpc = w["instances"][0], w["vpc"]
    conf = world.write_conf(["isolate", "tag"], ISO)
    run(world, conf, iid)
    enis = enis_of(world, iid)
    before_release = groups_by_eni(world, vpc, iid)
    seen = []

    def rule(body):
        text = body.decode(errors="replace")
        if "Action=ModifyNetworkInterfaceAttribute" in text:
            seen.append(text)
            if enis[1] in text:
                return 403, "text/xml", ec2_error("UnauthorizedOperation",
                                                  "You are not authorized to perform this operation.")
        return None

    proxy = RefusingProxy(world.moto.url, rule)
    try:
        p = release(world, conf, iid, rc=1, env={"AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.close()
    st = steps(p, iid)
    assert st["isolate"]["status"] == "failed" and "UnauthorizedOperation" in st["isolate"]["aws_error"]
    assert st["tag"]["status"] == "ok"
    assert outcome(p, iid) == "partially-released"
    after = groups_by_eni(world, vpc, iid)
    assert after[enis[1]] == before_release[enis[1]]  # still quarantined
    assert after[enis[0]] == {w["sg"]}
    m = world.manifest(CASE, iid)
    assert m["steps"]["release:isolate"]["status"] == "failed"

    # The second release does only what is left: tag is not redone, the
    # first interface is not changed again.
    seen.clear()
    def watch(body):
        seen.append(body.decode(errors="replace"))

    proxy = RefusingProxy(world.moto.url, watch)
    try:
        p = release(world, conf, iid, env={"AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.close()
    st = steps(p, iid)
    assert outcome(p, iid) == "released", p.stdout
    assert st["tag"]["resumed"] is True
    mods = [b for b in seen if "Action=ModifyNetworkInterfaceAttribute" in b]
    assert len(mods) == 1 and enis[1] in mods[0]
    assert not any("Action=CreateTags" in b for b in seen)
    assert set(map(frozenset, groups_by_eni(world, vpc, iid).values())) == {frozenset({w["sg"]})}


def test_protection_stays_unless_unprotect(world):
    w = world.vpc_world(volumes=1, enis=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")

    def term():
        return ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
            "DisableApiTermination"]["Value"]

    conf = world.write_conf(["protect"])
    run(world, conf, iid)
    assert term() is True
    p = release(world, conf, iid, extra=["-o", "text"])
    assert "protection kept" in p.stdout and term() is True
    p = release(world, conf, iid, extra=["--unprotect"])
    assert steps(p, iid)["protect"]["status"] == "ok", p.stdout
    assert term() is False
