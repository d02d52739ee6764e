"""A fleet's memory: what a run keeps of an instance once it is finished.

An instance's case record is closed when the scheduler gives the instance no
more work, not when the whole run ends: its manifest.json is then complete
and synced and its journal unlocked while other instances still run (a
500-instance run held every record, and its in-memory manifest, to the
end).  Observed from outside: a proxy holds the last instance's CreateTags
while the others finish; each finished instance's journal can then be
locked by another process (irfw_case_open's flock), its manifest reflects
the whole journal and says its steps are done; the held one stays locked.

The -o json document is written one instance at a time: its bytes must
still be exactly cJSON_Print's of the whole document (checked against a
re-formatting in cJSON's style of the document parsed back).
"""
import fcntl
import json
import threading
import time

from conftest import AMI, IRFW_BIN
from refusing_proxy import RefusingProxy

import subprocess

N = 40
CASE = "IR-RSS-1"


def cjson_print(v, depth=0):
    """cJSON_Print()'s formatted text of a parsed value: members one a line,
    indented by tabs, "key":<tab>value; array items on one line, ", "
    between them."""
    if isinstance(v, dict):
        if not v:
            return "{\n" + "\t" * depth + "}"
        inner = ",\n".join("\t" * (depth + 1) + json.dumps(k, ensure_ascii=False) + ":\t" +
                           cjson_print(x, depth + 1) for k, x in v.items())
        return "{\n" + inner + "\n" + "\t" * depth + "}"
    if isinstance(v, list):
        return "[" + ", ".join(cjson_print(x, depth + 1) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v == int(v) else repr(v)
    return json.dumps(v, ensure_ascii=False)


def seed(world, n):
    ec2 = world.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    r = ec2.run_instances(ImageId=AMI, MinCount=n, MaxCount=n, InstanceType="t3.micro", SubnetId=subnet,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}])
    return [i["InstanceId"] for i in r["Instances"]]


def journal_locked(path):
    """Whether another open file description holds the journal's flock."""
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def events_of(path):
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line being written
    return out


def test_finished_records_are_closed_while_the_run_goes_on(world):
    ids = seed(world, N)
    last = ids[-1]
    held, release = threading.Event(), threading.Event()

    def rule(body):
        if b"Action=CreateTags" in body and last.encode() in body:
            held.set()
            release.wait(120)
        return None

    proxy = RefusingProxy(world.moto.url, rule)
    # The held call is not given up on while the test looks.
    conf = world.write_conf(["tag"], {"tag": {}}, jobs=4, low_speed_time=200, timeout=200, call_deadline=400)
    events = world.tmp / "events.jsonl"
    cmd = [str(IRFW_BIN), "--conf", str(conf), "--case-id", CASE, "-o", "json", "--events", str(events)]
    for i in ids:
        cmd += ["-i", i]
    p = subprocess.Popen(cmd, env=world.env(AWS_ENDPOINT_URL=proxy.url), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=world.tmp)
    try:
        assert held.wait(120), "the last instance's CreateTags never came"
        others = set(ids[:-1])
        deadline = time.time() + 20
        # Every other instance finishes (its tag step is picked before the
        # last one's); its instance-done event comes once its record is
        # closed.
        while time.time() < deadline:
            done = {e["instance"] for e in events_of(events) if e["event"] == "instance-done"}
            if others <= done:
                break
            time.sleep(0.1)
        assert p.poll() is None, "irfw ended while a request was held"
        done = {e["instance"] for e in events_of(events) if e["event"] == "instance-done"}
        assert others <= done and last not in done, (len(done), last in done)
        still_locked = [i for i in others if journal_locked(world.evidence / CASE / i / "journal.jsonl")]
        assert not still_locked, f"{len(still_locked)} finished instances' records are still open"
        for i in others:
            folder = world.evidence / CASE / i
            man = world.manifest(CASE, i)
            # The manifest holds the whole journal: nothing is left to write.
            assert man["journal_bytes"] == (folder / "journal.jsonl").stat().st_size, i
            assert man["steps"]["tag"]["status"] == "ok" and man["steps"]["tag"]["done"], man["steps"]["tag"]
            tags = {t["Key"]: t["Value"] for t in world.instance(i).get("Tags", [])}
            assert len(tags) > 1, tags  # tagged in moto, not only in the record
        # The instance still running holds its record open.
        assert journal_locked(world.evidence / CASE / last / "journal.jsonl")
    finally:
        release.set()
    out, err = p.communicate(timeout=120)
    proxy.close()
    assert p.returncode == 0, err[-3000:]
    doc = json.loads(out)
    # The report still names each record, from what was kept of it.
    assert [i["instance_id"] for i in doc["instances"]] == ids
    for it in doc["instances"]:
        assert it["case_dir"] == str(world.evidence / CASE / it["instance_id"])
        assert it["manifest"] == it["case_dir"] + "/manifest.json"
        assert [s["status"] for s in it["steps"]] == ["ok"]
    assert out == cjson_print(doc) + "\n"
    assert not journal_locked(world.evidence / CASE / last / "journal.jsonl")
    assert world.manifest(CASE, last)["steps"]["tag"]["done"]


def test_json_document_is_cjson_print_of_the_whole(world):
    """Instances found, terminated and not found, and a dry run: the
    document written one instance at a time is byte for byte what printing
    it whole gives."""
    ids = seed(world, 3)
    ec2 = world.client("ec2")
    ec2.terminate_instances(InstanceIds=[ids[2]])
    conf = world.write_conf(["tag"], {"tag": {}})
    p = world.irfw("--conf", conf, "--case-id", "IR-RSS-2", "-o", "json", "-i", ids[0], "-i", ids[1], "-i",
                   ids[2], "-i", "i-0123456789abcdef0", check_rc=3)
    doc = p.json
    assert [i["found"] for i in doc["instances"]] == [True, True, True, False]
    assert doc["instances"][2]["handled"] is False
    assert p.stdout == cjson_print(doc) + "\n"
    q = world.irfw("--conf", conf, "--case-id", "IR-RSS-3", "--dry-run", "-o", "json", "-i", ids[0],
                   check_rc=0)
    assert q.stdout == cjson_print(q.json) + "\n"
