"""snapshot: crash-consistent snapshots of every volume, tagged, not repeated."""
import pytest

from refusing_proxy import RefusingProxy, ec2_error


def step(p, name):
    (inst,) = p.json["instances"]
    return next(s for s in inst["steps"] if s["step"] == name)


def case_snapshots(ec2, case_id, iid=None):
    f = [{"Name": "tag:irfw:case", "Values": [case_id]}]
    if iid:
        f.append({"Name": "tag:irfw:instance", "Values": [iid]})
    return ec2.describe_snapshots(Filters=f)["Snapshots"]


def devices(world, iid):
    inst = world.instance(iid)
    return {m["Ebs"]["VolumeId"]: m["DeviceName"] for m in inst["BlockDeviceMappings"]}


def test_snapshot_all_volumes_and_resume(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    conf = world.write_conf(["snapshot"], {"snapshot": {"wait": "true", "wait_timeout": "30"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-9", "-o", "json", check_rc=0)
    s = step(p, "snapshot")
    assert s["status"] == "ok", s
    assert "2 snapshots" in s["detail"] and "all complete" in s["detail"]

    dev = devices(world, iid)
    snaps = case_snapshots(ec2, "IR-9", iid)
    assert len(snaps) == 2
    assert {sn["VolumeId"] for sn in snaps} == set(dev)
    for sn in snaps:
        t = {x["Key"]: x["Value"] for x in sn["Tags"]}
        assert t["irfw:case"] == "IR-9" and t["irfw:instance"] == iid
        assert t["irfw:device"] == dev[sn["VolumeId"]]
        assert sn["Description"] == f"irfw IR-9 {iid}"
        assert sn["SnapshotId"] in s["detail"]

    rec = world.manifest("IR-9", iid)["steps"]["snapshot"]["records"]["snapshots"]
    assert sorted((r["volume"], r["device"], r["snapshot"]) for r in rec) == \
        sorted((sn["VolumeId"], dev[sn["VolumeId"]], sn["SnapshotId"]) for sn in snaps)

    # The same case again, even with the step forced to run: no new snapshots.
    for extra in ([], ["--no-resume"]):
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-9", "-o", "json", *extra, check_rc=0)
        s = step(p, "snapshot")
        assert s["status"] == "ok", s
        assert len(case_snapshots(ec2, "IR-9")) == 2
    assert "already snapshotted" in s["detail"], s

    # Another case takes its own.
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-10", "-o", "json", check_rc=0)
    assert len(case_snapshots(ec2, "IR-10", iid)) == 2
    assert len(case_snapshots(ec2, "IR-9")) == 2


def test_snapshot_partial_resume(world):
    """A volume left without a snapshot by an earlier run gets one; the other does not get a second."""
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    dev = devices(world, iid)
    first = sorted(dev)[0]
    pre = ec2.create_snapshot(VolumeId=first, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "irfw:case", "Value": "IR-11"}, {"Key": "irfw:instance", "Value": iid}]}])["SnapshotId"]
    conf = world.write_conf(["snapshot"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-11", "-o", "json", check_rc=0)
    s = step(p, "snapshot")
    assert s["status"] == "ok" and "1 of 2 volumes already" in s["detail"], s
    snaps = case_snapshots(ec2, "IR-11", iid)
    assert len(snaps) == 2 and pre in {sn["SnapshotId"] for sn in snaps}
    for sn in snaps:
        t = {x["Key"]: x["Value"] for x in sn["Tags"]}
        assert t["irfw:device"] == dev[sn["VolumeId"]]   # added to the earlier one too


def test_snapshot_dry_run(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    conf = world.write_conf(["snapshot"])
    before = len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"])  # moto has AMI snapshots
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-12", "--dry-run", "-o", "json", check_rc=0)
    s = step(p, "snapshot")
    assert s["status"] == "ok" and "dry run" in s["detail"], s
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == before
    assert case_snapshots(ec2, "IR-12") == []


def refuse_create_snapshots(mode):
    """CreateSnapshots answered the way an older partition (400
    UnsupportedOperation) or an emulator without the API (500 and an HTML
    page) does."""
    def rule(body):
        if b"Action=CreateSnapshots&" not in body + b"&":
            return None
        if mode == "unsupported":
            return 400, "text/xml", ec2_error("UnsupportedOperation", "not here")
        return 500, "text/html", b"<html><body>Internal Server Error</body></html>"
    return rule


@pytest.mark.parametrize("mode", ["unsupported", "not-implemented"])
def test_snapshot_fallback_per_volume(world, mode):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    dev = devices(world, iid)
    proxy = RefusingProxy(world.moto.url, refuse_create_snapshots(mode))
    try:
        conf = world.write_conf(["snapshot"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-13", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    finally:
        proxy.close()
    assert proxy.refused >= 1
    s = step(p, "snapshot")
    assert s["status"] == "ok", s
    assert "one volume at a time" in s["detail"] and "2 snapshots" in s["detail"], s
    snaps = case_snapshots(ec2, "IR-13", iid)
    assert {sn["VolumeId"] for sn in snaps} == set(dev)
    for sn in snaps:
        t = {x["Key"]: x["Value"] for x in sn["Tags"]}
        assert t["irfw:device"] == dev[sn["VolumeId"]] and t["irfw:instance"] == iid
