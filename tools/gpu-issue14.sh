#!/usr/bin/env bash
# Issue 14's measurements on the GPU machine, one phase per device call (each fits the 10-minute limit on an H200):
#   tools/gpu-issue14.sh OUT_DIR PHASE
# PHASE:
#   8b-2layers  a 2-layer llama-3-8b at 250 × 2048 (samples/data/calibration.txt three times) and at 128 × 512
#               (built-in calibration): per-module stage times, GPU busy and memory, host peak
#   8b-128x512  the 2-layer llama-3-8b at 128 × 512 only; VARIANT (environment) names the run, e.g. a GC setting
#               passed as DOTNET_GC… beside it
#   8b-whole    the whole 32-layer llama-3-8b at 128 × 512 (issue 14's ≤ 5 min)
#   8b-inflight the 2-layer llama-3-8b at 128 × 512 with 2, 3 and 4 linears in flight
#   8b-timeline a 3-layer llama-3-8b at 128 × 512 with --timeline (PHASE-*.trace.json) and nvidia-smi every 100 ms, for
#               tools/timeline-gpu-idle.py: which stages ran while the GPU idled
#   70b-20gb    a 1-layer (LAYERS=n: n) llama-3-70b at 128 × 512 under --gpu-memory 18.626 (20 GB): the plan, GPU peak, with
#               --timeline (PHASE-*.trace.json: tools/timeline-gpu-idle.py says what ran at the highest memory samples)
#   70b-stash   the 70b-20gb run with --stage-stash false and then as it is, on one machine (~220 s): the host stashes'
#               share of the capture stages (session 27: +2.9 s in the o_proj and gate/up stages, less in down_proj's)
#   8b-twice    the 8b-timeline run twice on one machine: run-to-run spread of GPU busy (74–85% across machines)
#   8b-gaps     the 3-layer llama-3-8b at 128 × 512 with --timeline --timeline-gpu (CUPTI: every kernel, copy and driver
#               call), then tools/gpu-gaps.py over layers 1–2 (PHASE-gaps.txt): the GPU's idle gaps and what ended each
#   8b-busy     the 3-layer llama-3-8b at 128 × 512 without --timeline, RUNS (3) times on one machine: GPU busy over
#               layers 1–2 as a user's run has it
# Run from the repository root after tools/publish-gpu.sh tests (the GPU test runner doubles as the CLI); carry
# .gpu/tests. OUT_DIR gets PHASE-*.log (convert logs with /usr/bin/time -v), PHASE-*.rss (the process's memory),
# PHASE-*.smi.csv (nvidia-smi samples: timestamp, utilization %, memory MiB) and summary.txt (one line per run: exit
# code, wall, host peak, GPU busy over the decoder layers, GPU peak). Models go to /tmp. BUDGET (environment, seconds, default 590) bounds the phase's
# conversions, for a call that runs something else first within the device's 10-minute limit.
# PROFILE=1 (environment) records a CPU sampling trace of each conversion, PHASE-NAME.nettrace, for
# tools/nettrace-hotspots.py (about 0.2 MB a second on 2 cores; xz takes it to a seventh).
set -u
out="${1:?usage: tools/gpu-issue14.sh OUT_DIR 8b-2layers|8b-128x512|8b-whole|8b-inflight|8b-timeline|70b-20gb|70b-stash|8b-twice|8b-busy|8b-gaps}"
phase="${2:?usage: tools/gpu-issue14.sh OUT_DIR 8b-2layers|8b-128x512|8b-whole|8b-inflight|8b-timeline|70b-20gb|70b-stash|8b-twice|8b-busy|8b-gaps}"
cli="${TRELLIS:-.gpu/tests/Converter.Cuda.Tests trellis}"
mkdir -p "$out"
start=$(date +%s)

# convert NAME MODEL ARGS…: one conversion with nvidia-smi sampling beside it, summarized into summary.txt.
convert() {
  local name="$1" model="$2"; shift 2
  local log="$out/$phase-$name.log" smi="$out/$phase-$name.smi.csv"
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms "${SAMPLE_MS:-250}" > "$smi" &
  local sampler=$!
  # The converter's resident memory every 0.5 s, anonymous and file-backed apart (PHASE-NAME.rss: Unix ms, then kB):
  # where a host peak falls against the estimate's module.
  ( while sleep 0.5; do p=$(pgrep -n -f "trellis convert $model") && echo "$(( $(date +%s%N) / 1000000 )) $(grep -E 'VmRSS|RssAnon|RssFile' /proc/$p/status 2>/dev/null | awk '{printf "%s %s ", $1, $2}')"; done ) > "$out/$phase-$name.rss" &
  local rss=$!
  local began; began=$(date +%s.%N)
  # PROFILE=1: the runtime writes a CPU sampling trace beside the log (read it with tools/nettrace-hotspots.py).
  local profile=()
  [ -n "${PROFILE:-}" ] && profile=(env DOTNET_EnableEventPipe=1 "DOTNET_EventPipeOutputPath=$out/$phase-$name.nettrace"
    'DOTNET_EventPipeConfig=Microsoft-DotNETCore-SampleProfiler:0:5,Microsoft-Windows-DotNETRuntime:0x1:4')
  /usr/bin/time -v timeout $(( ${BUDGET:-590} - ($(date +%s) - start) )) "${profile[@]}" $cli convert "$model" -o /tmp/trellis-i14-out --overwrite --bits 4 --device cuda:0 "$@" > "$log" 2>&1
  local rc=$?
  kill "$sampler" "$rss"
  rm -rf /tmp/trellis-i14-out /tmp/trellis-i14-out.work
  python3 - "$log" "$smi" "$began" "$name" "$rc" >> "$out/summary.txt" <<'PY'
import datetime, re, sys
log, smi, began, name, rc = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
text = open(log).read()
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
# Module starts from the progress lines ("convert [3/35] model.layers.1 (elapsed 00:24, …)"), seconds after the start.
starts = [(m.group(2), int(m.group(3)) * 60 + int(m.group(4))) for m in re.finditer(r"convert \[(\d+)/\d+\] (\S+) \(elapsed (\d+):(\d+)", text)]
layers = [s for n, s in starts if ".layers." in n]
after = [s for n, s in starts if ".layers." not in n and s > (layers[-1] if layers else 0)]
# The decoder layers after the first (its start-up includes kernel compilation) up to the module after the last layer.
span = (layers[1], after[0]) if len(layers) > 1 and after else None
samples = []
for line in open(smi):
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 3:
        continue
    t = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp() - began
    samples.append((t, int(parts[1]), int(parts[2])))
busy = [u for t, u, _ in samples if span and span[0] <= t < span[1]]
print(f"{name}: exit {rc}, wall {wall.group(1) if wall else '?'}, host peak {int(rss.group(1)) / 2**20:.1f} GiB" if rss else f"{name}: exit {rc}",
      f"GPU busy {sum(busy) / len(busy):.0f}% over layers 2.. ({len(busy)} samples)" if busy else "GPU busy: no layer span",
      f"GPU peak {max(m for _, _, m in samples) / 1024:.1f} GiB" if samples else "", sep="; ")
PY
}

case "$phase" in
  8b-2layers)
    $cli synth --shape llama-3-8b --layers 2 -o /tmp/trellis-i14-8b2 --overwrite > /dev/null
    for _ in 1 2 3; do cat samples/data/calibration.txt; done > /tmp/trellis-i14-cal3.txt
    convert 250x2048 /tmp/trellis-i14-8b2 --cal-rows 250 --cal-cols 2048 --cal-text /tmp/trellis-i14-cal3.txt
    convert 128x512 /tmp/trellis-i14-8b2 --cal-rows 128 --cal-cols 512
    ;;
  8b-128x512)
    $cli synth --shape llama-3-8b --layers 2 -o /tmp/trellis-i14-8b2 --overwrite > /dev/null
    convert "128x512${VARIANT:+-$VARIANT}" /tmp/trellis-i14-8b2 --cal-rows 128 --cal-cols 512
    ;;
  8b-whole)
    $cli synth --shape llama-3-8b -o /tmp/trellis-i14-8b --overwrite > /dev/null
    convert whole-128x512 /tmp/trellis-i14-8b --cal-rows 128 --cal-cols 512
    ;;
  8b-inflight)
    $cli synth --shape llama-3-8b --layers 2 -o /tmp/trellis-i14-8b2 --overwrite > /dev/null
    for n in 2 3 4; do convert "inflight-$n" /tmp/trellis-i14-8b2 --cal-rows 128 --cal-cols 512 --linears-in-flight "$n"; done
    ;;
  8b-timeline)
    $cli synth --shape llama-3-8b --layers 3 -o /tmp/trellis-i14-8b3 --overwrite > /dev/null
    SAMPLE_MS=100 convert 128x512 /tmp/trellis-i14-8b3 --cal-rows 128 --cal-cols 512 --timeline "$out/$phase-128x512.trace.json"
    ;;
  70b-20gb)
    $cli synth --shape llama-3-70b --layers "${LAYERS:-1}" -o /tmp/trellis-i14-70b --overwrite > /dev/null
    SAMPLE_MS=100 convert lean-20gb /tmp/trellis-i14-70b --cal-rows 128 --cal-cols 512 --gpu-memory 18.626 --timeline "$out/$phase-lean-20gb.trace.json"
    ;;
  70b-stash)
    $cli synth --shape llama-3-70b --layers 1 -o /tmp/trellis-i14-70b --overwrite > /dev/null
    SAMPLE_MS=100 convert nostash /tmp/trellis-i14-70b --cal-rows 128 --cal-cols 512 --gpu-memory 18.626 --stage-stash false --timeline "$out/$phase-nostash.trace.json"
    SAMPLE_MS=100 convert stash /tmp/trellis-i14-70b --cal-rows 128 --cal-cols 512 --gpu-memory 18.626 --timeline "$out/$phase-stash.trace.json"
    ;;
  8b-twice)
    $cli synth --shape llama-3-8b --layers 3 -o /tmp/trellis-i14-8b3 --overwrite > /dev/null
    for run in 1 2; do SAMPLE_MS=100 convert "run$run" /tmp/trellis-i14-8b3 --cal-rows 128 --cal-cols 512 --timeline "$out/$phase-run$run.trace.json"; done
    ;;
  8b-busy)
    $cli synth --shape llama-3-8b --layers 3 -o /tmp/trellis-i14-8b3 --overwrite > /dev/null
    for run in $(seq 1 "${RUNS:-3}"); do SAMPLE_MS=100 convert "run$run" /tmp/trellis-i14-8b3 --cal-rows 128 --cal-cols 512; done
    ;;
  8b-gaps)
    $cli synth --shape llama-3-8b --layers 3 -o /tmp/trellis-i14-8b3 --overwrite > /dev/null
    SAMPLE_MS=100 convert gaps /tmp/trellis-i14-8b3 --cal-rows 128 --cal-cols 512 --timeline "$out/$phase-gaps.trace.json" --timeline-gpu
    python3 tools/gpu-gaps.py "$out/$phase-gaps.trace.json" --json "$out/$phase-gaps.json" > "$out/$phase-gaps.txt" 2>&1
    ;;
  *) echo "unknown phase '$phase'" >&2; exit 2 ;;
esac
cat "$out/summary.txt"
