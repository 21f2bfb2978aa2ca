#!/usr/bin/env python3
"""Lays nvidia-smi utilization samples over a `trellis convert --timeline` trace: per module, the GPU busy share, and
for each kind of span (capture, forward, write, a linear's regularize/search/factor/ldlq/finish/reconstruct, a
Hessian's finalize) how busy the GPU was while it ran and the most GPU memory in use meanwhile, what ran while the GPU
was idle, and what ran at the run's highest memory samples (where a memory plan's estimate falls short).

  tools/timeline-gpu-idle.py TRACE.json SMI.csv [--modules model.layers.1,model.layers.2] [--idle 30] [--json OUT]

SMI.csv: `nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 100`
(tools/gpu-issue14.sh's *.smi.csv). Timestamps are read as UTC, as the trace's start_unix_s is.
"""
import argparse
import collections
import datetime
import json
import sys


def load_trace(path):
    doc = json.load(open(path))
    start = doc["otherData"]["start_unix_s"]
    # Process 1 is the converter's own spans; 2 and 3 (--timeline-gpu) the GPU's work and the driver calls.
    spans = [(e["name"], e["cat"], e["tid"], start + e["ts"] / 1e6, start + (e["ts"] + e["dur"]) / 1e6) for e in doc["traceEvents"]
             if e.get("ph") == "X" and e.get("pid", 1) == 1]
    return spans


def load_samples(path):
    samples = []
    for line in open(path):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
        samples.append((t, int(parts[1]), int(parts[2])))
    return samples


def kind(name, cat):
    # "model.layers.1.mlp.down_proj ldlq" -> "ldlq"; "model.layers.1 capture" -> "capture"; "... Hessian" -> "Hessian".
    return name.rsplit(" ", 1)[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("smi")
    ap.add_argument("--modules", help="comma-separated module names to cover (default: every decoder layer after the first)")
    ap.add_argument("--idle", type=int, default=30, help="a sample at or below this utilization %% counts as idle")
    ap.add_argument("--json", help="also write the summary as JSON here")
    args = ap.parse_args()
    spans = load_trace(args.trace)
    samples = load_samples(args.smi)
    module_spans = collections.defaultdict(list)
    for name, cat, tid, a, b in spans:
        if cat == "module":
            module_spans[name.rsplit(" ", 1)[0]].append((a, b))
    layers = [m for m in module_spans if ".layers." in m]
    wanted = args.modules.split(",") if args.modules else layers[1:]
    summary = {"modules": {}, "kinds": {}, "idle_samples": 0, "samples": 0, "idle_with": {}}
    by_kind = collections.defaultdict(list)
    idle_with = collections.Counter()
    for m in wanted:
        a = min(s for s, _ in module_spans[m])
        b = max(e for _, e in module_spans[m])
        inside = [(t, u, mib) for t, u, mib in samples if a <= t < b]
        if not inside:
            continue
        summary["modules"][m] = {"seconds": round(b - a, 2), "busy_pct": round(sum(u for _, u, _ in inside) / len(inside), 1), "samples": len(inside),
                                 "peak_gib": round(max(mib for _, _, mib in inside) / 1024, 1)}
        for t, u, mib in inside:
            active = {kind(n, c) for n, c, _, s, e in spans if s <= t < e and not (c == "module" and kind(n, c) == "quantize")}
            for k in active:
                by_kind[k].append((u, mib))
            summary["samples"] += 1
            if u <= args.idle:
                summary["idle_samples"] += 1
                idle_with[" + ".join(sorted(active)) or "(nothing recorded)"] += 1
    for k, us in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        summary["kinds"][k] = {"samples": len(us), "mean_busy_pct": round(sum(u for u, _ in us) / len(us), 1), "peak_gib": round(max(m for _, m in us) / 1024, 1)}
    summary["idle_with"] = dict(idle_with.most_common())
    # The run's highest memory samples, anywhere in the job, with every span (linear stages by their full names) active then.
    summary["highest"] = []
    for t, u, mib in sorted(samples, key=lambda s: -s[2])[:8]:
        active = sorted(n for n, c, _, s, e in spans if s <= t < e)
        summary["highest"].append({"gib": round(mib / 1024, 2), "busy_pct": u, "active": active})
    print(f"{'module':<24} {'seconds':>8} {'GPU busy':>9} {'GPU peak':>9}")
    for m, r in summary["modules"].items():
        print(f"{m:<24} {r['seconds']:>8.2f} {r['busy_pct']:>8.1f}% {r['peak_gib']:>5.1f} GiB")
    print(f"\n{'span kind':<14} {'samples':>8} {'GPU busy while active':>22} {'GPU peak':>9}")
    for k, r in summary["kinds"].items():
        print(f"{k:<14} {r['samples']:>8} {r['mean_busy_pct']:>21.1f}% {r['peak_gib']:>5.1f} GiB")
    print(f"\nidle samples (<= {args.idle}%): {summary['idle_samples']} of {summary['samples']}; what ran then:")
    for what, n in summary["idle_with"].items():
        print(f"  {n:>4}  {what}")
    print("\nhighest GPU memory samples (nvidia-smi's memory.used, the whole process) and what ran then:")
    for h in summary["highest"]:
        print(f"  {h['gib']:>6.2f} GiB  {h['busy_pct']:>3}%  {'; '.join(h['active']) or '(nothing recorded)'}")
    if args.json:
        json.dump(summary, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # Piped into head: the reader has what it wanted.
        sys.exit(0)
