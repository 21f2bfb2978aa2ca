#!/usr/bin/env bash
# The drift target's GPU paths in one device call (about 4 minutes on an H200): its GPU tests, tiny-llama
# --sequential --drift-target 1 at 4 bpw seed 0 against the original (the host-copy capture of c8ad24d gave KL 0.01321
# there), and a 2-layer llama-3-8b at 128 x 512, default against --sequential --drift-target 1, with timelines (c8ad24d:
# 6.4 against 29.6 s per layer).
#   tools/gpu-drift-check.sh OUT_DIR
# Run from the repository root after tools/publish-gpu.sh tests; carry .gpu/tests. OUT_DIR gets summary.txt, the convert
# logs and the --sequential runs' traces.
set -u
out="${1:?usage: tools/gpu-drift-check.sh OUT_DIR}"
T=.gpu/tests/Converter.Cuda.Tests
export TRELLIS_REQUIRE_GPU=1
mkdir -p "$out"
start=$(date +%s)
for f in DriftCaptureOnTheDevice DenseAlgebraTests QuantizerExperimentTests ConvertOnGpuTests; do
  timeout 120 $T $f > /tmp/drift-check-tests.txt 2>&1
  echo "$f rc=$? $(tail -1 /tmp/drift-check-tests.txt) at $(( $(date +%s) - start )) s" >> "$out/summary.txt"
  grep -E "FAIL|Expected|But was" /tmp/drift-check-tests.txt | head -6 >> "$out/summary.txt"
done
PARALLEL=1 DEVICE=cuda:0 timeout 120 tools/quantizer-sweep.sh "$T trellis" samples/tiny-llama /tmp/drift-check-sweep "4" "0" 'seqd1=--sequential --drift-target 1' > /dev/null 2>&1
cat /tmp/drift-check-sweep/results.tsv >> "$out/summary.txt"
timeout 60 $T trellis synth --shape llama-3-8b --layers 2 -o /tmp/drift-check-8b --overwrite > /dev/null 2>> "$out/summary.txt"
# LONG=1 adds exllamav3's calibration volume (250 x 2048), where both streams' captures cost most.
# VARIANTS (default "default seqd1") picks the conversions.
runs=()
for v in ${VARIANTS:-default seqd1}; do runs+=("$v 128 512"); done
[ "${LONG:-0}" = 1 ] && for v in ${VARIANTS:-default seqd1}; do runs+=("$v 250 2048"); done
for spec in "${runs[@]}"; do
  read -r variant rows cols <<< "$spec"
  name="$variant-${rows}x$cols"
  opts=(); [ "$variant" = seqd1 ] && opts=(--sequential --drift-target 1 --timeline "$out/$name.trace.json")
  /usr/bin/time -v timeout 300 $T trellis convert /tmp/drift-check-8b -o /tmp/drift-check-q --overwrite --bits 4 --device cuda:0 --cal-rows "$rows" --cal-cols "$cols" \
    "${opts[@]}" > "$out/convert-$name.log" 2>&1
  echo "$name rc=$? at $(( $(date +%s) - start )) s: $(grep -E '^model.layers.1:' "$out/convert-$name.log") $(grep -E 'Maximum resident' "$out/convert-$name.log" | tr -s ' ')" >> "$out/summary.txt"
done
rm -rf /tmp/drift-check-8b /tmp/drift-check-q /tmp/drift-check-q.work
