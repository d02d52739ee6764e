"""spot: keep a spot instance's volumes, cancel its persistent request.

State is asserted in moto.  moto's quirks (MOTO-NOTES): instances made by
request_spot_instances carry no SpotInstanceRequestId (the plugin finds the
request by the instance-id filter), and a cancelled request vanishes from
DescribeSpotInstanceRequests.
"""
from conftest import AMI

from refusing_proxy import RefusingProxy, ec2_ok


def spot_world(world, req_type="persistent", count=1):
    ec2 = world.client("ec2")
    w = world.vpc_world(n_instances=0)
    r = ec2.request_spot_instances(
        InstanceCount=count, Type=req_type,
        LaunchSpecification={
            "ImageId": AMI, "InstanceType": "t3.micro", "SubnetId": w["subnet"]})
    reqs = {q["SpotInstanceRequestId"]: q for q in r["SpotInstanceRequests"]}
    # describe_instances filter instance-lifecycle is not in moto: read the record.
    ids = [i["InstanceId"]
           for res in ec2.describe_instances()["Reservations"] for i in res["Instances"]
           if i.get("InstanceLifecycle") == "spot"]
    assert len(ids) == count
    # moto ignores the launch specification's block devices: give each
    # instance a second volume that, like the root, goes with the instance.
    for iid in ids:
        az = world.instance(iid)["Placement"]["AvailabilityZone"]
        vol = ec2.create_volume(Size=4, AvailabilityZone=az)["VolumeId"]
        ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
        ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
        assert all(b["Ebs"]["DeleteOnTermination"] for b in world.instance(iid)["BlockDeviceMappings"])
    return w, ids, reqs


def volumes_kept(world, iid):
    bdm = world.instance(iid)["BlockDeviceMappings"]
    assert bdm, "instance has no volumes"
    return all(not b["Ebs"]["DeleteOnTermination"] for b in bdm)


def step(p, iid, name):
    inst = next(i for i in p.json["instances"] if i["instance_id"] == iid)
    return next(s for s in inst["steps"] if s["step"] == name)


def live_requests(world):
    ec2 = world.client("ec2")
    return {q["SpotInstanceRequestId"]: q for q in ec2.describe_spot_instance_requests()["SpotInstanceRequests"]
            if q["State"] in ("open", "active", "disabled")}


def test_on_demand_is_skipped(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    conf = world.write_conf(["spot"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "case-od", "-o", "json", check_rc=0)
    s = step(p, iid, "spot")
    assert s["status"] == "skipped"
    assert "not a spot instance" in s["detail"]
    # Nothing changed: the volumes still go with the instance.
    assert all(b["Ebs"]["DeleteOnTermination"] for b in world.instance(iid)["BlockDeviceMappings"])


def test_persistent_spot_request(world):
    _, (iid,), reqs = spot_world(world, "persistent")
    (req_id,) = reqs
    assert req_id in live_requests(world)
    conf = world.write_conf(["spot", "good"], {"good": {"needed": "x"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "case-spot", "-o", "json", check_rc=0)
    s = step(p, iid, "spot")
    assert s["status"] == "ok", s
    assert "2-minute notice" in s["detail"]
    assert "cancelled" in s["detail"]
    assert step(p, iid, "good")["status"] == "ok"

    assert volumes_kept(world, iid)
    assert req_id not in live_requests(world)  # moto drops cancelled requests
    # The instance itself is not terminated by the cancellation.
    assert world.instance(iid)["State"]["Name"] == "running"

    m = world.manifest("case-spot", iid)
    rec = m["steps"]["spot"]["records"]
    # Read back: moto drops a cancelled request (AWS shows it cancelled).
    assert rec["spot_request"] == {"id": req_id, "type": "persistent", "state": "active", "cancelled": True,
                                   "state_after": "gone"}
    assert "read back: gone" in s["detail"], s
    vols = rec["volumes"]
    assert {v["device"] for v in vols} == {"/dev/sda1", "/dev/sdf"}
    assert all(v["delete_on_termination"] is True for v in vols)  # as it was before


def test_one_time_request_left_alone(world):
    _, (iid,), reqs = spot_world(world, "one-time")
    (req_id,) = reqs
    conf = world.write_conf(["spot"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "case-1t", "-o", "json", check_rc=0)
    s = step(p, iid, "spot")
    assert s["status"] == "ok" and "left alone" in s["detail"]
    assert volumes_kept(world, iid)
    assert req_id in live_requests(world)
    rec = world.manifest("case-1t", iid)["steps"]["spot"]["records"]["spot_request"]
    assert rec["type"] == "one-time" and rec["cancelled"] is False


def test_request_not_found_is_noted(world):
    # Cancel the request by hand first: moto then forgets it, as for a
    # request that expired long ago.
    _, (iid,), reqs = spot_world(world, "persistent")
    world.client("ec2").cancel_spot_instance_requests(SpotInstanceRequestIds=list(reqs))
    conf = world.write_conf(["spot"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "case-nf", "-o", "json", check_rc=0)
    s = step(p, iid, "spot")
    assert s["status"] == "ok" and "spot request not found" in s["detail"]
    assert volumes_kept(world, iid)
    rec = world.manifest("case-nf", iid)["steps"]["spot"]["records"]["spot_request"]
    assert rec["cancelled"] is False and rec["state"] == "not found"


def test_dry_run_changes_nothing(world):
    _, (iid,), reqs = spot_world(world, "persistent")
    conf = world.write_conf(["spot"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "case-dry", "--dry-run", "-o", "json", check_rc=0)
    assert step(p, iid, "spot")["status"] == "ok"
    assert all(b["Ebs"]["DeleteOnTermination"] for b in world.instance(iid)["BlockDeviceMappings"])
    assert set(reqs) <= set(live_requests(world))


def test_several_spot_instances_in_parallel(world):
    _, ids, reqs = spot_world(world, "persistent", count=3)
    w = world.vpc_world(n_instances=1)
    od = w["instances"][0]
    conf = world.write_conf(["spot"])
    args = [a for iid in ids + [od] for a in ("-i", iid)]
    p = world.irfw("--conf", conf, "--jobs", "2", *args, "--case-id", "case-many", "-o", "json", check_rc=0)
    for iid in ids:
        assert step(p, iid, "spot")["status"] == "ok"
        assert volumes_kept(world, iid)
    assert step(p, od, "spot")["status"] == "skipped"
    assert not (set(reqs) & set(live_requests(world)))


def test_volumes_said_kept_only_when_read_back(world):
    """ModifyInstanceAttribute answering OK without the change: the step
    fails naming the devices DescribeInstances shows, and does not tell
    protect the volumes are kept (protect then changes them itself)."""
    _, (iid,), _ = spot_world(world, "one-time")
    calls = []

    def rule(body):
        if b"Action=ModifyInstanceAttribute" in body and b"BlockDeviceMapping" in body:
            calls.append(body)
            if len(calls) == 1:
                return ec2_ok("ModifyInstanceAttribute")
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["spot", "protect"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "case-rbv", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    # A failed step of the contain phase: the instance is not said contained.
    assert p.returncode == 4, p.stderr
    s = step(p, iid, "spot")
    assert s["status"] == "failed", s
    assert "DescribeInstances shows DeleteOnTermination still true on /dev/sda1, /dev/sdf" in s["detail"], s
    # protect was not told they are kept: it sent the change itself, and moto shows it.
    assert step(p, iid, "protect")["status"] == "ok"
    assert len(calls) == 2, calls
    assert volumes_kept(world, iid)


def test_cancel_said_only_when_read_back(world):
    """CancelSpotInstanceRequests answering OK without cancelling: the
    read-back shows the request still active, so the step fails saying it
    can still relaunch, and the record does not say cancelled."""
    _, (iid,), reqs = spot_world(world, "persistent")
    (req_id,) = reqs

    def rule(body):
        if b"Action=CancelSpotInstanceRequests" in body:
            return ec2_ok("CancelSpotInstanceRequests")
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["spot"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "case-rbc", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    # A failed step of the contain phase: the instance is not said contained.
    assert p.returncode == 4, p.stderr
    s = step(p, iid, "spot")
    assert s["status"] == "failed", s
    assert f"CancelSpotInstanceRequests {req_id} answered OK, but DescribeSpotInstanceRequests shows it " \
        "active: it can still relaunch" in s["detail"], s
    assert req_id in live_requests(world)
    rec = world.manifest("case-rbc", iid)["steps"]["spot"]["records"]["spot_request"]
    assert rec["cancelled"] is False, rec
