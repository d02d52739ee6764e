"""Integration test harness: moto in server mode on 127.0.0.1, the real irfw
binary, and assertions on the state left in moto.

Environment:
  IRFW_BUILDDIR   build tree holding ./irfw and plugins/ (default: repo root)
  IRFW_BIN        irfw binary (default: $IRFW_BUILDDIR/irfw)
  IRFW_VALGRIND   1: run irfw under valgrind and fail on any error or leak
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[2]
BUILDDIR = Path(os.environ.get("IRFW_BUILDDIR", REPO)).resolve()
IRFW_BIN = Path(os.environ.get("IRFW_BIN", BUILDDIR / "irfw"))
PLUGINDIR = BUILDDIR / "plugins"
FIXTUREDIR = BUILDDIR / "tests" / "fixtures"

ACCESS_KEY = "AKIAIRFWTESTKEY00001"
SECRET_KEY = "irfw/test/secret/key/0000000000000000000"
AMI = "ami-12c6146b"  # one of moto's built-in images


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    def __init__(self, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1).read()
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError("moto_server exited at start")
                time.sleep(0.2)
        raise RuntimeError("moto_server did not start within 30 s")

    def reset(self):
        req = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=10).read()

    def reset_auth(self, n):
        req = urllib.request.Request(self.url + "/moto-api/reset-auth", method="POST",
                                     data=str(n).encode(), headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(req, timeout=10).read()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def moto_server():
    if not IRFW_BIN.exists():
        pytest.exit(f"irfw binary not found at {IRFW_BIN}: build first or set IRFW_BUILDDIR", 2)
    m = Moto()
    yield m
    m.stop()


class World:
    """boto3 clients on a freshly reset moto, and a runner for irfw."""

    def __init__(self, moto, tmp_path, region="us-east-1"):
        self.moto = moto
        self.tmp = tmp_path
        self.region = region
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.evidence = tmp_path / "cases"

    def client(self, service, region=None):
        return boto3.client(service, region_name=region or self.region, endpoint_url=self.moto.url,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def resource(self, service, region=None):
        return boto3.resource(service, region_name=region or self.region, endpoint_url=self.moto.url,
                              aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    @property
    def account_id(self):
        return self.client("sts").get_caller_identity()["Account"]

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "HOME": str(self.home),
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "IRFW_PLUGIN_PATH": f"{PLUGINDIR}:{FIXTUREDIR}",
            "NO_COLOR": "1",
        })
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def write_conf(self, pipeline, sections=None, name="site.ini", **globals_):
        """Write an INI: [irfw] with pipeline and globals, then one section per step."""
        lines = ["[irfw]", "pipeline = " + ", ".join(pipeline),
                 f"evidence_dir = {self.evidence}", f"region = {self.region}"]
        lines += [f"{k} = {v}" for k, v in globals_.items()]
        for sec, keys in (sections or {}).items():
            lines += ["", f"[{sec}]"] + [f"{k} = {v}" for k, v in keys.items()]
        path = self.tmp / name
        path.write_text("\n".join(lines) + "\n")
        return path

    def irfw(self, *args, env=None, input=None, check_rc=None, timeout=300, cwd=None):
        """Run irfw; returns CompletedProcess with .json (parsed stdout when -o json)."""
        cmd = [str(IRFW_BIN), *map(str, args)]
        if os.environ.get("IRFW_VALGRIND") == "1":
            cmd = [str(BUILDDIR / "libtool"), "--mode=execute", "valgrind", "--quiet", "--error-exitcode=99",
                   "--leak-check=full", "--errors-for-leak-kinds=definite,indirect", *cmd]
        p = subprocess.run(cmd, env=self.env(**(env or {})), input=input, capture_output=True, text=True,
                           timeout=timeout, cwd=cwd or self.tmp)
        p.json = None
        if "json" in args and p.stdout.strip().startswith("{"):
            p.json = json.loads(p.stdout)
        if check_rc is not None:
            assert p.returncode == check_rc, f"rc={p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        return p

    # ---- seeding helpers -------------------------------------------------
    def vpc_world(self, n_instances=1, volumes=2, enis=2, region=None):
        """A VPC with a subnet, a web security group, and instances having
        `volumes` EBS volumes (root + extra) and `enis` network interfaces."""
        ec2 = self.client("ec2", region)
        vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.10.1.0/24")["Subnet"]["SubnetId"]
        sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        bdm = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}}]
        for i in range(1, volumes):
            bdm.append({"DeviceName": f"/dev/sd{chr(ord('f') + i - 1)}",
                        "Ebs": {"VolumeSize": 4, "DeleteOnTermination": True}})
        ids = []
        for n in range(n_instances):
            r = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                  SubnetId=subnet, SecurityGroupIds=[sg], BlockDeviceMappings=bdm,
                                  TagSpecifications=[{"ResourceType": "instance",
                                                      "Tags": [{"Key": "Name", "Value": f"web-{n}"}]}])
            iid = r["Instances"][0]["InstanceId"]
            for k in range(1, enis):
                eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg])["NetworkInterface"]
                ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid,
                                             DeviceIndex=k)
            ids.append(iid)
        return {"vpc": vpc, "subnet": subnet, "sg": sg, "instances": ids}

    def instance(self, iid, region=None):
        ec2 = self.client("ec2", region)
        return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]

    def manifest(self, case_id, iid):
        return json.loads((self.evidence / case_id / iid / "manifest.json").read_text())


@pytest.fixture
def world(moto_server, tmp_path):
    moto_server.reset()
    yield World(moto_server, tmp_path)
    moto_server.reset()
