"""isolate: quarantine group on every interface, originals recorded, tracked
flows broken through the untracking group, optional deny-all network ACL.

moto quirk worked around here: moto reports an attached interface's groups as
the union of its own groups and the instance's launch groups, so after a
(correct) ModifyNetworkInterfaceAttribute every interface still "shows" the
launch group in DescribeInstances/DescribeNetworkInterfaces.  The `group-id`
filter of DescribeNetworkInterfaces looks at the interface's own groups only,
so `own_groups()` reads them through that filter.
"""
import pytest

TAG = "irfw:original-sgs"


def run(world, conf, *iids, case="C1", extra=(), rc=0):
    args = ["--conf", conf, "-o", "json", "--case-id", case, *extra]
    for i in iids:
        args += ["-i", i]
    return world.irfw(*args, check_rc=rc)


def step(p, iid):
    inst = next(i for i in p.json["instances"] if i["instance_id"] == iid)
    return next(s for s in inst["steps"] if s["step"] == "isolate")


def containment(p, iid):
    return next(i for i in p.json["instances"] if i["instance_id"] == iid)["containment"]


def enis_of(world, iid):
    return [n["NetworkInterfaceId"] for n in world.instance(iid)["NetworkInterfaces"]]


def vpc_groups(world, vpc):
    ec2 = world.client("ec2")
    return ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]


def own_groups(world, vpc, eni):
    """The interface's own groups (see the module docstring)."""
    ec2 = world.client("ec2")
    own = set()
    for g in vpc_groups(world, vpc):
        hits = ec2.describe_network_interfaces(Filters=[
            {"Name": "network-interface-id", "Values": [eni]},
            {"Name": "group-id", "Values": [g["GroupId"]]}])["NetworkInterfaces"]
        if hits:
            own.add(g["GroupId"])
    return own


def group_named(world, vpc, name):
    hits = [g for g in vpc_groups(world, vpc) if g["GroupName"] == name]
    assert len(hits) <= 1, f"duplicate groups named {name}"
    return hits[0] if hits else None


def tags_of(world, iid):
    return {t["Key"]: t["Value"] for t in world.instance(iid).get("Tags", [])}


def test_every_interface_quarantined_and_originals_recorded(world):
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    enis = enis_of(world, iid)
    assert len(enis) == 2
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": "10.0.0.0/8"}})
    p = run(world, conf, iid)

    q = group_named(world, vpc, f"irfw-quarantine-{vpc}")
    assert q, "quarantine group not created"
    qid = q["GroupId"]
    for eni in enis:
        assert own_groups(world, vpc, eni) == {qid}
    ec2 = world.client("ec2")

    # No egress at all; ingress only the configured admin rule.
    assert q["IpPermissionsEgress"] == []
    assert len(q["IpPermissions"]) == 1
    rule = q["IpPermissions"][0]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 22, 22)
    assert [r["CidrIp"] for r in rule["IpRanges"]] == ["10.0.0.0/8"]
    assert rule["Ipv6Ranges"] == [] and rule["UserIdGroupPairs"] == []
    assert {t["Key"]: t["Value"] for t in q["Tags"]}["irfw:quarantine"] == "true"

    # The all-open untracking group was used (see the detail) and removed
    # once no interface of the run needed it: none is left behind.
    assert group_named(world, vpc, f"irfw-untrack-{vpc}") is None
    assert not [g for g in vpc_groups(world, vpc) if any(
        t["Key"] == "irfw:untrack" for t in g.get("Tags", []))]

    # Originals: in the case record and in the instance tag.
    rec = world.manifest("C1", iid)["steps"]["isolate"]["records"]
    assert rec["original_groups"] == {e: [web] for e in enis}
    assert rec["quarantine_sg"] == qid
    tag = tags_of(world, iid)[TAG]
    assert sorted(tag.split(";")) == sorted(f"{e}={web}" for e in enis)

    s = step(p, iid)
    assert s["status"] == "ok"
    assert qid in s["detail"] and "2 of 2 interface" in s["detail"]
    assert "after the untracking group" in s["detail"] and "untracking group" in s["detail"]
    assert containment(p, iid)["state"] == "contained"


def test_no_admin_cidrs_means_no_ingress(world):
    w = world.vpc_world()
    conf = world.write_conf(["isolate"], {"isolate": {"break_tracked": "false", "original_groups_tag": ""}})
    p = run(world, conf, w["instances"][0])
    q = group_named(world, w["vpc"], f"irfw-quarantine-{w['vpc']}")
    assert q["IpPermissions"] == [] and q["IpPermissionsEgress"] == []
    # break_tracked = false: no untracking group; empty tag key: no tag.
    assert group_named(world, w["vpc"], f"irfw-untrack-{w['vpc']}") is None
    assert TAG not in tags_of(world, w["instances"][0])
    assert step(p, w["instances"][0])["status"] == "ok"


def test_rerun_finds_same_group_and_already_isolated(world):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": "10.0.0.0/8"}})
    run(world, conf, iid, case="C1")
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    p = run(world, conf, iid, case="C2")
    assert step(p, iid)["status"] == "ok"
    names = [g["GroupName"] for g in vpc_groups(world, vpc)]
    assert names.count(f"irfw-quarantine-{vpc}") == 1
    assert names.count(f"irfw-untrack-{vpc}") == 0  # removed after each run
    assert group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"] == qid
    # The second case does not mistake irfw's own group for an original.
    rec = world.manifest("C2", iid)["steps"]["isolate"]["records"]["original_groups"]
    assert all(qid not in v for v in rec.values())

    # What real AWS shows after isolation (moto keeps the launch group on the
    # primary interface's view): then a new case has nothing to do.
    world.client("ec2").modify_instance_attribute(InstanceId=iid, Groups=[qid])
    p = run(world, conf, iid, case="C3")
    s = step(p, iid)
    assert s["status"] == "ok" and "already isolated" in s["detail"]
    # Already isolated is verified like any other outcome.
    assert containment(p, iid)["state"] == "contained"


def test_sgid_in_other_vpc_is_refused(world):
    """A -g group of another VPC is the operator's mistake: exit 2 from
    prepare, before any instance is touched, naming the group, the instance
    and both VPCs."""
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    ec2 = world.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="q-elsewhere", Description="x", VpcId=other)["GroupId"]
    conf = world.write_conf(["isolate"], {"isolate": {}})
    p = run(world, conf, iid, extra=("-g", foreign), rc=2)
    for word in (foreign, other, vpc, iid):
        assert word in p.stderr
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {web}
    assert group_named(world, vpc, f"irfw-quarantine-{vpc}") is None
    assert TAG not in tags_of(world, iid)


def test_sgid_in_same_vpc_used_as_is(world):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    ec2 = world.client("ec2")
    site = ec2.create_security_group(GroupName="site-quarantine", Description="x", VpcId=vpc)["GroupId"]
    # A closed group (no egress, no ingress) is used as it is; an open one
    # would be refused (test_isolate_truth.py).
    ec2.revoke_security_group_egress(GroupId=site, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    other = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="q-elsewhere", Description="x", VpcId=other)["GroupId"]
    before = group_named(world, vpc, "site-quarantine")
    # -g wins over the step's group_id.
    conf = world.write_conf(["isolate"], {"isolate": {"group_id": foreign}})
    p = run(world, conf, iid, extra=("-g", site))
    assert step(p, iid)["status"] == "ok"
    assert containment(p, iid)["state"] == "contained"
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {site}
    assert group_named(world, vpc, f"irfw-quarantine-{vpc}") is None
    assert group_named(world, vpc, "site-quarantine") == before  # rules untouched
    assert world.manifest("C1", iid)["steps"]["isolate"]["records"]["quarantine_sg"] == site


def test_parallel_instances_share_one_group(world):
    w = world.vpc_world(n_instances=4)
    vpc = w["vpc"]
    conf = world.write_conf(["isolate"], {"isolate": {}})
    p = run(world, conf, *w["instances"], extra=("--jobs", "4"))
    names = [g["GroupName"] for g in vpc_groups(world, vpc)]
    assert names.count(f"irfw-quarantine-{vpc}") == 1
    # One untracking group was shared, and removed by the last to finish.
    assert names.count(f"irfw-untrack-{vpc}") == 0
    assert sum("untracking group" in step(p, i)["detail"] and "removed" in step(p, i)["detail"]
               for i in w["instances"]) == 1
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    for iid in w["instances"]:
        assert step(p, iid)["status"] == "ok"
        assert containment(p, iid)["state"] == "contained"
        for eni in enis_of(world, iid):
            assert own_groups(world, vpc, eni) == {qid}


def test_dry_run_changes_nothing(world):
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": "10.0.0.0/8"}})
    before = sorted(g["GroupId"] for g in vpc_groups(world, vpc))
    p = run(world, conf, iid, extra=("--dry-run",))
    assert step(p, iid)["status"] == "ok"
    assert "would create" in step(p, iid)["detail"]
    assert containment(p, iid)["state"] == "not-attempted"  # nothing claimed in a dry run
    assert sorted(g["GroupId"] for g in vpc_groups(world, vpc)) == before
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {web}
    assert TAG not in tags_of(world, iid)

    # With the groups already there (a real run on another instance), a dry
    # run still leaves this one alone.
    w2 = world.client("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                           SubnetId=w["subnet"], SecurityGroupIds=[web])
    other = w2["Instances"][0]["InstanceId"]
    run(world, conf, other, case="C2")
    p = run(world, conf, iid, case="C3", extra=("--dry-run",))
    assert step(p, iid)["status"] == "ok"
    assert step(p, iid)["detail"].startswith("dry run: would put quarantine group")
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {web}
    assert TAG not in tags_of(world, iid)


def subnet_acl(world, subnet):
    acls = world.client("ec2").describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    assert len(acls) == 1
    return acls[0]


def test_nacl_refused_on_shared_subnet(world):
    w = world.vpc_world(n_instances=2)
    iid, other, vpc = w["instances"][0], w["instances"][1], w["vpc"]
    default_acl = subnet_acl(world, w["subnet"])["NetworkAclId"]
    conf = world.write_conf(["isolate"], {"isolate": {"nacl": "true"}})
    # The site asked for the ACL and did not get it: partially contained
    # (exit 4), the security groups verified all the same.
    p = run(world, conf, iid, rc=4)
    s = step(p, iid)
    assert s["status"] == "failed"
    assert other in s["detail"] and w["subnet"] in s["detail"] and "nacl_shared_subnet" in s["detail"]
    c = containment(p, iid)
    assert c["state"] == "partially-contained"
    assert c["cause"].startswith("deny-all network ACL not applied: ") and other in c["cause"]
    assert subnet_acl(world, w["subnet"])["NetworkAclId"] == default_acl
    # The security-group containment is done all the same.
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {qid}

    # The site may allow it.
    conf = world.write_conf(["isolate"], {"isolate": {"nacl": "true", "nacl_shared_subnet": "allow"}},
                            name="allow.ini")
    p = run(world, conf, iid, case="C2")
    assert step(p, iid)["status"] == "ok"
    assert containment(p, iid)["state"] == "contained"
    assert subnet_acl(world, w["subnet"])["NetworkAclId"] != default_acl


def test_nacl_on_lone_instance_subnet(world):
    w = world.vpc_world(n_instances=1)
    iid, subnet = w["instances"][0], w["subnet"]
    before = subnet_acl(world, subnet)
    assoc = next(a for a in before["Associations"] if a["SubnetId"] == subnet)
    conf = world.write_conf(["isolate"], {"isolate": {"nacl": "true"}})
    p = run(world, conf, iid)
    s = step(p, iid)
    assert s["status"] == "ok" and "network ACL" in s["detail"]
    assert containment(p, iid)["state"] == "contained"
    after = subnet_acl(world, subnet)
    assert after["NetworkAclId"] != before["NetworkAclId"]
    assert not after["IsDefault"]
    # No allow entry: only AWS's implicit deny-all (moto lists no entries).
    assert not [e for e in after["Entries"] if e["RuleAction"] == "allow"]
    rec = world.manifest("C1", iid)["steps"]["isolate"]["records"]["original_nacl"]
    assert rec == {subnet: {"association_id": assoc["NetworkAclAssociationId"],
                            "network_acl_id": before["NetworkAclId"]}}


@pytest.mark.skip(reason="moto: CreateNetworkAcl and ReplaceNetworkAclAssociation ignore DryRun "
                         "(they would really change the subnet), so a dry run with nacl = true "
                         "cannot be checked against moto")
def test_nacl_dry_run(world):
    pass
