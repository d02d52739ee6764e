"""upload: every artifact and then the manifest to S3 with SSE-KMS, checked
in moto: the objects, their encryption headers, their bytes against the
local files and the manifest.

moto quirks: S3 accepts any SSEKMSKeyId and echoes it verbatim (real S3
answers the key ARN, which is what irfw sends), so the "key not found" path
is tested through KMS DescribeKey. GetConsoleScreenshot is answered by
screenshot_proxy (moto lacks it), which also lets a test make a large
artifact for real multipart uploads.
"""
import hashlib
import json
import time
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_proxy import JPEG, ScreenshotProxy  # noqa: E402

CASE = "case-up"


def step(p, name):
    return next(s for s in p.json["instances"][0]["steps"] if s["step"] == name)


class Seeded:
    def __init__(self, world, bucket=None, key_description="test"):
        self.world = world
        self.iid = world.vpc_world()["instances"][0]
        self.account = world.account_id
        self.bucket = bucket or f"s3-access-logs.{self.account}-{world.region}"
        self.s3 = world.client("s3")
        self.s3.create_bucket(Bucket=self.bucket)
        self.kms = world.client("kms")
        # A decoy first, so "by description" has to look past it.
        self.kms.create_key(Description="other")
        self.key = self.kms.create_key(Description=key_description)["KeyMetadata"]

    def run(self, upload_keys, *args, rc=0, jpeg=JPEG, capture=True, **conf_globals):
        pipeline = (["capture"] if capture else []) + ["upload"]
        conf = self.world.write_conf(pipeline, {"upload": upload_keys}, **conf_globals)
        with ScreenshotProxy(self.world.moto.url, jpeg=jpeg) as proxy:
            return self.world.irfw("--conf", conf, "-i", self.iid, "-o", "json", "--case-id", CASE, *args,
                                   env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=rc)

    def folder(self):
        return self.world.evidence / CASE / self.iid

    def manifest(self):
        return self.world.manifest(CASE, self.iid)

    def objects(self, bucket=None):
        r = self.s3.list_objects_v2(Bucket=bucket or self.bucket)
        return {o["Key"]: o for o in r.get("Contents", [])}

    def assert_uploaded(self, bucket=None, prefix=None, key_id=None):
        """Every artifact is in S3 under SSE-KMS with our key, byte-identical
        to the local file and to the manifest's hash; the manifest is last."""
        bucket = bucket or self.bucket
        key_id = key_id or self.key["Arn"]
        prefix = prefix if prefix is not None else f"{CASE}/{self.iid}/"
        man = self.manifest()
        arts = man["artifacts"]
        names = {a["name"] for a in arts}
        assert {"describe-instance.json", "console-output.txt", "console-screenshot.jpg"} <= names
        for a in arts:
            key = prefix + a["name"]
            local = (self.folder() / a["name"]).read_bytes()
            head = self.s3.head_object(Bucket=bucket, Key=key)
            assert head["ServerSideEncryption"] == "aws:kms", key
            assert head["SSEKMSKeyId"] == key_id, key
            assert head["ContentLength"] == len(local) == a["size"]
            assert head["ContentType"] == a["media_type"]
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == hashlib.sha256(local).hexdigest() == a["sha256"], key
            assert a["uri"] == f"s3://{bucket}/{key}"
            assert a["kms_key"] == key_id
            assert a["etag"].strip('"') == head["ETag"].strip('"')
        # The manifest in S3 is the final list: every artifact with its URI.
        mkey = prefix + "manifest.json"
        head = self.s3.head_object(Bucket=bucket, Key=mkey)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key_id
        remote = json.loads(self.s3.get_object(Bucket=bucket, Key=mkey)["Body"].read())
        assert {a["name"]: a["uri"] for a in remote["artifacts"]} == \
            {a["name"]: f"s3://{bucket}/{prefix}{a['name']}" for a in arts}
        assert set(self.objects(bucket)) == {prefix + a["name"] for a in arts} | {mkey}
        rec = man["steps"]["upload"]["records"]["manifest"]
        assert rec["uri"] == f"s3://{bucket}/{mkey}" and rec["kms_key"] == key_id
        return man


def test_upload_key_by_description_default_bucket(world):
    w = Seeded(world)
    p = w.run({"kms_key_description": "test"})
    s = step(p, "upload")
    assert s["status"] == "ok", s
    man = w.assert_uploaded()
    n = len(man["artifacts"])
    assert s["detail"].startswith(f"{n} artifacts to s3://{w.bucket}/{CASE}/{w.iid}/ (KMS key {w.key['Arn']})")
    assert w.s3.get_object(Bucket=w.bucket, Key=f"{CASE}/{w.iid}/console-screenshot.jpg")["Body"].read() == JPEG


@pytest.mark.parametrize("how", ["alias", "alias-arn", "key-id", "key-arn"])
def test_upload_key_by_id_arn_or_alias(world, how):
    w = Seeded(world)
    w.kms.create_alias(AliasName="alias/evidence", TargetKeyId=w.key["KeyId"])
    spec = {"alias": "alias/evidence",
            "alias-arn": f"arn:aws:kms:{world.region}:{w.account}:alias/evidence",
            "key-id": w.key["KeyId"], "key-arn": w.key["Arn"]}[how]
    p = w.run({"kms_key": spec})
    assert step(p, "upload")["status"] == "ok"
    w.assert_uploaded()


def test_key_not_found_fails_and_keeps_evidence(world):
    w = Seeded(world)
    p = w.run({"kms_key": "alias/nope"}, rc=1)
    s = step(p, "upload")
    assert s["status"] == "failed"
    assert "alias/nope" in s["detail"] and "NotFoundException" in s["aws_error"]
    assert str(w.folder()) in s["detail"]
    assert w.objects() == {}
    # The evidence is still in the case folder, intact.
    for a in w.manifest()["artifacts"]:
        assert hashlib.sha256((w.folder() / a["name"]).read_bytes()).hexdigest() == a["sha256"]
        assert "uri" not in a


def test_disabled_key_is_refused(world):
    w = Seeded(world)
    w.kms.disable_key(KeyId=w.key["KeyId"])
    p = w.run({"kms_key": w.key["KeyId"]}, rc=1)
    s = step(p, "upload")
    assert "not enabled" in s["detail"]
    assert w.objects() == {}


def test_ambiguous_description_is_refused(world):
    w = Seeded(world)
    second = w.kms.create_key(Description="test")["KeyMetadata"]["Arn"]
    p = w.run({"kms_key_description": "test"}, rc=1)
    s = step(p, "upload")
    assert "2 KMS keys have the description \"test\"" in s["detail"] and second in s["detail"]
    assert w.objects() == {}


def test_no_key_refuses_unencrypted(world):
    w = Seeded(world)
    p = w.run({}, rc=1)
    s = step(p, "upload")
    assert s["status"] == "failed"
    assert s["detail"].startswith("no KMS key configured; refusing to upload evidence unencrypted "
                                  "(set allow_unencrypted = true to override)")
    assert w.objects() == {}
    assert (w.folder() / "console-output.txt").exists()


def test_allow_unencrypted(world):
    w = Seeded(world)
    p = w.run({"allow_unencrypted": "true"})
    s = step(p, "upload")
    assert s["status"] == "ok" and "bucket default encryption" in s["detail"]
    key = f"{CASE}/{w.iid}/console-output.txt"
    assert w.s3.head_object(Bucket=w.bucket, Key=key).get("ServerSideEncryption") != "aws:kms"
    assert "kms_key" not in next(a for a in w.manifest()["artifacts"] if a["name"] == "console-output.txt")


def test_cli_bucket_overrides(world):
    w = Seeded(world)
    w.s3.create_bucket(Bucket="otherbucket")
    p = w.run({"kms_key": w.key["Arn"], "bucket": "never-used-${account_id}", "prefix": "ir/${instance_id}/"},
              "-b", "otherbucket")
    assert step(p, "upload")["status"] == "ok"
    w.assert_uploaded(bucket="otherbucket", prefix=f"ir/{w.iid}/")
    assert w.objects() == {}


def test_missing_bucket_fails_with_aws_error(world):
    w = Seeded(world)
    p = w.run({"kms_key": w.key["Arn"]}, "-b", "no-such-bucket", rc=1)
    s = step(p, "upload")
    assert "NoSuchBucket" in s["aws_error"]
    assert "evidence kept in" in s["detail"]


def test_multipart_single_part(world):
    """multipart_threshold = 0: every artifact through Create/UploadPart/Complete."""
    w = Seeded(world)
    p = w.run({"kms_key": w.key["Arn"], "multipart_threshold": "0", "part_size": "5"}, "-v")
    assert step(p, "upload")["status"] == "ok"
    w.assert_uploaded()
    assert "multipart" in p.stderr


def test_multipart_many_parts(world):
    """A 12 MiB screenshot in 5 MiB parts: three parts, reassembled exactly."""
    big = b"\xff\xd8" + bytes(range(256)) * (12 * 4096) + b"\xff\xd9"
    w = Seeded(world)
    p = w.run({"kms_key": w.key["Arn"], "multipart_threshold": "8", "part_size": "5"}, jpeg=big)
    assert step(p, "upload")["status"] == "ok", step(p, "upload")
    w.assert_uploaded()
    key = f"{CASE}/{w.iid}/console-screenshot.jpg"
    assert w.s3.get_object(Bucket=w.bucket, Key=key)["Body"].read() == big
    head = w.s3.head_object(Bucket=w.bucket, Key=key, PartNumber=1)
    assert head.get("PartsCount", 3) == 3
    assert head["ContentLength"] == 5 * 1024 * 1024


def test_part_size_below_minimum_is_config_error(world):
    w = Seeded(world)
    p = w.run({"kms_key": "alias/x", "part_size": "4"}, rc=2)
    assert "part_size" in p.stderr


def test_rerun_skips_what_is_already_there(world):
    w = Seeded(world)
    w.run({"kms_key": w.key["Arn"]})
    # The manifest is uploaded anew (it changed); the artifacts are not.
    before = {k: o["ETag"] for k, o in w.objects().items() if not k.endswith("/manifest.json")}
    p = w.run({"kms_key": w.key["Arn"]}, "--no-resume", "--only", "upload", capture=True)
    s = step(p, "upload")
    assert s["status"] == "ok"
    n = len(w.manifest()["artifacts"])
    assert f"{n} already uploaded by an earlier run" in s["detail"]
    after = {k: o["ETag"] for k, o in w.objects().items() if not k.endswith("/manifest.json")}
    assert after == before
    w.assert_uploaded()


def test_dry_run_uploads_nothing(world):
    w = Seeded(world)
    p = w.run({"kms_key_description": "test"}, "-n")
    s = step(p, "upload")
    assert s["status"] == "ok" and s["detail"].startswith("dry run: would upload")
    assert w.objects() == {}


def test_key_resolved_once_per_batch(world):
    w = Seeded(world)
    ids = [w.iid] + world.vpc_world(n_instances=2)["instances"]
    conf = world.write_conf(["upload"], {"upload": {"kms_key_description": "test"}}, jobs=3)
    args = [a for i in ids for a in ("-i", i)]
    p = world.irfw("--conf", conf, *args, "-o", "json", "--case-id", CASE, "-vv", check_rc=0)
    assert all(s["status"] == "ok" for inst in p.json["instances"] for s in inst["steps"])
    assert p.stderr.count("ListKeys") <= 2, p.stderr  # one call (maybe logged twice), not one per instance
    for iid in ids:
        assert f"{CASE}/{iid}/manifest.json" in w.objects()


def test_object_lock_refused_without_bucket_lock(world):
    """object_lock on a bucket made without Object Lock: refused before any
    object is sent, naming the bucket and Object Lock."""
    w = Seeded(world)
    p = w.run({"kms_key": w.key["Arn"], "object_lock": "governance", "retain_days": "30"}, rc=1, capture=False)
    s = step(p, "upload")
    assert s["status"] == "failed"
    assert "Object Lock" in s["detail"] and w.bucket in s["detail"], s
    assert "nothing uploaded" in s["detail"]
    assert w.objects() == {}


def test_object_lock_options_are_checked(world):
    w = Seeded(world)
    for keys, word in (({"object_lock": "governance"}, "retain_days"),
                       ({"retain_days": "3"}, "object_lock"),
                       ({"object_lock": "forever", "retain_days": "3"}, "object_lock")):
        conf = world.write_conf(["upload"], {"upload": {"kms_key": w.key["Arn"], **keys}})
        p = world.irfw("--conf", conf, "-i", w.iid, check_rc=2)
        assert word in p.stderr, p.stderr
    assert w.objects() == {}


def test_object_lock_applied(world):
    """A bucket with Object Lock: every object carries the retention and the
    legal hold, read back from moto."""
    w = Seeded(world, bucket="evidence-locked")
    w.s3.delete_bucket(Bucket=w.bucket)
    w.s3.create_bucket(Bucket=w.bucket, ObjectLockEnabledForBucket=True)
    p = w.run({"kms_key": w.key["Arn"], "bucket": w.bucket, "object_lock": "compliance", "retain_days": "7",
               "legal_hold": "true"}, rc=None, capture=False)
    s = step(p, "upload")
    assert s["status"] == "ok", s
    objs = w.objects()
    assert objs
    # moto 5.2.1 answers GetObjectRetention with a body botocore cannot read
    # (even for an object boto3 put): HeadObject carries the same facts.
    for key in objs:
        h = w.s3.head_object(Bucket=w.bucket, Key=key)
        assert h["ObjectLockMode"] == "COMPLIANCE", (key, h)
        left = h["ObjectLockRetainUntilDate"].timestamp() - time.time()
        assert 6.9 * 86400 < left <= 7 * 86400, (key, h["ObjectLockRetainUntilDate"])
        assert h["ObjectLockLegalHoldStatus"] == "ON", (key, h)
