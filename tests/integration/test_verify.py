"""irfw verify: the case record checked against itself (artifact hashes,
the journal's hash chain, the manifest a replay of the journal gives) and,
with --s3, against the uploaded copies (HeadObject, and the uploaded
manifest read back). A clean case verifies (exit 0); each kind of tampering
is detected, named and exits 1. Every run here is a real irfw run against
moto; the tampering is done with plain file edits and boto3.

moto (5.2.1) stores and reports an object's SHA-256 checksum only when the
request also carries `x-amz-sdk-checksum-algorithm`, and never checks the
value it is given (real S3 rejects a wrong one with BadDigest), so a body
changed in S3 is caught here by its size and ETag as well as its checksum.
"""
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot_proxy import ScreenshotProxy  # noqa: E402

CASE = "case-verify"


class Case:
    def __init__(self, world, n=1):
        self.world = world
        self.ids = world.vpc_world(n_instances=n, volumes=1, enis=1)["instances"]
        self.iid = self.ids[0]
        self.bucket = f"evidence-{world.account_id}"
        self.s3 = world.client("s3")
        self.s3.create_bucket(Bucket=self.bucket)
        self.key = world.client("kms").create_key(Description="evidence")["KeyMetadata"]["Arn"]
        self.conf = world.write_conf(["capture", "upload"],
                                     {"upload": {"bucket": self.bucket, "kms_key": self.key}})

    def run(self, rc=0):
        args = []
        for i in self.ids:
            args += ["-i", i]
        with ScreenshotProxy(self.world.moto.url) as proxy:
            p = self.world.irfw("--conf", self.conf, *args, "-o", "json", "--case-id", CASE,
                                env={"AWS_ENDPOINT_URL": proxy.url}, check_rc=rc)
        return p

    @property
    def dir(self):
        return self.world.evidence / CASE / self.iid

    def verify(self, *args, rc=None, path=None):
        return self.world.irfw("verify", str(path or self.dir), *args, check_rc=rc)

    def verify_json(self, *args, rc=None, path=None):
        p = self.verify(*args, "-o", "json", rc=rc, path=path)
        return p, json.loads(p.stdout)

    def lines(self):
        return (self.dir / "journal.jsonl").read_text().splitlines()

    def write_lines(self, lines):
        (self.dir / "journal.jsonl").write_text("".join(line + "\n" for line in lines))


def rows(doc, i=0):
    return {r["name"]: r for r in doc["instances"][i]["artifacts"]}


def test_clean_case_verifies_locally_and_in_s3(world):
    c = Case(world)
    c.run()
    # The chain as written: each line's prev is the hash of the line before.
    lines = c.lines()
    genesis = hashlib.sha256(f"irfw-journal-genesis {CASE}/{c.iid}".encode()).hexdigest()
    prevs = [json.loads(line)["prev"] for line in lines]
    assert prevs == [genesis] + [hashlib.sha256(line.encode()).hexdigest() for line in lines[:-1]]
    man = world.manifest(CASE, c.iid)
    assert man["journal_head"] == hashlib.sha256(lines[-1].encode()).hexdigest()
    assert man["journal_lines"] == len(lines)

    p = c.verify(rc=0)
    assert "verified: everything matches" in p.stdout
    assert "console-output.txt" in p.stdout and "journal.jsonl" in p.stdout
    p, doc = c.verify_json("--s3", rc=0)
    assert doc["ok"] is True
    r = rows(doc)
    assert {"describe-instance.json", "console-output.txt", "manifest.json", "journal.jsonl"} <= set(r)
    for name, row in r.items():
        assert row["ok"], row
        if name not in ("journal.jsonl",):
            assert row["s3"] == "ok", row
    assert doc["instances"][0]["journal"]["head"] == man["journal_head"]

    # The uploaded manifest carries the head it reflects, in its metadata
    # and its body, and that head is a line of the local chain.
    mkey = f"{CASE}/{c.iid}/manifest.json"
    head = c.s3.head_object(Bucket=c.bucket, Key=mkey)
    remote = json.loads(c.s3.get_object(Bucket=c.bucket, Key=mkey)["Body"].read())
    assert head["Metadata"]["irfw-journal-head"] == remote["journal_head"]
    n = int(head["Metadata"]["irfw-journal-lines"])
    assert hashlib.sha256(c.lines()[n - 1].encode()).hexdigest() == remote["journal_head"]
    rec = world.manifest(CASE, c.iid)["steps"]["upload"]["records"]["manifest"]
    assert rec["journal_head"] == remote["journal_head"]


def test_case_folder_checks_every_instance(world):
    c = Case(world, n=2)
    c.run()
    p, doc = c.verify_json(path=world.evidence / CASE, rc=0)
    assert sorted(i["instance_id"] for i in doc["instances"]) == sorted(c.ids)
    # Tamper with one: only it is named.
    other = world.evidence / CASE / c.ids[1] / "console-output.txt"
    other.write_bytes(other.read_bytes() + b"x")
    p, doc = c.verify_json(path=world.evidence / CASE, rc=1)
    bad = [i["instance_id"] for i in doc["instances"] if not i["ok"]]
    assert bad == [c.ids[1]]


def test_edited_journal_line_is_detected(world):
    c = Case(world)
    c.run()
    lines = c.lines()
    k = next(i for i, line in enumerate(lines) if '"event":"step-end"' in line and '"step":"capture"' in line)
    ev = json.loads(lines[k])
    ev["status"] = "failed"
    lines[k] = json.dumps(ev, separators=(",", ":"))
    c.write_lines(lines)
    p = c.verify(rc=1)
    assert f"line {k + 2}: prev does not match the hash of line {k + 1}" in p.stdout, p.stdout
    assert "NOT VERIFIED" in p.stdout and "BROKEN" in p.stdout
    # The manifest no longer is what the journal replays to.
    assert "is not what replaying the journal gives" in p.stdout


def test_removed_journal_line_is_detected(world):
    c = Case(world)
    c.run()
    lines = c.lines()
    k = next(i for i, line in enumerate(lines) if '"event":"artifact"' in line)
    del lines[k]
    c.write_lines(lines)
    p, doc = c.verify_json(rc=1)
    probs = doc["instances"][0]["problems"]
    assert any(f"line {k + 1}: prev does not match the hash of line {k}" in s for s in probs), probs
    assert rows(doc)["journal.jsonl"]["chain"] == "BROKEN"
    # The artifact that line recorded is no longer in the journal.
    assert any("in the manifest but in no journal line" in s for s in probs), probs


def test_removed_last_line_is_detected(world):
    c = Case(world)
    c.run()
    c.write_lines(c.lines()[:-1])
    p = c.verify(rc=1)
    assert "is not the journal's last line" in p.stdout, p.stdout


def test_changed_artifact_is_detected(world):
    c = Case(world)
    c.run()
    f = c.dir / "console-output.txt"
    f.write_bytes(f.read_bytes().replace(b"a", b"b", 1) if b"a" in f.read_bytes() else f.read_bytes() + b"!")
    p, doc = c.verify_json(rc=1)
    r = rows(doc)
    assert r["console-output.txt"]["local"] == "CHANGED"
    assert r["describe-instance.json"]["local"] == "ok"
    assert any(s.startswith("console-output.txt: SHA-256 on disk is") for s in doc["instances"][0]["problems"])
    # A removed artifact is named too.
    (c.dir / "describe-instance.json").unlink()
    p, doc = c.verify_json(rc=1)
    assert rows(doc)["describe-instance.json"]["local"] == "MISSING"


def test_changed_s3_object_is_detected(world):
    c = Case(world)
    c.run()
    key = f"{CASE}/{c.iid}/console-output.txt"
    body = b"nothing to see here\n"
    c.s3.put_object(Bucket=c.bucket, Key=key, Body=body, ServerSideEncryption="aws:kms", SSEKMSKeyId=c.key,
                    ChecksumSHA256=__import__("base64").b64encode(hashlib.sha256(body).digest()).decode())
    # The local record is intact...
    c.verify(rc=0)
    # ...but the copy in S3 is not what it lists.
    p, doc = c.verify_json("--s3", rc=1)
    r = rows(doc)
    assert r["console-output.txt"]["s3"] == "CHANGED", r
    assert r["describe-instance.json"]["s3"] == "ok"
    probs = doc["instances"][0]["problems"]
    assert any(s.startswith(f"console-output.txt: s3://{c.bucket}/{key} is {len(body)} bytes in S3") for s in probs)
    assert any("ETag of" in s for s in probs)
    # A deleted copy is MISSING, with the AWS error.
    c.s3.delete_object(Bucket=c.bucket, Key=key)
    p, doc = c.verify_json("--s3", rc=1)
    assert rows(doc)["console-output.txt"]["s3"] == "MISSING"


def test_rewritten_journal_is_caught_by_the_uploaded_head(world):
    """Someone who edits a line and re-chains every line after it, and
    rewrites the manifest to match, passes the local checks; the head quoted
    by the manifest uploaded to S3 is then no line of the journal."""
    c = Case(world)
    c.run()
    lines = c.lines()
    genesis = hashlib.sha256(f"irfw-journal-genesis {CASE}/{c.iid}".encode()).hexdigest()
    evs = [json.loads(x) for x in lines]
    k = next(i for i, ev in enumerate(evs) if ev["event"] == "step-end" and ev["step"] == "capture")
    evs[k]["detail"] = "nothing to capture"
    out, prev = [], genesis
    for ev in evs:
        ev["prev"] = prev
        text = json.dumps(ev, separators=(",", ":"))
        out.append(text)
        prev = hashlib.sha256(text.encode()).hexdigest()
    c.write_lines(out)
    man = world.manifest(CASE, c.iid)
    man["journal_head"] = prev
    man["journal_bytes"] = (c.dir / "journal.jsonl").stat().st_size
    man["steps"]["capture"]["detail"] = "nothing to capture"
    (c.dir / "manifest.json").write_text(json.dumps(man, indent=2))
    c.verify(rc=0)
    p = c.verify("--s3", rc=1)
    assert "is no line of the local journal" in p.stdout, p.stdout


def test_old_journal_without_chain_resumes_and_says_so(world):
    c = Case(world)
    c.run()
    # As an irfw before the chain wrote it: no prev, no head.
    lines = c.lines()
    old = []
    for line in lines:
        ev = json.loads(line)
        ev.pop("prev")
        old.append(json.dumps(ev, separators=(",", ":")))
    c.write_lines(old)
    man = world.manifest(CASE, c.iid)
    for k in ("journal_head", "journal_lines"):
        man.pop(k)
    man["journal_bytes"] = (c.dir / "journal.jsonl").stat().st_size
    (c.dir / "manifest.json").write_text(json.dumps(man, indent=2))
    p = c.verify(rc=0)
    assert "no line carries a hash chain" in p.stdout, p.stdout
    # The case resumes; the chain starts at the first new line.
    c.run()
    n_old = len(old)
    new = c.lines()
    assert json.loads(new[n_old])["prev"] == hashlib.sha256(new[n_old - 1].encode()).hexdigest()
    assert world.manifest(CASE, c.iid)["journal_chained_from"] == n_old + 1
    p = c.verify(rc=0)
    assert f"the chain starts at line {n_old + 1}" in p.stdout, p.stdout
    # Lines after the chain began must carry it (a resumed run that has
    # nothing left to do writes one line: run it once more).
    c.run()
    new = c.lines()
    assert len(new) > n_old + 1
    ev = json.loads(new[-1])
    ev.pop("prev")
    new[-1] = json.dumps(ev, separators=(",", ":"))
    c.write_lines(new)
    p = c.verify(rc=1)
    assert f"line {len(new)} has no prev hash" in p.stdout, p.stdout


def test_verify_usage_errors(world):
    p = world.irfw("verify", str(world.tmp / "nope"), check_rc=2)
    assert "nope" in p.stderr
    empty = world.tmp / "empty"
    empty.mkdir()
    p = world.irfw("verify", str(empty), check_rc=2)
    assert "holds no case record" in p.stderr
    world.irfw("verify", check_rc=2)
    world.irfw("--s3", "-i", "i-12345678", check_rc=2)
