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


def run(world, conf, *iids, case=CASE, extra=(), rc=0, cmd=()):
    args = [*cmd, "--conf", conf, "-o", "json", "--case-id", case, *extra]
    for i in iids:
        args += ["-i", i]
    return world.irfw(*args, check_rc=rc)


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
