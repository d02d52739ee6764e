"""`irfw policy`: the least-privilege IAM policy of the configured pipeline,
from what each plugin declares it calls.  Proven sufficient and necessary
against moto with IAM enforcement on: a user holding exactly that policy
runs the default pipeline; with any one action it called removed, the step
that needs it fails with AWS's refusal, and irfw names the missing action.
"""
import json
import subprocess
import urllib.parse

import pytest

from conftest import IRFW_BIN, REPO
from refusing_proxy import RefusingProxy
from screenshot_proxy import ScreenshotProxy

REGION = "us-east-1"


def policy(world, conf, *extra):
    p = world.irfw("policy", "--conf", conf, *extra, check_rc=0)
    return json.loads(p.stdout)


def actions_of(doc):
    return {a for st in doc["Statement"] for a in st["Action"]}


def test_policy_follows_the_configuration(world):
    conf = world.write_conf(["isolate", "iam_profile", "upload", "notify_sns"],
                            {"isolate": {}, "iam_profile": {},
                             "upload": {"bucket": "site-evidence", "kms_key": "alias/ir"},
                             "notify_sns": {"topic": "arn:aws:sns:eu-west-1:123456789012:oncall"}})
    doc = policy(world, conf)
    assert doc["Version"] == "2012-10-17"
    sids = [st["Sid"] for st in doc["Statement"]]
    assert len(sids) == len(set(sids)), sids
    acts = actions_of(doc)
    for a in ["sts:GetCallerIdentity", "ec2:DescribeInstances", "ec2:ModifyNetworkInterfaceAttribute",
              "ec2:DisassociateIamInstanceProfile", "s3:PutObject", "kms:GenerateDataKey", "sns:Publish"]:
        assert a in acts, a
    # Options that are off leave their actions out.
    for a in ["ec2:CreateNetworkAcl", "ec2:ReplaceIamInstanceProfileAssociation", "iam:PassRole",
              "iam:PutRolePolicy", "ec2:ReleaseAddress"]:
        assert a not in acts, a
    res = {a: st["Resource"] for st in doc["Statement"] for a in st["Action"]}
    assert res["s3:PutObject"] == "arn:aws:s3:::site-evidence/*"
    assert res["s3:GetBucketLocation"] == "arn:aws:s3:::site-evidence"
    assert res["sns:Publish"] == "arn:aws:sns:eu-west-1:123456789012:oncall"
    # Turning them on brings them in; -b and -t scope the resources.
    conf = world.write_conf(["isolate", "iam_profile", "upload"],
                            {"isolate": {"nacl": "true"},
                             "iam_profile": {"mode": "replace", "quarantine_profile": "arn:aws:iam::1:instance-profile/q",
                                             "revoke_sessions": "true"},
                             "upload": {"kms_key": "alias/ir"}})
    doc = policy(world, conf, "-b", "other-evidence")
    acts = actions_of(doc)
    for a in ["ec2:CreateNetworkAcl", "ec2:ReplaceNetworkAclAssociation", "ec2:ReplaceIamInstanceProfileAssociation",
              "iam:PassRole", "iam:PutRolePolicy"]:
        assert a in acts, a
    res = {a: st["Resource"] for st in doc["Statement"] for a in st["Action"]}
    assert res["s3:PutObject"] == "arn:aws:s3:::other-evidence/*"
    # No AWS call was needed for any of it.
    p = world.irfw("policy", "--conf", conf, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, check_rc=0)
    assert json.loads(p.stdout)


class Counter(RefusingProxy):
    """Forwards everything and records which IAM actions were called."""

    def __init__(self, upstream):
        self.actions = set()

        def rule(body):
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
            if form.get("Action"):
                self.actions.add(form["Action"])
            return None

        super().__init__(upstream, rule)


def seed(world):
    w = world.vpc_world(enis=1, volumes=1)
    iid = w["instances"][0]
    world.client("kms").create_key(Description="test")
    world.client("s3").create_bucket(Bucket="ir-evidence")
    topic = world.client("sns").create_topic(Name="ir-oncall")["TopicArn"]
    return iid, topic


def as_moto_checks(doc):
    """moto authorises SNS, EC2 and most query actions against the resource
    "*" only (it determines a resource for S3, SQS, IAM and STS): a
    statement scoped to a topic ARN is refused there, though AWS grants
    it.  The same actions, with such resources widened to "*"; the S3
    ARNs, which moto does check, stay as irfw wrote them."""
    out = {"Version": doc["Version"], "Statement": []}
    for st in doc["Statement"]:
        scoped = not st["Resource"].startswith("arn:aws:s3:::")
        out["Statement"].append({**st, "Resource": "*" if scoped else st["Resource"]})
    return out


def user_with(world, doc, name):
    doc = as_moto_checks(doc)
    iam = world.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="irfw", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@pytest.fixture
def enforced(world):
    yield world
    world.moto.reset_auth(10**9)


# Refused, these leave the instance contained and the step ok, with a
# warning naming the permission: the all-open untracking group cannot be
# removed after use (it holds no interface).
TOLERATED = {"ec2:DeleteSecurityGroup"}

PIPELINE = ["isolate", "protect", "capture", "snapshot", "tag", "upload", "notify_sns"]


def site(world, topic):
    return world.write_conf(PIPELINE, {"isolate": {}, "notify_sns": {"topic": topic},
                                       "upload": {"bucket": "ir-evidence", "kms_key_description": "test"}},
                            max_attempts=1)


def run_as(world, conf, creds, case, proxy_url):
    return world.irfw("--conf", conf, "-o", "json", "--case-id", case,
                      "-i", world.iid, env={**creds, "AWS_ENDPOINT_URL": proxy_url})


def test_policy_is_sufficient_and_necessary(enforced):
    world = enforced
    iid, topic = seed(world)
    world.iid = iid
    conf = site(world, topic)
    doc = policy(world, conf)
    creds = user_with(world, doc, "responder")
    # Which query/EC2 actions the pipeline really calls, to know what
    # removing one must break.
    counter = Counter(world.moto.url)
    with ScreenshotProxy(counter.url) as shots:
        world.moto.reset_auth(0)  # every request checked against IAM from now on
        p = run_as(world, conf, creds, "POL-ALL", shots.url)
        assert p.returncode == 0, p.stdout + p.stderr
        steps = {s["step"]: s for s in p.json["instances"][0]["steps"]}
        assert all(s["status"] in ("ok", "skipped") for s in steps.values()), steps
        world.moto.reset_auth(10**9)
        called = {f"{svc}:{a}" for a in counter.actions
                  for svc in ("ec2", "sns", "sts") if f"{svc}:{a}" in actions_of(doc)}
        assert "ec2:ModifyNetworkInterfaceAttribute" in called and "sns:Publish" in called
        # KMS (JSON) and S3 (REST) calls carry no Action field for the
        # counter; the upload step makes these ones.
        called |= {"kms:ListKeys", "kms:DescribeKey", "s3:PutObject", "s3:GetBucketLocation"}
        # Each one it called, removed alone, breaks the step that needs it
        # with AWS's refusal, and irfw names it.
        for n, action in enumerate(sorted(called - {"sts:GetCallerIdentity", "ec2:DescribeInstances"})):
            fewer = {"Version": doc["Version"], "Statement": []}
            for st in doc["Statement"]:
                acts = [a for a in st["Action"] if a != action]
                if acts:
                    fewer["Statement"].append({**st, "Action": acts})
            c = user_with(world, fewer, f"less{n}")
            # A new VPC and instance each time: the first run's quarantine
            # group must not spare this one its CreateSecurityGroup.
            world.iid = world.vpc_world(enis=1, volumes=1)["instances"][0]
            world.moto.reset_auth(0)
            p = run_as(world, conf, c, f"POL-{n}", shots.url)
            world.moto.reset_auth(10**9)
            failed = [s for s in p.json["instances"][0]["steps"] if s["status"] == "failed"] if p.json else []
            named = f"needs the IAM permission {action}"
            if action in TOLERATED:
                # Containment is done without it; what it was for is said.
                assert named in p.stderr, (action, p.stderr)
                continue
            assert failed, (action, p.stdout, p.stderr)
            # Named in the failed step, or in the log line of the call the
            # step could not make (a group left open says "egress open").
            assert any(named in (s["aws_error"] or "") + (s["detail"] or "") for s in failed) or \
                named in p.stderr, (action, failed, p.stderr)
    counter.close()


def test_fleet_estimate_from_the_declared_calls(world):
    """Past 50 instances a run says how long the account's EC2 request
    buckets make it take, from the calls the steps declare."""
    ids = world.vpc_world(n_instances=51, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["isolate", "protect"], {"isolate": {}, "protect": {}},
                            **{"ratelimit.ec2-mutate": "10/1"})
    args = ["--conf", conf, "--dry-run"]
    for i in ids:
        args += ["-i", i]
    # The line comes before the first paced call; the dry run behind it
    # would take minutes at 10/1, so stop it once the line is out.
    proc = subprocess.Popen([str(IRFW_BIN), *map(str, args)], env=world.env(), cwd=world.tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in proc.stderr:
            seen.append(line)
            if "instances: all contained in" in line:
                break
    finally:
        proc.kill()
        proc.wait()
    # isolate: 1 ModifyNetworkInterfaceAttribute and 1 ModifyInstanceAttribute
    # a single-ENI instance (51 through 100/5, 51 through 10/1: contained in
    # 41 s); protect: 3 ModifyInstanceAttribute each (the shutdown behaviour
    # is "stop" already): 204 through 10/1: (204 - 10) / 1 s.
    assert "51 instances: all contained in under a minute, all steps in about 3.2 min" in "".join(seen), seen


# (ec2:DescribeTags is not among them: tag reads its tags back.)
RELEASE_ONLY = {"ec2:AssociateIamInstanceProfile",
                "autoscaling:ExitStandby", "autoscaling:AttachInstances", "elasticloadbalancing:RegisterTargets"}


def test_release_policy_quarantines_and_releases(enforced):
    """`irfw policy --release` is one policy for the quarantine and for
    `irfw release`: with IAM enforcement on, a user holding exactly it
    quarantines an instance with an instance profile and releases it back
    to its groups and profile.  The plain policy has none of release's own
    actions."""
    world = enforced
    w = world.vpc_world(enis=1, volumes=1)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    iam, ec2 = world.client("iam"), world.client("ec2")
    iam.create_role(RoleName="app", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    prof = iam.create_instance_profile(InstanceProfileName="app")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="app", RoleName="app")
    ec2.associate_iam_instance_profile(IamInstanceProfile={"Arn": prof}, InstanceId=iid)
    pipeline = ["asg", "elb", "iam_profile", "isolate", "protect", "tag"]
    conf = world.write_conf(pipeline, {"isolate": {}}, max_attempts=1)
    plain = actions_of(policy(world, conf))
    doc = policy(world, conf, "--release")
    assert not (plain & RELEASE_ONLY), plain & RELEASE_ONLY
    assert RELEASE_ONLY <= actions_of(doc) and plain <= actions_of(doc)
    creds = user_with(world, doc, "responder")
    env = {**creds}
    world.moto.reset_auth(0)
    p = world.irfw("--conf", conf, "-o", "json", "--case-id", "REL", "-i", iid, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    r = world.irfw("release", "--conf", conf, "-o", "json", "--case-id", "REL", "-i", iid, env=env)
    world.moto.reset_auth(10**9)
    assert r.returncode == 0, r.stdout + r.stderr
    # The interface's own groups (the group-id filter): moto also lists the
    # instance's group list in Groups, which its ModifyInstanceAttribute
    # GroupId set to the (since deleted) untracking group (MOTO-NOTES).
    from test_isolate import enis_of, own_groups
    assert [own_groups(world, vpc, e) for e in enis_of(world, iid)] == [{web}]
    assocs = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [iid]}])["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"] for a in assocs if a["State"] == "associated"] == [prof]
