#!/usr/bin/env python3
"""
Reads tools/gpu-sidebyside.sh's logs (each line prefixed by its Unix time) and nvidia-smi samples, and prints per
calibration volume: each converter's per-layer seconds by stage (layers 1.., layer 0 includes start-up), head seconds,
GPU busy over those layers, GPU and host peaks, whole-job wall, the projected whole llama-3-8b (32 layers), and the
ratio exllamav3 / ours. Writes OUT_DIR/sidebyside.json.

  tools/sidebyside-table.py OUT_DIR [--layers 2] [--model-layers 32]

Stages. exllamav3 captures a module's Hessians in one forward, then quantizes its linears, then runs the module
forward: capture = "Loading unquantized module" to "Captured", quantize = to the last linear's "Quantized", forward =
to the module's "Quantized". Ours interleaves capture stages with quantizing (sequential capture): the stage sums its
module line prints (capture, quantize, forward); the layer is the wall between its progress line and the next.
"""
import argparse
import datetime
import glob
import gzip
import json
import os
import re


def lines(path):
    for raw in open(path, errors="replace"):
        t, _, rest = raw.rstrip("\n").partition(" ")
        try:
            yield float(t), rest
        except ValueError:
            continue


def host_peak_gib(path):
    for _, line in lines(path):
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", line)
        if m:
            return int(m.group(1)) / 2**20
    return None


def exit_code(path):
    code = None
    for _, line in lines(path):
        m = re.match(r"exit (\d+)$", line)
        if m:
            code = int(m.group(1))
    return code


def exl3_modules(path):
    """Per module: key, start, captured, last linear, end (Unix times), exllamav3's own [s]."""
    mods, cur = [], None
    for t, line in lines(path):
        m = re.search(r" -- Loading unquantized module: (\S+)", line)
        if m:
            cur = {"key": m.group(1), "start": t, "captured": None, "linears_done": None, "end": None}
            mods.append(cur)
            continue
        if cur is None:
            continue
        if re.search(r" -- Captured: " + re.escape(cur["key"]) + r"\b", line):
            cur["captured"] = t
        m = re.search(r" -- Quantized: (\S+)", line)
        if m:
            # A module's own line reports rfn (or no_weights); a linear's, proxy_err (the head is both, by one key).
            if m.group(1) == cur["key"] and ("rfn:" in line or "no_weights" in line or "bpw: 16.00" in line):
                cur["end"] = t
                s = re.search(r"\[(\d+\.\d+) s\]", line)
                cur["reported"] = float(s.group(1)) if s else None
            elif m.group(1) == cur["key"] or m.group(1).startswith(cur["key"] + "."):
                cur["linears_done"] = t
    out = []
    for m in mods:
        if m["end"] is None:
            continue
        cap = (m["captured"] - m["start"]) if m["captured"] else 0.0
        q_end = m["linears_done"] or m["captured"] or m["start"]
        out.append({"key": m["key"], "start": m["start"], "end": m["end"], "seconds": m["end"] - m["start"],
                    "capture": cap, "quantize": q_end - (m["captured"] or m["start"]), "forward": m["end"] - q_end})
    return out


def ours_modules(path):
    starts, ends, stages = [], None, {}
    for t, line in lines(path):
        m = re.match(r"convert \[\d+/\d+\] (\S+)", line)
        if m:
            starts.append((m.group(1), t))
        m = re.match(r"(\S+): rfn .*\(capture ([\d.]+) s, quantize ([\d.]+) s, forward ([\d.]+) s\)", line)
        if m:
            stages[m.group(1)] = tuple(float(m.group(i)) for i in (2, 3, 4))
        if line.startswith("Converted to "):
            ends = t
    out = []
    for i, (key, t) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else ends
        if end is None:
            continue
        c, q, f = stages.get(key, (0.0, 0.0, 0.0))
        out.append({"key": key, "start": t, "end": end, "seconds": end - t, "capture": c, "quantize": q, "forward": f})
    return out


def smi(path):
    samples = []
    for line in (gzip.open(path, "rt") if path.endswith(".gz") else open(path)):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            continue
        try:
            t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()
            samples.append((t, int(parts[1]), int(parts[2])))
        except ValueError:
            continue
    return samples


def summarize(log, kind, model_layers):
    mods = exl3_modules(log) if kind == "exl3" else ours_modules(log)
    layers = [m for m in mods if ".layers." in m["key"]]
    steady = layers[1:] or layers
    head = next((m for m in mods if m["key"] == "lm_head"), None)
    rest = sum(m["seconds"] for m in mods if m not in layers and m is not head)
    r = {"exit": exit_code(log), "host_peak_gib": host_peak_gib(log), "layers_timed": len(steady)}
    if steady:
        n = len(steady)
        r.update({k: sum(m[k] for m in steady) / n for k in ("seconds", "capture", "quantize", "forward")})
    if head:
        r["head_seconds"] = head["seconds"]
        r["head_stages"] = {k: head[k] for k in ("capture", "quantize", "forward")}
    first = min((m["start"] for m in mods), default=None)
    last = max((m["end"] for m in mods), default=None)
    if first and last:
        r["modules_wall"] = last - first
    if steady and head:
        r["projected_8b_seconds"] = rest + layers[0]["seconds"] + (model_layers - 1) * r["seconds"] + head["seconds"]
    smi_path = next((p for p in (log[:-4] + ".smi.csv", log[:-4] + ".smi.csv.gz") if os.path.exists(p)), None)
    if smi_path and steady:
        s = smi(smi_path)
        lo, hi = steady[0]["start"], steady[-1]["end"]
        busy = [u for t, u, _ in s if lo <= t < hi]
        r["gpu_busy_pct"] = sum(busy) / len(busy) if busy else None
        r["gpu_peak_gib"] = max((m for _, _, m in s), default=0) / 1024
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--model-layers", type=int, default=32)
    a = ap.parse_args()
    results = {}
    for log in sorted(glob.glob(os.path.join(a.out, "*-exl3.log")) + glob.glob(os.path.join(a.out, "*-ours.log"))):
        volume, kind = os.path.basename(log)[:-4].rsplit("-", 1)
        results.setdefault(volume, {})[kind] = summarize(log, kind, a.model_layers)
    machine = open(os.path.join(a.out, "machine.txt")).readline().strip() if os.path.exists(os.path.join(a.out, "machine.txt")) else "?"
    print(f"machine: {machine}")
    fmt = "{:<9} {:<6} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8} {:>9}"
    print(fmt.format("volume", "conv", "exit", "layer s", "capture", "quant", "forward", "head s", "busy %", "GPU GiB", "host GiB", "8B proj"))
    for volume, by in results.items():
        for kind in ("exl3", "ours"):
            r = by.get(kind)
            if not r:
                continue
            f = lambda k, p=1: "—" if r.get(k) is None else f"{r[k]:.{p}f}"  # noqa: E731
            proj = r.get("projected_8b_seconds")
            print(fmt.format(volume, kind, str(r["exit"]), f("seconds"), f("capture"), f("quantize"), f("forward"), f("head_seconds"),
                             f("gpu_busy_pct", 0), f("gpu_peak_gib"), f("host_peak_gib"), "—" if proj is None else f"{proj / 60:.1f} min"))
        e, o = by.get("exl3", {}), by.get("ours", {})
        if e.get("seconds") and o.get("seconds"):
            by["ratio_per_layer"] = e["seconds"] / o["seconds"]
            line = f"{volume}: per layer exllamav3 / ours = {by['ratio_per_layer']:.2f}×"
            if e.get("head_seconds") and o.get("head_seconds"):
                by["ratio_head"] = e["head_seconds"] / o["head_seconds"]
                line += f", head {by['ratio_head']:.2f}×"
            if e.get("projected_8b_seconds") and o.get("projected_8b_seconds"):
                by["ratio_projected_8b"] = e["projected_8b_seconds"] / o["projected_8b_seconds"]
                line += f", projected whole 8B {by['ratio_projected_8b']:.2f}×"
            print(line)
    json.dump({"machine": machine, "results": results}, open(os.path.join(a.out, "sidebyside.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
