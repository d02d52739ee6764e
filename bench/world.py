"""moto in server mode, and the fleet a benchmark run works on.

Seeding talks to moto directly, never through the proxy: it spends no
tokens and is not counted.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
from botocore.config import Config

ACCESS_KEY = "AKIAIRFWBENCHKEY0001"
SECRET_KEY = "irfw/bench/secret/key/000000000000000000"
AMI = "ami-12c6146b"  # one of moto's built-in images
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The one image the world launches, as moto's own list defines it (moto 5.2.1).
LEAN_AMIS = [{"ami_id": AMI, "state": "available", "public": True, "owner_id": "801119661308",
              "image_location": "amazon/getting-started", "sriov": "simple", "root_device_type": "ebs",
              "root_device_name": "/dev/sda1", "image_type": "machine", "platform": "windows",
              "architecture": "x86_64", "name": "Windows_Server-2008-R2_SP1-English-64Bit-Base-2017.10.13",
              "virtualization_type": "hvm", "hypervisor": "xen",
              "description": "Microsoft Windows Server 2008 R2 SP1 Datacenter 64-bit Locale English Base AMI "
                             "provided by Amazon"}]


class Moto:
    """`python3 -m moto.server -H 127.0.0.1 -p PORT`, in a session of its own.

    lean: only the image the world launches (MOTO_AMIS_PATH), instead of
    moto's ~1,200 built-in public images, each with a snapshot that every
    DescribeSnapshots then scans (and, with a tag filter, tests tag by tag)."""

    def __init__(self, lean=False, scratch=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if lean:
            path = os.path.join(scratch or "/tmp", f"moto-amis-{self.port}.json")
            with open(path, "w") as f:
                json.dump(LEAN_AMIS, f)
            env["MOTO_AMIS_PATH"] = path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError("moto.server exited at start")
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto.server did not start within 60 s")

    def cpu_seconds(self):
        """User + system CPU moto has used so far (from /proc)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def client(url, service, region=REGION):
    return boto3.client(service, region_name=region, endpoint_url=url, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(retries={"max_attempts": 2, "mode": "standard"}))


def shares(n, world):
    """How many instances of each kind: plain, multi-ENI, spot, Auto Scaling."""
    if world in ("simple", "plain"):
        return {"plain": n, "multi_eni": 0, "spot": 0, "asg": 0}
    k = round(n * 0.2)
    return {"plain": n - 3 * k, "multi_eni": k, "spot": k, "asg": k}


def warm(url):
    """One read of every service either client calls, before either runs.
    moto builds a service's backend on the first request to it (45-90 ms
    for Auto Scaling, ELB and ELBv2, measured); AWS has no such cost, and
    the client that happens to touch a service first should not pay it."""
    client(url, "autoscaling").describe_auto_scaling_instances(MaxRecords=1)
    client(url, "elbv2").describe_target_groups(PageSize=1)
    client(url, "elb").describe_load_balancers(PageSize=1)
    client(url, "iam").list_instance_profiles(MaxItems=1)
    client(url, "s3").list_buckets()
    client(url, "kms").list_keys(Limit=1)
    client(url, "sns").list_topics()
    client(url, "sts").get_caller_identity()


def seed(url, n, world="simple"):
    """Seed a VPC with `n` instances of one ENI and two EBS volumes each
    (world "mixed": 20 % with a second ENI, 20 % spot, 20 % in an Auto
    Scaling group behind a target group), and what the default site's
    upload and notify_sns steps need: the KMS key described "test", the
    bucket s3-access-logs.ACCOUNT-REGION and the topic slack-events.
    Returns a description of the world."""
    ec2 = client(url, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/18")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    bdm = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
           {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "DeleteOnTermination": True}}]
    count = shares(n, world)
    kinds = {}

    def launch(k, name):
        ids = []
        while k > 0:
            batch = min(k, 250)
            r = ec2.run_instances(ImageId=AMI, MinCount=batch, MaxCount=batch, InstanceType="t3.micro",
                                  SubnetId=subnet, SecurityGroupIds=[sg], BlockDeviceMappings=bdm,
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "Name", "Value": name}]}])
            ids += [i["InstanceId"] for i in r["Instances"]]
            k -= batch
        return ids

    for iid in launch(count["plain"], "web"):
        kinds[iid] = "plain"
    for iid in launch(count["multi_eni"], "multi"):
        eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg])["NetworkInterface"]["NetworkInterfaceId"]
        ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=1)
        kinds[iid] = "multi_eni"

    if count["spot"]:
        def spot_ids():
            out = set()
            for page in ec2.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "vpc-id", "Values": [vpc]}]):
                for res in page["Reservations"]:
                    out |= {i["InstanceId"] for i in res["Instances"] if i.get("InstanceLifecycle") == "spot"}
            return out
        have = set()
        for _ in range(10):
            missing = count["spot"] - len(have)
            if missing <= 0:
                break
            ec2.request_spot_instances(InstanceCount=missing, Type="persistent", LaunchSpecification={
                "ImageId": AMI, "InstanceType": "t3.micro", "SubnetId": subnet, "SecurityGroupIds": [sg]})
            have = spot_ids()
        # moto ignores the launch specification's block devices: give each
        # a second volume that, like the root, goes with the instance.
        for iid in sorted(have)[:count["spot"]]:
            inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
            vol = ec2.create_volume(Size=4, AvailabilityZone=inst["Placement"]["AvailabilityZone"])["VolumeId"]
            ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
            ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
                {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}])
            kinds[iid] = "spot"

    if count["asg"]:
        ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
            "ImageId": AMI, "InstanceType": "t3.micro", "SecurityGroupIds": [sg], "BlockDeviceMappings": bdm})
        tg = client(url, "elbv2").create_target_group(
            Name="web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance")["TargetGroups"][0]
        asg = client(url, "autoscaling")
        asg.create_auto_scaling_group(
            AutoScalingGroupName="web-asg", LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
            MinSize=0, MaxSize=count["asg"], DesiredCapacity=count["asg"], VPCZoneIdentifier=subnet,
            TargetGroupARNs=[tg["TargetGroupArn"]])
        for page in asg.get_paginator("describe_auto_scaling_instances").paginate():
            for i in page["AutoScalingInstances"]:
                kinds[i["InstanceId"]] = "asg"

    enis, volumes = {}, {}
    for page in ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "vpc-id", "Values": [vpc]}]):
        for res in page["Reservations"]:
            for i in res["Instances"]:
                iid = i["InstanceId"]
                if iid not in kinds:
                    continue
                for e in i.get("NetworkInterfaces", []):
                    enis[e["NetworkInterfaceId"]] = iid
                for b in i.get("BlockDeviceMappings", []):
                    if "Ebs" in b:
                        volumes[b["Ebs"]["VolumeId"]] = iid

    account = client(url, "sts").get_caller_identity()["Account"]
    kms = client(url, "kms")
    key = kms.create_key(Description="test")["KeyMetadata"]["Arn"]
    bucket = f"s3-access-logs.{account}-{REGION}"
    client(url, "s3").create_bucket(Bucket=bucket)
    topic = client(url, "sns").create_topic(Name="slack-events")["TopicArn"]
    warm(url)
    return {"vpc": vpc, "subnet": subnet, "sg": sg, "instances": sorted(kinds), "kinds": kinds, "enis": enis,
            "volumes": volumes, "account": account, "region": REGION, "kms_key": key, "bucket": bucket,
            "topic": topic}
