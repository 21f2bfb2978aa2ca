#!/usr/bin/env bash
# Converts tiny-llama (or any model) once per (variant, bpw, seed) with the issue-13 calibration protocol, evaluates
# each result against the original with `trellis eval` and appends one line per conversion to OUT/results.tsv:
# variant, bits, seed, KL(A‖B), top-1 agreement, PPL, conversion wall and CPU (user + system) seconds. CPU seconds are
# the load-independent cost on a shared machine; wall seconds measure contention as much as work.
#   tools/quantizer-sweep.sh TRELLIS_DLL MODEL_DIR OUT "2 3 4" "0 1" 'name=extra convert options' …
# e.g. tools/quantizer-sweep.sh src/Convert/bin/Release/net10.0/trellis.dll samples/tiny-llama /tmp/sweep "2 4" "0" \
#        'default=' 'proxy-scale=--scale-choice proxy' 'refine1=--refine-passes 1'
set -euo pipefail
dll="$1"; model="$2"; out="$3"; bits="$4"; seeds="$5"; shift 5
mkdir -p "$out"
[ -f "$out/results.tsv" ] || printf 'variant\tbits\tseed\tkl\ttop1\tppl\twall_s\tcpu_s\n' > "$out/results.tsv"
for spec in "$@"; do
  name="${spec%%=*}"; opts="${spec#*=}"
  for b in $bits; do for s in $seeds; do
    dir="$out/$name-$b-$s"
    # shellcheck disable=SC2086
    /usr/bin/time -f '%e %U %S' -o "$dir.time" dotnet "$dll" convert "$model" -o "$dir" --bits "$b" --seed "$s" --overwrite \
      --cal-data samples/data/calibration.txt --cal-rows 128 --cal-cols 512 $opts > "$dir.convert.log" 2>&1
    read -r wall user system < "$dir.time"
    dotnet "$dll" eval "$dir" --reference "$model" --json > "$dir.eval.json" 2> "$dir.eval.log"
    python3 - "$dir.eval.json" "$name" "$b" "$s" "$wall" "$user" "$system" >> "$out/results.tsv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
wall, cpu = float(sys.argv[5]), float(sys.argv[6]) + float(sys.argv[7])
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{sys.argv[4]}\t{d['kl_ab']:.5f}\t{d['topk_agreement'][0]:.4f}\t{d['ppl_a']:.3f}\t{wall:.0f}\t{cpu:.0f}")
PY
    tail -n 1 "$out/results.tsv"
    rm -rf "$dir" "$dir.work"
  done; done
done
