#!/usr/bin/env python3
"""The sequential reference client: what the tool irfw replaces did, one
instance after another, with boto3 and its default retries.

    reference.py --endpoint URL --region R IDS_FILE

For each instance: describe it; isolate it (one quarantine group per VPC,
made once with no rule, its default egress rule revoked, set on every
network interface); take a console screenshot and store it in S3 with
SSE-KMS (the key whose description is "test", bucket
s3-access-logs.ACCOUNT-REGION); snapshot each volume; turn termination
protection on; tag it; publish to SNS (topic slack-events).  A failed step
is counted and the next one runs.  Prints one JSON document: the failed
steps, and when each step ended (wall clock, for the benchmark).
"""
import argparse
import base64
import json
import sys
import time

import boto3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("ids_file")
    a = ap.parse_args()
    ids = [line.strip() for line in open(a.ids_file) if line.strip()]

    def c(svc):
        return boto3.client(svc, region_name=a.region, endpoint_url=a.endpoint)

    ec2, s3, sns, kms = c("ec2"), c("s3"), c("sns"), c("kms")
    account = c("sts").get_caller_identity()["Account"]
    bucket = f"s3-access-logs.{account}-{a.region}"
    topic = f"arn:aws:sns:{a.region}:{account}:slack-events"
    key = None
    for page in kms.get_paginator("list_keys").paginate():
        for k in page["Keys"]:
            if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("Description") == "test":
                key = k["KeyArn"]
    groups = {}
    failed = []
    steps = []  # every step's end (wall clock), for the benchmark's phase times

    def step(iid, name, fn):
        try:
            out = fn()
            steps.append({"instance_id": iid, "step": name, "ok": True, "end": time.time()})
            return out
        except Exception as e:  # count it, go on with the next step
            failed.append({"instance_id": iid, "step": name, "error": str(e)[:300]})
            steps.append({"instance_id": iid, "step": name, "ok": False, "end": time.time()})
            return None

    for iid in ids:
        inst = step(iid, "describe", lambda: ec2.describe_instances(
            InstanceIds=[iid])["Reservations"][0]["Instances"][0])
        if not inst:
            continue
        vpc = inst["VpcId"]

        def quarantine_group():
            if vpc not in groups:
                g = ec2.create_security_group(GroupName=f"quarantine-{vpc}", Description="quarantine",
                                              VpcId=vpc)["GroupId"]
                ec2.revoke_security_group_egress(GroupId=g, IpPermissions=[
                    {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
                groups[vpc] = g
            return groups[vpc]

        def isolate():
            g = quarantine_group()
            for eni in inst["NetworkInterfaces"]:
                ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=[g])
        step(iid, "isolate", isolate)

        def screenshot():
            img = base64.b64decode(ec2.get_console_screenshot(InstanceId=iid, WakeUp=True)["ImageData"])
            kw = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key} if key else {}
            s3.put_object(Bucket=bucket, Key=f"{iid}/screenshot.jpg", Body=img, ContentType="image/jpeg", **kw)
        step(iid, "screenshot", screenshot)

        def snapshots():
            for b in inst.get("BlockDeviceMappings", []):
                if "Ebs" in b:
                    ec2.create_snapshot(VolumeId=b["Ebs"]["VolumeId"], Description=f"forensics {iid}")
        step(iid, "snapshot", snapshots)
        step(iid, "protect", lambda: ec2.modify_instance_attribute(
            InstanceId=iid, DisableApiTermination={"Value": True}))
        step(iid, "tag", lambda: ec2.create_tags(Resources=[iid], Tags=[
            {"Key": "status", "Value": "quarantined"}, {"Key": "forensics", "Value": "true"}]))
        step(iid, "notify", lambda: sns.publish(TopicArn=topic, Subject=f"Instance {iid} quarantined",
                                                Message=f"Instance {iid} was isolated in {groups.get(vpc)}; "
                                                        "screenshot and snapshots taken."))
    json.dump({"instances": len(ids), "failed_steps": failed, "steps": steps}, sys.stdout)
    sys.stdout.write("\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
