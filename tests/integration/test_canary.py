"""Secrets never leak: the main commands run with known canary values as the
access key's secret, the session token and the Slack webhook URL's token,
at the most verbose log level, through a run that fails a step (its error
is printed) and one that is interrupted (its resume command is printed),
and none of them may appear in stdout, stderr, the --events stream, any
file of the case folder, or any object uploaded to S3.  moto checks no
signature by default, so any credentials are accepted.

The access key id is not a secret (AWS prints it in errors and CloudTrail),
but irfw does not print it either: it is checked too.
"""
import signal
import threading

import pytest

from slack_receiver import Receiver
from test_kill import args_for, conf, seed, start
from test_signals import wait_for_event

ACCESS_KEY = "AKIACANARY0000000001"
SECRET = "canarySecret/0123456789+abcdefghijklmnopqr"
TOKEN = "canarySessionToken//ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=="
HOOK_TOKEN = "T0CANARY/B0CANARY/canaryWebhookTokenXYZ"
CANARIES = [ACCESS_KEY, SECRET, TOKEN, HOOK_TOKEN]
CASE = "IR-KILL-1"


@pytest.fixture
def slack():
    r = Receiver()
    th = threading.Thread(target=r.serve_forever, daemon=True)
    th.start()
    yield r
    r.shutdown()
    r.server_close()


def canary_env(url):
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
            "IRFW_SLACK_WEBHOOK": url}


def assert_clean(where, text):
    for c in CANARIES:
        assert c not in text, f"{c!r} found in {where}"
    # The webhook's secret part, also in URL-escaped form.
    assert "canaryWebhookToken" not in text, where


def test_no_secret_in_any_output_file_or_object(world, slack):
    w = seed(world, 2)
    url = f"http://127.0.0.1:{slack.port}/services/{HOOK_TOKEN}"
    env = canary_env(url)
    pipeline = ["isolate", "snapshot", "tag", "upload", "notify_sns", "notify_slack"]
    c = conf(world, w, pipeline=pipeline, jobs=2)
    ids = w["instances"]
    events = world.tmp / "events.jsonl"
    outputs = []
    for args, rc in [
        (["check", "--conf", c, *[a for i in ids for a in ("-i", i)]], 0),
        ([*args_for(c, ids, "IR-DRY"), "--dry-run"], 0),
        ([*args_for(c, ids, CASE), "--events", events, "-vv"], 0),
        ([*args_for(c, ids, CASE), "-o", "json", "-vv"], 0),  # resumed: done steps are not repeated
        (["policy", "--conf", c], 0),
        (["plugins", "--describe", "notify_slack"], 0),
    ]:
        p = world.irfw(*args, env=env, check_rc=rc)
        outputs.append((args, p.stdout, p.stderr))
    # A failing step prints its error: a topic that does not exist.
    bad = world.write_conf(["notify_sns", "notify_slack"], {"notify_sns": {
        "topic": f"arn:aws:sns:{world.region}:{world.account_id}:nope"}}, name="bad.ini")
    p = world.irfw(*args_for(bad, ids, "IR-BAD"), "-vv", env=env, check_rc=1)
    outputs.append(("failing", p.stdout, p.stderr))
    assert len(slack.received) == 2 + 2  # the case's two instances, and the failing run's two
    assert all(HOOK_TOKEN in r["path"] for r in slack.received)  # the canary URL was the one used

    for args, out, err in outputs:
        assert_clean(f"stdout of {args}", out)
        assert_clean(f"stderr of {args}", err)
    assert_clean("--events", events.read_text())
    files = [f for f in world.evidence.rglob("*") if f.is_file()]
    assert any(f.name == "journal.jsonl" for f in files)
    for f in files:
        assert_clean(str(f), f.read_bytes().decode("utf-8", "replace"))
    s3 = world.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=w["bucket"]).get("Contents", [])]
    assert any(k.endswith("manifest.json") for k in keys)
    for k in keys:
        body = s3.get_object(Bucket=w["bucket"], Key=k)["Body"].read()
        assert_clean(f"s3://{w['bucket']}/{k}", body.decode("utf-8", "replace"))


def test_no_secret_in_an_interrupted_run(world, slack):
    w = seed(world, 3)
    url = f"http://127.0.0.1:{slack.port}/services/{HOOK_TOKEN}"
    c = conf(world, w, pipeline=["isolate", "snapshot", "tag", "notify_slack"], jobs=1)
    events = world.tmp / "ev.jsonl"
    orig = world.env

    world.env = lambda **kw: orig(**{**canary_env(url), **kw})
    try:
        p = start(world, [*args_for(c, w["instances"], CASE), "-vv"], events=events)
        wait_for_event(events, lambda e: e["event"] == "step-begin" and e["step"] == "snapshot")
        p.send_signal(signal.SIGINT)
        p.wait(60)
    finally:
        world.env = orig
    assert p.returncode == 130
    out, err = p.out_path.read_text(), p.err_path.read_text()
    assert "resume it with:" in out
    assert_clean("stdout", out)
    assert_clean("stderr", err)
    assert_clean("events", events.read_text())
    for f in world.evidence.rglob("*"):
        if f.is_file():
            assert_clean(str(f), f.read_bytes().decode("utf-8", "replace"))
