#!/usr/bin/env python3
"""irfw's fleet benchmark (not a test: it prints figures and asserts nothing).

For each fleet size, on a fresh moto world each time, it runs the irfw
binary it is given with the default site (conf/irfw.ini), then the
sequential boto3 reference client (reference.py), both through the same
loopback proxy (proxy.py: round-trip delay, EC2's request token buckets,
GetConsoleScreenshot), and prints what reached "AWS" and when, beside the
token-bucket bound of those calls and the issue's targets.

    bench/run.py --quick
    bench/run.py --sizes 1,100,500 --world mixed --jobs 16

See bench/README.md for what each figure means.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from configparser import ConfigParser
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import boto3  # noqa: E402
import moto  # noqa: E402

import buckets  # noqa: E402
import world as worldmod  # noqa: E402
from proxy import THROTTLE_CODES, BenchProxy  # noqa: E402

CAP_S = 1200  # fixed wall-time safety cap of one client run (20 minutes)
TARGET_N = 500


# ----------------------------------------------------------------------------
# The irfw under test and its site file.

def resolve_irfw(path):
    """(program to exec, extra environment, plugin folder) for an irfw binary
    or the libtool wrapper script of a build tree.  The wrapper is not run:
    its shell would be counted in irfw's CPU time."""
    path = Path(path).resolve()
    if not path.exists():
        sys.exit(f"run.py: no irfw at {path} (build it, or give --irfw)")
    env = {}
    builddir = path.parent
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"#!") and (b"libtool" in head.lower() or b"ltmain" in head):
        real = builddir / ".libs" / "irfw"
        if (builddir / ".libs" / "lt-irfw").exists():
            real = builddir / ".libs" / "lt-irfw"
        if not real.exists():
            sys.exit(f"run.py: {path} is a libtool wrapper, but {real} does not exist")
        env["LD_LIBRARY_PATH"] = ":".join(filter(None, [str(builddir / ".libs"), os.environ.get("LD_LIBRARY_PATH")]))
        program = real
    else:
        program = path
        if builddir.name == ".libs":
            builddir = builddir.parent
    return program, env, builddir / "plugins"


def plugin_present(plugindir, name):
    return any((plugindir / p).exists() for p in (f"{name}.la", f".libs/{name}.so", f"{name}.so"))


def write_site(src_conf, plugindir, evidence_dir, dest):
    """The site file: `src_conf` with evidence_dir moved to `evidence_dir`
    and optional steps whose plugin is not built left out of the pipeline.
    Returns (pipeline, steps left out)."""
    text = Path(src_conf).read_text()
    cp = ConfigParser(interpolation=None, strict=False, comment_prefixes=(";", "#"), inline_comment_prefixes=None)
    cp.read_string(text)
    steps = [s for s in re.split(r"[\s,]+", cp.get("irfw", "pipeline")) if s]
    keep, dropped = [], []
    for s in steps:
        sec = cp[s] if cp.has_section(s) else {}
        plugin = sec.get("plugin", s)
        optional = str(sec.get("optional", "false")).strip().lower() in ("true", "yes", "1", "on")
        if optional and not plugin_present(plugindir, plugin):
            dropped.append(s)
        else:
            keep.append(s)
    lines, out, i = text.splitlines(), [], 0
    section = None
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            out.append(line)
            if section == "irfw":
                out.append(f"evidence_dir = {evidence_dir}")
            i += 1
            continue
        if section == "irfw" and re.match(r"^pipeline\s*=", line):
            i += 1
            while i < len(lines) and lines[i][:1] in (" ", "\t") and lines[i].strip():
                i += 1
            row = "pipeline ="
            for n, s in enumerate(keep):
                word = f" {s}{',' if n < len(keep) - 1 else ''}"
                if len(row) + len(word) > 72:
                    out.append(row)
                    row = "   "
                row += word
            out.append(row)
            continue
        if section == "irfw" and re.match(r"^\s*;?\s*evidence_dir\s*=", line):
            i += 1
            continue
        out.append(line)
        i += 1
    Path(dest).write_text("\n".join(out) + "\n")
    return keep, dropped


# ----------------------------------------------------------------------------
# Running one client.

def client_env(proxy_url, home, extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IRFW_")) and k not in ("LD_LIBRARY_PATH",)}
    env.update({"HOME": str(home), "AWS_ACCESS_KEY_ID": worldmod.ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": worldmod.SECRET_KEY, "AWS_REGION": worldmod.REGION,
                "AWS_DEFAULT_REGION": worldmod.REGION, "AWS_ENDPOINT_URL": proxy_url,
                "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1"})
    env.update(extra)
    return env


GNU_TIME = "/usr/bin/time"


def session_members(sid):
    """Processes of session `sid` (the clients run in sessions of their own)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:  # field 6 of stat: the session id
                    out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def run_capped(cmd, env, cwd, stdout, stderr, cap):
    """Run `cmd` in a session of its own; kill it after `cap` seconds.
    Returns (exit status, wall s, CPU s, peak RSS KiB or None, capped,
    start on the monotonic clock, start on the wall clock).

    The peak RSS is taken from GNU time, which runs the command: a child
    forked from this Python process inherits its resident pages, and Linux
    counts them into the child's ru_maxrss at exec, so os.wait4's figure
    would be this process's size.  CPU time comes from os.wait4 (GNU time's
    own, about a millisecond, included)."""
    rss_file = Path(str(stdout) + ".rss")
    use_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-o", str(rss_file), "-f", "maxrss_kib=%M", *cmd] if use_time else cmd
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        t0_wall = time.time()
        t0 = time.monotonic()
        p = subprocess.Popen(full, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        capped = threading.Event()

        def kill():
            # The command's processes, but not GNU time, which then reports
            # the command's peak RSS and passes its CPU time on to wait4.
            capped.set()
            for pid in session_members(p.pid):
                if pid != p.pid or not use_time:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        timer = threading.Timer(cap, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    rss = None
    if use_time and rss_file.exists():
        m = re.search(r"maxrss_kib=(\d+)", rss_file.read_text(errors="replace"))
        rss = int(m.group(1)) if m else None
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, rss, capped.is_set(), t0, t0_wall


def write_trace(path, calls, t0):
    """One line a call: when AWS answered it (s after the client started),
    service:action, HTTP status (and error code), moto's own time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for c in sorted(calls, key=lambda c: c.t):
            moto = "-" if c.moto_ms is None else f"{c.moto_ms:.0f} ms"
            f.write(f"{c.t - t0:8.3f}  {c.service}:{c.action}  {c.status}{' ' + c.code if c.code else ''}  {moto}\n")


def one_run(kind, n, args, irfw, tmp):
    """Fresh moto, seeded world, proxy; run one client; return its figures."""
    m = worldmod.Moto(lean=args.lean_moto, scratch=str(tmp))
    try:
        ts = time.monotonic()
        w = worldmod.seed(m.url, n, args.world)
        seed_s = time.monotonic() - ts
        ids_file = tmp / f"ids-{kind}-{n}.txt"
        ids_file.write_text("\n".join(w["instances"]) + "\n")
        home = tmp / "home"
        home.mkdir(exist_ok=True)
        out, err = tmp / f"{kind}-{n}.out", tmp / f"{kind}-{n}.err"
        moto_cpu0 = m.cpu_seconds()
        with BenchProxy(m.url, delay=args.delay, refill_scale=args.refill_scale,
                        ids_are_filters=args.ids_are_filters) as px:
            if kind == "irfw":
                program, extra, plugindir = irfw
                evidence = tmp / f"cases-{n}"
                site = tmp / f"site-{n}.ini"
                write_site(args.conf, plugindir, evidence, site)
                events = tmp / f"events-{n}.jsonl"
                cmd = [str(program), "--conf", str(site), "-f", str(ids_file), "-o", "json",
                       "--events", str(events)]
                if args.jobs:
                    cmd += ["--jobs", str(args.jobs)]
                if args.irfw_verbose:
                    cmd.append("-v")
                env = client_env(px.url, home, {**extra, "IRFW_PLUGIN_PATH": str(plugindir)})
            else:
                cmd = [sys.executable, str(HERE / "reference.py"), "--endpoint", px.url, "--region",
                       worldmod.REGION, str(ids_file)]
                env = client_env(px.url, home, {})
            load0 = os.getloadavg()[0]
            rc, wall, cpu_s, rss_kib, capped, t0, t0_wall = run_capped(cmd, env, tmp, out, err, args.cap)
            load1 = os.getloadavg()[0]
            time.sleep(0.05 + args.delay)  # let answers in flight be recorded
            with px.lock:
                calls = list(px.calls)
            exhausted = px.exhausted_throttles()
            error_samples = dict(px.error_samples)
        if args.trace:
            write_trace(Path(args.trace) / f"{kind}-{n}.calls", calls, t0)
        moto_cpu = m.cpu_seconds() - moto_cpu0
    finally:
        m.stop()
    stdout = out.read_text(errors="replace")
    stderr = err.read_text(errors="replace")
    doc = None
    try:
        doc = json.loads(stdout) if stdout.strip().startswith("{") else None
    except ValueError:
        doc = None
    if kind == "irfw":
        client_times = irfw_phase_times(tmp / f"events-{n}.jsonl", doc, t0_wall)
    else:
        client_times = reference_phase_times(doc, t0_wall)
    r = analyze(calls, w, t0, args.refill_scale, client_times)
    r.update({"kind": kind, "n": n, "rc": rc, "wall": wall, "capped": capped, "seed_s": seed_s,
              "cpu_ms": cpu_s * 1000, "rss_mb": None if rss_kib is None else rss_kib / 1024,
              "exhausted": exhausted, "moto_cpu_s": moto_cpu, "cmd": cmd, "error_samples": error_samples,
              "load": (load0, load1)})
    r["failed"], r["client_throttle_fail"], r["not_contained"] = [], 0, None
    if kind == "irfw" and doc and isinstance(doc.get("aws_calls"), dict):
        # irfw's own count (-o json), whatever its verbosity.
        r["retries_irfw"] = doc["aws_calls"].get("retries")
        r["requests_irfw"] = doc["aws_calls"].get("requests")
    if kind == "irfw" and doc:
        nc = 0
        for inst in doc.get("instances", []):
            if (inst.get("containment") or {}).get("state") != "contained":
                nc += 1
            for s in inst.get("steps", []):
                if s.get("status") == "failed":
                    err_code = s.get("aws_error")
                    if isinstance(err_code, dict):
                        err_code = err_code.get("code")
                    r["failed"].append(s.get("step"))
                    if err_code in THROTTLE_CODES:
                        r["client_throttle_fail"] += 1
        r["not_contained"] = nc
    elif kind == "reference" and doc:
        for f in doc.get("failed_steps", []):
            r["failed"].append(f["step"])
            if any(c in f.get("error", "") for c in THROTTLE_CODES):
                r["client_throttle_fail"] += 1
    r["no_result"] = doc is None
    if doc is None:
        r["stderr_tail"] = stderr[-1500:]
    return r


# ----------------------------------------------------------------------------
# When each instance got through each phase, as the client says.

def _iso_to_epoch(ts):
    """irfw's event time (`2026-12-01T11:42:07.123Z`, UTC) in seconds."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def irfw_phase_times(path, doc, t0_wall):
    """Per instance, seconds since the client started: contained (the end of
    its last `contain`-phase step, only when irfw's result says the instance
    is contained, or without a result when every contain step was ok or
    skipped), snapshots (the end of its snapshot step, when ok or
    skipped) and done (its instance-done event).  From irfw's --events
    stream; None when there is none."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    contain_end, contain_failed, snap, done = {}, set(), {}, {}
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        iid, t = e.get("instance"), e.get("ts")
        if not iid or not t:
            continue
        t = _iso_to_epoch(t) - t0_wall
        if e.get("event") == "step-end":
            if e.get("phase") == "contain":
                contain_end[iid] = max(contain_end.get(iid, 0.0), t)
                if e.get("status") not in ("ok", "skipped"):
                    contain_failed.add(iid)
            if e.get("plugin") == "snapshot" and e.get("status") in ("ok", "skipped"):
                snap[iid] = t
        elif e.get("event") == "instance-done":
            done[iid] = t
    contained_ok = None
    if doc:
        contained_ok = {i.get("instance_id") for i in doc.get("instances", [])
                        if (i.get("containment") or {}).get("state") == "contained"}
    if contained_ok is None:  # no result (a capped run): every contain step ok or skipped
        contained_ok = set(contain_end) - contain_failed
    contained = {i: t for i, t in contain_end.items() if i in contained_ok}
    return {"contained": contained, "snapshots": snap, "done": done}


def reference_phase_times(doc, t0_wall):
    """The same for the reference client, from the step end times it prints:
    contained at the end of its isolate step, snapshots at the end of its
    snapshot step, done at the end of its last step (notify), each only
    when the step did not fail."""
    if not doc or "steps" not in doc:
        return None
    out = {"contained": {}, "snapshots": {}, "done": {}}
    which = {"isolate": "contained", "snapshot": "snapshots", "notify": "done"}
    for st in doc["steps"]:
        name = which.get(st.get("step"))
        if name and st.get("ok"):
            out[name][st["instance_id"]] = st["end"] - t0_wall
    return out


# ----------------------------------------------------------------------------
# Figures from what reached the proxy.

def analyze(calls, w, t0, scale, client_times=None):
    """Figures of one client run.  The phase times are the client's own
    (`client_times`: irfw's events, the reference's step ends) when it gave
    them, else what reached the proxy; the proxy's are kept beside them as
    `aws_t_*` (the last change of the phase that went through)."""
    ok = [c for c in calls if c.status is not None and c.status < 300]
    contained, snapped, done = {}, {}, {}
    for c in ok:
        if not c.refs:
            continue
        t = c.t - t0
        what, ref = c.refs
        if what == "eni" and ref in w["enis"]:
            iid = w["enis"][ref]
            contained[iid] = max(contained.get(iid, 0), t)
        elif what == "instance-groups" and ref in w["kinds"]:
            contained[ref] = max(contained.get(ref, 0), t)
        elif what == "instance" and ref in w["kinds"]:
            snapped[ref] = max(snapped.get(ref, 0), t)
        elif what == "volume" and ref in w["volumes"]:
            iid = w["volumes"][ref]
            snapped[iid] = max(snapped.get(iid, 0), t)
        elif what == "instances":
            for iid in ref:
                if iid in w["kinds"]:
                    done[iid] = max(done.get(iid, 0), t)
    n = len(w["instances"])

    def phase(times):
        missing = n - len(times)
        t = max(times.values()) if times else None
        return t, missing

    def owners(c):
        """The fleet's instances a call names (directly or by ENI/volume)."""
        out = set()
        for x in c.names or ():
            iid = x if x in w["kinds"] else w["enis"].get(x) or w["volumes"].get(x)
            if iid:
                out.add(iid)
        return out

    owned = [(c, owners(c)) for c in ok if c.bucket]
    r = {"client_times": client_times is not None}
    for name, aws_times in (("contained", contained), ("snapshots", snapped), ("done", done)):
        r[f"aws_t_{name}"], r[f"aws_missing_{name}"] = phase(aws_times)
        times = client_times[name] if client_times is not None else aws_times
        times = {i: v for i, v in times.items() if i in w["kinds"]}
        t, missing = phase(times)
        r[f"t_{name}"], r[f"missing_{name}"] = t, missing
        # The calls of the phase: a call naming instances belongs to it when
        # it went through before the phase ended for one of them; a call
        # naming none, when it went through before the phase ended for the
        # whole fleet.  An instance that never got there bounds nothing.
        inf = float("inf")
        end_all = inf if (t is None or missing) else t
        window = []
        for c, who in owned:
            rel = c.t - t0
            limit = max((times.get(i, inf) for i in who), default=end_all)
            if rel <= limit + 1e-9:
                window.append(c)
        counts = Counter(c.bucket for c in window)
        b, which = buckets.bound(counts, {k: _spec(k) for k in counts}, scale)
        r[f"bound_{name}"], r[f"bound_{name}_by"] = b, which
    all_counts = Counter(c.bucket for c in ok if c.bucket)
    r["bound_all"], r["bound_all_by"] = buckets.bound(all_counts, {k: _spec(k) for k in all_counts}, scale)
    r["per_bucket"] = dict(all_counts)
    per_api = Counter(f"{c.service}:{c.action}" for c in calls)
    thr_api = Counter(f"{c.service}:{c.action}" for c in calls if c.code == "RequestLimitExceeded")
    r["per_api"] = dict(per_api)
    r["throttled_api"] = dict(thr_api)
    r["calls"] = len(calls)
    r["throttled"] = sum(thr_api.values())
    r["retries_proxy"] = sum(1 for c in calls if c.retry)
    r["repeats_proxy"] = sum(1 for c in calls if c.repeat)
    r["repeats_top"] = Counter(f"{c.service}:{c.action}" for c in calls if c.repeat).most_common(3)
    r["errors"] = Counter(f"{c.service}:{c.action} {c.code}" for c in calls
                          if c.status and c.status >= 300 and c.code != "RequestLimitExceeded")
    lat = [c.moto_ms for c in calls if c.moto_ms]
    lat.sort()
    r["moto_ms"] = ({"mean": statistics.fmean(lat), "p50": lat[len(lat) // 2], "p95": lat[int(len(lat) * 0.95)],
                     "max": lat[-1], "total_s": sum(lat) / 1000} if lat else None)
    slow = defaultdict(list)
    for c in calls:
        if c.moto_ms:
            slow[f"{c.service}:{c.action}"].append(c.moto_ms)
    r["moto_slowest"] = sorted(((statistics.fmean(v), k, len(v)) for k, v in slow.items()), reverse=True)[:3]
    # In --json only: moto's time by API (sum, ms), for where a run waits on the emulator.
    r["moto_ms_by_api"] = dict(sorted(((k, round(sum(v), 1)) for k, v in slow.items()), key=lambda kv: -kv[1]))
    r["n"] = n
    return r


def _spec(key):
    action = key.split(" ", 1)[0]
    if key.endswith("(unfiltered)"):
        return buckets.UNFILTERED
    _, cap, rate = buckets.ec2_bucket(action, {"Filter.1.Name": "x"})
    return cap, rate


# ----------------------------------------------------------------------------
# Printing.

def fmt_s(v):
    return "-" if v is None else f"{v:.1f} s"


def ratio(t, b):
    if t is None or not b:
        return "-"
    return f"{t / b:.2f}x"


def print_size(n, runs, args):
    print(f"\n=== N = {n} ({args.world} world) " + "=" * 40)
    kinds = [k for k in ("irfw", "reference") if k in runs]
    rows = []

    def row(label, f):
        rows.append([label] + [f(runs[k]) for k in kinds])

    row("exit status", lambda r: f"{r['rc']}" + (" (CAPPED)" if r["capped"] else ""))
    row("wall time", lambda r: fmt_s(r["wall"]))
    for name, label in (("contained", "all contained at"), ("snapshots", "all snapshots taken at"),
                        ("done", "all done at")):
        row(label, lambda r, name=name: fmt_s(r[f"t_{name}"]) +
            (f" ({r[f'missing_{name}']} never)" if r[f"missing_{name}"] else ""))
        row("  as AWS saw it", lambda r, name=name: fmt_s(r[f"aws_t_{name}"]) +
            (f" ({r[f'aws_missing_{name}']} never)" if r[f"aws_missing_{name}"] else ""))
        row(f"  bound ({name} calls)", lambda r, name=name: fmt_s(r[f"bound_{name}"]) +
            (f" [{r[f'bound_{name}_by']}]" if r[f"bound_{name}_by"] else ""))
        row(f"  ratio to bound", lambda r, name=name: ratio(r[f"t_{name}"], r[f"bound_{name}"]))
    row("bound (all calls)", lambda r: fmt_s(r["bound_all"]) + (f" [{r['bound_all_by']}]" if r["bound_all_by"] else ""))
    row("  wall / bound", lambda r: ratio(r["wall"], r["bound_all"]))
    row("AWS calls (per instance)", lambda r: f"{r['calls']} ({r['calls'] / max(n, 1):.1f})")
    row("throttled answers", lambda r: str(r["throttled"]))
    row("retries (proxy: after an error)", lambda r: str(r["retries_proxy"]))
    row("retries (irfw's aws_calls)", lambda r: "-" if r.get("retries_irfw") is None else str(r["retries_irfw"]))
    row("requests (irfw's aws_calls)", lambda r: "-" if r.get("requests_irfw") is None else str(r["requests_irfw"]))
    row("identical requests repeated", lambda r: str(r["repeats_proxy"]))
    row("throttled, retries exhausted", lambda r: f"{r['exhausted']} (steps: {r['client_throttle_fail']})")
    row("other error answers", lambda r: str(sum(r["errors"].values())))
    row("failed steps", lambda r: "? (no result document)" if r["no_result"] else str(len(r["failed"])) + (
        " (" + ", ".join(f"{k} x{v}" for k, v in Counter(r["failed"]).most_common(4)) + ")" if r["failed"] else ""))
    row("instances not contained (irfw)", lambda r: "-" if r.get("not_contained") is None else str(r["not_contained"]))
    row("client CPU per instance", lambda r: f"{r['cpu_ms'] / max(n, 1):.1f} ms")
    row("client peak RSS", lambda r: "-" if r["rss_mb"] is None else f"{r['rss_mb']:.1f} MB")
    row("moto latency mean/p50/p95", lambda r: "-" if not r["moto_ms"] else
        f"{r['moto_ms']['mean']:.0f}/{r['moto_ms']['p50']:.0f}/{r['moto_ms']['p95']:.0f} ms")
    row("moto busy (sum of latencies)", lambda r: "-" if not r["moto_ms"] else f"{r['moto_ms']['total_s']:.1f} s")
    row("moto CPU during the run", lambda r: f"{r['moto_cpu_s']:.1f} s")
    row("moto's slowest API (mean)", lambda r: ", ".join(f"{k.split(':')[1]} {m:.0f} ms" for m, k, _ in
                                                          r["moto_slowest"][:1]) or "-")
    row("seeding (not measured)", lambda r: fmt_s(r["seed_s"]))
    row("machine load before/after", lambda r: f"{r['load'][0]:.1f}/{r['load'][1]:.1f}")
    apis = sorted(set().union(*(runs[k]["per_api"] for k in kinds)))
    rows.append(["AWS calls per instance by API:"] + [""] * len(kinds))
    for api in apis:
        row("  " + api, lambda r, api=api: "" if api not in r["per_api"] else
            f"{r['per_api'][api] / max(n, 1):.2f}" + (f" ({r['throttled_api'][api]} thr)"
                                                       if r["throttled_api"].get(api) else ""))
    widths = [max(len(str(x[i])) for x in rows + [["", *kinds]]) for i in range(len(kinds) + 1)]
    print("  ".join(h.ljust(widths[i]) for i, h in enumerate(["", *kinds])))
    for x in rows:
        print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(x)).rstrip())
    for k in kinds:
        if runs[k].get("stderr_tail"):
            print(f"\n{k} printed no result; end of its stderr:\n{runs[k]['stderr_tail']}")
        if runs[k]["repeats_top"]:
            print(f"{k} identical requests repeated: " + ", ".join(f"{a} x{c}" for a, c in runs[k]["repeats_top"]))
        if runs[k]["errors"]:
            print(f"{k} error answers: " + ", ".join(f"{e} x{c}" for e, c in runs[k]["errors"].most_common(6)))
            for e, text in sorted(runs[k].get("error_samples", {}).items()):
                if "RequestLimitExceeded" not in e:
                    print(f"  first {e}: {text}")
    sys.stdout.flush()


def targets(results):
    """The issue's targets: ([(name, value, limit, met: True/False/None)], note)."""
    sizes = sorted(results)
    at = TARGET_N if TARGET_N in results else sizes[-1]
    note = "" if at == TARGET_N else f"[indicative: N = {TARGET_N} not run, shown at N = {at}]"
    big = results[at]
    irfw, ref = big.get("irfw"), big.get("reference")
    out = []

    def line(name, value, limit, met):
        out.append((name, value, limit, met))

    if irfw:
        t, b, never = irfw["t_contained"], irfw["bound_contained"], irfw["missing_contained"]
        shown = fmt_s(t) + (f" ({never} never)" if never else "")
        line(f"all contained <= 1.15 x containment bound (N={at})", shown, fmt_s(1.15 * b) if b else "bound 0",
             False if never else (None if t is None else (t <= 1.15 * b if b else None)))
        if ref:
            rt = ref["t_contained"]
            line(f"all contained <= 0.5 x reference's (N={at})", shown, fmt_s(None if rt is None else 0.5 * rt),
                 False if never else (None if t is None or rt is None else t <= 0.5 * rt))
        line(f"whole pipeline (wall) <= 1.15 x its bound (N={at})", fmt_s(irfw["wall"]),
             fmt_s(1.15 * irfw["bound_all"]) if irfw["bound_all"] else "bound 0",
             irfw["wall"] <= 1.15 * irfw["bound_all"] if irfw["bound_all"] else None)
        irfw_runs = [results[n]["irfw"] for n in sizes if "irfw" in results[n]]
        nf = sum(len(r["failed"]) for r in irfw_runs)
        incomplete = sum(1 for r in irfw_runs if r["no_result"] or r["capped"])
        line("every irfw run finished within the cap, with its result", str(incomplete) + " not", "0 not",
             incomplete == 0)
        line("zero failed steps (all sizes)", str(nf) + (" + ?" if incomplete else ""), "0",
             nf == 0 and not incomplete)
        ne = sum(r["exhausted"] + r["client_throttle_fail"] for r in irfw_runs)
        line("zero throttling errors that exhausted retries (all sizes)", str(ne), "0", ne == 0)
        if 1 in results and "reference" in results[1] and "irfw" in results[1]:
            a, r1 = results[1]["irfw"]["wall"], results[1]["reference"]["wall"]
            line("N = 1 faster end to end than the reference", fmt_s(a), "< " + fmt_s(r1), a < r1)
        cpu = irfw["cpu_ms"] / max(at, 1)
        partial = irfw["capped"]
        # A capped run's CPU and peak RSS are lower bounds of the whole
        # run's: over the limit decides, under it does not.
        line(f"client CPU per instance (N={at})" + (" [capped run: at least]" if partial else ""),
             f"{cpu:.1f} ms", "5 ms", (False if cpu > 5 else None) if partial else cpu <= 5)
        rss = irfw["rss_mb"]
        line(f"peak RSS (N={at})" + (" [capped run: at least]" if partial else ""),
             "-" if rss is None else f"{rss:.1f} MB", "32 MB",
             None if rss is None else ((False if rss > 32 else None) if partial else rss <= 32))
    return out, note


def verdict(met):
    return "-" if met is None else ("met" if met else "NOT MET")


def print_targets(results):
    print("\n=== Targets (issue 10) " + "=" * 40)
    rows, note = targets(results)
    for name, value, limit, met in rows:
        print(f"  {name:<58} {value:>14}  limit {limit:<18} {verdict(met)}")
    if note:
        print("  " + note)


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return (f"{platform.node()}: {os.cpu_count()} cores ({cpu}), {mem}, {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, moto {moto.__version__}, boto3 {boto3.__version__}")


def main():
    ap = argparse.ArgumentParser(description="irfw fleet benchmark: prints figures, asserts nothing.")
    ap.add_argument("--irfw", default=str(HERE.parent / "build" / "irfw"), help="irfw binary or build-tree wrapper")
    ap.add_argument("--conf", default=str(HERE.parent / "conf" / "irfw.ini"), help="site file to start from")
    ap.add_argument("--sizes", default="1,100,500", help="fleet sizes, comma-separated")
    ap.add_argument("--quick", action="store_true", help="a short run: sizes 1 and 20")
    ap.add_argument("--smoke", action="store_true",
                    help="for CI: N = 3, mixed world, 60 s cap; exit 1 unless irfw ran every step, "
                         "contained every instance and exited 0")
    ap.add_argument("--world", choices=("simple", "mixed", "plain"), default="simple",
                    help="simple: one ENI and two volumes each; mixed: also 20 %% multi-ENI, 20 %% spot, "
                         "20 %% in an Auto Scaling group behind a target group")
    ap.add_argument("--jobs", type=int, default=0, help="irfw --jobs (default: irfw's own)")
    ap.add_argument("--delay-ms", type=float, default=50.0, help="round-trip delay added per request, ms")
    ap.add_argument("--refill-scale", type=float, default=1.0, help="multiplies every bucket refill rate")
    ap.add_argument("--ids-are-filters", action="store_true",
                    help="count a list of ids as a filter (the larger describe buckets)")
    ap.add_argument("--lean-moto", action="store_true",
                    help="start moto with only the image the world launches, not its ~1,200 built-in "
                         "public images and their snapshots (which every DescribeSnapshots scans in moto)")
    ap.add_argument("--cap", type=float, default=CAP_S, help="wall-time cap of one client run, s (1200)")
    ap.add_argument("--no-reference", action="store_true", help="skip the sequential reference client")
    ap.add_argument("--no-irfw", action="store_true", help="run only the reference client")
    ap.add_argument("--irfw-verbose", action="store_true",
                    help="run irfw with -v (a log line per AWS call, counted in its CPU time)")
    ap.add_argument("--json", help="also write every figure to this file")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (site files, outputs)")
    ap.add_argument("--trace", metavar="DIR",
                    help="write each run's calls, in the order AWS answered them, to DIR/KIND-N.calls "
                         "(seconds since the client started, service, action, status, moto's ms)")
    args = ap.parse_args()
    args.delay = args.delay_ms / 1000.0
    if args.world == "plain":
        args.world = "simple"
    if args.smoke:
        args.world, args.cap = "mixed", min(args.cap, 60.0)
        sizes = [3]
    elif args.quick:
        sizes = [1, 20]
    else:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    irfw = resolve_irfw(args.irfw)
    program = irfw[0]
    version = subprocess.run([str(program), "--version"], capture_output=True, text=True,
                             env={**os.environ, **irfw[1]}).stdout.strip()
    print("irfw fleet benchmark")
    print(f"machine: {machine()}")
    print(f"irfw: {args.irfw} -> {program} ({version}); plugins {irfw[2]}; site from {args.conf}")
    setup = (f"proxy: {args.delay * 1000:.0f} ms round trip, EC2 request buckets at {args.refill_scale:g} x their "
             f"refill rates; world {args.world}; irfw --jobs {args.jobs or 'default'}; cap {args.cap:.0f} s per run"
             + ("; lean moto (one built-in image)" if args.lean_moto else ""))
    print(setup)
    tmp = Path(tempfile.mkdtemp(prefix="irfw-bench-"))
    results = {}
    try:
        for n in sizes:
            runs = {}
            for kind in ("irfw", "reference"):
                if (kind == "irfw" and args.no_irfw) or (kind == "reference" and args.no_reference):
                    continue
                print(f"... N = {n}: {kind}", file=sys.stderr, flush=True)
                runs[kind] = one_run(kind, n, args, irfw, tmp)
            results[n] = runs
            print_size(n, runs, args)
        if not args.no_irfw:
            print_targets(results)
        status = 0
        if args.smoke and not args.no_irfw:
            bad = smoke_verdict(results)
            print("\nsmoke: " + ("irfw OK" if not bad else "irfw FAILED: " + "; ".join(bad)))
            status = 1 if bad else 0
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": {"machine": machine(), "irfw": f"{program} ({version})", "setup": setup},
                           "results": {str(n): {k: {kk: vv for kk, vv in v.items() if kk != "errors"} | {
                               "errors": dict(v["errors"])} for k, v in runs.items()}
                               for n, runs in results.items()}},
                          f, indent=1, default=str)
    finally:
        if args.keep:
            print(f"\nscratch folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


def smoke_verdict(results):
    """What is wrong with the irfw runs, for --smoke (empty when nothing)."""
    bad = []
    for n, runs in sorted(results.items()):
        r = runs.get("irfw")
        if r is None:
            continue
        if r["capped"]:
            bad.append(f"N={n}: killed at the cap")
        if r["no_result"]:
            bad.append(f"N={n}: no result document")
        if r["rc"] != 0:
            bad.append(f"N={n}: exit status {r['rc']}")
        if r["failed"]:
            bad.append(f"N={n}: failed steps " + ", ".join(sorted(set(map(str, r["failed"])))))
        if r.get("not_contained"):
            bad.append(f"N={n}: {r['not_contained']} not contained")
        if r["missing_contained"] or r["missing_done"]:
            bad.append(f"N={n}: {r['missing_contained']} never contained, {r['missing_done']} never done "
                       "(--events)")
    return bad


if __name__ == "__main__":
    sys.exit(main())
