#!/usr/bin/env bash
# The drift target's GPU paths in one device call (about 4 minutes on an H200; 5 more with LONG=1): its GPU tests
# (device pairing on llama, MoE and latent blocks, the solve, the conversions), tiny-llama --sequential --drift-target 1
# at 4 bpw seed 0 against the original (KL 0.01384 in session 16, 0.01327 with the TF32 cross products), and a 2-layer
# llama-3-8b at 128 x 512, exllamav3's quantizer (--fast) against --sequential --drift-target 1, with timelines
# (session 16: 6.9 against 10.1 s per layer; at 250 x 2048 11.6 against 18.6 s).
#   [LONG=1] [SHORT=0] [MOE=1] [VARIANTS="default seqd1 seqd1tf32"] [LONG_VARIANTS=…, default VARIANTS] [TESTS="…"] [TEST_TIMEOUT=120] [SWEEP_BITS="2 4"] [SWEEP_SEEDS="0 1"]
#   [SWEEP_VARIANTS='seqd1=;h32=--hessian-math tf32'] [PARALLEL=2] tools/gpu-drift-check.sh OUT_DIR
# Run from the repository root after tools/publish-gpu.sh tests; carry .gpu/tests. OUT_DIR gets summary.txt, the convert
# logs and the --sequential runs' traces. MOE=1 adds convert's default on a 1-layer Qwen3-30B-A3B. TESTS="" skips the
# tests (each filter gets TEST_TIMEOUT seconds), SWEEP_BITS="" the tiny-llama sweep, SHORT=0 the 128 x 512 conversions of the 8B. SWEEP_VARIANTS are
# quantizer-sweep.sh variants separated by ';' (each "name=options"). VARIANT seqd1tf32 is the default with
# --hessian-math tf32, seqd1nostash the default with --stage-stash false (each stage recomputed from the block's input).
set -u
out="${1:?usage: tools/gpu-drift-check.sh OUT_DIR}"
T=.gpu/tests/Converter.Cuda.Tests
export TRELLIS_REQUIRE_GPU=1
mkdir -p "$out"
start=$(date +%s)
for f in ${TESTS-DriftCaptureOnTheDevice SequentialDriftCaptureOfEveryBlockKind DenseAlgebraTests QuantizerExperimentTests ConvertOnGpuTests}; do
  timeout "${TEST_TIMEOUT:-120}" $T $f > /tmp/drift-check-tests.txt 2>&1
  echo "$f rc=$? $(tail -1 /tmp/drift-check-tests.txt) at $(( $(date +%s) - start )) s" >> "$out/summary.txt"
  grep -E "FAIL|Expected|But was" /tmp/drift-check-tests.txt | head -6 >> "$out/summary.txt"
done
if [ -n "${SWEEP_BITS-4}" ]; then
  IFS=';' read -r -a sweep <<< "${SWEEP_VARIANTS:-seqd1=--sequential --drift-target 1}"
  PARALLEL="${PARALLEL:-1}" DEVICE=cuda:0 timeout 240 tools/quantizer-sweep.sh "$T trellis" samples/tiny-llama /tmp/drift-check-sweep "${SWEEP_BITS-4}" "${SWEEP_SEEDS:-0}" \
    "${sweep[@]}" > /dev/null 2>&1
  cat /tmp/drift-check-sweep/results.tsv >> "$out/summary.txt"
  echo "sweep done at $(( $(date +%s) - start )) s" >> "$out/summary.txt"
fi
timeout 60 $T trellis synth --shape llama-3-8b --layers 2 -o /tmp/drift-check-8b --overwrite > /dev/null 2>> "$out/summary.txt"
# LONG=1 adds exllamav3's calibration volume (250 x 2048), where both streams' captures cost most.
# VARIANTS (default "default seqd1") picks the conversions.
runs=()
[ "${SHORT:-1}" = 1 ] && for v in ${VARIANTS:-default seqd1}; do runs+=("$v 128 512"); done
[ "${LONG:-0}" = 1 ] && for v in ${LONG_VARIANTS:-${VARIANTS:-default seqd1}}; do runs+=("$v 250 2048"); done
for spec in "${runs[@]}"; do
  read -r variant rows cols <<< "$spec"
  name="$variant-${rows}x$cols"
  # "default" is exllamav3's quantizer (--fast) since convert's default became the sequential drift target.
  case "$variant" in
    seqd1) opts=(--sequential --drift-target 1 --timeline "$out/$name.trace.json");;
    seqd1tf32) opts=(--sequential --drift-target 1 --hessian-math tf32 --timeline "$out/$name.trace.json");;
    seqd1nostash) opts=(--sequential --drift-target 1 --stage-stash false --timeline "$out/$name.trace.json");;
    *) opts=(--fast);;
  esac
  /usr/bin/time -v timeout 300 $T trellis convert /tmp/drift-check-8b -o /tmp/drift-check-q --overwrite --bits 4 --device cuda:0 --cal-rows "$rows" --cal-cols "$cols" \
    "${opts[@]}" > "$out/convert-$name.log" 2>&1
  echo "$name rc=$? at $(( $(date +%s) - start )) s: $(grep -E '^model.layers.1:' "$out/convert-$name.log") $(grep -E 'Maximum resident' "$out/convert-$name.log" | tr -s ' ')" >> "$out/summary.txt"
done
# MOE=1: convert's default (the sequential drift target) on a mixture of experts, a 1-layer Qwen3-30B-A3B at 128 x 512.
if [ "${MOE:-0}" = 1 ]; then
  timeout 60 $T trellis synth --shape qwen3-30b-a3b --layers 1 -o /tmp/drift-check-moe --overwrite > /dev/null 2>> "$out/summary.txt"
  timeout 300 $T trellis convert /tmp/drift-check-moe -o /tmp/drift-check-q --overwrite --bits 4 --device cuda:0 --cal-rows 128 --cal-cols 512 \
    > "$out/convert-moe-default.log" 2>&1
  echo "moe default rc=$? at $(( $(date +%s) - start )) s: $(grep -E '^model.layers.0:' "$out/convert-moe-default.log")" >> "$out/summary.txt"
fi
rm -rf /tmp/drift-check-8b /tmp/drift-check-moe /tmp/drift-check-q /tmp/drift-check-q.work
