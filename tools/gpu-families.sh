#!/usr/bin/env bash
# On the GPU machine, from the repository root (tools/publish-gpu.sh tests first; the test runner doubles as the CLI):
# regenerate the random fixtures of the dense architectures with transformers (make_fixtures.py from the shared test
# data, seeded: the same weights as ../shared/models/rand-*, sha256 printed to check), convert each on the GPU at
# 4 bpw (and rand-gemma2 at 2 bpw), evaluate each with `trellis eval` against its original, and pack the conversions
# for the compat harness.
#   tools/gpu-families.sh OUT_DIR MAKE_FIXTURES_PY [FAMILIES] [EXTRA]
# FAMILIES are make_fixtures.py's names (default: the seven dense ones; mixtral,qwen3_moe,glm4_moe,gpt_oss,deepseek_v3
# for the mixtures of experts); EXTRA lists further NAME:BITS conversions (default "gemma2:2" when gemma2 is among them).
set -uo pipefail
out="$1"; make_fixtures="$2"
families="${3:-gemma2,gemma3,phi3,glm4,olmo3,smollm3,cohere}"
case ",$families," in *,gemma2,*) extra_default="gemma2:2";; *) extra_default="";; esac
extra="${4:-$extra_default}"
# TRELLIS_APP=1 uses the published CLI (.gpu/app, 15 MiB) instead of the test runner (22 MiB), so that the compat
# harness fits beside it in the 64 MiB a device call carries.
trellis() { if [ "${TRELLIS_APP:-0}" = 1 ]; then .gpu/app/trellis "$@"; else .gpu/tests/Converter.Cuda.Tests trellis "$@"; fi; }
fx=/tmp/fixtures q=/tmp/converted
mkdir -p "$out" "$q"
python3 "$make_fixtures" "$fx" tests/data/models/rand-qwen3 --only "$families" 2>&1 | grep -v Warning | tail -12
# exllamav3 1.4.1 loads Gemma 3 only as Gemma3ForConditionalGeneration: wrap the text fixture as one.
[ -d "$fx/models/gemma3" ] && python3 tools/make-gemma3-cg-fixture.py "$fx/models/gemma3" "$fx/models/gemma3-cg" | tail -1
sha256sum "$fx"/models/*/model.safetensors | sed "s|$fx/models/||" | tee "$out/fixtures.sha256"
convert() {  # convert NAME BITS
  local src="$fx/models/$1" dst="$q/rand-$1-$2bpw"
  local t0; t0=$(date +%s)
  if trellis convert "$src" -o "$dst" --bits "$2" --device cuda:0 >"$out/convert-$1-$2.log" 2>&1; then
    echo "convert rand-$1 $2 bpw: ok ($(( $(date +%s) - t0 )) s)"
    trellis eval "$dst" --reference "$src" --device cuda:0 --json >"$out/eval-$1-$2.json" 2>"$out/eval-$1-$2.log" \
      && python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f'  eval: KL {r[\"kl_ab\"]:.6f} top-1 {r[\"topk_agreement\"][0]:.4f} ppl {r[\"ppl_a\"]:.2f}/{r[\"ppl_b\"]:.2f}')" "$out/eval-$1-$2.json" \
      || { echo "  eval FAILED"; tail -3 "$out/eval-$1-$2.log"; }
  else
    echo "convert rand-$1 $2 bpw: FAILED"; tail -5 "$out/convert-$1-$2.log"
  fi
}
for f in ${families//,/ }; do convert "$f" 4; done
[ -d "$fx/models/gemma3-cg" ] && convert gemma3-cg 4
for e in $extra; do convert "${e%%:*}" "${e#*:}"; done
tar -czf "$out/converted.tgz" -C "$q" .
tar -czf "$out/logs.tgz" -C "$out" $(cd "$out" && ls *.log *.json 2>/dev/null) && rm -f "$out"/*.log "$out"/eval-*.json
ls -la "$out"
