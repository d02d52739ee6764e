"""asg: detach the instance from its Auto Scaling group, or move it to Standby.

State is asserted in moto: membership (describe_auto_scaling_instances),
lifecycle state and desired capacity.
"""
import pytest

from conftest import AMI


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


def test_at_minimum_size_with_decrement(world):
    _, ids = asg_world(world, desired=1, min_size=1)
    conf = world.write_conf(["asg"])
    p = world.irfw("--conf", conf, "-i", ids[0], "--case-id", "c-min", "-o", "json")
    s = step(p, ids[0], "asg")
    if s["status"] == "ok":
        pytest.skip("moto: DetachInstances below the minimum size is accepted (AWS: ValidationError)")
    assert p.returncode == 1 and "minimum size" in s["detail"]
