"""eip plugin: Elastic IPs are disassociated (never released by default)
and recorded.  State is asserted in moto."""

CASE = "IR-EIP-1"


def step(p, name="eip"):
    assert p.json, f"no json output\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return next(s for s in p.json["instances"][0]["steps"] if s["step"] == name)


def enis_of(world, iid):
    inst = world.instance(iid)
    return {n["Attachment"]["DeviceIndex"]: n for n in inst["NetworkInterfaces"]}


def test_eips_disassociated_and_recorded(world):
    w = world.vpc_world(enis=2, volumes=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    enis = enis_of(world, iid)
    a1 = ec2.allocate_address(Domain="vpc")
    as1 = ec2.associate_address(InstanceId=iid, AllocationId=a1["AllocationId"])["AssociationId"]
    # A second address on the secondary interface: found through the ENI.
    a2 = ec2.allocate_address(Domain="vpc")
    as2 = ec2.associate_address(NetworkInterfaceId=enis[1]["NetworkInterfaceId"],
                                AllocationId=a2["AllocationId"])["AssociationId"]
    conf = world.write_conf(["eip"], {"eip": {}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)

    s = step(p)
    assert s["status"] == "ok", s
    assert a1["PublicIp"] in s["detail"] and a2["PublicIp"] in s["detail"]
    addrs = {a["AllocationId"]: a for a in ec2.describe_addresses()["Addresses"]}
    # Disassociated, not released.
    assert set(addrs) == {a1["AllocationId"], a2["AllocationId"]}
    for a in addrs.values():
        assert not a.get("AssociationId") and not a.get("InstanceId"), a
    rec = world.manifest(CASE, iid)["steps"]["eip"]["records"]["addresses"]
    by_alloc = {r["allocation_id"]: r for r in rec}
    assert set(by_alloc) == {a1["AllocationId"], a2["AllocationId"]}
    assert by_alloc[a1["AllocationId"]]["public_ip"] == a1["PublicIp"]
    assert by_alloc[a1["AllocationId"]]["association_id"] == as1
    assert by_alloc[a1["AllocationId"]]["network_interface_id"] == enis[0]["NetworkInterfaceId"]
    assert by_alloc[a2["AllocationId"]]["association_id"] == as2
    assert by_alloc[a2["AllocationId"]]["network_interface_id"] == enis[1]["NetworkInterfaceId"]
    assert set(rec[0]) == {"public_ip", "allocation_id", "association_id", "network_interface_id", "private_ip"}


def test_release_addresses(world):
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    a1 = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(InstanceId=iid, AllocationId=a1["AllocationId"])
    conf = world.write_conf(["eip"], {"eip": {"release_addresses": "true"}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)

    s = step(p)
    assert s["status"] == "ok" and "released" in s["detail"], s
    assert ec2.describe_addresses()["Addresses"] == []
    rec = world.manifest(CASE, iid)["steps"]["eip"]["records"]["addresses"]
    assert rec[0]["public_ip"] == a1["PublicIp"]


def test_no_eip_is_skipped(world):
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    # An address of someone else's stays where it is.
    other = world.vpc_world(enis=1, volumes=1)["instances"][0]
    ec2 = world.client("ec2")
    a = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(InstanceId=other, AllocationId=a["AllocationId"])
    conf = world.write_conf(["eip"], {"eip": {}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)

    s = step(p)
    assert s["status"] == "skipped"
    assert s["detail"] == "no Elastic IP"
    assert ec2.describe_addresses()["Addresses"][0].get("InstanceId") == other


def test_dry_run_changes_nothing(world):
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    a1 = ec2.allocate_address(Domain="vpc")
    as1 = ec2.associate_address(InstanceId=iid, AllocationId=a1["AllocationId"])["AssociationId"]
    conf = world.write_conf(["eip"], {"eip": {"release_addresses": "true"}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--dry-run", check_rc=0)

    s = step(p)
    assert s["status"] == "ok" and "dry run: would disassociate" in s["detail"], s
    addr = ec2.describe_addresses()["Addresses"]
    assert len(addr) == 1 and addr[0]["AssociationId"] == as1 and addr[0]["InstanceId"] == iid


def test_disassociated_said_only_when_read_back(world):
    """DisassociateAddress answering OK without the change (the proxy
    answers it and moto never sees it): DescribeAddresses, read twice as EC2
    is eventually consistent, still shows the address on the instance, so
    the step fails naming it, and nothing says disassociated."""
    from refusing_proxy import RefusingProxy, ec2_ok

    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    a1 = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(InstanceId=iid, AllocationId=a1["AllocationId"])
    looks = []

    def rule(body):
        if b"Action=DescribeAddresses" in body:
            looks.append(body)
        if b"Action=DisassociateAddress" in body:
            return ec2_ok("DisassociateAddress")
        return None

    conf = world.write_conf(["eip"], {"eip": {}}, case_id="IR-EIP-RB")
    with RefusingProxy(world.moto.url, rule) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", env={"AWS_ENDPOINT_URL": proxy.url})
    assert p.returncode == 4, p.stderr  # a failed step of the contain phase
    s = step(p)
    assert s["status"] == "failed", s
    assert (f"DisassociateAddress answered OK, but DescribeAddresses still shows {a1['PublicIp']} on the "
            "instance") in s["detail"], s
    assert "disassociated Elastic IP" not in s["detail"], s
    # The look before, and two read-backs (by instance and by interface each).
    assert len(looks) == 2 * 3, looks
    (addr,) = ec2.describe_addresses(AllocationIds=[a1["AllocationId"]])["Addresses"]
    assert addr.get("InstanceId") == iid
