"""The fleet-aware steps together: one run over an on-demand instance, a
spot instance, an Auto Scaling instance behind a target group and an
instance with a role gives each the result its own run would."""
from test_elb import asg_lb_world, tg_ids
from test_iam_profile import associations, launch, make_profile
from test_spot import spot_world, volumes_kept


def test_one_run_over_four_kinds_of_instance(world):
    w_asg, asg_ids = asg_lb_world(world, desired=3)
    asg_iid = asg_ids[0]
    _, spot_ids, _ = spot_world(world)
    spot_iid = spot_ids[0]
    prof = make_profile(world, "web-profile", "web-role")
    role_iid = launch(world, prof["Arn"])
    plain_iid = world.vpc_world()["instances"][0]

    conf = world.write_conf(
        ["spot", "asg", "elb", "iam_profile", "isolate", "protect", "snapshot"],
        {"asg": {"decrement": "true"}})
    ids = [plain_iid, spot_iid, asg_iid, role_iid]
    args = ["--conf", conf, "--case-id", "IR-FLEET", "--jobs", "4", "-o", "json"]
    for i in ids:
        args += ["-i", i]
    p = world.irfw(*args)
    assert p.returncode == 0, p.stdout + p.stderr
    res = {i["instance_id"]: {s["step"]: s for s in i["steps"]} for i in p.json["instances"]}

    # Spot: protection skipped with the reason, volumes kept, snapshots taken.
    s = res[spot_iid]
    assert s["spot"]["status"] == "ok"
    assert "spot" in s["protect"]["detail"] and "not" in s["protect"]["detail"]
    assert volumes_kept(world, spot_iid)
    ec2 = world.client("ec2")
    snaps = ec2.describe_snapshots(Filters=[{"Name": "tag:irfw:instance", "Values": [spot_iid]}])["Snapshots"]
    assert len(snaps) == len(world.instance(spot_iid)["BlockDeviceMappings"])

    # Auto Scaling: out of the group with the capacity decremented, out of the target group.
    asg = world.client("autoscaling")
    assert asg.describe_auto_scaling_instances(InstanceIds=[asg_iid])["AutoScalingInstances"] == []
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["DesiredCapacity"] == 2
    assert asg_iid not in tg_ids(world, w_asg["tgs"][0])
    assert res[asg_iid]["asg"]["status"] == "ok" and res[asg_iid]["elb"]["status"] == "ok"

    # Role: the profile association is gone.
    assert associations(world, role_iid) == []
    assert res[role_iid]["iam_profile"]["status"] == "ok"

    # Not applicable steps are skipped with a reason, never failed.
    assert res[plain_iid]["spot"]["status"] == "skipped"
    assert res[plain_iid]["asg"]["status"] == "skipped"
    for iid in ids:
        assert res[iid]["isolate"]["status"] == "ok"
        assert world.instance(iid)["State"]["Name"] == "running"

    # Every change is in the case record.
    assert world.manifest("IR-FLEET", spot_iid)["steps"]["spot"]["records"]["spot_request"]
    assert world.manifest("IR-FLEET", asg_iid)["steps"]["asg"]["records"]["asg"]["group"] == "web-asg"
    assert world.manifest("IR-FLEET", asg_iid)["steps"]["elb"]["records"]["targets"]
    assert world.manifest("IR-FLEET", role_iid)["steps"]["iam_profile"]["records"]["original_profile"]
    for iid in ids:
        assert world.manifest("IR-FLEET", iid)["steps"]["isolate"]["records"]["original_groups"]
