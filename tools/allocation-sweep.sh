#!/usr/bin/env bash
# Measured against uniform allocation (issue 13 part 2): per seed, `trellis measure` once, then for each target
# `trellis convert --bits B --measurement` (which converts the uniform allocation too and evaluates both on the
# held-out rows of the built-in evaluation text). Prints one row per (seed, bits) from quantization_config.allocation
# and writes OUT/allocation.jsonl.
#   tools/allocation-sweep.sh TRELLIS MODEL_DIR OUT "0 1" "2.5 3.5" [candidates=2,3,4,5] [extra options for both…]
# `--granularity tensor|group` and `--compensation block|none` among the extra options go to measure only (defaults:
# measure's own); runs of both granularities can share one OUT (their files are named by it).
set -euo pipefail
app="$1"; model="$2"; out="$3"; seeds="$4"; targets="$5"; candidates="${6:-2,3,4,5}"; shift 6 || shift $#
granularity=tensor; measure_only=(); both=()
while [ $# -gt 0 ]; do
  case "$1" in
    --granularity) granularity="$2"; shift 2 ;;
    --granularity=*) granularity="${1#--granularity=}"; shift ;;
    --compensation) measure_only+=("$1" "$2"); shift 2 ;;
    --compensation=*) measure_only+=("$1"); shift ;;
    *) both+=("$1"); shift ;;
  esac
done
mkdir -p "$out"
: > "$out/allocation.jsonl"
for seed in $seeds; do
  m="$out/measure-$granularity-seed$seed.json"
  # A measurement already in OUT is reused (e.g. one made with other --rows by hand).
  if [ ! -f "$m" ]; then
    /usr/bin/time -f "measure seed $seed ($granularity): %e s, host peak %M KB" "$app" measure "$model" -o "$m" --candidates "$candidates" \
      --granularity "$granularity" --seed "$seed" ${measure_only[@]+"${measure_only[@]}"} ${both[@]+"${both[@]}"} > /dev/null 2> "$out/measure-$granularity-seed$seed.log"
    tail -n 1 "$out/measure-$granularity-seed$seed.log"
  fi
  for b in $targets; do
    dir="$out/$granularity-seed$seed-$b"
    /usr/bin/time -f "convert seed $seed $b bpw ($granularity): %e s" "$app" convert "$model" -o "$dir" --bits "$b" --seed "$seed" --measurement "$m" --overwrite \
      ${both[@]+"${both[@]}"} > /dev/null 2> "$out/convert-$granularity-seed$seed-$b.log" && tail -n 1 "$out/convert-$granularity-seed$seed-$b.log"
    python3 - "$dir/config.json" "$seed" "$b" >> "$out/allocation.jsonl" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))["quantization_config"]["allocation"]
a.update(seed=int(sys.argv[2]), bits=float(sys.argv[3]))
print(json.dumps(a))
PY
  done
done
python3 - "$out/allocation.jsonl" <<'PY'
import json, sys
print(f"{'units':>6} {'seed':>4} {'bpw':>5} {'KL measured':>12} {'KL uniform':>11} {'ratio':>6} {'predicted':>10} {'pred. unif.':>11}  shipped")
for line in open(sys.argv[1]):
    a = json.loads(line)
    m, u = a.get("held_out_kl_measured"), a.get("held_out_kl_uniform")
    ratio = f"{m / u:.3f}" if m and u else "—"
    print(f"{a.get('granularity', 'group'):>6} {a['seed']:>4} {a['bits']:>5} {m if m is not None else float('nan'):>12.5f} {u if u is not None else float('nan'):>11.5f} {ratio:>6} "
          f"{a['predicted_kl']:>10.5f} {a['uniform_predicted_kl']:>11.5f}  {a['method']}")
PY
