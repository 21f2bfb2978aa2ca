#!/usr/bin/env bash
# Issue 14 part 1: exllamav3's own converter and ours on the same synthetic llama-3-8b, the same bits, the same GPU,
# one device call. On the GPU machine, from the repository root:
#   tools/gpu-sidebyside.sh OUT_DIR
# Needs tools/publish-gpu.sh tests (.gpu/tests doubles as the CLI) and the compat harness in .gpu/compat (a copy of
# the shared compat folder, prepared with its prepare.sh, exllamav3's calibration text extracted again; see
# tools/exl3-convert.py). Builds exllamav3's extension in full mode (~2.5 min on 16 cores) unless it is built.
# Environment: VOLUMES ("250x2048 128x512": calibration rows x columns, both converters), LAYERS (2: decoder layers
# of the synthetic model; layer 0 includes start-up, so per-layer figures are layers 1..), BITS (4), OURS ("": extra
# options for ours, e.g. "--fast"), BUDGET (590 s for everything), COMPAT (.gpu/compat), TRELLIS (our CLI).
# OUT_DIR gets, per volume and converter, VOLUME-{exl3,ours}.log (each line prefixed by its Unix time; /usr/bin/time -v
# at the end) and .smi.csv (nvidia-smi every 250 ms), then sidebyside.txt and sidebyside.json from
# tools/sidebyside-table.py: per-layer seconds by stage, head seconds, GPU busy and peak, host peak, ratios, projection.
set -u
out="${1:?usage: tools/gpu-sidebyside.sh OUT_DIR}"
cli="${TRELLIS:-.gpu/tests/Converter.Cuda.Tests trellis}"
compat="${COMPAT:-.gpu/compat}"
layers="${LAYERS:-2}" bits="${BITS:-4}"
mkdir -p "$out"
start=$(date +%s)
left() { echo $(( ${BUDGET:-590} - ($(date +%s) - start) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/machine.txt"
nproc >> "$out/machine.txt"

# The quantizer's kernels are in the full build only; objects persist in /tmp/exl3build, so a rerun on the same
# machine is quick.
if ! ls "$compat/build/ext/"exllamav3_ext*.so >/dev/null 2>&1; then
  BUILD_TIMEOUT=$(( $(left) - 60 )) bash "$compat/build.sh" full > "$out/build.txt" 2>&1 || { tail -20 "$out/build.txt"; exit 1; }
fi
echo "build done after $(( $(date +%s) - start )) s" >> "$out/machine.txt"

model=/tmp/sbs-8b
$cli synth --shape llama-3-8b --layers "$layers" -o "$model" --overwrite > /dev/null
for _ in 1 2 3; do cat samples/data/calibration.txt; done > /tmp/sbs-cal3.txt

stamp() { python3 -u -c 'import sys, time
for line in sys.stdin: sys.stdout.write(f"{time.time():.3f} {line}")'; }

# timed NAME CMD…: one conversion, its output time-stamped, nvidia-smi beside it.
timed() {
  local name="$1"; shift
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 250 > "$out/$name.smi.csv" &
  local sampler=$!
  /usr/bin/time -v timeout "$(left)" "$@" 2>&1 | stamp > "$out/$name.log"
  echo "$(date +%s.%N) exit ${PIPESTATUS[0]}" >> "$out/$name.log"
  kill "$sampler"
}

for volume in ${VOLUMES:-250x2048 128x512}; do
  rows="${volume%x*}" cols="${volume#*x}"
  rm -rf /tmp/sbs-exl3 /tmp/sbs-exl3-work /tmp/sbs-ours /tmp/sbs-ours.work
  timed "$volume-exl3" env PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 python3 tools/exl3-convert.py "$compat" -- \
    -i "$model" -o /tmp/sbs-exl3 -w /tmp/sbs-exl3-work -b "$bits" -cr "$rows" -cc "$cols"
  rm -rf /tmp/sbs-exl3 /tmp/sbs-exl3-work
  # Ours: the built-in mix is 128 × 512 tokens; larger volumes read the sample text three times over.
  cal=(); [ "$volume" != 128x512 ] && cal=(--cal-text /tmp/sbs-cal3.txt)
  # shellcheck disable=SC2086
  timed "$volume-ours" $cli convert "$model" -o /tmp/sbs-ours --bits "$bits" --device cuda:0 --cal-rows "$rows" --cal-cols "$cols" "${cal[@]}" ${OURS:-}
  rm -rf /tmp/sbs-ours /tmp/sbs-ours.work
done
python3 tools/sidebyside-table.py "$out" --layers "$layers" | tee "$out/sidebyside.txt"
