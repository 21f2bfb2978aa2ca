#!/usr/bin/env python3
"""The GPU's idle gaps in a `trellis convert --timeline FILE --timeline-gpu` trace, and what held each one up.

Process 2 of the trace is what the GPU ran (kernels, copies, fills: CUPTI's records), process 3 the CUDA driver and
runtime calls of the host's threads, process 1 the converter's own spans (a module's capture/quantize/forward/write, a
linear's stages, and on lane 0 the runtime's GC pauses, when every thread stopped). The GPU is busy where some process-2 span runs; this script merges them and, over the chosen modules:
  - the exact busy share per module and per kind of host span (what nvidia-smi's utilization samples at 1/6 s);
  - the gaps by length;
  - the kernels' own idle time (what nvidia-smi counts: copies are not kernels) by the host spans running meanwhile;
  - the gaps grouped by what ended them: the driver call that queued the next GPU work, whether the host issued it
    before the GPU ran dry ("queued": the gap is the launch's own latency) or after ("host late"), and on that
    thread the blocking call just before it (a download, a free, a synchronize: the host waited for the GPU to drain,
    then needed time to queue more), with the host spans running meanwhile.

  tools/gpu-gaps.py TRACE.json [--modules model.layers.1,model.layers.2] [--min-gap-us 5] [--top 30] [--json OUT]
"""
import argparse
import bisect
import collections
import json
import re

BLOCKING = ("cuMemcpyDtoH", "cuMemcpyHtoD", "cuMemcpy2D", "cuMemFree", "cuMemAlloc", "cuCtxSynchronize", "cuEventSynchronize",
            "cuStreamSynchronize", "cuMemsetD8", "cuMemHostAlloc", "cuMemAllocHost", "cuMemFreeHost", "cuModuleLoad")


def short(name):
    """A kernel's name without template arguments and parameters; a mangled C++ name by its (last two) components."""
    if name.startswith("_Z"):
        parts, i = [], 3 if name.startswith("_ZN") else 2
        while i < len(name) and name[i].isdigit():
            j = i
            while j < len(name) and name[j].isdigit():
                j += 1
            n = int(name[i:j])
            parts.append(name[j:j + n])
            i = j + n
            if not name.startswith("_ZN"):
                break
        if parts:
            return "::".join(parts[-2:])[:60]
    return re.split(r"[<(]", name, 1)[0][:60]


def load(path):
    doc = json.load(open(path))
    host, gpu, calls = [], [], []
    for e in doc["traceEvents"]:
        if e.get("ph") != "X":
            continue
        a, b = e["ts"] / 1e6, (e["ts"] + e["dur"]) / 1e6
        if e["pid"] == 2:
            gpu.append((a, b, e["name"], e.get("args", {}).get("correlation", 0)))
        elif e["pid"] == 3:
            calls.append((a, b, e["name"], e["tid"], e.get("args", {}).get("correlation", 0)))
        else:
            host.append((a, b, e["name"], e.get("cat", ""), e["tid"]))
    gpu.sort()
    calls.sort()
    return host, gpu, calls


def merged(gpu):
    """The GPU's busy intervals: overlapping records merged, each with its last record (the work that ran into the gap)."""
    out = []
    for a, b, name, corr in gpu:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = [out[-1][0], b, name]
        else:
            out.append([a, b, name])
    return out


def busy_in(intervals, starts, lo, hi):
    """Seconds of [lo, hi) covered by the merged intervals."""
    total = 0.0
    i = max(0, bisect.bisect_right(starts, lo) - 1)
    while i < len(intervals) and intervals[i][0] < hi:
        a, b = max(intervals[i][0], lo), min(intervals[i][1], hi)
        if b > a:
            total += b - a
        i += 1
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--modules", help="comma-separated modules to cover (default: every decoder layer after the first)")
    ap.add_argument("--min-gap-us", type=float, default=5.0, help="shorter gaps are counted, not grouped")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--json", help="also write the summary here")
    args = ap.parse_args()
    host, gpu, calls = load(args.trace)
    if not gpu:
        raise SystemExit(f"{args.trace}: no GPU spans (process 2); convert with --timeline-gpu on a CUDA device")
    busy = merged(gpu)
    starts = [iv[0] for iv in busy]

    windows = collections.defaultdict(lambda: [float("inf"), 0.0])
    for a, b, name, cat, tid in host:
        if cat == "module":
            w = windows[name.rsplit(" ", 1)[0]]
            w[0], w[1] = min(w[0], a), max(w[1], b)
    layers = [m for m in windows if ".layers." in m]
    wanted = args.modules.split(",") if args.modules else layers[1:]
    summary = {"modules": {}, "kinds": {}, "gaps": {}, "groups": []}
    print(f"{'module':<28}{'seconds':>9}{'GPU busy':>10}")
    for m in wanted:
        lo, hi = windows[m]
        share = busy_in(busy, starts, lo, hi) / (hi - lo)
        summary["modules"][m] = {"seconds": hi - lo, "busy": share}
        print(f"{m:<28}{hi - lo:>9.2f}{100 * share:>9.1f}%")
    ranges = [tuple(windows[m]) for m in wanted]

    def covered(t):
        return any(lo <= t < hi for lo, hi in ranges)

    # Busy share per kind of host span (a linear's "ldlq", a module's "capture"), over the spans within the modules.
    kinds = collections.defaultdict(lambda: [0.0, 0.0])
    for a, b, name, cat, tid in host:
        if covered(a) and b > a:
            k = kinds[name.rsplit(" ", 1)[-1]]
            k[0] += b - a
            k[1] += busy_in(busy, starts, a, b)
    print(f"\n{'host span kind':<18}{'seconds':>9}{'GPU busy while active':>23}")
    for k, (sec, b) in sorted(kinds.items(), key=lambda kv: -(kv[1][0] - kv[1][1])):
        summary["kinds"][k] = {"seconds": sec, "busy": b / sec}
        print(f"{k:<18}{sec:>9.2f}{100 * b / sec:>22.1f}%")

    # The gaps, each with what ended it.
    by_corr = {}
    for a, b, name, tid, corr in calls:
        if corr and name.startswith(("cuLaunch", "cuMem", "cudaLaunch", "cudaMemcpy", "cudaMemset")):
            by_corr.setdefault(corr, (a, b, name, tid))
    thread_calls = collections.defaultdict(list)
    for c in calls:
        thread_calls[c[3]].append(c)
    thread_starts = {t: [c[0] for c in cs] for t, cs in thread_calls.items()}
    gpu_starts = [g[0] for g in gpu]
    host_sorted = sorted(s for s in host if s[3] != "module")
    next_host = 0
    running = []
    sizes = collections.Counter()
    size_time = collections.Counter()
    groups = collections.defaultdict(lambda: [0.0, 0, 0.0])
    total_gap = 0.0
    edges = [0, 5e-6, 20e-6, 100e-6, 1e-3, 10e-3, float("inf")]
    labels = ["<5 us", "5-20 us", "20-100 us", "0.1-1 ms", "1-10 ms", ">10 ms"]
    for (a0, b0, prev), (a1, b1, _) in zip(busy, busy[1:]):
        gap = a1 - b0
        if gap <= 0 or not covered(b0):
            continue
        total_gap += gap
        bucket = labels[bisect.bisect_right(edges, gap) - 1]
        sizes[bucket] += 1
        size_time[bucket] += gap
        if gap * 1e6 < args.min_gap_us:
            continue
        nxt = gpu[bisect.bisect_left(gpu_starts, a1)]
        launch = by_corr.get(nxt[3])
        if launch:
            la, lb, lname, ltid = launch
            late = "host late" if la > b0 else "queued"
            cs = thread_calls[ltid]
            i = bisect.bisect_left(thread_starts[ltid], la) - 1
            before = "-"
            while i >= 0 and cs[i][0] >= b0 - 0.05:
                if cs[i][2].startswith(BLOCKING) and cs[i][1] <= la:
                    before = cs[i][2] + (" (ended in gap)" if cs[i][1] >= b0 else "")
                    break
                i -= 1
            launched = f"{lname} -> {short(nxt[2])}"
        else:
            late, before, launched = "no call", "-", short(nxt[2])
        # The host spans running at the gap's middle: a sweep, as the gaps come in time order.
        mid = (b0 + a1) / 2
        while next_host < len(host_sorted) and host_sorted[next_host][0] <= mid:
            running.append(host_sorted[next_host])
            next_host += 1
        running = [s for s in running if s[1] > mid]
        active = sorted({s[2].rsplit(" ", 1)[-1] for s in running}) or ["-"]
        key = (late, " + ".join(active)[:50], short(prev), launched[:70], before)
        g = groups[key]
        g[0] += gap
        g[1] += 1
        g[2] = max(g[2], gap)
    covered_seconds = sum(hi - lo for lo, hi in ranges)
    print(f"\nidle {total_gap:.3f} s of {covered_seconds:.2f} s ({100 * total_gap / covered_seconds:.1f}%); gaps by length:")
    for label in labels:
        if sizes[label]:
            print(f"  {label:<10}{sizes[label]:>8} gaps {size_time[label]:>9.3f} s")
            summary["gaps"][label] = {"count": sizes[label], "seconds": size_time[label]}
    print(f"\ngaps of {args.min_gap_us:g} us and more, grouped (top {args.top} by total time):")
    print(f"{'total s':>8}{'count':>7}{'max ms':>8}  {'how':<10} {'host spans running':<50} {'GPU ran last':<26} {'next work queued by':<70} blocking call before it on that thread")
    for key, (sec, count, worst) in sorted(groups.items(), key=lambda kv: -kv[1][0])[: args.top]:
        late, active, prev, launched, before = key
        print(f"{sec:>8.3f}{count:>7}{worst * 1e3:>8.2f}  {late:<10} {active:<50} {prev[:26]:<26} {launched:<70} {before}")
        summary["groups"].append({"seconds": sec, "count": count, "max": worst, "how": late, "host": active, "last": prev, "next": launched, "blocking": before})
    # nvidia-smi counts only kernels as busy: the kernels' idle time, each 0.5 ms of it laid on the host spans running
    # then (a GC pause first: every thread was stopped).
    kernels = merged([g for g in gpu if not g[2].startswith(("memcpy", "memset"))])
    # A module's own work ends with its forward; its file's write runs behind the next module (or the head's loading).
    forward_end = {name.rsplit(" ", 1)[0]: b for a, b, name, cat, tid in host if cat == "module" and name.endswith(" forward")}
    proper = [(windows[m][0], forward_end.get(m, windows[m][1])) for m in wanted]
    proper_seconds = sum(hi - lo for lo, hi in proper)
    host_spans = sorted((a, b, name.split(" ", 1)[1] if " " in name else name) for a, b, name, cat, tid in host if cat != "module")
    idle_by = collections.Counter()
    kernel_idle, sweep, live = 0.0, 0, []
    for (a0, b0, _), (a1, b1, _) in zip(kernels, kernels[1:]):
        ranges_in = [(lo, hi) for lo, hi in proper if lo <= b0 < hi]
        if not ranges_in:
            continue
        t, end = b0, min(a1, ranges_in[0][1])
        while t < end:
            d = min(5e-4, end - t)
            mid = t + d / 2
            while sweep < len(host_spans) and host_spans[sweep][0] <= mid:
                live.append(host_spans[sweep])
                sweep += 1
            live = [h for h in live if h[1] > mid]
            names = sorted({h[2] for h in live})
            key = "GC pause" if any(n.endswith("GC") for n in names) else (" + ".join(names) or "(no span)")
            idle_by[key] += d
            kernel_idle += d
            t += d
    print(f"\nkernels idle {kernel_idle:.3f} s of {proper_seconds:.2f} s from each module's first span to its forward's end"
          f" ({100 * (1 - kernel_idle / proper_seconds):.1f}% busy by kernels alone), by the host spans running:")
    for key, sec in idle_by.most_common(args.top):
        print(f"{sec:8.3f}  {key[:110]}")
    summary["kernel_idle"] = {"seconds": kernel_idle, "by_host_span": dict(idle_by.most_common(args.top))}
    if args.json:
        json.dump(summary, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
