"""protect: termination/stop protection, shutdown behaviour, kept volumes."""
import json

from conftest import AMI
from refusing_proxy import RefusingProxy, ec2_error, ec2_ok


def attr(ec2, iid, name):
    return ec2.describe_instance_attribute(InstanceId=iid, Attribute=name)


def delete_on_termination(world, iid):
    inst = world.instance(iid)
    return {m["DeviceName"]: m["Ebs"]["DeleteOnTermination"] for m in inst["BlockDeviceMappings"]}


def step(p, name):
    (inst,) = p.json["instances"]
    return next(s for s in inst["steps"] if s["step"] == name)


def test_protect_sets_everything(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    assert set(delete_on_termination(world, iid).values()) == {True}
    conf = world.write_conf(["protect"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-prot", "-o", "json", check_rc=0)
    s = step(p, "protect")
    assert s["status"] == "ok", s
    assert "termination protection" in s["detail"] and "2 volumes" in s["detail"]
    # A new instance's shutdown behaviour is "stop": read, not sent again.
    assert "already in place: shutdown behaviour=stop" in s["detail"], s

    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is True
    assert attr(ec2, iid, "disableApiStop")["DisableApiStop"]["Value"] is True
    assert attr(ec2, iid, "instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    dot = delete_on_termination(world, iid)
    assert len(dot) == 2 and set(dot.values()) == {False}
    # The emulator must not have lost the instance's groups on the way.
    assert [g["GroupId"] for g in world.instance(iid)["SecurityGroups"]] == [w["sg"]]

    rec = world.manifest("c-prot", iid)["steps"]["protect"]["records"]["attributes"]
    assert rec["disableApiTermination"] is True and rec["disableApiStop"] is True
    assert "instanceInitiatedShutdownBehavior" not in rec and rec["alreadySet"] == ["instanceInitiatedShutdownBehavior"]
    assert sorted(v["device"] for v in rec["keptVolumes"]) == ["/dev/sda1", "/dev/sdf"]
    assert all(v["deleteOnTerminationWas"] is True for v in rec["keptVolumes"])


def test_protect_reads_before_changing_and_release_puts_back(world):
    """What AWS shows in place is not sent (and not undone by release); a
    shutdown behaviour irfw changed is recorded and put back by
    release --unprotect, asserted in moto."""
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    ec2.modify_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior", Value="terminate")
    conf = world.write_conf(["protect"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-read", "-o", "json", check_rc=0)
    s = step(p, "protect")
    assert s["status"] == "ok", s
    assert "already in place: termination protection" in s["detail"], s
    assert "shutdown behaviour=stop" in s["detail"] and "stop protection" in s["detail"], s
    assert attr(ec2, iid, "instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    rec = world.manifest("c-read", iid)["steps"]["protect"]["records"]["attributes"]
    assert rec["alreadySet"] == ["disableApiTermination"] and "disableApiTermination" not in rec, rec
    assert rec["instanceInitiatedShutdownBehaviorWas"] == "terminate", rec

    p = world.irfw("release", "--conf", conf, "--case-id", "c-read", "-i", iid, "--unprotect", check_rc=0)
    assert attr(ec2, iid, "instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"]["Value"] == \
        "terminate", p.stderr
    # irfw turned stop protection on: off again; termination protection was on before: left on.
    assert attr(ec2, iid, "disableApiStop")["DisableApiStop"]["Value"] is False
    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is True


def test_protect_options_off(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    conf = world.write_conf(["protect"], {"protect": {"stop": "false", "keep_volumes": "no"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-opt1", "-o", "json", check_rc=0)
    assert step(p, "protect")["status"] == "ok"
    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is True
    assert attr(ec2, iid, "disableApiStop")["DisableApiStop"]["Value"] is False
    assert set(delete_on_termination(world, iid).values()) == {True}

    conf = world.write_conf(["protect"], {"protect": {k: "false" for k in
                                                      ("termination", "stop", "shutdown_behavior", "keep_volumes")}},
                            name="off.ini")
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-opt2", "-o", "json", check_rc=0)
    assert step(p, "protect")["status"] == "skipped"


def test_protect_spot(world):
    w = world.vpc_world()
    ec2 = world.client("ec2")
    r = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=w["subnet"],
                          InstanceMarketOptions={"MarketType": "spot"},
                          BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                                                "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
                                               {"DeviceName": "/dev/sdf",
                                                "Ebs": {"VolumeSize": 4, "DeleteOnTermination": True}}])
    iid = r["Instances"][0]["InstanceId"]
    assert world.instance(iid).get("InstanceLifecycle") == "spot"
    conf = world.write_conf(["protect"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-spot", "-o", "json", check_rc=0)
    s = step(p, "protect")
    assert s["status"] == "ok", s
    assert "spot instance" in s["detail"] and "not attempted" in s["detail"]
    # Not attempted, so not set.
    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is False
    assert attr(ec2, iid, "instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    dot = delete_on_termination(world, iid)
    assert len(dot) == 2 and set(dot.values()) == {False}
    rec = world.manifest("c-spot", iid)["steps"]["protect"]["records"]["attributes"]
    assert rec["spot"] is True and "disableApiTermination" not in rec


def test_protect_spot_nothing_else(world):
    w = world.vpc_world()
    ec2 = world.client("ec2")
    r = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=w["subnet"],
                          InstanceMarketOptions={"MarketType": "spot"})
    iid = r["Instances"][0]["InstanceId"]
    conf = world.write_conf(["protect"], {"protect": {"shutdown_behavior": "false", "keep_volumes": "false"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)
    s = step(p, "protect")
    assert s["status"] == "skipped" and "spot instance" in s["detail"]


def test_protect_failure_tries_the_rest(world):
    """Refused calls fail the step, but every change is still attempted."""
    w = world.vpc_world()
    iid = w["instances"][0]
    iam = world.client("iam")
    iam.create_user(UserName="ir")
    key = iam.create_access_key(UserName="ir")["AccessKey"]
    iam.put_user_policy(UserName="ir", PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "ec2:ModifyInstanceAttribute", "Resource": "*"}]}))
    conf = world.write_conf(["protect"])
    world.moto.reset_auth(0)
    try:
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-deny", "-o", "json",
                       env={"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]})
    finally:
        world.moto.reset_auth(10**9)
    assert p.returncode == 1, p.stderr
    s = step(p, "protect")
    assert s["status"] == "failed"
    assert s["detail"].startswith("3 of 3 protection changes failed"), s  # shutdown: "stop" already
    assert s["aws_error"] or "first error" in s["detail"]
    assert set(delete_on_termination(world, iid).values()) == {True}


def test_protect_unsupported_attribute(world):
    """EC2 answering UnsupportedOperation for one attribute is noted, not a failure."""
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")

    def rule(body):
        if b"Action=ModifyInstanceAttribute" in body and b"DisableApiStop.Value" in body:
            return 400, "text/xml", ec2_error("UnsupportedOperation", "stop protection is not supported")
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["protect"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-uns", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    assert proxy.refused == 1
    s = step(p, "protect")
    assert s["status"] == "ok", s
    assert "not supported for this instance (UnsupportedOperation): stop protection" in s["detail"]
    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is True
    assert set(delete_on_termination(world, iid).values()) == {False}
    rec = world.manifest("c-uns", iid)["steps"]["protect"]["records"]["attributes"]
    assert rec["unsupported"] == ["disableApiStop"] and "disableApiStop" not in rec


def test_protect_dry_run(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    conf = world.write_conf(["protect"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-dry", "--dry-run", "-o", "json", check_rc=0)
    s = step(p, "protect")
    assert s["status"] == "ok" and s["detail"].startswith("dry run: would set"), s
    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is False
    assert set(delete_on_termination(world, iid).values()) == {True}
    # Nothing recorded: a dry run writes no case record at all.
    assert not (world.evidence / "c-dry" / iid).exists()



def test_protect_says_only_what_the_read_back_shows(world):
    """ModifyInstanceAttribute answering OK without the change (the proxy
    answers it and moto never sees it): the read-back, taken twice as EC2 is
    eventually consistent, does not show it, so the step fails naming it,
    the record keeps it under notShown, and the rest is said set because
    moto shows it.  release --unprotect still undoes what was answered."""
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    reads = []

    def rule(body):
        if b"Action=DescribeInstanceAttribute" in body and b"Attribute=disableApiTermination" in body:
            reads.append(body)
        if b"Action=ModifyInstanceAttribute" in body and b"DisableApiTermination.Value=true" in body:
            return ec2_ok("ModifyInstanceAttribute")
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["protect"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-rb", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    assert proxy.refused == 1
    assert p.returncode == 1, p.stderr
    s = step(p, "protect")
    assert s["status"] == "failed", s
    assert s["detail"].startswith("1 of 3 protection changes failed: termination protection (answered OK; "
                                  "DescribeInstanceAttribute shows it off)"), s
    assert "set stop protection, DeleteOnTermination=false on 2 volumes" in s["detail"], s
    assert len(reads) == 3, reads  # one read before, two after
    # moto, the truth: termination protection off, the rest on.
    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is False
    assert attr(ec2, iid, "disableApiStop")["DisableApiStop"]["Value"] is True
    assert set(delete_on_termination(world, iid).values()) == {False}
    rec = world.manifest("c-rb", iid)["steps"]["protect"]["records"]["attributes"]
    assert "disableApiTermination" not in rec and rec["notShown"] == {"disableApiTermination": True}, rec
    assert rec["disableApiStop"] is True and len(rec["keptVolumes"]) == 2

    p = world.irfw("release", "--conf", conf, "--case-id", "c-rb", "-i", iid, "--unprotect", check_rc=0)
    assert attr(ec2, iid, "disableApiStop")["DisableApiStop"]["Value"] is False
    assert set(delete_on_termination(world, iid).values()) == {True}
    assert "termination protection off" in p.stderr, p.stderr


def test_protect_volumes_read_back(world):
    """The volumes' change answered OK but not made: DescribeInstances shows
    DeleteOnTermination still true, and the step says so per device."""
    w = world.vpc_world()
    iid = w["instances"][0]

    def rule(body):
        if b"Action=ModifyInstanceAttribute" in body and b"BlockDeviceMapping" in body:
            return ec2_ok("ModifyInstanceAttribute")
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["protect"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-rbv", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    assert p.returncode == 1, p.stderr
    s = step(p, "protect")
    assert s["status"] == "failed", s
    assert ("DeleteOnTermination=false on 2 volumes (answered OK; DeleteOnTermination not false on /dev/sda1, "
            "/dev/sdf)") in s["detail"], s
    assert set(delete_on_termination(world, iid).values()) == {True}
    rec = world.manifest("c-rbv", iid)["steps"]["protect"]["records"]["attributes"]
    assert "keptVolumes" not in rec and len(rec["notShown"]["keptVolumes"]) == 2, rec


def test_protect_not_read_back_is_not_set(world):
    """DescribeInstanceAttribute refused: the changes are sent without
    looking (moto shows them made), but none is said set."""
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")

    def rule(body):
        if b"Action=DescribeInstanceAttribute" in body:
            return 400, "text/xml", ec2_error("UnauthorizedOperation", "not authorized", "req-dia-9")
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["protect"], {"protect": {"keep_volumes": "false"}})
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "c-nrb", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    assert p.returncode == 1, p.stderr
    s = step(p, "protect")
    assert s["status"] == "failed", s
    assert "termination protection (answered OK; not read back: UnauthorizedOperation (request req-dia-9))" \
        in s["detail"], s
    assert "; set " not in s["detail"], s
    assert attr(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is True
