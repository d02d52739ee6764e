"""iam_profile plugin: the instance role is taken away (or swapped), the
original is recorded, and revoke_sessions puts the Deny-older-sessions
policy on the role.  State is asserted in moto."""
import json

import pytest

from conftest import AMI

CASE = "IR-IAM-1"
POLICY = "irfw-revoke-older-sessions"


def make_profile(world, name, role):
    iam = world.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                       "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    prof = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return prof


def launch(world, profile_arn=None):
    ec2 = world.client("ec2")
    kw = {"IamInstanceProfile": {"Arn": profile_arn}} if profile_arn else {}
    r = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", **kw)
    return r["Instances"][0]["InstanceId"]


def associations(world, iid):
    ec2 = world.client("ec2")
    res = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [iid]}, {"Name": "state", "Values": ["associated"]}])
    return res["IamInstanceProfileAssociations"]


def step(p, name="iam_profile"):
    assert p.json, f"no json output\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return next(s for s in p.json["instances"][0]["steps"] if s["step"] == name)


def test_disassociate_records_original(world):
    prof = make_profile(world, "web-profile", "web-role")
    iid = launch(world, prof["Arn"])
    before = associations(world, iid)
    assert len(before) == 1
    conf = world.write_conf(["iam_profile"], {"iam_profile": {}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)

    s = step(p)
    assert s["status"] == "ok", s
    assert "disassociated" in s["detail"]
    assert associations(world, iid) == []
    rec = world.manifest(CASE, iid)["steps"]["iam_profile"]["records"]["original_profile"]
    assert rec["arn"] == prof["Arn"]
    assert rec["association_id"] == before[0]["AssociationId"]
    assert rec["id"] == before[0]["IamInstanceProfile"]["Id"]
    # No revoke asked for: the role is left alone.
    assert world.client("iam").list_role_policies(RoleName="web-role")["PolicyNames"] == []


def test_replace_with_quarantine_profile(world):
    prof = make_profile(world, "web-profile", "web-role")
    quarantine = make_profile(world, "irfw-quarantine-us-east-1", "irfw-quarantine-role")
    iid = launch(world, prof["Arn"])
    conf = world.write_conf(["iam_profile"], {"iam_profile": {
        "mode": "replace", "quarantine_profile": "irfw-quarantine-${region}"}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)

    s = step(p)
    assert s["status"] == "ok", s
    now = associations(world, iid)
    assert len(now) == 1
    assert now[0]["IamInstanceProfile"]["Arn"] == quarantine["Arn"]
    rec = world.manifest(CASE, iid)["steps"]["iam_profile"]["records"]["original_profile"]
    assert rec["arn"] == prof["Arn"]

    # A second run (new case, no resume) finds the quarantine profile in
    # place and leaves it, without recording it as the original.
    conf2 = world.write_conf(["iam_profile"], {"iam_profile": {
        "mode": "replace", "quarantine_profile": quarantine["Arn"]}}, name="again.ini", case_id="IR-IAM-2")
    p = world.irfw("--conf", conf2, "-i", iid, "-o", "json", check_rc=0)
    s = step(p)
    assert s["status"] == "ok" and "already associated" in s["detail"], s
    assert associations(world, iid)[0]["IamInstanceProfile"]["Arn"] == quarantine["Arn"]
    assert "original_profile" not in world.manifest("IR-IAM-2", iid)["steps"]["iam_profile"].get("records", {})


def test_revoke_sessions_puts_deny_policy(world):
    prof = make_profile(world, "web-profile", "web-role")
    iid = launch(world, prof["Arn"])
    conf = world.write_conf(["iam_profile"], {"iam_profile": {"revoke_sessions": "true"}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)

    s = step(p)
    assert s["status"] == "ok", s
    assert "WARNING" in s["detail"] and "EVERY" in s["detail"]
    assert "WARN" in p.stderr and "EVERY instance" in p.stderr
    assert associations(world, iid) == []
    doc = world.client("iam").get_role_policy(RoleName="web-role", PolicyName=POLICY)["PolicyDocument"]
    if isinstance(doc, str):
        doc = json.loads(doc)
    st = doc["Statement"][0]
    assert st["Effect"] == "Deny" and st["Action"] == "*" and st["Resource"] == "*"
    issued = st["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
    assert issued.endswith("Z") and "T" in issued
    rec = world.manifest(CASE, iid)["steps"]["iam_profile"]["records"]
    assert rec["revoked_sessions"] == {"role": "web-role", "policy_name": POLICY, "token_issue_time": issued}


def test_no_profile_is_skipped(world):
    iid = launch(world)
    conf = world.write_conf(["iam_profile"], {"iam_profile": {"revoke_sessions": "true"}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=0)

    s = step(p)
    assert s["status"] == "skipped"
    assert s["detail"] == "no instance profile"
    assert s["aws_error"] is None


def test_replace_without_quarantine_profile_is_config_error(world):
    prof = make_profile(world, "web-profile", "web-role")
    iid = launch(world, prof["Arn"])
    conf = world.write_conf(["iam_profile"], {"iam_profile": {"mode": "replace"}}, case_id=CASE)
    line = conf.read_text().splitlines().index("mode = replace") + 1

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", check_rc=2)

    assert f"site.ini:{line}" in p.stderr, p.stderr
    assert "quarantine_profile" in p.stderr
    # Nothing was touched.
    assert len(associations(world, iid)) == 1


def test_dry_run_changes_nothing(world):
    prof = make_profile(world, "web-profile", "web-role")
    iid = launch(world, prof["Arn"])
    conf = world.write_conf(["iam_profile"], {"iam_profile": {"revoke_sessions": "true"}}, case_id=CASE)

    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--dry-run", check_rc=0)

    s = step(p)
    assert s["status"] == "ok", s
    assert "dry run: would disassociate" in s["detail"] and "would revoke" in s["detail"], s
    # IAM has no DryRun: core does not send PutRolePolicy at all.
    assert world.client("iam").list_role_policies(RoleName="web-role")["PolicyNames"] == []
    # Nothing is recorded for a change that was not made: a dry run writes
    # no case record at all.
    assert not (world.evidence / CASE / iid).exists()
    # DisassociateIamInstanceProfile has no DryRun parameter: never sent.
    assert len(associations(world, iid)) == 1
