"""SIGINT and SIGTERM in the middle of a run: no new step starts, the steps
in flight finish and are recorded, the summary (or the one JSON document)
says what is left and prints the command that resumes the case, and irfw
exits 130 or 143.  A second signal abandons the calls in flight: their
steps are recorded as interrupted and redone by the resume.  Running the
printed command completes the case to the state a clean run leaves.

A proxy in front of moto slows CreateSnapshots down (or holds it), so that
the signal lands while snapshot steps are in flight; the --events stream
says when they are.
"""
import json
import shlex
import signal
import subprocess
import time

import pytest

from conftest import IRFW_BIN, World
from test_kill import HoldProxy, args_for, assert_same_state, conf, failed_steps, messages, seed, start, state

N = 4
CASE = "IR-KILL-1"  # test_kill's helpers name it


@pytest.fixture(scope="module")
def reference(tmp_path_factory, moto_server):
    """What an uninterrupted run of the same world leaves."""
    moto_server.reset()
    world = World(moto_server, tmp_path_factory.mktemp("sigref"))
    w = seed(world, N)
    p = world.irfw(*args_for(conf(world, w, jobs=2), w["instances"]), "-o", "json")
    assert p.returncode == 0, (failed_steps(p), p.stderr[-3000:])
    ref = state(world, w, messages(world, w["queue"]))
    moto_server.reset()
    return ref


def wait_for_event(path, pred, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if pred(ev):
                    return ev
        time.sleep(0.05)
    raise AssertionError(f"no such event in {path}")


def journal(world, iid):
    return [json.loads(l) for l in (world.evidence / CASE / iid / "journal.jsonl").read_text().splitlines()]


def resume(world, cmd):
    """Run the printed command as an operator would paste it."""
    argv = shlex.split(cmd)
    assert argv[0] == "irfw"
    return subprocess.run([str(IRFW_BIN), *argv[1:], "-o", "json"], env=world.env(), capture_output=True,
                          text=True, timeout=300, cwd="/")


def interrupt(world, w, sig, *extra, hold=None):
    """Start the case, wait for a snapshot step in flight, send `sig`."""
    proxy = HoldProxy(world.moto.url, hold=hold, delay=None if hold else {"CreateSnapshots": 2.0})
    events = world.tmp / "events.jsonl"
    args = args_for(conf(world, w, jobs=2), w["instances"], CASE, *extra)
    p = start(world, args, proxy, events=events)
    try:
        wait_for_event(events, lambda e: e["event"] == "step-begin" and e["step"] == "snapshot")
        if hold:
            assert proxy.held.wait(30)
        p.send_signal(sig)
        return p, proxy, events
    except BaseException:
        p.kill()
        proxy.close()
        raise


def assert_interrupted_records(world, w, sig_name):
    """Every begun step ended in the journal; the instances not finished
    carry core/interrupted naming the steps not run."""
    left = 0
    for iid in w["instances"]:
        lines = journal(world, iid)
        begun = [l["step"] for l in lines if l["event"] == "step-begin"]
        ended = [l["step"] for l in lines if l["event"] == "step-end"]
        assert sorted(begun) == sorted(ended), (iid, begun, ended)
        rec = [l for l in lines if l["event"] == "record" and l["step"] == "core" and l["key"] == "interrupted"]
        man = world.manifest(CASE, iid)
        if rec:
            assert rec[-1]["value"]["signal"] == sig_name
            not_run = rec[-1]["value"]["not_run"]
            assert not_run and all(not man["steps"].get(s, {}).get("done") for s in not_run), (iid, not_run)
            left += len(not_run)
    assert left > 0  # the signal came before the end


def test_sigint_stops_summarises_and_the_printed_command_resumes(world, reference):
    w = seed(world, N)
    p, proxy, events = interrupt(world, w, signal.SIGINT)
    try:
        p.wait(60)
    finally:
        proxy.close()
    out, err = p.out_path.read_text(), p.err_path.read_text()
    assert p.returncode == 130, (p.returncode, out, err)
    assert "INTERRUPTED by SIGINT" in out
    lines = out.splitlines()
    cmd = lines[lines.index("resume it with:") + 1].strip()
    assert f"--case-id {CASE}" in cmd and all(f"-i {i}" in cmd for i in w["instances"])
    assert "resume with: irfw" in err  # also where the progress is
    # The snapshot step in flight when the signal came finished and is recorded.
    begun = [json.loads(l) for l in events.read_text().splitlines()]
    snap = [e for e in begun if e["event"] == "step-begin" and e["step"] == "snapshot"]
    ends = {(e["instance"], e["step"]): e for e in begun if e["event"] == "step-end"}
    assert all(ends[(e["instance"], "snapshot")]["status"] == "ok" for e in snap)
    assert begun[-1]["event"] == "run-done" and begun[-1]["interrupted"] == "SIGINT", begun[-1]
    assert "not-run" in out
    assert_interrupted_records(world, w, "SIGINT")
    # No message yet claims to be final for instances not finished; now resume.
    r = resume(world, cmd)
    assert r.returncode == 0, (failed_steps(r) if r.stdout.startswith("{") else r.stdout, r.stderr[-3000:])
    doc = json.loads(r.stdout)
    assert doc["interrupted"] is None
    for iid in w["instances"]:
        assert world.manifest(CASE, iid)["steps"]["core"]["records"].get("interrupted") is None
    assert_same_state(state(world, w, messages(world, w["queue"])), reference)


def test_sigterm_with_json_output(world, reference):
    w = seed(world, N)
    p, proxy, _ = interrupt(world, w, signal.SIGTERM, "-o", "json")
    try:
        p.wait(60)
    finally:
        proxy.close()
    out = p.out_path.read_text()
    assert p.returncode == 143, (out, p.err_path.read_text())
    doc = json.loads(out)  # one document, nothing else on stdout
    it = doc["interrupted"]
    assert it["signal"] == "SIGTERM" and it["abandoned"] is False
    assert it["steps_not_run"] > 0 and it["steps_interrupted"] == 0
    statuses = [s["status"] for i in doc["instances"] for s in i["steps"]]
    assert statuses.count("not-run") == it["steps_not_run"]
    assert "interrupted" not in statuses
    assert_interrupted_records(world, w, "SIGTERM")
    r = resume(world, it["resume_command"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_state(state(world, w, messages(world, w["queue"])), reference)


def test_second_signal_abandons_calls_in_flight(world, reference):
    """CreateSnapshots never answers: the first SIGINT waits for it, the
    second abandons it; the step is recorded interrupted and redone."""
    w = seed(world, N)
    p, proxy, _ = interrupt(world, w, signal.SIGINT, "-o", "json",
                            hold=(lambda n: n == "CreateSnapshots", 1, "before"))
    try:
        time.sleep(1.0)
        assert p.poll() is None  # still waiting for the call in flight
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        p.wait(20)
        took = time.time() - t0
    finally:
        proxy.close()
    out = p.out_path.read_text()
    assert p.returncode == 130, (out, p.err_path.read_text())
    assert took < 5, took
    doc = json.loads(out)
    assert doc["interrupted"]["abandoned"] is True and doc["interrupted"]["steps_interrupted"] == 1
    cut = [(i["instance_id"], s) for i in doc["instances"] for s in i["steps"] if s["status"] == "interrupted"]
    assert len(cut) == 1 and cut[0][1]["step"] == "snapshot"
    iid = cut[0][0]
    man = world.manifest(CASE, iid)["steps"]["snapshot"]
    assert man["status"] == "failed" and not man.get("done")
    assert man["records"]["interrupted"]["signal"] == "SIGINT"
    assert "redone when the case is resumed" in man["detail"]
    r = resume(world, doc["interrupted"]["resume_command"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert_same_state(state(world, w, messages(world, w["queue"])), reference)
