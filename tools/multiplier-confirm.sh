#!/usr/bin/env bash
# Issue 18 part 2: confirms a multiplier screen end to end. Converts MODEL_DIR with exllamav3's locked multiplier and
# with each listed one (non-standard ones with --allow-nonstandard-multiplier, which marks them in quantization_config),
# at each conversion seed (sign flips and calibration rows), then evaluates every variant against the original in one
# `trellis compare` run (the reference runs once) and tabulates KL and top-1 agreement per multiplier over the seeds,
# with which outputs exllamav3 can run (only its locked multiplier; compare's "exllamav3" column).
#   tools/multiplier-confirm.sh TRELLIS MODEL_DIR OUT CODEBOOK MULTIPLIERS BITS [SEEDS="0 1 2"] [extra convert options…]
# MULTIPLIERS is a list file as `codebooks --screen` reads it (e.g. the top of a screen), or a quoted list
# "0xFF7A83E5 0xCAF6A435". TRELLIS is the CLI: ./trellis, or ".gpu/tests/Converter.Cuda.Tests trellis" on the GPU
# machine; DEVICE=cuda:0 (default auto) goes to convert and compare. Writes OUT/compare.json and OUT/confirm.txt.
#   e.g. tools/multiplier-confirm.sh ./trellis samples/tiny-llama out/confirm mcg screen-top.txt 2 "0 1 2"
set -euo pipefail
app="$1"; model="$2"; out="$3"; codebook="$4"; list="$5"; bits="$6"; seeds="${7:-0 1 2}"; shift 6; [ $# -gt 0 ] && shift
device="${DEVICE:-auto}"
mkdir -p "$out"
if [ -f "$list" ]; then multipliers=$(sed -e 's/#.*//' "$list" | tr -s ' \t' '\n' | grep -v '^$' || true); else multipliers="$list"; fi
[ -n "$multipliers" ] || { echo "multiplier-confirm: no multiplier in '$list'" >&2; exit 1; }
dirs=()
convert() {  # convert LABEL SEED [--multiplier M --allow-nonstandard-multiplier]
  local label="$1" seed="$2"; shift 2
  local dir="$out/$codebook-$label-$bits-s$seed"
  $app convert "$model" -o "$dir" --bits "$bits" --codebook "$codebook" --seed "$seed" --device "$device" --overwrite "$@" > /dev/null 2> "$out/convert-$label-s$seed.log" \
    || { echo "convert $label seed $seed FAILED"; tail -3 "$out/convert-$label-s$seed.log"; exit 1; }
  dirs+=("$dir")
}
for seed in $seeds; do
  convert locked "$seed" "$@"
  for m in $multipliers; do convert "$m" "$seed" --multiplier "$m" --allow-nonstandard-multiplier "$@"; done
done
$app compare --reference "$model" "${dirs[@]}" --device "$device" --json > "$out/compare.json" 2> "$out/compare.log" \
  || { echo "compare FAILED"; tail -3 "$out/compare.log"; exit 1; }
python3 - "$out/compare.json" <<'PY' | tee "$out/confirm.txt"
import json, math, sys, collections
d = json.load(open(sys.argv[1]))
groups = collections.OrderedDict()
for r in d["results"]:
    q = r["quantization"] or {}
    groups.setdefault(q.get("multiplier"), []).append((r["kl_ab"], r["topk_agreement"][0], q.get("exllamav3_can_decode", True)))
def stat(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, sd
print(f"{d['rows']} rows x {d['length']} tokens of {d['text']}; mean (sd) over conversion seeds")
print(f"{'multiplier':<12} {'seeds':>5} {'KL(A||B)':>18} {'top-1':>16} {'exllamav3':>14}")
base = None
for m, rows in groups.items():
    kl, top1 = stat([r[0] for r in rows]), stat([r[1] for r in rows])
    base = base or kl[0]
    runs = "runs" if all(r[2] for r in rows) else "cannot decode"
    print(f"{m or '-':<12} {len(rows):>5} {kl[0]:>9.5f} ({kl[1]:.5f}) {top1[0]:>7.4f} ({top1[1]:.4f}) {runs:>14}   KL x{kl[0] / base:.3f}")
PY
