"""notify_sns and notify_slack: what arrives at the topic's subscribers and at
the Slack webhook, and that the webhook URL never leaks."""
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CASE = "case-ntf-1"
# Looks like a real webhook path: the token part is what must never leak.
TOKEN = "T0IRFWTEST/B0IRFWTEST/xS3cr3tW3bh00kT0k3nDoNotLeak"
GOOD = {"needed": "x"}


def run_irfw(world, conf, iid, *extra, env=None, rc=None):
    return world.irfw("--conf", conf, "-i", iid, "--case-id", CASE, "-o", "json", *extra, env=env, check_rc=rc)


def step_result(p, iid, step):
    """The step's entry in irfw's JSON report for instance iid."""
    doc = p.json
    for inst in doc["instances"]:
        if inst["instance_id"] == iid:
            for s in inst["steps"]:
                if s["step"] == step:
                    return s
    raise AssertionError(f"no {step} for {iid} in {json.dumps(doc)[:2000]}")


# ---------------------------------------------------------------- SNS ----

def topic_with_queue(world, name):
    """A topic and an SQS queue subscribed to it (moto delivers SNS to SQS)."""
    sns, sqs = world.client("sns"), world.client("sqs")
    arn = sns.create_topic(Name=name)["TopicArn"]
    q = sqs.create_queue(QueueName=name + "-q")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
    return arn, q


def notifications(world, queue):
    """The SNS envelopes that reached the queue."""
    msgs = world.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]) for m in msgs]


def test_sns_publishes_readable_summary(world):
    iid = world.vpc_world()["instances"][0]
    arn, q = topic_with_queue(world, "irfw-alerts")
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"topic": arn}})
    p = run_irfw(world, conf, iid, rc=0)

    got = notifications(world, q)
    assert len(got) == 1
    n = got[0]
    assert n["TopicArn"] == arn
    # No step of this pipeline contains the instance: the subject and the
    # first line must not claim it is (test_report_truth.py has the rest).
    assert n["Subject"] == f"CONTAINMENT NOT ATTEMPTED: {iid} (case {CASE})"
    msg = n["Message"]
    assert msg.splitlines()[0] == "CONTAINMENT NOT ATTEMPTED"
    assert iid in msg and CASE in msg and "(web-0)" in msg
    good = step_result(p, iid, "good")
    assert f"  ok      good: {good['detail']}" in msg.splitlines()
    assert world.account_id in msg and "us-east-1" in msg
    assert "notify_sns" not in msg  # the step does not report itself as done
    assert f"Local case folder: {world.evidence / CASE / iid}" in msg
    # The record as it was when the message went: its journal head is the
    # hash of a line of the journal, and the line count says which.
    m = re.search(r"^Case record: journal head ([0-9a-f]{64}) \(line (\d+);", msg, re.M)
    assert m, msg
    lines = (world.evidence / CASE / iid / "journal.jsonl").read_bytes().split(b"\n")
    assert hashlib.sha256(lines[int(m.group(2)) - 1]).hexdigest() == m.group(1)

    r = step_result(p, iid, "notify_sns")
    assert r["status"] == "ok" and n["MessageId"] in r["detail"]
    man = world.manifest(CASE, iid)
    assert man["steps"]["notify_sns"]["records"]["message_id"] == n["MessageId"]


def test_sns_default_topic_rule_and_json_format(world):
    iid = world.vpc_world()["instances"][0]
    arn, q = topic_with_queue(world, "slack-events")
    assert arn == f"arn:aws:sns:us-east-1:{world.account_id}:slack-events"
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"format": "json"}})
    run_irfw(world, conf, iid, rc=0)

    got = notifications(world, q)
    assert len(got) == 1
    body = json.loads(got[0]["Message"])
    assert body["instance_id"] == iid and body["case_id"] == CASE
    assert body["account_id"] == world.account_id and body["region"] == "us-east-1"
    assert [s["step"] for s in body["steps"]] == ["good"]
    assert body["steps"][0]["status"] == "ok"
    assert body["containment"] == {"state": "not-attempted", "outcome": "CONTAINMENT NOT ATTEMPTED",
                                   "cause": ""}


def test_sns_cli_topic_overrides_the_step(world):
    iid = world.vpc_world()["instances"][0]
    conf_arn, conf_q = topic_with_queue(world, "from-conf")
    cli_arn, cli_q = topic_with_queue(world, "from-cli")
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"topic": conf_arn}})
    run_irfw(world, conf, iid, "-t", cli_arn, rc=0)
    assert len(notifications(world, cli_q)) == 1
    assert notifications(world, conf_q) == []


def test_sns_missing_topic_fails_with_notfound(world):
    iid = world.vpc_world()["instances"][0]
    missing = f"arn:aws:sns:us-east-1:{world.account_id}:no-such-topic"
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"topic": missing}})
    p = run_irfw(world, conf, iid, rc=1)
    r = step_result(p, iid, "notify_sns")
    assert r["status"] == "failed"
    assert r["aws_error"].startswith("NotFound")
    assert "no-such-topic" in r["detail"]
    assert step_result(p, iid, "good")["status"] == "ok"
    assert world.manifest(CASE, iid)["steps"]["notify_sns"]["status"] == "failed"


def test_sns_subject_is_sanitized_and_cut(world):
    iid = world.vpc_world()["instances"][0]
    world.client("ec2").create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": "caf\u00e9\nline two " + "x" * 150}])
    arn, q = topic_with_queue(world, "slack-events")
    conf = world.write_conf(["notify_sns"], {"notify_sns": {"subject": "  irfw ${name_tag} ${instance_id}"}})
    run_irfw(world, conf, iid, rc=0)
    subj = notifications(world, q)[0]["Subject"]
    assert subj.startswith("irfw caf? line two xxx")
    assert len(subj) <= 99 and subj.isascii() and subj.isprintable()


def test_sns_dry_run_publishes_nothing(world):
    iid = world.vpc_world()["instances"][0]
    arn, q = topic_with_queue(world, "slack-events")
    conf = world.write_conf(["notify_sns"])
    p = run_irfw(world, conf, iid, "--dry-run", rc=0)
    assert "dry run" in step_result(p, iid, "notify_sns")["detail"]
    assert notifications(world, q) == []


# -------------------------------------------------------------- Slack ----

class Slack:
    """tests/integration/slack_receiver.py in a subprocess."""

    def __init__(self, fail=False):
        args = [sys.executable, str(HERE / "slack_receiver.py")] + (["--fail"] if fail else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.base = f"http://127.0.0.1:{int(line.split()[-1])}"
        self.url = f"{self.base}/services/{TOKEN}"

    def received(self):
        with urllib.request.urlopen(self.base + "/__received", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def slack():
    started = []

    def start(fail=False):
        s = Slack(fail)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def assert_no_leak(world, p):
    """The webhook's secret part is nowhere in irfw's output or the case."""
    assert TOKEN not in p.stdout and TOKEN not in p.stderr
    assert "xS3cr3t" not in p.stdout + p.stderr
    files = [f for f in world.evidence.rglob("*") if f.is_file()]
    assert files, "the case folder is empty"
    for f in files:
        assert b"xS3cr3t" not in f.read_bytes(), f"webhook token leaked into {f}"


def test_slack_posts_block_kit_summary(world, slack):
    iid = world.vpc_world()["instances"][0]
    arn, q = topic_with_queue(world, "slack-events")
    rx = slack()
    conf = world.write_conf(["good", "notify_sns", "notify_slack"],
                            {"good": GOOD, "notify_slack": {"username": "irfw-bot"}})
    p = run_irfw(world, conf, iid, "-vv", env={"IRFW_SLACK_WEBHOOK": rx.url}, rc=0)

    got = rx.received()
    assert len(got) == 1
    assert got[0]["path"] == f"/services/{TOKEN}"
    assert got[0]["content_type"] == "application/json"
    msg = got[0]["body"]
    assert msg["username"] == "irfw-bot"
    assert iid in msg["text"] and CASE in msg["text"]
    types = [b["type"] for b in msg["blocks"]]
    assert types == ["header", "section", "section", "context"]
    assert iid in msg["blocks"][0]["text"]["text"] and msg["blocks"][0]["text"]["type"] == "plain_text"
    fields = " ".join(f["text"] for f in msg["blocks"][1]["fields"])
    assert iid in fields and CASE in fields and world.account_id in fields and "us-east-1" in fields
    assert "web-0" in fields
    lines = msg["blocks"][2]["text"]["text"].splitlines()
    assert lines[0] == ":white_check_mark: *good* ok: " + step_result(p, iid, "good")["detail"]
    assert lines[1].startswith(":white_check_mark: *notify_sns* ok: published to " + arn)
    assert len(lines) == 2  # not itself
    assert str(world.evidence / CASE / iid) in msg["blocks"][3]["elements"][0]["text"]
    assert step_result(p, iid, "notify_slack")["status"] == "ok"
    assert len(notifications(world, q)) == 1
    assert_no_leak(world, p)


def test_slack_url_from_file_and_failures_are_shown(world, slack):
    iid = world.vpc_world()["instances"][0]
    rx = slack()
    secret = world.tmp / "webhook"
    secret.write_text(rx.url + "\n")
    # notify_sns fails (no topic): Slack must still be told, with the error.
    conf = world.write_conf(["good", "notify_sns", "notify_slack"],
                            {"good": GOOD, "notify_slack": {"webhook_url_file": secret}})
    p = run_irfw(world, conf, iid, env={"IRFW_SLACK_WEBHOOK": None}, rc=1)
    assert step_result(p, iid, "notify_slack")["status"] == "ok"
    got = rx.received()
    assert len(got) == 1
    text = got[0]["body"]["blocks"][2]["text"]["text"]
    assert ":x: *notify_sns* FAILED: Publish to arn:aws:sns:" in text and "`NotFound`" in text
    assert "1 failed" in " ".join(f["text"] for f in got[0]["body"]["blocks"][1]["fields"])
    assert_no_leak(world, p)


def test_slack_http_500_fails_the_step_only(world, slack):
    iid = world.vpc_world()["instances"][0]
    rx = slack(fail=True)
    conf = world.write_conf(["good", "notify_slack"],
                            {"good": GOOD, "notify_slack": {"webhook_url_env": "SITE_HOOK"}})
    p = run_irfw(world, conf, iid, "-vv", env={"SITE_HOOK": rx.url}, rc=1)
    r = step_result(p, iid, "notify_slack")
    assert r["status"] == "failed" and "HTTP 500" in r["detail"]
    assert step_result(p, iid, "good")["status"] == "ok"
    assert len(rx.received()) == 1  # it did arrive; the receiver refused it
    man = world.manifest(CASE, iid)
    assert man["steps"]["notify_slack"]["status"] == "failed"
    assert man["steps"]["good"]["status"] == "ok"
    assert_no_leak(world, p)


def test_slack_plain_http_only_to_this_machine(world):
    """Plain http is for a receiver on this machine only: a host that merely
    starts like 127.0.0.1 or localhost is another machine, and the URL (a
    secret) would cross the network in clear.  Nothing is sent."""
    iid = world.vpc_world()["instances"][0]
    for host in ["127.0.0.1.nip.example", "localhost.example.net"]:
        url = f"http://{host}/services/T0/B0/{TOKEN}"
        conf = world.write_conf(["good", "notify_slack"],
                                {"good": GOOD, "notify_slack": {"webhook_url_env": "SITE_HOOK"}})
        p = run_irfw(world, conf, iid, "--no-resume", env={"SITE_HOOK": url}, rc=1)
        r = step_result(p, iid, "notify_slack")
        assert r["status"] == "failed", r
        assert "only https URLs are allowed" in p.stderr, p.stderr
        assert TOKEN not in p.stdout + p.stderr


def test_slack_inline_url_is_never_printed(world, slack):
    iid = world.vpc_world()["instances"][0]
    rx = slack()
    conf = world.write_conf(["good", "notify_slack"], {"good": GOOD, "notify_slack": {"webhook_url": rx.url}})
    p = run_irfw(world, conf, iid, "-vv", rc=0)
    assert len(rx.received()) == 1
    assert_no_leak(world, p)
    # Neither does the plan or the plugin description show it.
    plan = world.irfw("--conf", conf, "-i", iid, "--plan", "-o", "json")
    assert TOKEN not in plan.stdout + plan.stderr


def test_slack_not_configured_is_skipped(world):
    iid = world.vpc_world()["instances"][0]
    conf = world.write_conf(["good", "notify_slack"], {"good": GOOD})
    p = run_irfw(world, conf, iid, env={"IRFW_SLACK_WEBHOOK": None}, rc=0)
    r = step_result(p, iid, "notify_slack")
    assert r["status"] == "skipped" and "no Slack webhook configured" in r["detail"]


def test_slack_named_env_var_unset_fails(world):
    iid = world.vpc_world()["instances"][0]
    conf = world.write_conf(["notify_slack"], {"notify_slack": {"webhook_url_env": "SITE_HOOK"}})
    p = run_irfw(world, conf, iid, env={"SITE_HOOK": None}, rc=1)
    assert "$SITE_HOOK" in step_result(p, iid, "notify_slack")["detail"]


def test_slack_two_sources_is_a_config_error(world):
    iid = world.vpc_world()["instances"][0]
    conf = world.write_conf(["notify_slack"], {"notify_slack": {"webhook_url": "https://hooks.example/" + TOKEN,
                                                                "webhook_url_env": "SITE_HOOK"}})
    p = world.irfw("--conf", conf, "-i", iid, check_rc=2)
    assert "webhook_url_env" in p.stderr and TOKEN not in p.stdout + p.stderr


def test_slack_dry_run_posts_nothing(world, slack):
    iid = world.vpc_world()["instances"][0]
    rx = slack()
    conf = world.write_conf(["good", "notify_slack"], {"good": GOOD})
    p = run_irfw(world, conf, iid, "--dry-run", env={"IRFW_SLACK_WEBHOOK": rx.url}, rc=0)
    r = step_result(p, iid, "notify_slack")
    assert r["status"] == "ok" and "dry run" in r["detail"]
    assert rx.received() == []
    assert TOKEN not in p.stdout + p.stderr


# ------------------------------------------------ exactly once (SNS) ----

def test_sns_carries_a_stable_id_and_a_resume_does_not_resend(world):
    """The id CASE/INSTANCE/RUN is in the attributes and the text.  Killed
    after the result was recorded but before the step ended (the journal
    cut there), the resumed run does not publish again."""
    iid = world.vpc_world()["instances"][0]
    arn, q = topic_with_queue(world, "irfw-once")
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"topic": arn}})
    run_irfw(world, conf, iid, rc=0)
    got = notifications(world, q)
    assert len(got) == 1
    nid = got[0]["MessageAttributes"]["irfw.notification_id"]["Value"]
    assert nid.startswith(f"{CASE}/{iid}/") and got[0]["Message"].rstrip().endswith(f"Notification id: {nid}")
    folder = world.evidence / CASE / iid
    lines = (folder / "journal.jsonl").read_text().splitlines(keepends=True)
    sent = max(k for k, l in enumerate(lines) if '"key":"notification"' in l and '"sent"' in l)
    (folder / "journal.jsonl").write_text("".join(lines[:sent + 1]))
    (folder / "manifest.json").unlink()
    p = run_irfw(world, conf, iid, rc=0)
    assert notifications(world, q) == []
    assert "not sent again" in step_result(p, iid, "notify_sns")["detail"]


def test_sns_intent_without_result_is_resent_with_the_same_id(world):
    """Killed after SNS took the message but before its answer came back:
    the resume publishes it again with the same id, and says so."""
    from test_kill import HoldProxy
    iid = world.vpc_world()["instances"][0]
    arn, q = topic_with_queue(world, "irfw-twice")
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"topic": arn}})
    proxy = HoldProxy(world.moto.url, hold=(lambda n: n == "Publish", 1, "after"))
    p = subprocess.Popen([str(world_bin()), "--conf", str(conf), "-i", iid, "--case-id", CASE],
                         env=world.env(AWS_ENDPOINT_URL=proxy.url), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert proxy.held.wait(60)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        proxy.close()
    r = run_irfw(world, conf, iid, rc=0)
    got = notifications(world, q)
    ids = [m["MessageAttributes"]["irfw.notification_id"]["Value"] for m in got]
    assert len(got) == 2 and ids[0] == ids[1], ids
    assert f"notification {ids[0]}: an earlier run recorded the intent" in r.stderr
    assert "sent again" in step_result(r, iid, "notify_sns")["detail"]


def world_bin():
    from conftest import IRFW_BIN
    return IRFW_BIN


# ---- a Publish whose answer is lost ----------------------------------------

def test_lost_publish_answer_is_sent_once_more_and_said(world):
    """SNS took the Publish and its answer was lost: SNS may have it, so
    irfw sends it once more with the same notification id (not retried
    blindly, which hid the repeat) and says so, in the step and the
    record.  A re-run of the case then sends nothing."""
    from test_isolate_truth import Proxy
    iid = world.vpc_world()["instances"][0]
    arn, q = topic_with_queue(world, "irfw-lost")
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"topic": arn}})
    lost = []

    def rule(action, params, forward):
        if action == "Publish" and not lost:
            lost.append(forward())  # it reaches SNS...
            return "drop"           # ...and the answer does not come back
        return None

    px = Proxy(world.moto.url, rule)
    try:
        p = run_irfw(world, conf, iid, env={"AWS_ENDPOINT_URL": px.url}, rc=0)
    finally:
        px.close()
    assert px.count("Publish") == 2
    got = notifications(world, q)
    assert len(got) == 2
    ids = {m["MessageAttributes"]["irfw.notification_id"]["Value"] for m in got}
    assert len(ids) == 1  # the same notification: subscribers can drop one
    r = step_result(p, iid, "notify_sns")
    assert r["status"] == "ok" and "sent twice" in r["detail"], r["detail"]
    assert "publishing it again with the same id" in p.stderr
    rec = world.manifest(CASE, iid)["steps"]["notify_sns"]["records"]["notification"]
    assert rec["state"] == "sent" and rec["sent_twice"] is True
    p = run_irfw(world, conf, iid, rc=0)
    assert notifications(world, q) == []


def test_fifo_topic_gets_a_deduplication_id(world):
    """A FIFO topic drops a repeated Publish by its deduplication id: irfw
    gives one derived from the notification id, and the instance as the
    group (a FIFO topic refuses a Publish without one)."""
    from test_isolate_truth import Proxy
    iid = world.vpc_world()["instances"][0]
    sns = world.client("sns")
    arn = sns.create_topic(Name="irfw-alerts.fifo",
                           Attributes={"FifoTopic": "true"})["TopicArn"]
    conf = world.write_conf(["good", "notify_sns"], {"good": GOOD, "notify_sns": {"topic": arn}})
    px = Proxy(world.moto.url, lambda a, p, f: None)
    try:
        p = run_irfw(world, conf, iid, env={"AWS_ENDPOINT_URL": px.url}, rc=0)
    finally:
        px.close()
    pub = [prm for a, prm in px.calls if a == "Publish"]
    assert len(pub) == 1
    nid = world.manifest(CASE, iid)["steps"]["notify_sns"]["records"]["notification"]["id"]
    assert pub[0]["MessageDeduplicationId"] == hashlib.sha256(nid.encode()).hexdigest()
    assert pub[0]["MessageGroupId"] == iid
    assert step_result(p, iid, "notify_sns")["status"] == "ok"
