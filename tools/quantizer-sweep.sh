#!/usr/bin/env bash
# Converts tiny-llama (or any model) once per (variant, bpw, seed) with the issue-13 calibration protocol, evaluates
# each result against the original with `trellis eval` and appends one line per conversion to OUT/results.tsv:
# variant, bits, seed, KL(A‖B), top-1 agreement, PPL, conversion wall and CPU (user + system) seconds. CPU seconds are
# the load-independent cost on a shared machine; wall seconds measure contention as much as work.
#   tools/quantizer-sweep.sh TRELLIS MODEL_DIR OUT "2 3 4" "0 1" 'name=extra convert options' …
# TRELLIS is a trellis.dll (run with dotnet) or a command, e.g. ".gpu/tests/Converter.Cuda.Tests trellis" on the GPU
# machine. Env: PARALLEL (conversions at once, default 1), DEVICE (e.g. cuda:0, for convert and eval; default: theirs).
# e.g. tools/quantizer-sweep.sh src/Convert/bin/Release/net10.0/trellis.dll samples/tiny-llama /tmp/sweep "2 4" "0" \
#        'default=' 'proxy-scale=--scale-choice proxy' 'refine1=--refine-passes 1'
set -euo pipefail
app="$1"; model="$2"; out="$3"; bits="$4"; seeds="$5"; shift 5
case "$app" in *.dll) app="dotnet $app";; esac
parallel="${PARALLEL:-1}"
device=(); [ -n "${DEVICE:-}" ] && device=(--device "$DEVICE")
mkdir -p "$out"
[ -f "$out/results.tsv" ] || printf 'variant\tbits\tseed\tkl\ttop1\tppl\twall_s\tcpu_s\n' > "$out/results.tsv"

# one NAME OPTS BITS SEED: converts, evaluates, leaves the result line in OUT/NAME-BITS-SEED.row.
one() {
  local name="$1" opts="$2" b="$3" s="$4" dir="$out/$1-$3-$4"
  # shellcheck disable=SC2086
  /usr/bin/time -f '%e %U %S' -o "$dir.time" $app convert "$model" -o "$dir" --bits "$b" --seed "$s" --overwrite "${device[@]}" \
    --cal-data samples/data/calibration.txt --cal-rows 128 --cal-cols 512 $opts > "$dir.convert.log" 2>&1 || { echo "$name $b $s: convert failed" >&2; return; }
  read -r wall user system < "$dir.time"
  # shellcheck disable=SC2086
  $app eval "$dir" --reference "$model" --json "${device[@]}" > "$dir.eval.json" 2> "$dir.eval.log" || { echo "$name $b $s: eval failed" >&2; return; }
  python3 - "$dir.eval.json" "$name" "$b" "$s" "$wall" "$user" "$system" > "$dir.row" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
wall, cpu = float(sys.argv[5]), float(sys.argv[6]) + float(sys.argv[7])
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{sys.argv[4]}\t{d['kl_ab']:.5f}\t{d['topk_agreement'][0]:.4f}\t{d['ppl_a']:.3f}\t{wall:.0f}\t{cpu:.0f}")
PY
  cat "$dir.row"
  rm -rf "$dir" "$dir.work"
}

jobs=()
for spec in "$@"; do for b in $bits; do for s in $seeds; do jobs+=("$spec|$b|$s"); done; done; done
running=0
for job in "${jobs[@]}"; do
  spec="${job%%|*}"; rest="${job#*|}"
  one "${spec%%=*}" "${spec#*=}" "${rest%%|*}" "${rest##*|}" &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n || true; running=$((running - 1)); fi
done
wait
# In the order the jobs were given, whatever order they finished in.
for job in "${jobs[@]}"; do
  spec="${job%%|*}"; rest="${job#*|}"
  row="$out/${spec%%=*}-${rest%%|*}-${rest##*|}.row"
  [ -f "$row" ] && cat "$row" >> "$out/results.tsv" && rm -f "$row"
done
exit 0
