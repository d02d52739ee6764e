"""The documented default site (conf/irfw.ini) end to end, driven by the old
tool's exact one-liner: `irfw -i ID -r us-west-2 -b BUCKET -t TOPIC`, with no
--conf (it finds conf/irfw.ini from the working directory, as from a source
tree).  State is asserted in moto."""
import json
import shutil

from conftest import REPO
from screenshot_proxy import ScreenshotProxy


def test_seed_one_liner_with_default_site(world):
    region = "us-west-2"
    world.region = region
    w = world.vpc_world(region=region)  # two interfaces, two volumes
    iid = w["instances"][0]
    kms = world.client("kms")
    key = kms.create_key(Description="test")["KeyMetadata"]["Arn"]  # the old tool's rule
    s3 = world.client("s3")
    s3.create_bucket(Bucket="ir-evidence", CreateBucketConfiguration={"LocationConstraint": region})
    sns, sqs = world.client("sns"), world.client("sqs")
    topic = sns.create_topic(Name="ir-oncall")["TopicArn"]
    q = sqs.create_queue(QueueName="oncall")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)

    # The sample site of the source tree, found from its top as a developer
    # would run it, with only the evidence folder moved into the test's.
    with ScreenshotProxy(world.moto.url) as proxy:
        p = world.irfw("-i", iid, "-r", region, "-b", "ir-evidence", "-t", topic, "-o", "json",
                       env={"AWS_ENDPOINT_URL": proxy.url, "IRFW_EVIDENCE_DIR": str(world.evidence)}, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    steps = {s["step"]: s for s in p.json["instances"][0]["steps"]}
    assert [s for s in steps.values() if s["status"] == "failed"] == []
    for name in ["isolate", "protect", "capture", "snapshot", "tag", "upload", "notify_sns"]:
        assert steps[name]["status"] == "ok", steps[name]

    ec2 = world.client("ec2")
    # Every interface is in the quarantine group (filter by group: moto's
    # describe mixes in the launch groups), and it has no egress.
    qg = ec2.describe_security_groups(Filters=[{"Name": "group-name",
                                                "Values": [f"irfw-quarantine-{w['vpc']}"]}])["SecurityGroups"][0]
    assert qg["IpPermissionsEgress"] == [] and qg["IpPermissions"] == []
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
    in_q = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [qg["GroupId"]]}])
    assert {e["NetworkInterfaceId"] for e in enis["NetworkInterfaces"]} == \
           {e["NetworkInterfaceId"] for e in in_q["NetworkInterfaces"]}
    assert len(in_q["NetworkInterfaces"]) == 2
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    assert attr["DisableApiTermination"]["Value"] is True
    inst = world.instance(iid, region)
    assert all(m["Ebs"]["DeleteOnTermination"] is False for m in inst["BlockDeviceMappings"])
    snaps = ec2.describe_snapshots(Filters=[{"Name": "tag:irfw:instance", "Values": [iid]}])["Snapshots"]
    assert len(snaps) == 2
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    case_id = p.json["case_id"]
    assert tags["irfw:case"] == case_id and tags["irfw:status"] == "quarantined"

    # Evidence in the -b bucket, encrypted with the key found by description.
    objs = s3.list_objects_v2(Bucket="ir-evidence", Prefix=f"{case_id}/{iid}/")["Contents"]
    names = {o["Key"].rsplit("/", 1)[1] for o in objs}
    assert {"describe-instance.json", "console-output.txt", "console-screenshot.jpg", "manifest.json"} <= names
    for o in objs:
        h = s3.head_object(Bucket="ir-evidence", Key=o["Key"])
        assert h["ServerSideEncryption"] == "aws:kms" and h["SSEKMSKeyId"] == key
    manifest = json.loads(s3.get_object(Bucket="ir-evidence", Key=f"{case_id}/{iid}/manifest.json")["Body"].read())
    assert manifest["steps"]["isolate"]["records"]["original_groups"]

    # The -t topic got the summary.
    msgs = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(msgs[0]["Body"])
    assert iid in body["Subject"] and case_id in body["Message"]
