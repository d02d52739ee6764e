"""The AWS client against moto with signature checking on: every service
irfw uses accepts its SigV4 requests; a wrong secret is refused clearly;
AssumeRole through a profile; IMDSv2 and container credentials."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# One step per service, each a real call through irfw_aws_call.
CALLS = {
    "c_ec2": ("ec2", "DescribeInstances", '{"InstanceId":["${instance_id}"]}'),
    "c_asg": ("autoscaling", "DescribeAutoScalingGroups", "{}"),
    "c_elbv2": ("elasticloadbalancing", "DescribeLoadBalancers", "{}"),
    "c_elb": ("elb", "DescribeLoadBalancers", "{}"),
    # moto's signature check rejects a '/' (or space, '+') in an S3 query
    # value even from boto3; the encoding itself is unit-tested.
    "c_s3": ("s3", "ListObjectsV2", '{"Bucket":"irfw-evidence","Prefix":"x"}'),
    "c_s3put": ("s3", "PutObject", '{"Bucket":"irfw-evidence","Key":"x/${instance_id}.txt","Body":"hi","ChecksumAlgorithm":"SHA256"}'),
    "c_kms": ("kms", "ListKeys", "{}"),
    "c_sns": ("sns", "ListTopics", "{}"),
    "c_sts": ("sts", "GetCallerIdentity", "{}"),
    "c_ssm": ("ssm", "GetParameter", '{"Name":"/irfw/test"}'),
    "c_iam": ("iam", "ListRoles", "{}"),
}


def calls_conf(world, calls=CALLS, **globals_):
    sections = {name: {"plugin": "awscall", "service": s, "operation": o, "params": p}
                for name, (s, o, p) in calls.items()}
    return world.write_conf(list(calls), sections, **globals_)


def seed(world):
    inst = world.vpc_world(enis=1, volumes=1)["instances"][0]
    world.client("s3").create_bucket(Bucket="irfw-evidence")
    world.client("ssm").put_parameter(Name="/irfw/test", Value="v", Type="String")
    world.client("kms").create_key(Description="test")
    world.client("sns").create_topic(Name="slack-events")
    return inst


def make_user(world, name="responder", policy=None):
    iam = world.client("iam")
    iam.create_user(UserName=name)
    doc = policy or {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture
def signed_world(world):
    yield world
    world.moto.reset_auth(10**9)  # back to (practically) no checking for the other tests


def test_every_service_accepts_signed_requests(signed_world):
    world = signed_world
    inst = seed(world)
    akid, secret = make_user(world)
    world.moto.reset_auth(0)  # from now on every request is checked
    conf = calls_conf(world)
    p = world.irfw("--conf", conf, "-i", inst, "-o", "json", "--case-id", "IR-SIG",
                   env={"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret})
    assert p.returncode == 0, p.stdout + p.stderr
    steps = {s["step"]: s for s in p.json["instances"][0]["steps"]}
    assert all(s["status"] == "ok" for s in steps.values()), steps
    case = world.evidence / "IR-SIG" / inst
    ec2 = json.loads((case / "reply-c_ec2.json").read_text())
    assert ec2["reservationSet"][0]["instancesSet"][0]["instanceId"] == inst
    sts = json.loads((case / "reply-c_sts.json").read_text())
    assert sts["Arn"].endswith("user/responder")
    ssm = json.loads((case / "reply-c_ssm.json").read_text())
    assert ssm["Parameter"]["Value"] == "v"
    kms = json.loads((case / "reply-c_kms.json").read_text())
    assert len(kms["Keys"]) == 1
    world.moto.reset_auth(10**9)
    obj = world.client("s3").get_object(Bucket="irfw-evidence", Key=f"x/{inst}.txt", ChecksumMode="ENABLED")
    assert obj["Body"].read() == b"hi"


def test_wrong_secret_is_refused_clearly(signed_world):
    world = signed_world
    inst = seed(world)
    akid, secret = make_user(world)
    world.moto.reset_auth(0)
    conf = calls_conf(world, {"c_ec2": CALLS["c_ec2"]})
    wrong = "x" * 40
    p = world.irfw("--conf", conf, "-i", inst, env={"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": wrong})
    assert p.returncode == 2, p.stderr
    assert "sts:GetCallerIdentity" in p.stderr
    assert "SignatureDoesNotMatch" in p.stderr or "InvalidClientTokenId" in p.stderr
    # Said once: DescribeInstances, sent while GetCallerIdentity was on
    # its way, is refused as well, and not reported on top.
    assert "DescribeInstances" not in p.stderr, p.stderr
    assert wrong not in p.stderr + p.stdout and secret not in p.stderr + p.stdout


def test_access_denied_names_step_code_and_request(signed_world):
    world = signed_world
    inst = seed(world)
    deny_ec2 = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:DescribeSecurityGroups", "Resource": "*"}]}
    akid, secret = make_user(world, policy=deny_ec2)
    world.moto.reset_auth(0)
    conf = calls_conf(world, {"c_sg": ("ec2", "DescribeSecurityGroups", "{}")})
    p = world.irfw("--conf", conf, "-i", inst, "-o", "json",
                   env={"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret})
    assert p.returncode == 1, p.stderr
    step = p.json["instances"][0]["steps"][0]
    assert step["status"] == "failed"
    assert step["aws_error"].startswith(("AccessDenied", "UnauthorizedOperation")), step
    assert inst in p.stderr and "c_sg" in p.stderr


def test_assume_role_through_profile(world):
    inst = seed(world)
    iam = world.client("iam")
    role = iam.create_role(RoleName="ir-responder", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    aws = world.home / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text("[base]\naws_access_key_id = AKIABASE0000000000001\n"
                                     "aws_secret_access_key = base-secret-0000000000000000000000000\n")
    (aws / "config").write_text(f"[profile ir]\nrole_arn = {role}\nsource_profile = base\n"
                                "role_session_name = irfw-test\nregion = us-east-1\n")
    conf = calls_conf(world, {"c_sts": CALLS["c_sts"]})
    p = world.irfw("--conf", conf, "-i", inst, "--profile", "ir", "--case-id", "IR-AR",
                   env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    assert p.returncode == 0, p.stderr
    who = json.loads((world.evidence / "IR-AR" / inst / "reply-c_sts.json").read_text())
    assert "assumed-role/ir-responder/irfw-test" in who["Arn"]
    assert "assumed-role/ir-responder" in world.manifest("IR-AR", inst)["runs"][0]["caller_arn"]


def start_fake(mode, token=None):
    cmd = [sys.executable, str(HERE / "fake_metadata.py"), "--port", "0", "--mode", mode, "--lifetime", "60"]
    if token:
        cmd += ["--token", token]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line and line[0] == "READY", line
    return p, int(line[1])


@pytest.mark.parametrize("mode", ["imds", "container"])
def test_instance_and_container_credentials(world, mode):
    inst = seed(world)
    token = "container-auth-token-123456" if mode == "container" else None
    srv, port = start_fake(mode, token)
    try:
        env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
        if mode == "imds":
            env.update({"AWS_EC2_METADATA_DISABLED": None,
                        "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}"})
        else:
            env.update({"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{port}/v2/credentials",
                        "AWS_CONTAINER_AUTHORIZATION_TOKEN": token})
        conf = calls_conf(world, {"c_ec2": CALLS["c_ec2"]})
        p = world.irfw("--conf", conf, "-i", inst, "-o", "json", env=env)
        assert p.returncode == 0, p.stderr
        assert p.json["instances"][0]["steps"][0]["status"] == "ok"
        stats = json.loads(subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/__stats"],
                                          capture_output=True, text=True).stdout or "{}")
        assert sum(stats.values()) >= 1 if isinstance(stats, dict) else True
    finally:
        srv.kill()
        srv.wait()


def test_region_from_imds(world):
    inst = seed(world)
    srv, port = start_fake("imds")
    try:
        conf = world.write_conf(["good"], {"good": {"needed": "x"}})
        text = conf.read_text().replace(f"region = {world.region}\n", "")
        conf.write_text(text)
        p = world.irfw("--conf", conf, "--plan", "-i", inst)
        assert p.returncode == 0
        env = {"AWS_EC2_METADATA_DISABLED": None, "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{port}"}
        p = world.irfw("--conf", conf, "-i", inst, "-o", "json", env=env)
        # The fake IMDS says eu-west-3, where the instance does not exist.
        assert p.json["region"] == "eu-west-3", p.stderr
        assert p.returncode == 3
    finally:
        srv.kill()
        srv.wait()


def test_unknown_service_and_unsupported_operation(world):
    inst = seed(world)
    conf = calls_conf(world, {"c_x": ("lambda", "ListFunctions", "{}"),
                              "c_500": ("ec2", "GetConsoleScreenshot", '{"InstanceId":"${instance_id}"}')},
                      max_attempts=2)
    p = world.irfw("--conf", conf, "-i", inst, "-o", "json")
    assert p.returncode == 1
    s = {x["step"]: x for x in p.json["instances"][0]["steps"]}
    assert s["c_x"]["aws_error"].startswith("UnknownService")
    # moto answers an HTML 500 page: a clear error, not a crash.
    assert s["c_500"]["status"] == "failed" and s["c_500"]["aws_error"].startswith("HTTP500"), s["c_500"]


def test_unreachable_endpoint_times_out_with_message(world):
    inst = "i-0123456789abcdef0"
    conf = world.write_conf(["good"], {"good": {"needed": "x"}}, max_attempts=2, connect_timeout=2)
    p = world.irfw("--conf", conf, "-i", inst, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert p.returncode in (1, 2)
    assert "ConnectionError" in p.stderr and "sts:GetCallerIdentity" in p.stderr


def test_check_is_a_permission_preflight_that_changes_nothing(signed_world):
    """`irfw check -i ID` runs each step dry: EC2 answers every change with
    its permission verdict, nothing is changed and no case is recorded."""
    world = signed_world
    w = world.vpc_world()
    inst = w["instances"][0]
    deny = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:ModifyInstanceAttribute", "Resource": "*"}]}
    akid, secret = make_user(world, policy=deny)
    world.moto.reset_auth(0)
    env = {"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret}
    conf = world.write_conf(["isolate", "protect"], {"isolate": {"admin_cidrs": "10.0.0.0/8"}})
    p = world.irfw("check", "--conf", conf, env=env)
    assert p.returncode == 0 and "credentials are fine" in p.stdout, p.stderr
    p = world.irfw("check", "--conf", conf, "-i", inst, "-o", "json", env=env)
    world.moto.reset_auth(10**9)
    assert p.returncode == 1, p.stdout + p.stderr
    steps = {s["step"]: s for s in p.json["instances"][0]["steps"]}
    assert steps["isolate"]["status"] == "ok", steps["isolate"]
    assert steps["protect"]["status"] == "failed"
    why = steps["protect"]["aws_error"] or steps["protect"]["detail"]
    assert "UnauthorizedOperation" in why or "AccessDenied" in why  # AWS / moto
    ec2 = world.client("ec2")
    assert not ec2.describe_security_groups(Filters=[{"Name": "group-name",
                                                      "Values": [f"irfw-quarantine-{w['vpc']}"]}])["SecurityGroups"]
    assert ec2.describe_instance_attribute(InstanceId=inst, Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"] is False
    assert not world.evidence.exists()
