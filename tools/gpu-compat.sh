#!/usr/bin/env bash
# On the GPU machine, from the repository root: exllamav3 itself on conversions made by tools/gpu-families.sh.
# Needs the compat harness in .gpu/compat (a copy of the shared compat folder, prepared with its prepare.sh), the
# conversions unpacked from converted.tgz, and make_fixtures.py to regenerate the originals (seeded, identical weights).
#   tools/gpu-compat.sh OUT_DIR CONVERTED_TGZ MAKE_FIXTURES_PY "NAME:FIXTURE ..."
# e.g. "rand-glm4-4bpw:glm4 rand-gemma2-2bpw:gemma2". Besides the harness's comparisons with transformers, each
# conversion is compared with exllamav3's own run of its original (compat-vs-exl3.jsonl): the judge for fixtures
# where exllamav3 itself differs from transformers (its sliding windows keep one key more; OLMo 3's rope and window
# keys are read from elsewhere). BUILD_MODE=full (the harness's extension build with the MoE kernels) for mixtures of
# experts.
set -uo pipefail
out="$1"; tgz="$2"; make_fixtures="$3"; pairs="$4"
q=/tmp/converted fx=/tmp/fixtures work=/tmp/compat-work
mkdir -p "$out" "$q"
tar -xzf "$tgz" -C "$q"
families=$(for p in $pairs; do f="${p#*:}"; echo "${f%-cg}"; done | sort -u | paste -sd,)
python3 "$make_fixtures" "$fx" tests/data/models/rand-qwen3 --only "$families" >/dev/null 2>&1
# gemma3-cg: the Gemma3ForConditionalGeneration wrap of the Gemma 3 fixture (exllamav3 loads Gemma 3 only so).
case " $pairs " in *":gemma3-cg "*) python3 tools/make-gemma3-cg-fixture.py "$fx/models/gemma3" "$fx/models/gemma3-cg" >/dev/null;; esac
args=()
for p in $pairs; do args+=("$q/${p%%:*}" "$fx/models/${p#*:}"); done
TEXT=samples/data/eval-heldout.txt OUT="$out" BUILD_MODE="${BUILD_MODE:-dense}" PACK=0 COMPAT_WORK="$work" BUDGET="${BUDGET:-480}" \
  bash .gpu/compat/device.sh "${args[@]}"
idx=0
for p in $pairs; do
  idx=$((idx + 1)); name="${p%%:*}"; orig="${p#*:}"
  floor=$(ls "$work/$orig"-*.exl3fp16.npy 2>/dev/null | head -1); ids=$(ls "$work/$orig"-*.ids.npy 2>/dev/null | head -1)
  [ -n "$floor" ] && [ -f "$work/$idx-$name.reconstruct.npy" ] || continue
  r=$(python3 .gpu/compat/compare.py "$work/$idx-$name.reconstruct.npy" "$floor" --ids "$ids" 2>/dev/null)
  [ -n "$r" ] && echo "{\"model\": \"$name\", \"against\": \"exllamav3 on the original\", \"result\": $r}" >>"$out/compat-vs-exl3.jsonl"
done
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
for f in ("compat.jsonl", "compat-vs-exl3.jsonl"):
    p = os.path.join(out, f)
    if not os.path.exists(p):
        continue
    for line in open(p):
        r = json.loads(line)
        res = r.get("result", r)
        print(f, {k: res.get(k, r.get(k)) for k in ("model", "path", "status", "kl", "kl_ab", "top1", "error") if res.get(k, r.get(k)) is not None})
PY
