"""elb: deregister the instance from every target group and classic load
balancer, alone and together with asg.

State is asserted in moto (describe_target_health, describe_load_balancers).
moto keeps one registration per instance id in a target group (a second
port replaces the first), so several ports of one instance cannot be seeded;
several target groups are.  moto's DetachInstances leaves the instance in
the group's target groups (AWS deregisters it, and it shows as draining),
which the combined test relies on to see the elb step do its part.
"""
import urllib.parse

from conftest import AMI
from refusing_proxy import RefusingProxy

ELBV2_NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
ELB_NS = "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/"


def lb_world(world, n_instances=2):
    w = world.vpc_world(n_instances=n_instances, volumes=1, enis=1)
    elbv2 = world.client("elbv2")
    elb = world.client("elb")
    tgs = []
    for name, port in (("web", 80), ("admin", 8080)):
        tgs.append(elbv2.create_target_group(Name=name, Protocol="HTTP", Port=port, VpcId=w["vpc"],
                                             TargetType="instance")["TargetGroups"][0]["TargetGroupArn"])
    # A target group of IP targets is never searched for instance ids.
    elbv2.create_target_group(Name="ips", Protocol="HTTP", Port=80, VpcId=w["vpc"], TargetType="ip")
    elb.create_load_balancer(LoadBalancerName="classic-web", Subnets=[w["subnet"]], Listeners=[
        {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
    w["tgs"] = tgs
    return w


def tg_ids(world, arn):
    return {d["Target"]["Id"] for d in
            world.client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}


def classic_ids(world, name="classic-web"):
    lb = world.client("elb").describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"][0]
    return {i["InstanceId"] for i in lb["Instances"]}


def step(p, iid, name):
    inst = next(i for i in p.json["instances"] if i["instance_id"] == iid)
    return next(s for s in inst["steps"] if s["step"] == name)


def test_not_registered_is_skipped(world):
    w = lb_world(world)
    iid = w["instances"][0]
    conf = world.write_conf(["elb"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-none", "-o", "json", check_rc=0)
    s = step(p, iid, "elb")
    assert s["status"] == "skipped" and "not registered with any load balancer" in s["detail"]


def test_deregisters_everywhere(world):
    w = lb_world(world)
    iid, other = w["instances"]
    elbv2 = world.client("elbv2")
    elbv2.register_targets(TargetGroupArn=w["tgs"][0], Targets=[{"Id": iid, "Port": 80}, {"Id": other}])
    elbv2.register_targets(TargetGroupArn=w["tgs"][1], Targets=[{"Id": iid, "Port": 9000}])
    world.client("elb").register_instances_with_load_balancer(
        LoadBalancerName="classic-web", Instances=[{"InstanceId": iid}, {"InstanceId": other}])

    conf = world.write_conf(["elb", "good"], {"good": {"needed": "x"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-all", "-o", "json", check_rc=0)
    s = step(p, iid, "elb")
    assert s["status"] == "ok", s
    assert "2 target group registration(s)" in s["detail"] and "1 classic" in s["detail"]
    assert "wait_drain = false" in s["detail"]
    assert iid not in tg_ids(world, w["tgs"][0]) and iid not in tg_ids(world, w["tgs"][1])
    assert iid not in classic_ids(world)
    # Other instances stay where they are.
    assert other in tg_ids(world, w["tgs"][0]) and other in classic_ids(world)

    rec = world.manifest("c-all", iid)["steps"]["elb"]["records"]
    assert sorted(rec["targets"], key=lambda r: r["port"]) == [
        {"target_group_arn": w["tgs"][0], "port": 80}, {"target_group_arn": w["tgs"][1], "port": 9000}]
    assert rec["classic"] == ["classic-web"]


def test_wait_drain(world):
    w = lb_world(world, n_instances=1)
    iid = w["instances"][0]
    world.client("elbv2").register_targets(TargetGroupArn=w["tgs"][0], Targets=[{"Id": iid}])
    conf = world.write_conf(["elb"], {"elb": {"wait_drain": "true", "drain_timeout": "20"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-wait", "-o", "json", check_rc=0)
    s = step(p, iid, "elb")
    assert "drained after" in s["detail"], s
    assert iid not in tg_ids(world, w["tgs"][0])


def test_dry_run_changes_nothing(world):
    w = lb_world(world, n_instances=1)
    iid = w["instances"][0]
    world.client("elbv2").register_targets(TargetGroupArn=w["tgs"][0], Targets=[{"Id": iid}])
    world.client("elb").register_instances_with_load_balancer(
        LoadBalancerName="classic-web", Instances=[{"InstanceId": iid}])
    conf = world.write_conf(["elb"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-dry", "-n", "-o", "json", check_rc=0)
    assert "dry run" in step(p, iid, "elb")["detail"]
    assert iid in tg_ids(world, w["tgs"][0]) and iid in classic_ids(world)


def asg_lb_world(world, desired=3):
    """An Auto Scaling group whose instances are in a target group and a
    classic load balancer through the group."""
    w = lb_world(world, n_instances=0)
    world.client("ec2").create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.micro", "SecurityGroupIds": [w["sg"]]})
    asg = world.client("autoscaling")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="web-asg", LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        MinSize=0, MaxSize=6, DesiredCapacity=desired, VPCZoneIdentifier=w["subnet"],
        TargetGroupARNs=[w["tgs"][0]], LoadBalancerNames=["classic-web"])
    ids = sorted(i["InstanceId"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"])
    assert set(ids) <= tg_ids(world, w["tgs"][0]) and set(ids) <= classic_ids(world)
    return w, ids


def check_out_of_everything(world, w, iid):
    assert world.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[iid])[
        "AutoScalingInstances"] == []
    assert iid not in tg_ids(world, w["tgs"][0])
    assert iid not in classic_ids(world)
    assert world.instance(iid)["State"]["Name"] == "running"


def test_asg_then_elb(world):
    w, ids = asg_lb_world(world)
    iid = ids[0]
    conf = world.write_conf(["asg", "elb"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-pipe", "-o", "json", check_rc=0)
    assert step(p, iid, "asg")["status"] == "ok"
    assert step(p, iid, "elb")["status"] == "ok"
    check_out_of_everything(world, w, iid)
    asg = world.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert asg["DesiredCapacity"] == 2


def test_asg_then_elb_several_in_parallel(world):
    w, ids = asg_lb_world(world, desired=4)
    conf = world.write_conf(["asg", "elb"], {"asg": {"decrement": "false"}})
    args = [a for iid in ids[:3] for a in ("-i", iid)]
    p = world.irfw("--conf", conf, "--jobs", "2", *args, "--case-id", "c-many", "-o", "json", check_rc=0)
    for iid in ids[:3]:
        assert step(p, iid, "asg")["status"] == "ok"
        assert step(p, iid, "elb")["status"] in ("ok", "skipped")
        check_out_of_everything(world, w, iid)
    g = world.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert g["DesiredCapacity"] == 4  # decrement = false: replacements launched
    assert ids[3] in tg_ids(world, w["tgs"][0])


def test_fleet_deregistered_in_one_request(world):
    """Instances of the run in one target group leave it in one
    DeregisterTargets; an instance the run does not name stays."""
    w = lb_world(world, n_instances=4)
    ids, other = w["instances"][:3], w["instances"][3]
    world.client("elbv2").register_targets(TargetGroupArn=w["tgs"][0],
                                           Targets=[{"Id": i} for i in ids + [other]])
    conf = world.write_conf(["elb"])
    args = [a for iid in ids for a in ("-i", iid)]
    p = world.irfw("--conf", conf, "--jobs", "8", "-v", "-v", *args, "--case-id", "c-fleet-lb", "-o", "json",
                   check_rc=0)
    assert p.stderr.count("elasticloadbalancing DeregisterTargets: HTTP 200") == 1, p.stderr
    assert tg_ids(world, w["tgs"][0]) == {other}
    for iid in ids:
        s = step(p, iid, "elb")
        assert s["status"] == "ok", s
        assert "in one request for 3 instances" in s["detail"], s


def ok_without_doing(iid):
    """Answer OK without doing anything: DeregisterTargets (AWS answers OK
    even for a target it does not hold) and a classic deregistration whose
    answer still lists the instance."""
    def rule(body):
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
        if form.get("Action") == "DeregisterTargets":
            return 200, "text/xml", (
                f'<DeregisterTargetsResponse xmlns="{ELBV2_NS}"><DeregisterTargetsResult/>'
                "<ResponseMetadata><RequestId>req-fake-tg</RequestId></ResponseMetadata>"
                "</DeregisterTargetsResponse>").encode()
        if form.get("Action") == "DeregisterInstancesFromLoadBalancer":
            return 200, "text/xml", (
                f'<DeregisterInstancesFromLoadBalancerResponse xmlns="{ELB_NS}">'
                "<DeregisterInstancesFromLoadBalancerResult><Instances><member>"
                f"<InstanceId>{iid}</InstanceId></member></Instances>"
                "</DeregisterInstancesFromLoadBalancerResult><ResponseMetadata><RequestId>req-fake-clb"
                "</RequestId></ResponseMetadata></DeregisterInstancesFromLoadBalancerResponse>").encode()
        return None
    return rule


def test_ok_not_applied_is_not_believed(world):
    """An OK that AWS's read-back contradicts fails the step, naming the
    request; nothing is said deregistered."""
    w = lb_world(world)
    iid = w["instances"][0]
    world.client("elbv2").register_targets(TargetGroupArn=w["tgs"][0], Targets=[{"Id": iid}])
    conf = world.write_conf(["elb"])
    with RefusingProxy(world.moto.url, ok_without_doing(iid)) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-lie-tg", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    assert p.returncode != 0
    s = step(p, iid, "elb")
    assert s["status"] == "failed", s
    assert "still shows" in s["detail"] and "req-fake-tg" in s["detail"], s
    assert iid in tg_ids(world, w["tgs"][0])

    world.client("elbv2").deregister_targets(TargetGroupArn=w["tgs"][0], Targets=[{"Id": iid}])
    world.client("elb").register_instances_with_load_balancer(LoadBalancerName="classic-web",
                                                              Instances=[{"InstanceId": iid}])
    with RefusingProxy(world.moto.url, ok_without_doing(iid)) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-lie-clb", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    assert p.returncode != 0
    s = step(p, iid, "elb")
    assert s["status"] == "failed", s
    assert "still lists" in s["detail"] and "req-fake-clb" in s["detail"], s
    assert iid in classic_ids(world)
