#!/usr/bin/env bash
# On the GPU machine, from the repository root: judges a gpt-oss conversion through exllamav3 on a like-for-like
# original. exllamav3 1.4.1 runs the fused-expert original through another load path than per-expert linears and
# reads YaRN's factor from max_position_embeddings (docs/compatibility.md note 5), so its run of the fixture is not
# the unquantized twin of its run of our output. This runs tools/gpu-compat.sh on the conversion (which builds the
# extension and leaves ids, transformers' logits and exllamav3's logits in /tmp/compat-work), then exllamav3 on
#   split       the original with experts split per expert (tools/gptoss-split-experts.py),
#   split-131k  the same with max_position_embeddings 131072 (YaRN factor 32 in exllamav3 as in transformers),
#   quant-131k  our conversion with that config key,
# and compares: quant vs split (the judge: within 2% of trellis eval's KL), split vs transformers, and the -131k
# pair against transformers. One JSON line each in OUT/gptoss-judge.jsonl.
#   tools/gpu-gptoss-judge.sh OUT_DIR CONVERTED_TGZ MAKE_FIXTURES_PY [NAME]
set -uo pipefail
out="$1"; tgz="$2"; make_fixtures="$3"; name="${4:-rand-gpt_oss-4bpw}"
BUILD_MODE=full PASSES="reconstruct" tools/gpu-compat.sh "$out" "$tgz" "$make_fixtures" "$name:gpt_oss"
work=/tmp/compat-work fx=/tmp/fixtures/models/gpt_oss q=/tmp/converted/$name
ids=$(ls "$work"/gpt_oss-*.ids.npy | head -1); ref=$(ls "$work"/gpt_oss-*.hf.npy | head -1)
quant="$work/1-$name.reconstruct.npy"
python3 tools/gptoss-split-experts.py "$fx" /tmp/gptoss-split
python3 tools/gptoss-split-experts.py "$fx" /tmp/gptoss-split-131k --max-position-embeddings 131072
rm -rf /tmp/quant-131k && cp -r "$q" /tmp/quant-131k
python3 - /tmp/quant-131k/config.json <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["max_position_embeddings"] = 131072; json.dump(c, open(p, "w"), indent=2)
PY
run() { python3 .gpu/compat/run_exl3.py --model "$1" --ids "$ids" --out "$2" >"$out/$(basename "$2").log" 2>&1 || echo "run_exl3 $1 failed: $(tail -3 "$out/$(basename "$2").log")"; }
run /tmp/gptoss-split /tmp/split.npy
run /tmp/gptoss-split-131k /tmp/split-131k.npy
run /tmp/quant-131k /tmp/quant-131k.npy
cmp() { r=$(python3 .gpu/compat/compare.py "$2" "$3" --ids "$ids" 2>>"$out/compare.err") && echo "{\"pair\": \"$1\", \"result\": $r}" >>"$out/gptoss-judge.jsonl"; }
cmp "quant vs split (exllamav3 both)" "$quant" /tmp/split.npy
cmp "split vs transformers" /tmp/split.npy "$ref"
cmp "quant vs transformers" "$quant" "$ref"
cmp "fused original (exllamav3) vs split (exllamav3)" "$(ls "$work"/gpt_oss-*.exl3fp16.npy | head -1)" /tmp/split.npy
cmp "quant-131k vs split-131k (exllamav3 both)" /tmp/quant-131k.npy /tmp/split-131k.npy
cmp "split-131k vs transformers" /tmp/split-131k.npy "$ref"
cmp "quant-131k vs transformers" /tmp/quant-131k.npy "$ref"
python3 -c "
import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l); x=r['result']; print(f\"{r['pair']:50s} KL {x['kl_ab']:.6f} top1 {x['top1_agreement']:.4f}\")
" "$out/gptoss-judge.jsonl"
