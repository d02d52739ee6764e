"""tag: the instance, its volumes and ENIs carry the site's case tags.

The status tag follows the instance's verified containment (see
test_report_truth.py for every state); the tests here that expect
"quarantined" run the `contain` test fixture first, reporting contained,
since no tag may say quarantined without a containment report."""
import re

from refusing_proxy import RefusingProxy, ec2_ok


def step(p, name):
    (inst,) = p.json["instances"]
    return next(s for s in inst["steps"] if s["step"] == name)


def tags_of(ec2, rid):
    r = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [rid]}])["Tags"]
    return {t["Key"]: t["Value"] for t in r}


def resources(world, iid):
    inst = world.instance(iid)
    vols = [m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]]
    enis = [n["NetworkInterfaceId"] for n in inst["NetworkInterfaces"]]
    return vols, enis


def test_tag_defaults(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    conf = world.write_conf(["contain", "tag"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-42", "-o", "json", check_rc=0)
    s = step(p, "tag")
    assert s["status"] == "ok", s
    assert "2 volumes and 2 ENIs" in s["detail"], s
    vols, enis = resources(world, iid)
    assert len(vols) == 2 and len(enis) == 2
    caller = world.client("sts").get_caller_identity()["Arn"]
    for rid in [iid, *vols, *enis]:
        t = tags_of(ec2, rid)
        assert t["irfw:case"] == "IR-42", (rid, t)
        assert t["irfw:status"] == "quarantined"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t["irfw:quarantined-at"])
        assert t["irfw:operator"] == caller
    # Existing tags are kept.
    assert tags_of(ec2, iid)["Name"] == "web-0"
    rec = world.manifest("IR-42", iid)["steps"]["tag"]["records"]["tags"]
    assert sorted(rec["resources"]) == sorted([iid, *vols, *enis])
    assert rec["tags"]["irfw:case"] == "IR-42"
    assert rec["containment"] == "contained"
    assert "status irfw:status=quarantined (instance contained)" in s["detail"], s


def test_tag_site_naming(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    conf = world.write_conf(["contain", "tag"], {"tag": {
        "case_key": "acme:incident",
        "status_key": "acme:state",
        "status_value": "under investigation (${case_id})",
        "time_key": "",
        "operator_key": "",
        "extra": f"team=secops, ticket=SEC-${{case_id}} Name=quarantined-${{name_tag}}",
        "resources": "instance, volumes",
    }})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-7", "-o", "json", check_rc=0)
    s = step(p, "tag")
    assert s["status"] == "ok", s
    vols, enis = resources(world, iid)
    for rid in [iid, *vols]:
        t = tags_of(ec2, rid)
        assert t["acme:incident"] == "IR-7"
        assert t["acme:state"] == "under investigation (IR-7)"
        assert t["team"] == "secops" and t["ticket"] == "SEC-IR-7"
        assert not any(k.startswith("irfw:") for k in t), t
    assert tags_of(ec2, iid)["Name"] == "quarantined-web-0"
    for eni in enis:
        assert "acme:incident" not in tags_of(ec2, eni)


def test_tag_limits(world):
    """Values over 256 characters and keys over 128 are cut, with a note."""
    w = world.vpc_world()
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    case = "C" * 100
    conf = world.write_conf(["tag"], {"tag": {
        "extra": "long=${case_id}${case_id}${case_id}\n  ${case_id}${case_id}=k",
        "resources": "instance",
    }})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", case, "-o", "json", check_rc=0)
    s = step(p, "tag")
    assert s["status"] == "ok", s
    assert "cut to 256" in s["detail"] and "cut to 128" in s["detail"], s
    t = tags_of(ec2, iid)
    assert t["long"] == "C" * 256
    assert t["C" * 128] == "k"
    assert t["irfw:case"] == case


def test_tag_bad_config(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    conf = world.write_conf(["tag"], {"tag": {"resources": "instance, snapshots", "extra": "novalue"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json")
    assert p.returncode == 2
    assert "snapshots" in p.stderr and "novalue" in p.stderr
    assert "irfw:case" not in tags_of(world.client("ec2"), iid)


def test_tag_dry_run(world):
    w = world.vpc_world()
    iid = w["instances"][0]
    conf = world.write_conf(["tag"])
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-dry", "--dry-run", "-o", "json", check_rc=0)
    s = step(p, "tag")
    assert s["status"] == "ok" and "dry run" in s["detail"], s
    assert "irfw:case" not in tags_of(world.client("ec2"), iid)


def test_tag_says_tagged_only_when_describe_tags_shows_it(world):
    """CreateTags answered OK but not carried out (the proxy answers it and
    moto never sees it): the read-back, taken twice as EC2 is eventually
    consistent, shows no case tag, so the step fails naming what is
    missing, and nothing says tagged."""
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    ec2 = world.client("ec2")
    reads = []

    def rule(body):
        if b"Action=DescribeTags" in body:
            reads.append(body)
        if b"Action=CreateTags" in body and b"IR-43" in body:
            return ec2_ok("CreateTags")
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["contain", "tag"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-43", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url})
    assert proxy.refused == 1
    assert p.returncode == 1, p.stderr
    s = step(p, "tag")
    assert s["status"] == "failed", s
    assert s["detail"].startswith("CreateTags and DeleteTags answered OK, but DescribeTags shows otherwise: "
                                  f"irfw:case=IR-43 not on {iid}"), s
    assert "tagged" not in s["detail"], s
    assert len(reads) == 2, reads
    # Only the keys the step writes are asked for.
    assert b"Filter.1.Name=resource-id" in reads[0] and b"Name=key" in reads[0], reads[0]
    assert "irfw:case" not in tags_of(ec2, iid)


def test_tag_read_back_is_one_call(world):
    """A run that tags reads the tags back once, with the step's keys."""
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    reads = []

    def rule(body):
        if b"Action=DescribeTags" in body:
            reads.append(body)
        return None

    with RefusingProxy(world.moto.url, rule) as proxy:
        conf = world.write_conf(["contain", "tag"])
        p = world.irfw("--conf", conf, "-i", iid, "--case-id", "IR-44", "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    s = step(p, "tag")
    assert s["status"] == "ok" and "tagged the instance" in s["detail"], s
    assert len(reads) == 1, reads
