"""isolate says "contained" only when AWS shows it.

Each test asserts, in moto, the interfaces' own groups (`own_groups`, the
group-id filter: see the docstring of test_isolate.py for moto's groupSet
quirk), the groups' rules, and irfw's exit status and the JSON summary's
`containment` of the instance.  AWS refusals moto cannot produce are played
by `Proxy` below: a local proxy in front of moto that sees each request's
action and parameters and may refuse it, or forward it and then lose the
answer.
"""
import http.server
import json
import threading
import urllib.error
import urllib.request
from urllib.parse import parse_qs

import pytest

from refusing_proxy import ec2_error
from test_isolate import enis_of, group_named, own_groups, tags_of, vpc_groups

TAG = "irfw:original-sgs"
ADMIN = "10.0.0.0/8"
REFUSED_ID = "req-refused-1"


class Proxy:
    """moto behind a proxy.  rule(action, params, forward) returns None to
    forward the request, (status, body) to answer it with that EC2 error
    document, or "drop" to close the connection without an answer.  It may
    call forward() itself (the request then reaches moto) before answering
    something else: a lost answer."""

    def __init__(self, upstream, rule):
        proxy = self
        self.calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
                action = params.get("Action", "")
                proxy.calls.append((action, params))
                answer = rule(action, params, lambda: self.upstream("POST", body))
                if answer is None:
                    self.reply(*self.upstream("POST", body))
                elif answer == "drop":
                    self.close_connection = True
                else:
                    status, data = answer
                    self.reply(status, {"Content-Type": "text/xml"}, data)

            def do_GET(self):
                self.reply(*self.upstream("GET", None))

            def upstream(self, method, body):
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                req = urllib.request.Request(upstream + self.path, data=body, method=method, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        return r.status, dict(r.headers), r.read()
                except urllib.error.HTTPError as e:
                    return e.code, dict(e.headers), e.read()

            def reply(self, status, headers, data):
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, action, dry=None):
        return sum(1 for a, p in self.calls
                   if a == action and (dry is None or (p.get("DryRun") == "true") == dry))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(world):
    made = []

    def make(rule):
        p = Proxy(world.moto.url, rule)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def unauthorized():
    return 403, ec2_error("UnauthorizedOperation", "You are not authorized to perform this operation.",
                          REFUSED_ID)


def run(world, conf, iid, rc, case="C1", extra=(), proxy=None):
    env = {"AWS_ENDPOINT_URL": proxy.url} if proxy else None
    return world.irfw("--conf", conf, "-o", "json", "--case-id", case, *extra, "-i", iid, env=env, check_rc=rc)


def containment(p, iid):
    return next(i for i in p.json["instances"] if i["instance_id"] == iid)["containment"]


def step(p, iid):
    inst = next(i for i in p.json["instances"] if i["instance_id"] == iid)
    return next(s for s in inst["steps"] if s["step"] == "isolate")


def group(world, gid):
    return world.client("ec2").describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]


def rules(g):
    """A group's rules, comparable across reads."""
    def norm(perms):
        out = []
        for r in perms:
            for k in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"):
                for x in r.get(k, []):
                    out.append((r["IpProtocol"], r.get("FromPort"), r.get("ToPort"), k,
                                x.get("CidrIp") or x.get("CidrIpv6") or x.get("PrefixListId") or x.get("GroupId")))
        return sorted(out, key=str)
    return norm(g["IpPermissions"]), norm(g["IpPermissionsEgress"])


def console_group(world, vpc, name, tags=None, wide_ingress=True, ref=None):
    """A group as the console makes it: AWS's default allow-all egress, no
    irfw marker; with HTTPS open to the world (IPv4 and IPv6), 8080 from
    another group `ref`, and an SSH rule from inside admin_cidrs (which may
    stay)."""
    ec2 = world.client("ec2")
    kw = {"TagSpecifications": [{"ResourceType": "security-group", "Tags": tags}]} if tags else {}
    gid = ec2.create_security_group(GroupName=name, Description="made by hand", VpcId=vpc, **kw)["GroupId"]
    perms = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}]
    if wide_ingress:
        perms.append({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                      "Ipv6Ranges": [{"CidrIpv6": "::/0"}]})
    if ref:
        perms.append({"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": ref}]})
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
    assert group(world, gid)["IpPermissionsEgress"], "moto gave the new group no default egress"
    return gid


def assert_untouched(world, w, iid, before_groups):
    vpc, web = w["vpc"], w["sg"]
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {web}
    after = {g["GroupId"]: rules(g) for g in vpc_groups(world, vpc)}
    assert after == before_groups, "a group was created or changed"
    assert TAG not in tags_of(world, iid)


def snapshot_groups(world, vpc):
    return {g["GroupId"]: rules(g) for g in vpc_groups(world, vpc)}


# ---------------------------------------------------------------------------
# A group irfw did not make: checked before it is used.

@pytest.mark.parametrize("source", ["name", "sgid", "group_id"])
def test_open_site_group_refused_by_default(world, source):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    name = f"irfw-quarantine-{vpc}" if source == "name" else "site-quarantine"
    gid = console_group(world, vpc, name, ref=w["sg"])
    before = snapshot_groups(world, vpc)
    section = {"admin_cidrs": ADMIN}
    extra = ()
    if source == "sgid":
        extra = ("-g", gid)
    elif source == "group_id":
        section["group_id"] = gid
    conf = world.write_conf(["isolate"], {"isolate": section})
    p = run(world, conf, iid, rc=2, extra=extra)
    # Nothing changed anywhere: not the interfaces, not the group, and no
    # untracking group made either.
    assert_untouched(world, w, iid, before)
    assert group_named(world, vpc, f"irfw-untrack-{vpc}") is None
    # The message names the group, the open rules and the ways on.
    for word in (gid, "egress open", "all traffic to 0.0.0.0/0", "tcp 443 from 0.0.0.0/0", "tcp 443 from ::/0",
                 f"tcp 8080 from group {w['sg']}", "existing_group = fix", "-g", iid):
        assert word in p.stderr, word
    assert "tcp 22 from 10.1.0.0/16" not in p.stderr  # inside admin_cidrs: not open


@pytest.mark.parametrize("source", ["name", "sgid", "group_id"])
def test_open_site_group_fixed(world, source):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    name = f"irfw-quarantine-{vpc}" if source == "name" else "site-quarantine"
    gid = console_group(world, vpc, name, ref=w["sg"])
    section = {"admin_cidrs": ADMIN, "existing_group": "fix"}
    extra = ()
    if source == "sgid":
        extra = ("-g", gid)
    elif source == "group_id":
        section["group_id"] = gid
    conf = world.write_conf(["isolate"], {"isolate": section})
    p = run(world, conf, iid, rc=0, extra=extra)
    g = group(world, gid)
    ingress, egress = rules(g)
    assert egress == []
    # The open HTTPS rule is gone; the SSH rule from inside admin_cidrs stays.
    assert ingress == [("tcp", 22, 22, "IpRanges", "10.1.0.0/16")]
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {gid}
    assert containment(p, iid)["state"] == "contained"
    assert step(p, iid)["status"] == "ok" and "existing_group = fix" in step(p, iid)["detail"]
    # What was revoked is in the case, for a later release.
    rec = world.manifest("C1", iid)["steps"]["isolate"]["records"]["revoked_rules"]
    assert rec["group_id"] == gid
    assert [r["IpProtocol"] for r in rec["egress"]] == ["-1"]
    assert sorted((r["IpProtocol"], r["FromPort"], next(iter(x.values()))) for r in rec["ingress"]
                  for k in ("IpRanges", "Ipv6Ranges", "Groups") for x in r.get(k, [])) == \
        [("tcp", 443, "0.0.0.0/0"), ("tcp", 443, "::/0"), ("tcp", 8080, w["sg"])]
    # Only one quarantine group in the VPC: the site's.
    assert not [x for x in vpc_groups(world, vpc)
                if x["GroupId"] != gid and x["GroupName"].startswith("irfw-quarantine")]


@pytest.mark.parametrize("source", ["name", "sgid", "group_id"])
def test_open_site_group_used_is_not_contained(world, source):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    name = f"irfw-quarantine-{vpc}" if source == "name" else "site-quarantine"
    gid = console_group(world, vpc, name)
    before = rules(group(world, gid))
    section = {"admin_cidrs": ADMIN, "existing_group": "use"}
    extra = ()
    if source == "sgid":
        extra = ("-g", gid)
    elif source == "group_id":
        section["group_id"] = gid
    conf = world.write_conf(["isolate"], {"isolate": section})
    p = run(world, conf, iid, rc=4, extra=extra)
    assert rules(group(world, gid)) == before  # used as it is
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {gid}
    c = containment(p, iid)
    assert c["state"] == "not-contained"
    assert f"egress open: {gid} allows all traffic to 0.0.0.0/0" in c["cause"]
    assert "tcp 443 from 0.0.0.0/0" in c["cause"] and "tcp 443 from ::/0" in c["cause"]
    assert step(p, iid)["status"] == "failed"


def test_closed_site_group_used_as_it_is(world):
    """No egress, ingress only from inside admin_cidrs: nothing to refuse."""
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    gid = console_group(world, vpc, f"irfw-quarantine-{vpc}", wide_ingress=False)
    world.client("ec2").revoke_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    before = rules(group(world, gid))
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=0)
    assert rules(group(world, gid)) == before
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {gid}
    assert containment(p, iid)["state"] == "contained"


def test_missing_sgid_is_a_usage_error(world):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    before = snapshot_groups(world, vpc)
    conf = world.write_conf(["isolate"], {"isolate": {}})
    p = run(world, conf, iid, rc=2, extra=("-g", "sg-0123456789abcdef0"))
    assert "sg-0123456789abcdef0" in p.stderr and "does not exist" in p.stderr and iid in p.stderr
    assert_untouched(world, w, iid, before)


def test_foreign_untrack_group_is_never_put_on(world):
    """A group holding the untracking group's name without irfw's marker is
    not irfw's: it is not put on an interface, not even for an instant."""
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    stranger = world.client("ec2").create_security_group(
        GroupName=f"irfw-untrack-{vpc}", Description="someone else's", VpcId=vpc)["GroupId"]
    before = snapshot_groups(world, vpc)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=2)
    assert stranger in p.stderr and "break_tracked = false" in p.stderr
    assert_untouched(world, w, iid, before)  # no quarantine group made either


# ---------------------------------------------------------------------------
# irfw's own groups: made whole whatever state they were left in.

def test_group_found_by_tag_is_irfws_and_completed(world):
    """The tag irfw:quarantine=true is irfw's marker: the group is irfw's,
    whatever its name, and is completed (no existing_group needed)."""
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    gid = console_group(world, vpc, "made-under-an-old-naming-rule",
                        tags=[{"Key": "irfw:quarantine", "Value": "true"}])
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=0)
    ingress, egress = rules(group(world, gid))
    assert egress == []
    assert ingress == [("tcp", 22, 22, "IpRanges", ADMIN)]  # exactly the admin rule
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {gid}
    assert group_named(world, vpc, f"irfw-quarantine-{vpc}") is None  # not duplicated
    assert containment(p, iid)["state"] == "contained"
    assert "completed irfw's quarantine group" in step(p, iid)["detail"]


def test_half_made_group_is_completed(world):
    """A kill between CreateSecurityGroup and RevokeSecurityGroupEgress
    leaves irfw's group with AWS's default egress and no admin rule."""
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    ec2 = world.client("ec2")
    gid = ec2.create_security_group(
        GroupName=f"irfw-quarantine-{vpc}", Description="irfw: quarantine", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": [{"Key": "irfw:quarantine", "Value": "true"}]}])["GroupId"]
    assert group(world, gid)["IpPermissionsEgress"]
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=0)
    ingress, egress = rules(group(world, gid))
    assert egress == [] and ingress == [("tcp", 22, 22, "IpRanges", ADMIN)]
    assert [g["GroupName"] for g in vpc_groups(world, vpc)].count(f"irfw-quarantine-{vpc}") == 1
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {gid}
    assert containment(p, iid)["state"] == "contained"


@pytest.mark.parametrize("loss", ["http500", "drop"])
def test_lost_create_answer(world, proxy, loss):
    """CreateSecurityGroup reaches AWS but its answer is lost: the retry
    answers InvalidGroup.Duplicate, and the look-up finds the group, which
    carries irfw's marker (put on in the same call) and is completed."""
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    lost = []

    def rule(action, params, forward):
        if action == "CreateSecurityGroup" and params.get("GroupName", "").startswith("irfw-quarantine") \
                and not lost:
            lost.append(forward())
            return "drop" if loss == "drop" else (500, ec2_error("InternalError", "lost"))
        return None

    px = proxy(rule)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=0, proxy=px)
    assert lost and lost[0][0] == 200, "the first CreateSecurityGroup did not reach moto"
    hits = [g for g in vpc_groups(world, vpc) if g["GroupName"] == f"irfw-quarantine-{vpc}"]
    assert len(hits) == 1, "duplicated"
    gid = hits[0]["GroupId"]
    ingress, egress = rules(hits[0])
    assert egress == [] and ingress == [("tcp", 22, 22, "IpRanges", ADMIN)]
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {gid}
    assert containment(p, iid)["state"] == "contained"


# ---------------------------------------------------------------------------
# The swap refused: what the interfaces hold is what is reported.

def test_modify_refused_not_contained(world, proxy):
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    px = proxy(lambda a, p, f: unauthorized() if a == "ModifyNetworkInterfaceAttribute" else None)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=4, proxy=px)
    enis = enis_of(world, iid)
    for eni in enis:
        assert own_groups(world, vpc, eni) == {web}
    c = containment(p, iid)
    assert c["state"] == "not-contained"
    for eni in enis:
        assert (f"ModifyNetworkInterfaceAttribute with the untracking group" in c["cause"]
                or f"ModifyNetworkInterfaceAttribute refused on {eni}" in c["cause"])
        assert f"{eni} still in {web} (web)" in c["cause"]
    assert f"UnauthorizedOperation (request {REFUSED_ID})" in c["cause"]
    assert "original groups kept" in c["cause"]
    s = step(p, iid)
    assert s["status"] == "failed" and "UnauthorizedOperation" in (s["aws_error"] or "")
    # The untracking group was never on an interface: removed.
    assert group_named(world, vpc, f"irfw-untrack-{vpc}") is None


def test_one_interface_refused_partially_contained(world, proxy):
    """One interface of two cannot be changed: partially contained, and the
    cause names that interface (and not the other)."""
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    good, bad = enis_of(world, iid)
    px = proxy(lambda a, p, f: unauthorized()
               if a == "ModifyNetworkInterfaceAttribute" and p.get("NetworkInterfaceId") == bad else None)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=4, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    assert own_groups(world, vpc, good) == {qid}
    assert own_groups(world, vpc, bad) == {web}
    c = containment(p, iid)
    assert c["state"] == "partially-contained"
    assert f"{bad} still in {web} (web)" in c["cause"] and good not in c["cause"]


def name_of(world, gid, cache={}):
    if gid not in cache:
        cache[gid] = group(world, gid)["GroupName"]
    return cache[gid]


def test_quarantine_swap_refused_revert_allowed(world, proxy):
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]

    def rule(action, params, forward):
        if action == "ModifyNetworkInterfaceAttribute" and \
                name_of(world, params["SecurityGroupId.1"]).startswith("irfw-quarantine"):
            return unauthorized()
        return None

    px = proxy(rule)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=4, proxy=px)
    enis = enis_of(world, iid)
    for eni in enis:
        assert own_groups(world, vpc, eni) == {web}  # put back
    c = containment(p, iid)
    assert c["state"] == "not-contained"
    assert "original groups put back" in c["cause"] and "LEFT" not in c["cause"]
    for eni in enis:
        assert f"{eni} still in {web}" in c["cause"]
    # The untracking group went on and came off each interface.
    assert px.count("ModifyNetworkInterfaceAttribute") == 3 * len(enis)
    assert group_named(world, vpc, f"irfw-untrack-{vpc}") is None


def test_swap_and_revert_refused_left_all_open(world, proxy):
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]

    def rule(action, params, forward):
        if action == "ModifyNetworkInterfaceAttribute":
            gid = params["SecurityGroupId.1"]
            if gid == web or name_of(world, gid).startswith("irfw-quarantine"):
                return unauthorized()
        return None

    px = proxy(rule)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=4, proxy=px)
    u = group_named(world, vpc, f"irfw-untrack-{vpc}")
    assert u, "the untracking group an interface holds was deleted"
    enis = enis_of(world, iid)
    for eni in enis:
        assert own_groups(world, vpc, eni) == {u["GroupId"]}
    c = containment(p, iid)
    assert c["state"] == "not-contained"
    for eni in enis:
        assert f"{eni} LEFT IN THE ALL-OPEN untracking group {u['GroupId']}" in c["cause"]
    assert "kept" in step(p, iid)["detail"] or u["GroupId"] in p.stderr
    assert "is still on" in p.stderr  # not removed, and said loudly


def test_untrack_refused_quarantined_directly(world, proxy):
    """The untracking group cannot go on: the quarantine group goes on
    directly (containment first), and tracked flows may survive."""
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]

    def rule(action, params, forward):
        if action == "ModifyNetworkInterfaceAttribute" and \
                name_of(world, params["SecurityGroupId.1"]).startswith("irfw-untrack"):
            return unauthorized()
        return None

    px = proxy(rule)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=4, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    for eni in enis_of(world, iid):
        assert own_groups(world, vpc, eni) == {qid}
    c = containment(p, iid)
    assert c["state"] == "partially-contained" and "tracked connections" in c["cause"]


# ---------------------------------------------------------------------------
# Containment goes first and alone.

def test_throttled_tag_does_not_stop_containment(world, proxy):
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    px = proxy(lambda a, p, f: (503, ec2_error("RequestLimitExceeded", "Request limit exceeded."))
               if a == "CreateTags" else None)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}}, max_attempts=1)
    p = run(world, conf, iid, rc=0, proxy=px)
    assert px.count("CreateTags") >= 1
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    enis = enis_of(world, iid)
    for eni in enis:
        assert own_groups(world, vpc, eni) == {qid}
    assert containment(p, iid)["state"] == "contained"
    s = step(p, iid)
    assert s["status"] == "ok"
    assert f"the original-groups tag {TAG} could not be set (RequestLimitExceeded" in s["detail"]
    assert "the case record holds them" in s["detail"]
    assert TAG not in tags_of(world, iid)
    rec = world.manifest("C1", iid)["steps"]["isolate"]["records"]
    assert rec["original_groups"] == {e: [web] for e in enis}
    assert rec["containment"]["state"] == "contained"


# ---------------------------------------------------------------------------
# irfw check: proves the rights, changes nothing, even on a first incident.

def check(world, conf, iid, rc, proxy=None):
    env = {"AWS_ENDPOINT_URL": proxy.url} if proxy else None
    return world.irfw("--conf", conf, "-o", "json", "check", "-i", iid, env=env, check_rc=rc)


def test_check_first_incident_refused(world, proxy):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    before = snapshot_groups(world, vpc)
    px = proxy(lambda a, p, f: unauthorized() if a == "ModifyNetworkInterfaceAttribute" else None)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = check(world, conf, iid, rc=1, proxy=px)
    s = step(p, iid)
    assert s["status"] == "failed"
    assert "UnauthorizedOperation" in s["detail"] and "ModifyNetworkInterfaceAttribute" in s["detail"]
    # The right to create the group was asked for with DryRun, and nothing made.
    assert px.count("CreateSecurityGroup", dry=True) >= 1 and px.count("CreateSecurityGroup", dry=False) == 0
    assert px.count("ModifyNetworkInterfaceAttribute", dry=False) == 0
    assert_untouched(world, w, iid, before)
    assert not [g for g in vpc_groups(world, vpc) if g["GroupName"].startswith("irfw-")]


def test_check_first_incident_allowed(world, proxy):
    w = world.vpc_world()
    iid, vpc = w["instances"][0], w["vpc"]
    before = snapshot_groups(world, vpc)
    px = proxy(lambda a, p, f: None)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = check(world, conf, iid, rc=0, proxy=px)
    s = step(p, iid)
    assert s["status"] == "ok"
    assert "checked: " in s["detail"] and "not checked: " in s["detail"]
    assert px.count("ModifyNetworkInterfaceAttribute", dry=True) == len(enis_of(world, iid))
    assert px.count("ModifyNetworkInterfaceAttribute", dry=False) == 0
    assert px.count("CreateSecurityGroup", dry=False) == 0
    assert_untouched(world, w, iid, before)
    # check never reports containment.
    assert containment(p, iid)["state"] == "not-attempted"


# ---------------------------------------------------------------------------
# The good path, verified.

def test_three_interfaces_all_contained(world):
    w = world.vpc_world(enis=3)
    iid, vpc = w["instances"][0], w["vpc"]
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=0)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    enis = enis_of(world, iid)
    assert len(enis) == 3
    for eni in enis:
        assert own_groups(world, vpc, eni) == {qid}
    c = containment(p, iid)
    assert c == {"state": "contained", "outcome": "CONTAINED", "cause": ""}
    assert world.manifest("C1", iid)["steps"]["isolate"]["records"]["containment"]["state"] == "contained"


def test_untrack_group_removed_after_the_batch(world):
    w = world.vpc_world(n_instances=3)
    vpc = w["vpc"]
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    args = ["--conf", conf, "-o", "json", "--case-id", "C1", "--jobs", "3"]
    for i in w["instances"]:
        args += ["-i", i]
    p = world.irfw(*args, check_rc=0)
    assert not [g for g in vpc_groups(world, vpc)
                if g["GroupName"] == f"irfw-untrack-{vpc}" or
                any(t["Key"] == "irfw:untrack" for t in g.get("Tags", []))]
    for i in w["instances"]:
        assert containment(p, i)["state"] == "contained"
        assert "after the untracking group" in step(p, i)["detail"]


@pytest.fixture
def small_disk(world):
    """A tiny tmpfs for the evidence folder, to fill up on purpose."""
    import subprocess
    mnt = world.tmp / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the full-disk path is not exercised")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path):
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_full_evidence_disk_does_not_stop_containment(world, proxy, small_disk):
    """The evidence folder fills up once the case is open: the instance is
    contained all the same. What the journal could still take (a line fits
    in its last page) is recorded there, which is the record: the original
    groups are in journal.jsonl; manifest.json, its cache, cannot be
    rewritten, and irfw says so."""
    w = world.vpc_world()
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    world.evidence = small_disk / "cases"

    def rule(action, params, forward):
        # The last call of prepare (opening the new untracking group): the
        # case is open, nothing is changed on the instance yet.
        if action == "AuthorizeSecurityGroupIngress" and \
                name_of(world, params["GroupId"]).startswith("irfw-untrack"):
            fill(small_disk / "filler")
        return None

    px = proxy(rule)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=None, proxy=px)
    qid = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    enis = enis_of(world, iid)
    for eni in enis:
        assert own_groups(world, vpc, eni) == {qid}
    assert containment(p, iid)["state"] == "contained"
    assert "No space left on device" in p.stderr and "case record" in p.stderr, p.stderr
    journal = [json.loads(line) for line in
               (small_disk / "cases" / "C1" / iid / "journal.jsonl").read_text().splitlines()]
    recorded = [e for e in journal if e.get("event") == "record" and e.get("key") == "original_groups"]
    s = step(p, iid)
    if recorded:
        got = recorded[-1]["value"]
        assert sorted(got) == sorted(enis) and all(got[e] == [web] for e in enis), got
        assert s["status"] == "ok" and p.returncode == 0, (s, p.stderr)
    else:
        # The journal could not take it either: the step says so, after
        # the containment, with the groups.
        assert p.returncode == 1 and s["status"] == "failed", s
        assert s["detail"].startswith("contained; but the original groups could not be recorded")
        for eni in enis:
            assert f"{eni}={web}" in s["detail"]
    # The tag, set after the change, still keeps them.
    assert sorted(tags_of(world, iid)[TAG].split(";")) == sorted(f"{e}={web}" for e in enis)


# ---- resuming a case: containment is read again, never taken from the record ----

def test_resume_reads_containment_again_and_restores_it(world):
    """A contained case is re-run after someone put an interface back in
    its old group and attached a new one in it: the record says contained,
    AWS does not.  isolate, which verified containment, is never resumed as
    done: it reads AWS back, quarantines the two again, and the run says
    what AWS then shows; tag follows the verified state."""
    w = world.vpc_world(enis=2)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    conf = world.write_conf(["isolate", "tag"], {"isolate": {"admin_cidrs": "10.0.0.0/8"}})
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "RES-1", "-o", "json", check_rc=0)
    q = group_named(world, vpc, f"irfw-quarantine-{vpc}")["GroupId"]
    ec2 = world.client("ec2")
    first = enis_of(world, iid)[0]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=first, Groups=[web])
    new = ec2.create_network_interface(SubnetId=w["subnet"], Groups=[web])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=new, InstanceId=iid, DeviceIndex=2)

    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "RES-1", "-o", "json", check_rc=0)
    inst = p.json["instances"][0]
    iso = {s["step"]: s for s in inst["steps"]}["isolate"]
    assert iso["status"] == "ok" and not iso.get("resumed"), iso
    # What AWS shows now is what the run says: every interface in q only.
    held = {e: own_groups(world, vpc, e) for e in enis_of(world, iid)}
    assert held == {e: {q} for e in held} and new in held, held
    assert inst["containment"]["state"] == "contained"
    assert tags_of(world, iid)["irfw:status"] == "quarantined"
    # The original groups of the interface attached since are recorded for
    # release; the first interface's stay those of the first run.
    orig = world.manifest("RES-1", iid)["steps"]["isolate"]["records"]["original_groups"]
    assert orig[first] == [web] and orig[new] == [web]


def test_resume_that_cannot_contain_again_says_so(world, proxy):
    """The same, but AWS now refuses the change: the re-run must report the
    interface open (exit 4, not contained), not the record's CONTAINED."""
    w = world.vpc_world(enis=2)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    conf = world.write_conf(["isolate", "tag"], {"isolate": {"admin_cidrs": "10.0.0.0/8"}})
    world.irfw("--conf", conf, "-i", iid, "--case-id", "RES-2", "-o", "json", check_rc=0)
    first = enis_of(world, iid)[0]
    world.client("ec2").modify_network_interface_attribute(NetworkInterfaceId=first, Groups=[web])

    px = proxy(lambda a, p, f: unauthorized()
               if a in ("ModifyNetworkInterfaceAttribute", "ModifyInstanceAttribute") else None)
    p = world.irfw("--conf", conf, "-i", iid, "--case-id", "RES-2", "-o", "json",
                   env={"AWS_ENDPOINT_URL": px.url}, check_rc=4)
    inst = p.json["instances"][0]
    assert inst["containment"]["state"] in ("partially-contained", "not-contained"), inst["containment"]
    assert web in own_groups(world, vpc, first)
    assert tags_of(world, iid)["irfw:status"] != "quarantined"


def test_lost_answer_to_the_untracking_delete_counts_as_removed(world, proxy):
    """The untracking group's DeleteSecurityGroup reaches EC2 and its answer
    is lost; the resend gets InvalidGroup.NotFound.  The group is gone: the
    step says removed, not "kept", and warns of nothing to clean up."""
    w = world.vpc_world(enis=1)
    iid, vpc = w["instances"][0], w["vpc"]
    lost = []

    def rule(action, params, forward):
        if action == "DeleteSecurityGroup" and not lost:
            lost.append(forward())
            return "drop"
        return None

    px = proxy(rule)
    conf = world.write_conf(["isolate"], {"isolate": {"admin_cidrs": ADMIN}})
    p = run(world, conf, iid, rc=0, proxy=px)
    assert lost and group_named(world, vpc, f"irfw-untrack-{vpc}") is None
    s = step(p, iid)
    assert s["status"] == "ok" and "untracking group" in s["detail"] and "removed" in s["detail"], s
    assert "is kept" not in s["detail"] and "delete it later" not in p.stderr


def test_an_aws_error_quoting_a_secret_is_masked_everywhere(world, proxy):
    """An AWS error message that quotes the session token (an AuthFailure)
    is masked in the step's detail and AWS error, hence in the report, the
    case record and its manifest, as it is in the log."""
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    tok = "FwoGZXIvYXdzEIRFWTESTTOKEN0123456789abcdefSECRETSECRET"
    px = proxy(lambda a, p, f: (400, ec2_error("AuthFailure", "bad token " + tok))
               if a == "CreateTags" else None)
    conf = world.write_conf(["isolate", "tag"], {"isolate": {"admin_cidrs": ADMIN}})
    p = world.irfw("--conf", conf, "-o", "json", "--case-id", "SEC-1", "-i", iid, "-v",
                   env={"AWS_ENDPOINT_URL": px.url, "AWS_SESSION_TOKEN": tok})
    tag = next(s for s in p.json["instances"][0]["steps"] if s["step"] == "tag")
    assert tag["status"] == "failed" and "AuthFailure" in (tag["aws_error"] or ""), tag
    blobs = {"stdout": p.stdout, "stderr": p.stderr}
    for f in (world.evidence / "SEC-1").rglob("*"):
        if f.is_file():
            blobs[str(f)] = f.read_text(errors="replace")
    leaks = [k for k, v in blobs.items() if tok[:24] in v]
    assert not leaks, leaks
