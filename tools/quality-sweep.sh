#!/usr/bin/env bash
# Converts one model at several bit widths for each codebook, a few conversions at a time (each conversion is mostly
# host-bound, so on a many-core GPU machine they overlap well), then evaluates all variants against the original in
# one `trellis compare` run. Writes OUT/compare.json and prints the table.
#   tools/quality-sweep.sh TRELLIS MODEL_DIR OUT "mul1 mcg 3inst" "2 3 4 5" [parallel=4] [extra convert options…]
set -euo pipefail
app="$1"; model="$2"; out="$3"; codebooks="$4"; bits="$5"; parallel="${6:-4}"; shift 6 || shift $#
mkdir -p "$out"
jobs=()
for cb in $codebooks; do for b in $bits; do jobs+=("$cb:$b"); done; done
run() {
  local cb="${1%%:*}" b="${1##*:}"; shift
  local dir="$out/$cb-$b"
  /usr/bin/time -f "$cb $b bpw: %e s, host peak %M KB" "$app" convert "$model" -o "$dir" --bits "$b" --codebook "$cb" --overwrite "$@" \
    > /dev/null 2> "$out/convert-$cb-$b.log" && tail -n 1 "$out/convert-$cb-$b.log"
}
for ((i = 0; i < ${#jobs[@]}; i += parallel)); do
  for j in "${jobs[@]:i:parallel}"; do run "$j" "$@" & done
  wait
done
dirs=(); for j in "${jobs[@]}"; do dirs+=("$out/${j%%:*}-${j##*:}"); done
"$app" compare --reference "$model" "${dirs[@]}" --json > "$out/compare.json" 2> "$out/compare.log"
python3 - "$out/compare.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"reference PPL {d.get('reference_ppl', float('nan')):.3f}")
print(f"{'variant':<40} {'KL(A||B)':>9} {'top-1':>6} {'top-5':>6} {'PPL':>8}")
for r in d["results"]:
    name = r.get("model") or r.get("quant_dir") or r.get("name") or "?"
    print(f"{name:<40} {r['kl_ab']:>9.5f} {r['topk_agreement'][0]:>6.3f} {r['topk_agreement'][-1]:>6.3f} {r['ppl_a']:>8.3f}")
PY
