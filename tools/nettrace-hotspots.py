#!/usr/bin/env python3
"""Where the host's time goes in a `trellis convert` run, from a CPU sampling trace.

Record on the machine that converts (no .NET tools needed there; the runtime writes the trace itself):
    DOTNET_EnableEventPipe=1 DOTNET_EventPipeOutputPath=run.nettrace \
    DOTNET_EventPipeConfig='Microsoft-DotNETCore-SampleProfiler:0:5,Microsoft-Windows-DotNETRuntime:0x1:4' trellis convert ...
convert here (`dotnet tool install --tool-path /tmp/dt dotnet-trace`):
    /tmp/dt/dotnet-trace convert --format Speedscope run.nettrace -o run
and read it:
    tools/nettrace-hotspots.py run.speedscope.json [--timeline run.trace.json --nettrace run.nettrace --spans 'layers.0 capture']

With --timeline and --nettrace, the windows are that convert trace's module spans whose names contain --spans, laid on
the sampling trace's clock by the two files' start times (the convert trace's `start_unix_s`, the nettrace header's
UTC sync time, both to the millisecond); else the whole run.
The collections themselves (which compacted, how long every thread stood): `dotnet run --project tools/GcEvents -c
Release -- run.nettrace`.
With --main DEPTH, only the pipeline's own thread, waits included (a GPU sync is time the loop stood too).
Per window: the busy thread-seconds (samples whose innermost frame is not a wait), then frames by inclusive and by
self time over all threads. Waits (Monitor.Wait, semaphores, thread-pool idling, events) count as idle.
"""
import argparse
import collections
import json
import re
import struct
from datetime import datetime, timezone

IDLE = re.compile(r"Monitor\.Wait|WaitHandle|Semaphore|LowLevelLifo|WaitOne|Thread\.Sleep|SpinWait|WaitForSignal|"
                  r"PortableThreadPool\.GateThread|WorkerThread\.WorkerThreadStart|Task\.SpinThenBlockingWait|"
                  r"ManualResetEventSlim\.Wait|Thread\.Join|CUDA_SYNC|cuStreamSynchronize|cuEventSynchronize|"
                  r"cuCtxSynchronize|Interop\+Sys\.Read|Console|Blocking")


def intervals(profile, frames):
    """(start, end, stack tuple of frame indices) for each stretch where a thread's stack stayed the same."""
    stack, last = [], None
    for e in profile["events"]:
        if last is not None and e["at"] > last and stack:
            yield last, e["at"], tuple(stack)
        last = e["at"]
        if e["type"] == "O":
            stack.append(e["frame"])
        else:
            stack.pop()


def nettrace_start(path):
    """The nettrace's session start (its Trace object's SYSTEMTIME, UTC) as Unix seconds."""
    head = open(path, "rb").read(400)
    at = head.find(b"Trace") + len(b"Trace") + 1
    y, mo, _, d, h, mi, s, ms = struct.unpack("<8H", head[at:at + 16])
    return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc).timestamp()


def short(name):
    name = re.sub(r"^[\w.]+!", "", name)
    name = re.sub(r"\(.*\)$", "", name)
    return name[:110]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("speedscope")
    ap.add_argument("--timeline", help="the run's `trellis convert --timeline` trace, to name windows")
    ap.add_argument("--nettrace", help="the sampling trace itself, for its start time (with --timeline)")
    ap.add_argument("--spans", default=" capture", help="module spans (substring of the name) to report, with --timeline")
    ap.add_argument("--category", default="module", help="the timeline category of those spans: module, or linear (a linear's steps: search, factor, ldlq, ...)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--main", type=int, metavar="DEPTH", default=0,
                    help="only the thread that runs the pipeline (ConversionPipeline.Run), waits included: where the "
                         "module loop itself stood, by the DEPTH innermost frames below ModuleConverter's")
    args = ap.parse_args()
    d = json.load(open(args.speedscope))
    frames = [short(f["name"]) for f in d["shared"]["frames"]]
    idle_frame = [bool(IDLE.search(f)) for f in frames]
    pseudo = [f in ("CPU_TIME", "UNMANAGED_CODE_TIME") or f.startswith(("Process64", "(Non-Activities)", "Threads", "Thread "))
              or f == "" for f in frames]
    profiles = d["profiles"]
    if args.main:
        runs = {i for i, f in enumerate(frames) if f.endswith("ConversionPipeline.Run")}
        profiles = [p for p in profiles if any(e["type"] == "O" and e["frame"] in runs for e in p["events"])][:1]
        if not profiles:
            raise SystemExit("no thread runs ConversionPipeline.Run in this trace")
    stretches = [(s, e, st) for p in profiles for s, e, st in intervals(p, frames)]
    windows = [("whole run", min(s for s, _, _ in stretches), max(e for _, e, _ in stretches))]
    if args.timeline:
        trace = json.load(open(args.timeline))
        offset = (trace["otherData"]["start_unix_s"] - nettrace_start(args.nettrace)) * 1000
        windows = [(e["name"], offset + e["ts"] / 1000, offset + (e["ts"] + e["dur"]) / 1000)
                   for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") == args.category and args.spans in e["name"]]
    if args.main:
        for name, a, b in windows:
            paths = collections.Counter()
            for s, e, st in stretches:
                lo, hi = max(s, a), min(e, b)
                if hi <= lo:
                    continue
                named = [frames[f] for f in st if not pseudo[f]]
                below = max((i for i, f in enumerate(named) if ".ModuleConverter." in f), default=-1)
                inner = [f.split(".")[-1] for f in named[below + 1:]][-args.main:] or ["(in ModuleConverter)"]
                paths[" > ".join(inner) + (" [native]" if frames[st[-1]] == "UNMANAGED_CODE_TIME" else "")] += (hi - lo) / 1000
            print(f"== {name}: {(b - a) / 1000:.2f} s on the pipeline's thread")
            for path, t in paths.most_common(args.top):
                print(f"    {t:7.2f}  {path}")
        return
    for name, a, b in windows:
        incl, self_ = collections.Counter(), collections.Counter()
        busy = 0.0
        for s, e, st in stretches:
            lo, hi = max(s, a), min(e, b)
            if hi <= lo or any(idle_frame[f] for f in st[-3:]):
                continue
            dt = (hi - lo) / 1000
            busy += dt
            # dotnet-trace ends each stack with a pseudo-frame saying whether the thread ran managed code or native.
            named = [f for f in st if not pseudo[f]]
            self_[frames[named[-1]] + (" [native]" if frames[st[-1]] == "UNMANAGED_CODE_TIME" else "")] += dt
            for f in set(named):
                incl[frames[f]] += dt
        print(f"== {name}: {(b - a) / 1000:.2f} s, busy thread-seconds {busy:.2f}")
        print("  inclusive:")
        for f, t in incl.most_common(args.top):
            print(f"    {t:7.2f}  {f}")
        print("  self:")
        for f, t in self_.most_common(args.top // 2):
            print(f"    {t:7.2f}  {f}")


if __name__ == "__main__":
    main()
