#!/usr/bin/env bash
# Issue 12's throughput measurement on the GPU machine: a Qwen3-30B-A3B-shaped model cut to a few layers (128
# experts of 768 per layer, 8 per token), converted at 4 bpw with the defaults while nvidia-smi samples the GPU's
# utilization and memory every second.
#   tools/gpu-moe-speed.sh OUT_DIR [LAYERS] [SHAPE]     (defaults: 2 layers of qwen3-30b-a3b)
# The CLI is $TRELLIS, else .gpu/trellis/trellis (the published test runner) or .gpu/app/trellis. OUT_DIR gets
# convert.log, convert.json (the --json record), gpu.csv (timestamp, utilization %, memory MiB) and summary.txt.
set -uo pipefail
out="${1:?usage: tools/gpu-moe-speed.sh OUT_DIR [LAYERS] [SHAPE]}"
layers="${2:-2}"; shape="${3:-qwen3-30b-a3b}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="${TRELLIS:-}"
for candidate in "$root/.gpu/trellis/trellis" "$root/.gpu/app/trellis"; do
  [ -z "$cli" ] && [ -x "$candidate" ] && cli="$candidate"
done
[ -x "$cli" ] || { echo "no trellis CLI: set TRELLIS or run tools/publish-gpu.sh" >&2; exit 1; }
scratch="${TRELLIS_SCRATCH:-/tmp/trellis-moe}"
mkdir -p "$out" "$scratch"
src="$scratch/$shape-$layers"; dst="$scratch/$shape-$layers-4bpw"
t0=$(date +%s)
"$cli" synth --shape "$shape" --layers "$layers" -o "$src" --overwrite | tee "$out/summary.txt"
echo "synth: $(( $(date +%s) - t0 )) s" | tee -a "$out/summary.txt"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 > "$out/gpu.csv" &
sampler=$!
rm -rf "$dst" "$dst.work"
t0=$(date +%s)
/usr/bin/time -v -o "$scratch/time.txt" "$cli" convert "$src" -o "$dst" --bits 4 --device cuda:0 --json > "$out/convert.json" 2> "$out/convert.log"
rc=$?
kill "$sampler" 2>/dev/null
echo "convert: exit $rc, $(( $(date +%s) - t0 )) s, peak RSS $(awk -F': ' '/Maximum resident/ {print $2}' "$scratch/time.txt") KiB" | tee -a "$out/summary.txt"
grep -E "^(model|lm_head)[^ ]*: rfn|estimate" "$out/convert.log" | tee -a "$out/summary.txt"
awk -F', ' '{ n++; u += $2; if ($3 > m) m = $3 } END { if (n) printf "GPU: %d samples, mean utilization %.1f %%, peak memory %d MiB\n", n, u / n, m }' "$out/gpu.csv" | tee -a "$out/summary.txt"
exit "$rc"
