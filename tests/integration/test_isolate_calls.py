"""isolate's calls: which EC2 API carries each change of the swap, and how
many describes the groups cost.

The swap is two changes per interface (the all-open untracking group, then
the quarantine group).  On an instance with a single interface the first
goes through ModifyInstanceAttribute GroupId.N, which EC2 paces with another
request bucket than ModifyNetworkInterfaceAttribute: a fleet's two changes
are spread over two buckets.

moto quirk (MOTO-NOTES): ModifyInstanceAttribute GroupId changes the
instance's group list (DescribeInstances) but not its interface's own
groups, so the untracking step is not visible on the interface in moto.
What was sent, in which order and with which group, is asserted through
the recording proxy of test_isolate_truth; the final state (the quarantine
group alone on the interface, the group-id filter) in moto.
"""
import threading
import time

import pytest

from conftest import AMI
from refusing_proxy import ec2_error
from test_isolate import enis_of, group_named, own_groups, vpc_groups
from test_isolate_truth import Proxy, containment, name_of, run, step, unauthorized

ADMIN = "10.0.0.0/8"
MIA_REFUSED_ID = "req-mia-refused-7"


@pytest.fixture
def proxy(world):
    made = []

    def make(rule=lambda a, p, f: None):
        p = Proxy(world.moto.url, rule)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def changes(px):
    """The group changes sent for real, in order: (api, target, [groups])."""
    out = []
    for action, params in px.calls:
        if params.get("DryRun") == "true":
            continue
        if action == "ModifyInstanceAttribute" and "GroupId.1" in params:
            out.append(("MIA", params["InstanceId"], ids(params, "GroupId")))
        elif action == "ModifyNetworkInterfaceAttribute":
            out.append(("MNIA", params["NetworkInterfaceId"], ids(params, "SecurityGroupId")))
    return out


def ids(params, key):
    out, n = [], 1
    while f"{key}.{n}" in params:
        out.append(params[f"{key}.{n}"])
        n += 1
    return out


def untrack_id(p, iid):
    """The untracking group the run used, from its detail (it is deleted
    at the end, so moto no longer knows it)."""
    detail = step(p, iid)["detail"]
    assert "after the untracking group sg-" in detail, detail
    return detail.split("after the untracking group ")[1].split()[0].rstrip(",;")


def gone(world, gid):
    ec2 = world.client("ec2")
    return not [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupId"] == gid]


def instance_groups(world, iid):
    return [g["GroupId"] for g in world.instance(iid)["SecurityGroups"]]


def iso_conf(world, **keys):
    return world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN, **keys}})


# ---------------------------------------------------------------------------
# Which API carries which change.

def test_single_interface_untracked_through_the_instance(world, proxy):
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    (eni,) = enis_of(world, iid)
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    u = untrack_id(p, iid)
    assert u != qid and u != web
    assert changes(px) == [("MIA", iid, [u]), ("MNIA", eni, [qid])]
    # In moto, only the quarantine group holds the interface.
    assert own_groups(world, vpc, eni) == {qid}
    assert containment(p, iid)["state"] == "contained"
    assert "put on with ModifyInstanceAttribute" in step(p, iid)["detail"]
    # moto's instance group list still names the untracking group after
    # the swap (its MIA quirk); the group is deleted all the same.
    assert gone(world, u)
    assert group_named(world, vpc, f"irfw-untrack-{vpc}") is None
    rec = world.manifest("C1", iid)["steps"]["isolate"]["records"]
    assert rec["original_groups"] == {eni: [web]}


def test_several_interfaces_swapped_per_interface(world, proxy):
    w = world.vpc_world(enis=2)
    iid, vpc = w["instances"][0], w["vpc"]
    e1, e2 = enis_of(world, iid)
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    u = untrack_id(p, iid)
    assert changes(px) == [("MNIA", e1, [u]), ("MNIA", e1, [qid]), ("MNIA", e2, [u]), ("MNIA", e2, [qid])]
    assert px.count("ModifyInstanceAttribute") == 0
    assert own_groups(world, vpc, e1) == own_groups(world, vpc, e2) == {qid}
    assert containment(p, iid)["state"] == "contained"


def test_instance_form_refused_falls_back_to_the_interface(world, proxy):
    """AWS refuses the instance form (it says so for an instance with
    several interfaces): the untracking group goes on with
    ModifyNetworkInterfaceAttribute, the log says so with the request id,
    and the instance is contained with its tracked flows broken."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    (eni,) = enis_of(world, iid)

    def rule(action, params, forward):
        if action == "ModifyInstanceAttribute" and "GroupId.1" in params:
            return 400, ec2_error("InvalidInstanceID", "There are multiple interfaces attached to instance "
                                  f"'{iid}'. Please specify an interface ID for the operation instead.",
                                  MIA_REFUSED_ID)
        return None

    px = proxy(rule)
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    u = untrack_id(p, iid)
    assert changes(px) == [("MIA", iid, [u]), ("MNIA", eni, [u]), ("MNIA", eni, [qid])]
    assert own_groups(world, vpc, eni) == {qid}
    c = containment(p, iid)
    assert c["state"] == "contained", c
    line = next(x for x in p.stderr.splitlines() if "ModifyInstanceAttribute with the untracking group" in x)
    assert "InvalidInstanceID" in line and MIA_REFUSED_ID in line and "ModifyNetworkInterfaceAttribute" in line
    assert iid in line  # the instance is named
    assert gone(world, u)


def test_instance_form_throttled_out_quarantines_directly(world, proxy):
    """Throttling is no verdict on the request: no second form of the same
    change, the quarantine group goes on directly (containment first) and
    the instance is reported partially contained (flows may survive)."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    (eni,) = enis_of(world, iid)

    def rule(action, params, forward):
        if action == "ModifyInstanceAttribute" and "GroupId.1" in params:
            return 503, ec2_error("RequestLimitExceeded", "Request limit exceeded.")
        return None

    px = proxy(rule)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}}, max_attempts=1, call_deadline=2)
    p = run(world, conf, iid, rc=4, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    ch = changes(px)
    assert ch[-1] == ("MNIA", eni, [qid]) and ("MNIA", eni, [ch[0][2][0]]) not in ch
    assert {c[0] for c in ch[:-1]} == {"MIA"}
    assert own_groups(world, vpc, eni) == {qid}
    c = containment(p, iid)
    assert c["state"] == "partially-contained" and "tracked connections" in c["cause"]
    assert "ModifyInstanceAttribute with the untracking group" in c["cause"]


def test_quarantine_refused_after_instance_step_puts_groups_back(world, proxy):
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    (eni,) = enis_of(world, iid)

    def rule(action, params, forward):
        if action == "ModifyNetworkInterfaceAttribute" and \
                name_of(world, params["SecurityGroupId.1"]).startswith("irfw-quarantine"):
            return unauthorized()
        return None

    px = proxy(rule)
    p = run(world, iso_conf(world), iid, rc=4, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    ch = changes(px)
    u = ch[0][2][0]
    assert ch == [("MIA", iid, [u]), ("MNIA", eni, [qid]), ("MNIA", eni, [web])]
    assert name_of(world, qid).startswith("irfw-quarantine") and u != qid
    assert own_groups(world, vpc, eni) == {web}
    c = containment(p, iid)
    assert c["state"] == "not-contained"
    assert "original groups put back" in c["cause"] and "LEFT" not in c["cause"]
    assert f"{eni} still in {web}" in c["cause"]
    assert gone(world, u)


def test_groups_put_back_through_the_instance_when_the_interface_form_is_refused(world, proxy):
    """No ModifyNetworkInterfaceAttribute at all (say the policy lacks it):
    the untracking group went on through the instance, so the original
    groups go back the same way rather than leaving it all-open."""
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    (eni,) = enis_of(world, iid)
    px = proxy(lambda a, p, f: unauthorized() if a == "ModifyNetworkInterfaceAttribute" else None)
    p = run(world, iso_conf(world), iid, rc=4, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    ch = changes(px)
    u = ch[0][2][0]
    assert ch == [("MIA", iid, [u]), ("MNIA", eni, [qid]), ("MNIA", eni, [web]), ("MIA", iid, [web])]
    # What moto's ModifyInstanceAttribute changes: the instance's list.
    assert instance_groups(world, iid) == [web]
    assert own_groups(world, vpc, eni) == {web}
    c = containment(p, iid)
    assert c["state"] == "not-contained"
    assert "original groups put back (with ModifyInstanceAttribute)" in c["cause"] and "LEFT" not in c["cause"]
    assert gone(world, u)


def test_every_way_back_refused_is_said_loudly(world, proxy):
    """The quarantine change and both ways of putting the groups back are
    refused after the untracking group went on through the instance: the
    run says the interface is left ALL-OPEN.  (moto cannot show the
    untracking group on the interface after ModifyInstanceAttribute, so its
    read-back sees the old group; on AWS it is reported LEFT ALL-OPEN.)"""
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    (eni,) = enis_of(world, iid)
    first = []

    def rule(action, params, forward):
        if params.get("DryRun") == "true":
            return None
        if action == "ModifyInstanceAttribute" and "GroupId.1" in params:
            if not first:
                first.append(params)
                return None
            return unauthorized()
        if action == "ModifyNetworkInterfaceAttribute":
            return unauthorized()
        return None

    px = proxy(rule)
    p = run(world, iso_conf(world), iid, rc=4, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    ch = changes(px)
    u = ch[0][2][0]
    assert ch == [("MIA", iid, [u]), ("MNIA", eni, [qid]), ("MNIA", eni, [web]), ("MIA", iid, [web])]
    assert f"{eni} is left with the ALL-OPEN untracking group {u}" in p.stderr
    c = containment(p, iid)
    assert c["state"] == "not-contained"
    assert "and so was putting its groups back: UnauthorizedOperation" in c["cause"], c


def test_no_break_tracked_no_instance_call(world, proxy):
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    (eni,) = enis_of(world, iid)
    px = proxy()
    p = run(world, iso_conf(world, break_tracked="false"), iid, rc=0, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    assert changes(px) == [("MNIA", eni, [qid])]
    assert px.count("ModifyInstanceAttribute") == 0
    assert own_groups(world, vpc, eni) == {qid}
    assert containment(p, iid)["state"] == "contained"
    assert not [g for g in vpc_groups(world, vpc) if g["GroupName"].startswith("irfw-untrack")]


def test_check_asks_for_the_instance_form(world, proxy):
    """irfw check proves the right to ModifyInstanceAttribute with DryRun,
    changes nothing, and names it when it is refused."""
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    (eni,) = enis_of(world, iid)
    conf = iso_conf(world)
    # A first run makes the groups (and quarantines another instance).
    other = world.vpc_world(enis=1)
    run(world, conf, other["instances"][0], rc=0)
    px = proxy()
    p = world.irfw("--conf", conf, "-o", "json", "check", "-i", iid, env={"AWS_ENDPOINT_URL": px.url}, check_rc=0)
    assert px.count("ModifyInstanceAttribute", dry=True) == 1
    assert px.count("ModifyInstanceAttribute", dry=False) == 0
    assert px.count("ModifyNetworkInterfaceAttribute", dry=False) == 0
    assert "ModifyInstanceAttribute (the untracking group)" in step(p, iid)["detail"]
    assert own_groups(world, vpc, eni) == {web} and instance_groups(world, iid) == [web]

    px = proxy(lambda a, p, f: unauthorized() if a == "ModifyInstanceAttribute" else None)
    p = world.irfw("--conf", conf, "-o", "json", "check", "-i", iid, env={"AWS_ENDPOINT_URL": px.url}, check_rc=1)
    s = step(p, iid)
    assert s["status"] == "failed"
    assert "ModifyInstanceAttribute with the untracking group" in s["detail"] and "UnauthorizedOperation" in s["detail"]
    assert px.count("ModifyInstanceAttribute", dry=False) == 0 and px.count("ModifyNetworkInterfaceAttribute", dry=False) == 0
    assert own_groups(world, vpc, eni) == {web} and instance_groups(world, iid) == [web]


# ---------------------------------------------------------------------------
# What the groups cost: prepare asks each thing once.

def described(px, action):
    """The requests of `action` (no signature fields: what was asked)."""
    return [tuple(sorted((k, v) for k, v in p.items() if k not in ("Action", "Version")))
            for a, p in px.calls if a == action]


def irfw_groups(world, vpc, admin=ADMIN):
    """Both groups of a VPC as an earlier run of irfw leaves them made:
    the quarantine group closed (admin SSH only) and the untracking group
    all-open, each with its tag."""
    ec2 = world.client("ec2")

    def make(name, tag):
        return ec2.create_security_group(
            GroupName=name, Description="irfw", VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": "Name", "Value": name}, {"Key": tag, "Value": "true"}]}])["GroupId"]

    q = make(f"irfw-quarantine-{vpc}", "irfw:quarantine")
    ec2.revoke_security_group_egress(GroupId=q, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_ingress(GroupId=q, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": admin}]}])
    u = make(f"irfw-untrack-{vpc}", "irfw:untrack")
    ec2.authorize_security_group_ingress(GroupId=u, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ec2.authorize_security_group_egress(GroupId=u, IpPermissions=[
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    return q, u


def test_fresh_world_group_calls(world, proxy):
    """No group yet: one look-up by both names, one by both tags (in
    prepare's two passes together), no read of the new groups (what a new
    group holds is documented; they are completed from that), and the
    read-back of the quarantine group's rules: 3 DescribeSecurityGroups
    (11 before), none repeated.  Interfaces: the read-back and, with it,
    the untracking group's last look before it is deleted, which also
    answers whether the instance's interfaces hold it (moto lists the
    instance's group list in groupSet: MOTO-NOTES) without a group-id look
    of its own."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    dsg = described(px, "DescribeSecurityGroups")
    assert len(dsg) == 3, dsg
    assert len(set(dsg)) == len(dsg), "an identical DescribeSecurityGroups was repeated"
    assert not [d for d in dsg if "GroupId.1" in dict(d)], "the new groups were read: " + repr(dsg)
    q = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    assert [d for d in dsg if dict(d).get("Filter.1.Name") == "group-id"] == [
        (("Filter.1.Name", "group-id"), ("Filter.1.Value.1", q))], dsg  # the read-back
    names = [d for d in dsg if ("Filter.2.Name", "group-name") in d]
    assert len(names) == 1 and {v for k, v in names[0] if k.startswith("Filter.2.Value")} == {
        f"irfw-quarantine-{vpc}", f"irfw-untrack-{vpc}"}
    tags = [d for d in dsg if ("Filter.2.Name", "tag-key") in d]
    assert len(tags) == 1 and {v for k, v in tags[0] if k.startswith("Filter.2.Value")} == {
        "irfw:quarantine", "irfw:untrack"}
    assert px.count("CreateSecurityGroup") == 2
    dni = described(px, "DescribeNetworkInterfaces")
    assert len(dni) == 2 and len(set(dni)) == 2, dni
    assert sorted(dict(d)["Filter.1.Name"] for d in dni) == ["attachment.instance-id", "group-id"], dni


def _completion_round(px, q, u):
    """The calls right after the last CreateSecurityGroup, up to the first
    change of an instance, as (action, group, rules)."""
    last = max(i for i, (a, _) in enumerate(px.calls) if a == "CreateSecurityGroup")
    out = []
    for a, prm in px.calls[last + 1:]:
        if a in ("ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute"):
            break
        if a.endswith("SecurityGroupEgress") or a.endswith("SecurityGroupIngress"):
            rules = sorted(v for k, v in prm.items() if k.endswith("CidrIp") or k.endswith("CidrIpv6"))
            out.append((a, {q: "q", u: "u"}.get(prm.get("GroupId"), prm.get("GroupId")), tuple(rules)))
    return out


def test_fresh_groups_completed_in_one_round(world, proxy):
    """Both groups new: right after their creates, without reading them,
    the quarantine group's default egress is revoked (0.0.0.0/0, and ::/0
    in case the VPC has an IPv6 block: here it has none, and AWS's "not
    found" is taken as done) and its admin rule added, and the untracking
    group opened both ways, all sent together; none of it is sent again
    when each group is settled.  moto then holds a quarantine group with no
    egress and only the admin rule, and the untracking group is gone after
    the run."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    q = group_named(world, vpc, f"irfw-quarantine-{vpc}")
    made = [prm for a, prm in px.calls if a == "CreateSecurityGroup"]
    done = _completion_round(px, q["GroupId"], None)
    others = {g for _, g, _ in done if g != "q"}
    assert len(others) == 1, done
    u = others.pop()
    assert sorted(done) == sorted([
        ("RevokeSecurityGroupEgress", "q", ("0.0.0.0/0",)),
        ("RevokeSecurityGroupEgress", "q", ("::/0",)),
        ("AuthorizeSecurityGroupIngress", "q", (ADMIN,)),
        ("AuthorizeSecurityGroupIngress", u, ("0.0.0.0/0", "::/0")),
        ("AuthorizeSecurityGroupEgress", u, ("::/0",))]), done
    assert gone(world, u)
    assert len(made) == 2
    assert px.count("RevokeSecurityGroupEgress") == 2
    assert px.count("AuthorizeSecurityGroupEgress") == 1
    assert px.count("AuthorizeSecurityGroupIngress") == 2
    assert q["IpPermissionsEgress"] == []
    assert [(r["IpProtocol"], r["FromPort"], [x["CidrIp"] for x in r["IpRanges"]])
            for r in q["IpPermissions"]] == [("tcp", 22, [ADMIN])], q["IpPermissions"]
    assert "admin rule(s) added" not in p.stderr  # settle found it done


def test_fresh_groups_in_an_ipv6_vpc(world, proxy):
    """A VPC with an IPv6 block gives a new group all traffic out to ::/0
    as well (AWS's documented default, and moto's): the blind revoke of
    ::/0 takes it away, the untracking group's ::/0 egress is already there
    (AWS's "duplicate" is taken as done), and the instance is contained
    with a quarantine group that allows no egress at all, as moto shows."""
    ec2 = world.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0].get("Ipv6CidrBlockAssociationSet")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    probe = ec2.create_security_group(GroupName="probe", Description="probe", VpcId=vpc)["GroupId"]
    defaults = ec2.describe_security_groups(GroupIds=[probe])["SecurityGroups"][0]["IpPermissionsEgress"]
    assert [r.get("Ipv6Ranges") for r in defaults if r.get("Ipv6Ranges")], defaults  # moto gives ::/0 too
    iid = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, SubnetId=subnet,
                            SecurityGroupIds=[probe])["Instances"][0]["InstanceId"]
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained", p.stderr
    q = group_named(world, vpc, f"irfw-quarantine-{vpc}")
    assert q["IpPermissionsEgress"] == [], q["IpPermissionsEgress"]
    assert [(r["IpProtocol"], r["FromPort"]) for r in q["IpPermissions"]] == [("tcp", 22)]
    assert px.count("RevokeSecurityGroupEgress") == 2
    assert px.count("AuthorizeSecurityGroupEgress") == 1  # ::/0, answered duplicate, not sent again
    assert not [d for d in described(px, "DescribeSecurityGroups") if "GroupId.1" in dict(d)]
    assert gone(world, untrack_id(p, iid))


def test_fresh_untracking_group_opened_without_a_read(world, proxy):
    """The quarantine group exists (a site's second incident), the
    untracking group is made for the run: created, then opened both ways
    in one round trip without being read first, put on, and deleted."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    q, old_u = irfw_groups(world, vpc)
    world.client("ec2").delete_security_group(GroupId=old_u)
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    u = untrack_id(p, iid)
    assert px.count("CreateSecurityGroup") == 1
    assert sorted(_completion_round(px, q, u)) == sorted([
        ("AuthorizeSecurityGroupIngress", "u", ("0.0.0.0/0", "::/0")),
        ("AuthorizeSecurityGroupEgress", "u", ("::/0",))])
    assert not [d for d in described(px, "DescribeSecurityGroups") if "GroupId.1" in dict(d)]
    assert changes(px) == [("MIA", iid, [u]), ("MNIA", enis_of(world, iid)[0], [q])]
    assert gone(world, u)


def _is_holders_look(action, params):
    return action == "DescribeNetworkInterfaces" and params.get("Filter.1.Name") == "group-id"


def _holding_the_look(hold_s, then=None):
    """A proxy rule that logs each call's arrival as (label, time), the look
    at who holds the untracking group labelled "holders", and holds that
    look for `hold_s` seconds; `then(action, params)` may answer."""
    log, lock = [], threading.Lock()

    def rule(action, params, forward):
        holders = _is_holders_look(action, params)
        with lock:
            log.append(("holders" if holders else action, time.monotonic()))
        if holders:
            time.sleep(hold_s)
            return None
        return then(action, params) if then else None

    rule.order = lambda: [a for a, _ in log]
    rule.first = lambda label: next(t for a, t in log if a == label)
    return rule


def test_untracking_group_deleted_with_the_read_back(world, proxy):
    """The last isolate of the VPC, nothing failed, the untracking group
    made by this run: its DeleteSecurityGroup goes with the read-back (one
    round trip fewer), not after it.  Shown by holding the look at who
    holds the group for 0.5 s: the delete arrives while it is held."""
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    rule = _holding_the_look(0.5)
    px = proxy(rule)
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    u = untrack_id(p, iid)
    assert gone(world, u)
    assert px.count("DeleteSecurityGroup") == 1
    # Sent while the look was held.
    assert rule.first("DeleteSecurityGroup") - rule.first("holders") < 0.4, rule.order()
    assert "untracking group " + u + " removed" in step(p, iid)["detail"]


def test_untracking_delete_refused_with_the_read_back_is_sent_again(world, proxy):
    """EC2 refuses to delete a group an interface still holds
    (DependencyViolation): a change answered but not in effect yet when the
    delete went with the read-back.  irfw looks again a moment later and
    deletes it then; the refusal is no failure."""
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    refused = []

    def rule(action, params, forward):
        if action == "DeleteSecurityGroup" and not refused:
            refused.append(params["GroupId"])
            return 400, ec2_error("DependencyViolation",
                                  f"resource {params['GroupId']} has a dependent object")
        return None

    px = proxy(rule)
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    u = untrack_id(p, iid)
    assert refused == [u]
    assert px.count("DeleteSecurityGroup") == 2
    assert gone(world, u)
    assert "looking again" in p.stderr


def test_untracking_group_not_made_by_the_run_deleted_after_the_look(world, proxy):
    """An untracking group this run did not make (left by an earlier run)
    may be held by interfaces outside the run: its delete waits for the
    look at who holds it, as before."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    q, u = irfw_groups(world, vpc)
    rule = _holding_the_look(0.3)
    px = proxy(rule)
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    order = rule.order()
    assert order.index("holders") < order.index("DeleteSecurityGroup"), order
    assert gone(world, u)


def test_untracking_group_not_deleted_blindly_after_another_isolate_failed(world, proxy):
    """Two instances of one VPC, one at a time; the first one's quarantine
    change is refused (irfw puts its own groups back).  The last isolate
    then does not send the delete with its read-back: it waits for the
    look at who holds the group, and deletes it only then."""
    w = world.vpc_world(n_instances=2, enis=1)
    a, b = w["instances"]
    (eni_a,) = enis_of(world, a)

    def refuse_a(action, params):
        if action == "ModifyNetworkInterfaceAttribute" and params.get("NetworkInterfaceId") == eni_a and \
                name_of(world, params["SecurityGroupId.1"]).startswith("irfw-quarantine"):
            return unauthorized()
        return None

    rule = _holding_the_look(0.3, refuse_a)
    px = proxy(rule)
    p = world.irfw("--conf", iso_conf(world), "-o", "json", "--case-id", "C1", "--jobs", "1", "-i", a, "-i", b,
                   env={"AWS_ENDPOINT_URL": px.url}, check_rc=4)
    assert containment(p, a)["state"] != "contained"
    assert containment(p, b)["state"] == "contained"
    order = rule.order()
    assert order.count("DeleteSecurityGroup") == 1, order
    assert order.index("holders") < order.index("DeleteSecurityGroup"), order
    u = untrack_id(p, b)
    assert u not in own_groups(world, w["vpc"], eni_a)
    assert gone(world, u)


def test_existing_groups_cost_one_look_up(world, proxy):
    """Both groups exist (the common case at a site): one
    DescribeSecurityGroups finds both by name (the look-up by tag, sent
    with it so that a first incident waits one round trip less, is not
    needed), nothing is created or changed, and the read-back: 3 in all
    (5 before), 2 in a row."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    q, u = irfw_groups(world, vpc)
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    assert changes(px) == [("MIA", iid, [u]), ("MNIA", enis_of(world, iid)[0], [q])]
    dsg = described(px, "DescribeSecurityGroups")
    assert len(dsg) == 3 and len(set(dsg)) == 3, dsg
    assert px.count("CreateSecurityGroup") == 0
    for op in ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupEgress",
               "RevokeSecurityGroupIngress"):
        assert px.count(op) == 0, op
    assert gone(world, u)


def test_existing_groups_found_by_tag_under_another_name(world, proxy):
    """Groups irfw made under another naming rule: the name look-up finds
    nothing, one look-up by both tags finds both: 3 in all."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    q, u = irfw_groups(world, vpc)
    conf = iso_conf(world, group_name="site-q-${vpc_id}", untrack_group_name="site-u-${vpc_id}")
    px = proxy()
    p = run(world, conf, iid, rc=0, proxy=px)
    assert containment(p, iid)["state"] == "contained"
    assert changes(px) == [("MIA", iid, [u]), ("MNIA", enis_of(world, iid)[0], [q])]
    assert len(described(px, "DescribeSecurityGroups")) == 3
    assert px.count("CreateSecurityGroup") == 0


def test_stranger_named_like_the_untracking_group_still_refused(world, proxy):
    """A group holding the untracking group's name without irfw's tag is
    still not put on, though the combined look-ups answered for it."""
    w = world.vpc_world(enis=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    world.client("ec2").create_security_group(GroupName=f"irfw-untrack-{vpc}", Description="not irfw's", VpcId=vpc)
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=2, proxy=px)
    assert "is not irfw's untracking group" in p.stderr
    assert changes(px) == []
    assert own_groups(world, vpc, enis_of(world, iid)[0]) == {web}
    assert len(described(px, "DescribeSecurityGroups")) == 2  # both names, then both tags


def test_given_group_described_once(world, proxy):
    """-g: the given group is described once (prepare judges it, then uses
    it), the untracking group found by name (its tag look-up sent along):
    4 in all with the read-back."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    q, u = irfw_groups(world, vpc)
    px = proxy()
    p = run(world, iso_conf(world), iid, rc=0, proxy=px, extra=["-g", q])
    assert containment(p, iid)["state"] == "contained"
    assert changes(px) == [("MIA", iid, [u]), ("MNIA", enis_of(world, iid)[0], [q])]
    dsg = described(px, "DescribeSecurityGroups")
    assert len(dsg) == 4 and len(set(dsg)) == 4, dsg
    assert sum(1 for d in dsg if ("GroupId.1", q) in d) == 1


def test_policy_has_the_instance_form_only_with_break_tracked(world):
    import json
    for on, want in (("true", True), ("false", False)):
        conf = world.write_conf(["isolate"], {"isolate": {"break_tracked": on}})
        doc = json.loads(world.irfw("policy", "--conf", conf, check_rc=0).stdout)
        acts = {a for st in doc["Statement"] for a in st["Action"]}
        assert ("ec2:ModifyInstanceAttribute" in acts) is want, acts
        assert "ec2:ModifyNetworkInterfaceAttribute" in acts
