#!/usr/bin/env python3
"""Regenerate the generated seeds: moto-* of tests/fuzz/xml/ and
tests/fuzz/aws_error/, v4-* and classic-* of tests/fuzz/sigv4/.

    python3 tests/fuzz/gen-seeds.py

Runs boto3 against moto in-process (no server, no network) over the calls
irfw makes, and saves each reply body exactly as moto sent it: successful
XML replies as tests/fuzz/xml/moto-<service>-<Operation>.xml, error replies
as tests/fuzz/aws_error/moto-<service>-<Operation>-<Code> (one control byte
naming the wire protocol and status, then the body; see fuzz_aws_error.c)
and, when XML, also as an xml seed.  The seeds not named moto-* (real AWS
replies from AWS's documentation, hand-made edge cases, crash-* inputs) are
kept as they are.  Needs moto and boto3 (scripts/bootstrap.sh installs them).

The sigv4 seeds are the requests of the AWS SigV4 test suites in
tests/data/sigv4/ (v4/*/request.txt, classic/*/*.req) in fuzz_sigv4.c's
format: a flags byte, then method, path, query and header names and values
separated by NUL bytes, the body last.
"""
import os
import re
import sys

import boto3
import botocore.exceptions

HERE = os.path.dirname(os.path.abspath(__file__))
WIRE = {"ec2": 0, "query": 1, "rest-xml": 2, "json": 3, "rest-json": 3}
STATUSES = [400, 403, 404, 301, 500, 503, 429, 412]
REGION = "us-east-1"

captured = []  # (service, operation, protocol, status, body)


def capture(event_name, response_dict=None, operation_model=None, **_):
    svc = operation_model.service_model
    captured.append((svc.endpoint_prefix, operation_model.name, svc.protocol,
                     response_dict["status_code"], response_dict["body"] or b""))


def client(name):
    c = boto3.client(name, region_name=REGION, aws_access_key_id="AKIDEXAMPLE",
                     aws_secret_access_key="secret")
    c.meta.events.register("before-parse.*.*", capture)
    return c


def call(c, op, **kw):
    try:
        return getattr(c, op)(**kw)
    except botocore.exceptions.ClientError:
        return None
    except Exception as e:  # moto's own bugs (a KeyError for a missing ASG)
        print(f"moto failed on {op}: {type(e).__name__} {e}", file=sys.stderr)
        return None


def world():
    from moto import mock_aws

    with mock_aws():
        world_calls()


def world_calls():
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="quarantine", Description="irfw quarantine",
                                   VpcId=vpc)["GroupId"]
    call(ec2, "authorize_security_group_ingress", GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "192.0.2.0/24", "Description": "admin <&> \"net\""}]}])
    call(ec2, "revoke_security_group_egress", GroupId=sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    r = ec2.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2, SubnetId=sub,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [
                              {"Key": "Name", "Value": "web \u202e\u00e9"}]}])
    iid = r["Instances"][0]["InstanceId"]
    vol = ec2.create_volume(AvailabilityZone=REGION + "a", Size=8)["VolumeId"]
    call(ec2, "attach_volume", VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    eni = ec2.create_network_interface(SubnetId=sub, Groups=[sg])["NetworkInterface"]
    call(ec2, "attach_network_interface", NetworkInterfaceId=eni["NetworkInterfaceId"],
         InstanceId=iid, DeviceIndex=1)
    call(ec2, "describe_instances", InstanceIds=[iid])
    call(ec2, "describe_instances", InstanceIds=["i-0123456789abcdef0"])
    call(ec2, "describe_security_groups", GroupIds=[sg])
    call(ec2, "describe_network_interfaces", Filters=[{"Name": "attachment.instance-id",
                                                       "Values": [iid]}])
    call(ec2, "modify_network_interface_attribute",
         NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[sg])
    call(ec2, "modify_instance_attribute", InstanceId=iid, DisableApiTermination={"Value": True})
    call(ec2, "modify_instance_attribute", InstanceId=iid, DisableApiTermination={"Value": True},
         DryRun=True)
    call(ec2, "describe_instance_attribute", InstanceId=iid, Attribute="disableApiTermination")
    call(ec2, "describe_volumes", Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
    snap = call(ec2, "create_snapshot", VolumeId=vol, Description="irfw IR-1",
                TagSpecifications=[{"ResourceType": "snapshot",
                                    "Tags": [{"Key": "irfw:case", "Value": "IR-1"}]}])
    if snap:
        call(ec2, "describe_snapshots", SnapshotIds=[snap["SnapshotId"]])
    call(ec2, "create_tags", Resources=[iid], Tags=[{"Key": "irfw:status", "Value": "quarantined"}])
    call(ec2, "get_console_output", InstanceId=iid)
    call(ec2, "describe_iam_instance_profile_associations")
    call(ec2, "describe_addresses")
    call(ec2, "describe_spot_instance_requests")
    call(ec2, "delete_security_group", GroupId="sg-00000000")
    call(ec2, "describe_volumes", VolumeIds=["vol-00000000"])

    sts = client("sts")
    call(sts, "get_caller_identity")
    call(sts, "assume_role", RoleArn="arn:aws:iam::123456789012:role/ir", RoleSessionName="irfw")

    iam = client("iam")
    call(iam, "create_role", RoleName="web", AssumeRolePolicyDocument="{}")
    call(iam, "create_instance_profile", InstanceProfileName="web")
    call(iam, "add_role_to_instance_profile", InstanceProfileName="web", RoleName="web")
    call(iam, "get_instance_profile", InstanceProfileName="web")
    call(iam, "get_instance_profile", InstanceProfileName="missing")
    call(iam, "list_instance_profiles")

    asg = client("autoscaling")
    call(asg, "create_launch_configuration", LaunchConfigurationName="lc", ImageId="ami-12c6146b",
         InstanceType="t2.micro")
    call(asg, "create_auto_scaling_group", AutoScalingGroupName="web", LaunchConfigurationName="lc",
         MinSize=0, MaxSize=2, VPCZoneIdentifier=sub)
    call(asg, "describe_auto_scaling_groups")
    call(asg, "describe_auto_scaling_instances")
    call(asg, "detach_instances", AutoScalingGroupName="missing", InstanceIds=[iid],
         ShouldDecrementDesiredCapacity=True)

    elb = client("elb")
    call(elb, "create_load_balancer", LoadBalancerName="web", Listeners=[
        {"Protocol": "http", "LoadBalancerPort": 80, "InstancePort": 80}],
         AvailabilityZones=[REGION + "a"])
    call(elb, "register_instances_with_load_balancer", LoadBalancerName="web",
         Instances=[{"InstanceId": iid}])
    call(elb, "describe_load_balancers")
    call(elb, "describe_load_balancers", LoadBalancerNames=["missing"])

    elbv2 = client("elbv2")
    tg = call(elbv2, "create_target_group", Name="web", Protocol="HTTP", Port=80, VpcId=vpc)
    if tg:
        arn = tg["TargetGroups"][0]["TargetGroupArn"]
        call(elbv2, "register_targets", TargetGroupArn=arn, Targets=[{"Id": iid}])
        call(elbv2, "describe_target_health", TargetGroupArn=arn)
    call(elbv2, "describe_target_groups")
    call(elbv2, "describe_target_groups", Names=["missing"])

    sns = client("sns")
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    call(sns, "publish", TopicArn=topic, Subject="irfw", Message="contained")
    call(sns, "publish", TopicArn=topic + "-missing", Message="x")
    call(sns, "list_topics")

    s3 = client("s3")
    s3.create_bucket(Bucket="evidence")
    s3.put_object(Bucket="evidence", Key="IR-1/i-1/console.txt", Body=b"boot")
    s3.put_object(Bucket="evidence", Key="IR-1/i-1/meta data & <x>.json", Body=b"{}")
    call(s3, "list_objects_v2", Bucket="evidence", Prefix="IR-1/")
    call(s3, "list_objects_v2", Bucket="evidence", Prefix="none/")
    call(s3, "get_bucket_location", Bucket="evidence")
    call(s3, "get_bucket_encryption", Bucket="evidence")
    call(s3, "get_object", Bucket="evidence", Key="missing")
    call(s3, "list_objects_v2", Bucket="missing")
    call(s3, "list_buckets")
    mp = call(s3, "create_multipart_upload", Bucket="evidence", Key="big")
    if mp:
        call(s3, "abort_multipart_upload", Bucket="evidence", Key="big", UploadId=mp["UploadId"])

    kms = client("kms")
    call(kms, "describe_key", KeyId="alias/missing")
    call(kms, "describe_key", KeyId="not-a-key")
    ssm = client("ssm")
    call(ssm, "get_parameter", Name="missing")


def safe(s):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:60]


def sigv4_seed(req, token):
    """One request file of the suites as a fuzz_sigv4 input."""
    head, _, body = req.partition(b"\n\n")
    lines = head.split(b"\n")
    method, _, rest = lines[0].partition(b" ")
    target = rest.rsplit(b" ", 1)[0]
    path, _, query = target.partition(b"?")
    headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and headers:  # a folded value
            headers[-1][1] += b" " + line.strip()
        elif b":" in line:
            name, _, value = line.partition(b":")
            headers.append([name, value])
    flags = 128 | (16 if token else 0)  # the request carries its own Host
    fields = [method, path, query] + [x for h in headers for x in h]
    if body:
        fields.append(body)
    return bytes([flags]) + b"\0".join(fields)


def sigv4_seeds():
    data = os.path.join(HERE, "..", "data", "sigv4")
    out = os.path.join(HERE, "sigv4")
    for f in os.listdir(out):
        if f.startswith(("v4-", "classic-")):
            os.unlink(os.path.join(out, f))
    n = 0
    for suite in ("v4", "classic"):
        for case in sorted(os.listdir(os.path.join(data, suite))):
            d = os.path.join(data, suite, case)
            req = os.path.join(d, "request.txt" if suite == "v4" else case + ".req")
            if not os.path.isfile(req):
                continue
            token = "token" in open(os.path.join(d, "context.json")).read() \
                if os.path.exists(os.path.join(d, "context.json")) else False
            with open(req, "rb") as f:
                seed = sigv4_seed(f.read().replace(b"\r\n", b"\n"), token)
            with open(os.path.join(out, f"{suite}-{case}"), "wb") as f:
                f.write(seed)
            n += 1
    print(f"{n} sigv4 seeds")


def main():
    sigv4_seeds()
    world()
    xml_dir = os.path.join(HERE, "xml")
    err_dir = os.path.join(HERE, "aws_error")
    for d in (xml_dir, err_dir):
        for f in os.listdir(d):
            if f.startswith("moto-"):
                os.unlink(os.path.join(d, f))
    n_xml = n_err = 0
    for svc, op, proto, status, body in captured:
        body = bytes(body)
        is_xml = body.lstrip().startswith(b"<")
        if status < 300:
            if is_xml:
                with open(os.path.join(xml_dir, f"moto-{svc}-{op}.xml"), "wb") as f:
                    f.write(body)
                n_xml += 1
            continue
        m = re.search(rb"<Code>([^<]+)</Code>|\"__type\"\s*:\s*\"([^\"]+)\"", body)
        code = safe((m.group(1) or m.group(2)).decode()) if m else str(status)
        idx = STATUSES.index(status) if status in STATUSES else 0
        ctl = WIRE.get(proto, 1) | idx << 2
        with open(os.path.join(err_dir, f"moto-{svc}-{op}-{code}"), "wb") as f:
            f.write(bytes([ctl]) + body)
        n_err += 1
        if is_xml:
            with open(os.path.join(xml_dir, f"moto-{svc}-{op}-{code}.xml"), "wb") as f:
                f.write(body)
            n_xml += 1
    print(f"{n_xml} xml seeds, {n_err} error seeds")


if __name__ == "__main__":
    sys.exit(main())
