"""Fleet inputs: --filter (DescribeInstances filters, listed and confirmed
on a terminal, --yes to skip), --finding (a GuardDuty finding, its
EventBridge event, a Security Hub ASFF finding, or a JSON array of them),
de-duplication, and unknown ids reported once."""
import json
import os
import pty
import select
import time

import pytest

from conftest import IRFW_BIN

TELL = {"tell": {"plugin": "good", "needed": "x", "phase": "report"}}


def tagged_world(world):
    w = world.vpc_world(n_instances=3, enis=1, volumes=1)
    a, b, c = w["instances"]
    ec2 = world.client("ec2")
    ec2.create_tags(Resources=[a, b], Tags=[{"Key": "app", "Value": "web"}])
    ec2.create_tags(Resources=[c], Tags=[{"Key": "app", "Value": "db"}])
    return a, b, c


def handled(p):
    return sorted(i["instance_id"] for i in p.json["instances"] if i.get("handled"))


def test_filter_with_yes(world):
    a, b, c = tagged_world(world)
    conf = world.write_conf(["tell"], TELL)
    p = world.irfw("--conf", conf, "--filter", "tag:app=web", "--filter", "instance-state-name=running", "--yes",
                   "-o", "json", "--case-id", "F1", check_rc=0)
    assert handled(p) == sorted([a, b])
    assert "matches 2 instance(s)" in p.stderr and a in p.stderr
    assert not (world.evidence / "F1" / c).exists()


def test_filter_needs_a_confirmation(world):
    a, b, c = tagged_world(world)
    conf = world.write_conf(["tell"], TELL)
    p = world.irfw("--conf", conf, "--filter", "tag:app=web", "--case-id", "F2", check_rc=2)
    assert "confirm on a terminal, or give --yes" in p.stderr
    assert not world.evidence.exists()
    # A dry run changes nothing, so it needs no confirmation.
    p = world.irfw("--conf", conf, "--filter", "tag:app=web", "--dry-run", "-o", "json", check_rc=0)
    assert handled(p) == sorted([a, b])


def test_filter_matching_nothing_and_bad_filters(world):
    tagged_world(world)
    conf = world.write_conf(["tell"], TELL)
    p = world.irfw("--conf", conf, "--filter", "tag:app=none", "--yes", check_rc=3)
    assert "no instance matches" in p.stderr
    p = world.irfw("--conf", conf, "--filter", "novalue", "--yes", check_rc=2)
    assert "expected NAME=VALUES" in p.stderr
    p = world.irfw("--conf", conf, "--filter", "tag:app=web", "--plan", check_rc=2)
    assert "--plan makes no AWS call" in p.stderr
    # An empty value would select instances whose tag is empty: refused
    # before any call, naming the filter.
    for bad in ("tag:app=web,", "tag:app=web, ,db", "tag:app=,web"):
        p = world.irfw("--conf", conf, "--filter", bad, "--yes", check_rc=2)
        assert f"--filter {bad}: an empty value" in p.stderr, p.stderr


def answer_in_pty(args, env, answer):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(IRFW_BIN), [str(IRFW_BIN), *map(str, args)], env)
    out, sent = b"", False
    deadline = time.time() + 120
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 1)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not sent and b"[y/N]" in out:
            os.write(fd, answer.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


@pytest.mark.parametrize("answer,rc", [("y", 0), ("n", 2)])
def test_filter_confirmed_on_a_terminal(world, answer, rc):
    a, b, c = tagged_world(world)
    conf = world.write_conf(["tell"], TELL)
    code, out = answer_in_pty(["--conf", conf, "--filter", "tag:app=web", "--case-id", "F3"], world.env(), answer)
    assert "Handle these 2 instance(s)? [y/N]" in out
    assert code == rc, out
    assert (world.evidence / "F3" / a).exists() == (answer == "y")


def guardduty(iid, fid="gd-1"):
    return {"schemaVersion": "2.0", "accountId": "123456789012", "region": "us-east-1", "id": fid,
            "type": "UnauthorizedAccess:EC2/SSHBruteForce", "title": "SSH brute force",
            "resource": {"resourceType": "Instance", "instanceDetails": {"instanceId": iid}}}


def asff(iid, fid="sh-1"):
    return {"SchemaVersion": "2018-10-08", "Id": fid, "Types": ["TTPs/Initial Access"], "Title": "Port probe",
            "Resources": [{"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:us-east-1:123456789012:instance/{iid}"},
                          {"Type": "AwsEc2SecurityGroup", "Id": "sg-0123456789abcdef0"}]}


@pytest.mark.parametrize("shape", ["guardduty", "guardduty-event", "asff", "securityhub-event", "array"])
def test_finding_shapes(world, shape):
    a, b, c = tagged_world(world)
    docs = {
        "guardduty": guardduty(a),
        "guardduty-event": {"version": "0", "id": "ev-1", "detail-type": "GuardDuty Finding",
                            "source": "aws.guardduty", "detail": guardduty(a)},
        "asff": asff(a),
        "securityhub-event": {"version": "0", "detail-type": "Security Hub Findings - Imported",
                              "source": "aws.securityhub", "detail": {"findings": [asff(a), asff(b, "sh-2")]}},
        "array": [guardduty(a), asff(b, "sh-2"), {"something": "else"}],
    }
    f = world.tmp / "finding.json"
    f.write_text(json.dumps(docs[shape]))
    conf = world.write_conf(["tell"], TELL)
    p = world.irfw("--conf", conf, "--finding", f, "-i", a, "-o", "json", "--case-id", "G1", check_rc=0)
    want = [a] if shape in ("guardduty", "guardduty-event", "asff") else sorted([a, b])
    assert handled(p) == want
    inst = next(i for i in p.json["instances"] if i["instance_id"] == a)
    fnd = inst["findings"][0]
    assert fnd["id"] in ("gd-1", "sh-1") and fnd["type"] and fnd["source"] in ("guardduty", "securityhub")
    rec = world.manifest("G1", a)["steps"]["core"]["records"]["findings"]
    assert rec[0]["id"] == fnd["id"]
    if shape == "array":
        assert "name no EC2 instance" in p.stderr


def test_finding_of_an_unknown_instance_and_bad_files(world):
    a, b, c = tagged_world(world)
    f = world.tmp / "finding.json"
    f.write_text(json.dumps([guardduty(a), guardduty("i-0123456789abcdef0", "gd-2")]))
    conf = world.write_conf(["tell"], TELL)
    p = world.irfw("--conf", conf, "--finding", f, "-o", "json", check_rc=3)
    assert handled(p) == [a]
    assert p.stderr.count("i-0123456789abcdef0] error: instance not found") == 1
    f.write_text("{not json")
    p = world.irfw("--conf", conf, "--finding", f, check_rc=2)
    assert "not JSON" in p.stderr
    f.write_text(json.dumps({"something": "else"}))
    p = world.irfw("--conf", conf, "--finding", f, check_rc=2)
    assert "no finding names an EC2 instance" in p.stderr
    # Not UTF-8 (a Latin-1 title): refused, not passed on to the record and
    # the notification.
    f.write_bytes(json.dumps(guardduty(a)).encode().replace(b"SSH brute force", b"SSH brute f\xe9rce"))
    p = world.irfw("--conf", conf, "--finding", f, check_rc=2)
    assert "not UTF-8" in p.stderr, p.stderr


def test_finding_reaches_the_notification(world):
    from test_notify import notifications, topic_with_queue
    a, b, c = tagged_world(world)
    arn, q = topic_with_queue(world, "oncall")
    f = world.tmp / "finding.json"
    f.write_text(json.dumps(guardduty(a)))
    conf = world.write_conf(["notify_sns"], {"notify_sns": {"topic": arn}})
    world.irfw("--conf", conf, "--finding", f, check_rc=0)
    (msg,) = notifications(world, q)
    assert "Finding:  UnauthorizedAccess:EC2/SSHBruteForce (guardduty gd-1)" in msg["Message"]
