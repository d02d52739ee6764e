"""irfw release tells the people the run told: notify_sns and notify_slack
(report_release, ABI 1.12) send a RELEASED, PARTIALLY RELEASED or NOT
RELEASED message once the instance's other steps are released, from what
the release read back, and only once per outcome.  The state in moto is
asserted alongside, so the message is checked against what AWS shows.
"""
import json

from refusing_proxy import RefusingProxy, ec2_error
from test_notify import Slack, TOKEN, notifications, topic_with_queue
from test_release import CASE, ISO, enis_of, groups_by_eni, outcome, release, run, steps

import pytest


def conf_with_sns(world, arn, fmt="text"):
    return world.write_conf(["isolate", "tag", "notify_sns"],
                            {**ISO, "notify_sns": {"topic": arn, "format": fmt}})


def test_release_publishes_released_after_the_instance_is_put_back(world):
    w = world.vpc_world(enis=2)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    arn, q = topic_with_queue(world, "irfw-release")
    conf = conf_with_sns(world, arn)
    before = groups_by_eni(world, vpc, iid)
    run(world, conf, iid)
    first = notifications(world, q)
    assert [n["Subject"] for n in first] == [f"CONTAINED: {iid} (case {CASE})"]

    # Every request of the release, in order: the Publish must come after
    # the interfaces are put back, since it says they are.
    seen = []

    def watch(body):
        seen.append(body.decode(errors="replace"))

    proxy = RefusingProxy(world.moto.url, watch)
    try:
        p = release(world, conf, iid, env={"AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.close()
    assert outcome(p, iid) == "released"
    assert groups_by_eni(world, vpc, iid) == before == {e: {web} for e in enis_of(world, iid)}
    st = steps(p, iid)
    assert st["notify_sns"]["status"] == "ok" and "published the release" in st["notify_sns"]["detail"]
    pub = [i for i, b in enumerate(seen) if "Action=Publish" in b]
    mods = [i for i, b in enumerate(seen) if "Action=ModifyNetworkInterfaceAttribute" in b]
    assert len(pub) == 1 and mods and max(mods) < pub[0], seen

    got = notifications(world, q)
    assert len(got) == 1
    n = got[0]
    assert n["Subject"] == f"RELEASED: {iid} (case {CASE})"
    lines = n["Message"].splitlines()
    assert lines[0] == "RELEASED"
    assert "irfw release report" in n["Message"]
    assert any(ln.startswith("  ok      isolate: ") for ln in lines), n["Message"]
    assert any(ln.startswith("  ok      tag: ") for ln in lines), n["Message"]
    assert "notify_sns" not in n["Message"]
    assert n["MessageAttributes"]["irfw.notification_id"]["Value"].startswith(f"{CASE}/{iid}/")
    rec = world.manifest(CASE, iid)["steps"]["notify_sns"]["records"]["release_notification"]
    assert rec["state"] == "sent" and rec["outcome"] == "RELEASED"
    # The run's notification record is the run's, untouched.
    assert world.manifest(CASE, iid)["steps"]["notify_sns"]["records"]["notification"]["state"] == "sent"

    # A second release finds nothing left to do and the same outcome: told
    # already, not again.
    p = release(world, conf, iid)
    assert "not sent again" in steps(p, iid)["notify_sns"]["detail"], p.stdout
    assert notifications(world, q) == []


def test_a_partial_release_says_so_and_the_finishing_release_tells_again(world):
    w = world.vpc_world(enis=2)
    iid, vpc, web = w["instances"][0], w["vpc"], w["sg"]
    arn, q = topic_with_queue(world, "irfw-partial")
    conf = conf_with_sns(world, arn)
    run(world, conf, iid)
    notifications(world, q)  # the run's
    enis = enis_of(world, iid)

    def refuse_second(body):
        text = body.decode(errors="replace")
        if "Action=ModifyNetworkInterfaceAttribute" in text and enis[1] in text:
            return 403, "text/xml", ec2_error("UnauthorizedOperation",
                                              "You are not authorized to perform this operation.")
        return None

    proxy = RefusingProxy(world.moto.url, refuse_second)
    try:
        p = release(world, conf, iid, rc=1, env={"AWS_ENDPOINT_URL": proxy.url})
    finally:
        proxy.close()
    assert outcome(p, iid) == "partially-released"
    still = groups_by_eni(world, vpc, iid)[enis[1]]
    assert web not in still  # AWS shows it still quarantined
    got = notifications(world, q)
    assert len(got) == 1
    n = got[0]
    assert n["Subject"] == f"PARTIALLY RELEASED: {iid} (case {CASE})"
    first = n["Message"].splitlines()[0]
    assert first.startswith("PARTIALLY RELEASED: 1 step(s) not released, isolate: "), first
    assert "UnauthorizedOperation" in first
    assert any(ln.startswith("  FAILED  isolate: ") for ln in n["Message"].splitlines())

    # The release that finishes the job: a new outcome, a new message.
    p = release(world, conf, iid)
    assert outcome(p, iid) == "released"
    assert groups_by_eni(world, vpc, iid)[enis[1]] == {web}
    got = notifications(world, q)
    assert [m["Subject"] for m in got] == [f"RELEASED: {iid} (case {CASE})"]
    assert got[0]["MessageAttributes"]["irfw.notification_id"]["Value"] != \
        n["MessageAttributes"]["irfw.notification_id"]["Value"]


def test_release_json_message_has_the_release_not_the_containment(world):
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    arn, q = topic_with_queue(world, "irfw-json")
    conf = conf_with_sns(world, arn, fmt="json")
    run(world, conf, iid)
    assert json.loads(notifications(world, q)[0]["Message"])["containment"]["state"] == "contained"
    release(world, conf, iid)
    body = json.loads(notifications(world, q)[0]["Message"])
    assert body["command"] == "release"
    assert body["release"]["state"] == "released" and body["release"]["outcome"] == "RELEASED"
    assert body["release"]["cause"] == "" and body["release"]["by"]
    # The run verified a containment the release has undone: not claimed.
    assert "containment" not in body
    assert {s["step"]: s["status"] for s in body["steps"]} == {"isolate": "ok", "tag": "ok"}


def test_release_dry_run_publishes_nothing(world):
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    arn, q = topic_with_queue(world, "irfw-dry")
    conf = conf_with_sns(world, arn)
    run(world, conf, iid)
    notifications(world, q)
    p = release(world, conf, iid, extra=("--dry-run",))
    assert "would publish" in steps(p, iid)["notify_sns"]["detail"], p.stdout
    assert notifications(world, q) == []


@pytest.fixture
def slack_rx():
    s = Slack()
    yield s
    s.stop()


def test_release_posts_to_slack(world, slack_rx):
    w = world.vpc_world(enis=1)
    iid = w["instances"][0]
    conf = world.write_conf(["isolate", "tag", "notify_slack"], ISO)
    env = {"IRFW_SLACK_WEBHOOK": slack_rx.url}
    run(world, conf, iid, env=env)
    p = release(world, conf, iid, env=env)
    assert outcome(p, iid) == "released"
    got = slack_rx.received()
    assert len(got) == 2
    rel = got[1]["body"]
    assert rel["text"].startswith(f":unlock: RELEASED: {iid}"), rel["text"]
    assert rel["blocks"][0]["text"]["text"].startswith(":unlock: RELEASED: "), rel["blocks"][0]
    assert TOKEN not in p.stdout + p.stderr
    rec = world.manifest(CASE, iid)["steps"]["notify_slack"]["records"]["release_notification"]
    assert rec["state"] == "sent" and rec["outcome"] == "RELEASED"
