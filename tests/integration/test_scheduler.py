"""The scheduler: containment first across the fleet, each instance's steps
in pipeline order, no idle worker while work is ready; the --events JSON
lines that show it; and the live progress line on a terminal.

The `contain` fixture is a contain-phase step; `good` runs as any phase
the section says (phase = ...)."""
import json
import os
import pty
import select
import subprocess
import time

import pytest

from conftest import IRFW_BIN

SECTIONS = {
    "contain": {},
    "keep": {"plugin": "good", "needed": "x", "phase": "preserve"},
    "tell": {"plugin": "good", "needed": "x", "phase": "report"},
}


def events_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def begins(events):
    return sorted((e for e in events if e["event"] == "step-begin"), key=lambda e: e["order"])


@pytest.mark.parametrize("jobs", [1, 3])
def test_fleet_contained_before_its_evidence_work(world, jobs):
    ids = world.vpc_world(n_instances=5, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["contain", "keep", "tell"], SECTIONS)
    ev = world.tmp / f"events-{jobs}.jsonl"
    args = ["--conf", conf, "--jobs", jobs, "--events", ev, "-o", "json"]
    for i in ids:
        args += ["-i", i]
    p = world.irfw(*args, check_rc=0)
    order = begins(events_of(ev))
    phases = [e["phase"] for e in order]
    assert len(order) == 15
    # Every instance's containment is handed out before any evidence work.
    assert phases[:5] == ["contain"] * 5, phases
    if jobs == 1:
        # One worker: the fleet's evidence before anything is reported.
        assert phases == ["contain"] * 5 + ["preserve"] * 5 + ["report"] * 5, phases
    # With three, a free worker takes the best item *ready*: a report step
    # of an instance already preserved may go before the preserve step of
    # one whose containment is still running (no worker waits idle), so
    # only this holds: no report is handed out while a preserve step was
    # ready, that is while an instance whose containment had ended (an
    # earlier step-end event) still had its preserve step not handed out.
    events = events_of(ev)
    for e in (x for x in events if x["event"] == "step-begin" and x["phase"] == "report"):
        contained = {x["instance"] for x in events if x["event"] == "step-end" and x["phase"] == "contain"
                     and x["seq"] < e["seq"]}
        preserving = {x["instance"] for x in events if x["event"] == "step-begin" and x["phase"] == "preserve"
                      and x["order"] < e["order"]}
        assert contained <= preserving, (e, contained - preserving)
    for i in ids:
        mine = [e["step"] for e in order if e["instance"] == i]
        assert mine == ["contain", "keep", "tell"]
    assert all(s["status"] == "ok" for inst in p.json["instances"] for s in inst["steps"])


def test_pipeline_order_wins_within_an_instance(world):
    """A site may put a report step before a contain step: that instance's
    steps still run in its pipeline's order."""
    ids = world.vpc_world(n_instances=3, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["tell", "contain"], SECTIONS)
    ev = world.tmp / "events.jsonl"
    args = ["--conf", conf, "--jobs", "2", "--events", ev]
    for i in ids:
        args += ["-i", i]
    world.irfw(*args, check_rc=0)
    order = begins(events_of(ev))
    for i in ids:
        assert [e["step"] for e in order if e["instance"] == i] == ["tell", "contain"]


def test_events_stream(world):
    ids = world.vpc_world(n_instances=2, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["contain", "tell"], {**SECTIONS, "contain": {"report": "not-contained",
                                                                          "cause": "eni-x open"}})
    ev = world.tmp / "events.jsonl"
    world.irfw("--conf", conf, "-i", ids[0], "-i", ids[1], "--events", ev, "--case-id", "EV-1", check_rc=4)
    events = events_of(ev)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event"] == "run-start" and events[0]["instances"] == 2
    assert events[-1]["event"] == "run-done" and events[-1]["status"] == 4
    assert events[-1]["interrupted"] is None
    assert all(e["case_id"] == "EV-1" for e in events)
    done = [e for e in events if e["event"] == "instance-done"]
    assert sorted(e["instance"] for e in done) == sorted(ids)
    assert all(e["containment"] == {"state": "not-contained", "cause": "eni-x open"} for e in done)
    ends = [e for e in events if e["event"] == "step-end"]
    assert len(ends) == 4 and all(e["status"] == "ok" and "ms" in e for e in ends)


def test_events_to_stdout_clash_with_json(world):
    conf = world.write_conf(["tell"], SECTIONS)
    p = world.irfw("--conf", conf, "-i", "i-0123456789abcdef0", "--events", "-", "-o", "json", check_rc=2)
    assert "--events" in p.stderr


def test_events_to_stdout_keep_it_json_lines(world):
    """--events - with the text report: standard output holds only the
    events, one JSON document a line; the report for people goes to
    standard error."""
    ids = world.vpc_world(n_instances=2, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["tell"], SECTIONS)
    args = ["--conf", conf, "--case-id", "EV-2", "--events", "-"]
    for i in ids:
        args += ["-i", i]
    p = world.irfw(*args)
    lines = p.stdout.splitlines()
    assert lines, p.stderr
    events = [json.loads(ln) for ln in lines]  # every line is an event
    assert events[-1]["event"] == "run-done", events[-1]
    assert "case EV-2" in p.stderr and "case EV-2" not in p.stdout


def run_in_pty(args, env, timeout=120):
    """Run irfw with its standard error (and output) on a pseudo-terminal;
    returns (exit status, everything it wrote)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(str(IRFW_BIN), [str(IRFW_BIN), *map(str, args)], env)
    out = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_progress_line_on_a_terminal(world):
    ids = world.vpc_world(n_instances=3, enis=1, volumes=1)["instances"]
    sections = {**SECTIONS, "bad": {"plugin": "good", "needed": "x", "mode": "b", "phase": "preserve"}}
    conf = world.write_conf(["contain", "bad", "tell"], sections)
    args = ["--conf", conf]
    for i in ids:
        args += ["-i", i]
    env = world.env()
    env.pop("NO_COLOR", None)
    rc, out = run_in_pty(args + ["--case-id", "PTY-1"], env)
    assert rc == 1, out
    # One live line, redrawn in place...
    assert "\r\x1b[K" in out
    assert "contained 3/3" in out and "done 3/3" in out and "failed 3" in out, out
    # ...warnings and failures above it, the per-step "ok" lines not.
    assert out.count("error: FAILED: asked to fail") == 3, out
    assert "] ok:" not in out, out
    # Not on a terminal: the per-step lines, no status line.
    p = world.irfw(*args, "--case-id", "PTY-2")
    assert "] ok:" in p.stderr and "\x1b[K" not in p.stderr and "contained 3/3" not in p.stderr


def test_recap_for_a_fleet(world):
    """Past 20 instances the text report is a recap: counts per step, then
    only what needs attention, then where the case records are."""
    ids = world.vpc_world(n_instances=21, enis=1, volumes=1)["instances"]
    sections = {**SECTIONS, "contain": {"report": "not-contained", "cause": "eni-z open"}}
    conf = world.write_conf(["contain", "keep"], sections)
    args = ["--conf", conf, "--case-id", "RECAP"]
    for i in ids:
        args += ["-i", i]
    p = world.irfw(*args, "-i", "i-0123456789abcdef0", check_rc=4)
    out = p.stdout
    assert "case RECAP: 21 instance(s) handled: 0 contained, 0 partially contained, 21 not contained" in out
    assert "1 not found" in out
    assert "  contain            21        0       0        0" in out, out
    assert out.count("NOT CONTAINED: eni-z open") == 21
    assert "i-0123456789abcdef0  NOT FOUND" in out
    assert f"case records: {world.evidence}/RECAP/<instance>/" in out
    # Not every step of every instance.
    assert "  ok       keep" not in out
