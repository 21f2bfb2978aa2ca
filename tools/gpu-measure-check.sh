#!/usr/bin/env bash
# `trellis measure` on the GPU and what its allocation gives at fractional and integer widths, in one device call:
# tiny-llama measured per tensor with --compensation block (candidates 1..6) for seed 0, timed; then the issue-13
# protocol (tools/quantizer-sweep.sh: calibration.txt 128 x 512, `trellis eval` against the original) for the uniform
# allocation and the measured one at each width in BITS, for each seed in SEEDS (the one measurement serves both
# seeds: it ranks the units; the seed changes each conversion's signs and rows).
#   [BITS="2.5 3.5 4"] [SEEDS="0 1"] [PARALLEL=3] [MODEL=samples/tiny-llama] [RUNNER=.gpu/tests/Converter.Cuda.Tests]
#   tools/gpu-measure-check.sh OUT_DIR
# Run from the repository root after tools/publish-gpu.sh tests; carry .gpu/tests. small-qwen2 travels with it only
# without the tracked files the measurement does not read (docs/gpu-notes.md, session 20, item 3).
# OUT_DIR gets summary.txt (the measure's time and the sweep's results.tsv), the measurement and its log.
set -u
out="${1:?usage: tools/gpu-measure-check.sh OUT_DIR}"
T="${RUNNER:-.gpu/tests/Converter.Cuda.Tests}"
model="${MODEL:-samples/tiny-llama}"
mkdir -p "$out"
start=$(date +%s)
m="$out/measure-seed0.json"
# The calibration of the issue's protocol, as the conversions below use it (and the CPU measurements in docs/benchmarks.md).
/usr/bin/time -f "measure: %e s wall, host peak %M KB" timeout 400 $T trellis measure "$model" -o "$m" --candidates 1,2,3,4,5,6 --seed 0 --device cuda:0 \
  --cal-data samples/data/calibration.txt --cal-rows 128 --cal-cols 512 > /dev/null 2> "$out/measure.log"
echo "measure rc=$? at $(( $(date +%s) - start )) s: $(tail -n 1 "$out/measure.log")" >> "$out/summary.txt"
[ -f "$m" ] || exit 1
PARALLEL="${PARALLEL:-3}" DEVICE=cuda:0 timeout $(( 590 - ($(date +%s) - start) )) tools/quantizer-sweep.sh "$T trellis" "$model" /tmp/measure-check-sweep \
  "${BITS:-2.5 3.5 4}" "${SEEDS:-0 1}" 'uniform=' "measured=--measurement $m" > /dev/null 2>&1
cat /tmp/measure-check-sweep/results.tsv >> "$out/summary.txt"
# Which allocation each measured conversion shipped, and the held-out KL of both (convert's own comparison).
grep -h -E "allocation|held-out" /tmp/measure-check-sweep/measured-*.convert.log >> "$out/summary.txt" 2>/dev/null
echo "done at $(( $(date +%s) - start )) s" >> "$out/summary.txt"
