#!/usr/bin/env python3
"""The Markdown table of a benchmark run, for README.md, from the file
`run.py --json FILE` wrote.

    bench/table.py FILE.json

Prints the figures of every size and client side by side, the targets met
or not, and irfw's calls per instance by API at the largest size.  Nothing
is measured here: it only formats what run.py recorded.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import fmt_s, targets, verdict  # noqa: E402

SHORT = {"ModifyNetworkInterfaceAttribute": "MNIA", "ModifyInstanceAttribute": "MIA",
         "DescribeInstances": "DI", "CreateSnapshots": "CreateSnapshots", "CreateSnapshot": "CreateSnapshot"}


def short(key):
    if not key:
        return ""
    action, _, rest = key.partition(" ")
    return " " + SHORT.get(action, action) + (" " + rest if rest else "")


def num(v, f="{:.1f}"):
    return "-" if v is None else f.format(v)


def main():
    doc = json.loads(Path(sys.argv[1]).read_text())
    meta = doc.get("meta") if "results" in doc else None
    raw = doc["results"] if "results" in doc else doc
    results = {int(n): runs for n, runs in raw.items()}
    sizes = sorted(results)
    cols = [(n, k) for n in sizes for k in ("irfw", "reference") if k in results[n]]
    if meta:
        print(f"Machine: {meta.get('machine')}. {meta.get('setup')}\n")
    head = ["figure"] + [f"N={n} {'irfw' if k == 'irfw' else 'ref'}" for n, k in cols]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))

    def row(label, f):
        cells = []
        for n, k in cols:
            try:
                cells.append(f(results[n][k], n))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("?")
        print(f"| {label} | " + " | ".join(cells) + " |")

    def ratio(t, b):
        return "-" if t is None or not b else f"{t / b:.2f}"

    def phase_t(r, name):
        never = r[f"missing_{name}"]
        return num(r[f"t_{name}"]) + (f" ({never} never)" if never else "")

    row("exit status", lambda r, n: str(r["rc"]) + (" CAPPED" if r["capped"] else ""))
    row("wall time (s)", lambda r, n: num(r["wall"]))
    for name, label in (("contained", "all contained at (s)"), ("snapshots", "all snapshots taken at (s)"),
                        ("done", "all done at (s)")):
        row(label, lambda r, n, name=name: phase_t(r, name))
        row("&nbsp;&nbsp;as AWS saw it (s)", lambda r, n, name=name: num(r.get(f"aws_t_{name}")) + (
            f" ({r[f'aws_missing_{name}']} never)" if r.get(f"aws_missing_{name}") else ""))
        row(f"&nbsp;&nbsp;bound of the {name} calls (s)",
            lambda r, n, name=name: num(r[f"bound_{name}"]) + short(r[f"bound_{name}_by"]))
        row("&nbsp;&nbsp;ratio to bound", lambda r, n, name=name: ratio(r[f"t_{name}"], r[f"bound_{name}"]))
    row("bound of all calls (s)", lambda r, n: num(r["bound_all"]) + short(r["bound_all_by"]))
    row("&nbsp;&nbsp;wall / bound", lambda r, n: ratio(r["wall"], r["bound_all"]))
    row("AWS calls per instance", lambda r, n: num(r["calls"] / n))
    row("throttled answers", lambda r, n: str(r["throttled"]))
    row("retries (proxy; irfw's own)", lambda r, n: str(r["retries_proxy"]) +
        ("" if r.get("retries_irfw") is None else f"; {r['retries_irfw']}"))
    row("throttled, retries exhausted", lambda r, n: str(r["exhausted"]))
    row("failed steps", lambda r, n: "?" if r.get("no_result") else str(len(r["failed"])))
    row("client CPU per instance (ms)", lambda r, n: num(r["cpu_ms"] / n))
    row("client peak RSS (MB)", lambda r, n: num(r["rss_mb"]))
    row("moto latency mean / p95 (ms)", lambda r, n: "-" if not r["moto_ms"] else
        f"{r['moto_ms']['mean']:.0f} / {r['moto_ms']['p95']:.0f}")
    row("moto CPU during the run (s)", lambda r, n: num(r["moto_cpu_s"]))
    row("load average before / after", lambda r, n: f"{r['load'][0]:.1f} / {r['load'][1]:.1f}")

    rows, note = targets(results)
    print("\nTargets (issue 10):\n")
    print("| target | value | limit | |")
    print("|---|---|---|---|")
    for name, value, limit, met in rows:
        print(f"| {name} | {value} | {limit} | {verdict(met)} |")
    if note:
        print("\n" + note)

    big = max(sizes)
    for k in ("irfw", "reference"):
        r = results[big].get(k)
        if not r:
            continue
        apis = sorted(r["per_api"].items(), key=lambda kv: (-kv[1], kv[0]))
        per = [(a, c) for a, c in apis if c >= big / 100]
        once = [(a, c) for a, c in apis if c < big / 100]
        print(f"\n{k} calls per instance by API at N = {big}" + (" (capped run: the work done until then)"
                                                                 if r["capped"] else "") + ": " + ", ".join(
            f"{a} {c / big:.2f}" + (f" ({r['throttled_api'][a]} throttled)" if r["throttled_api"].get(a) else "")
            for a, c in per) + ("; in all (not per instance): " + ", ".join(f"{a} {c}" for a, c in once)
                                if once else ""))


if __name__ == "__main__":
    main()
