#!/usr/bin/env bash
# Screens quantizer variants cheaply: converts only the first modules of a model (--stop-after, default 2 = the
# embedding and layer 0, whose Hessians every variant shares) and prints each linear's proxy error tr(EᵀHE)/tr(WᵀHW)
# and quantization seconds from the convert log, one line per (variant, bpw, linear), into OUT/screen.tsv. Proxy
# errors are comparable across variants that share the Hessian's damping; for other damping values compare KL
# (tools/quantizer-sweep.sh).
#   tools/quantizer-screen.sh TRELLIS_DLL MODEL_DIR OUT "2 4" 'name=extra convert options' … [STOP_AFTER=2 in the environment]
set -euo pipefail
dll="$1"; model="$2"; out="$3"; bits="$4"; shift 4
mkdir -p "$out"
[ -f "$out/screen.tsv" ] || printf 'variant\tbits\tlinear\tproxy\tg\tseconds\n' > "$out/screen.tsv"
for spec in "$@"; do
  name="${spec%%=*}"; opts="${spec#*=}"
  for b in $bits; do
    dir="$out/$name-$b"
    # shellcheck disable=SC2086
    dotnet "$dll" convert "$model" -o "$dir" --bits "$b" --overwrite --stop-after "${STOP_AFTER:-2}" \
      --cal-data samples/data/calibration.txt --cal-rows 128 --cal-cols 512 $opts > "$dir.convert.log" 2>&1 || true
    # "  model.layers.0.mlp.down_proj: K=2 proxy_err 2.516E-002  g 0.984  (17.9 s: …"
    sed -nE 's/^ +([^ ]+): K=[0-9]+ proxy_err ([0-9.E+-]+) +g ([0-9.]+)[^(]*\(([0-9.]+) s.*/\1\t\2\t\3\t\4/p' "$dir.convert.log" \
      | while IFS=$'\t' read -r linear proxy g seconds; do printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$b" "$linear" "$proxy" "$g" "$seconds"; done \
      | tee -a "$out/screen.tsv"
    rm -rf "$dir" "$dir.work"
  done
done
