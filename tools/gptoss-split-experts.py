#!/usr/bin/env python3
"""Writes a gpt-oss checkpoint whose fused bf16 expert tensors are split into per-expert linears.

    python3 tools/gptoss-split-experts.py SRC_DIR DST_DIR [--max-position-embeddings N]

exllamav3 loads per-expert `mlp.experts.{e}.{gate,up,down}_proj` through the same key path as our EXL3 output,
so its run of this copy is the unquantized twin of its run of our conversion (its run of the fused original takes
another load path and disagrees with transformers on rand-gpt-oss; docs/compatibility.md). The split follows
transformers' GptOssExperts: gate_up_proj is [experts, hidden, 2 * intermediate], gate = [..., ::2],
up = [..., 1::2]; down_proj is [experts, intermediate, hidden]; linears are stored (out, in).
--max-position-embeddings rewrites that key: exllamav3 takes YaRN's factor as max_position_embeddings /
original_max_position_embeddings, transformers 5.17 the factor as written.
"""
import argparse, json, os, shutil
from safetensors.torch import load_file, save_file

ap = argparse.ArgumentParser()
ap.add_argument("src"); ap.add_argument("dst"); ap.add_argument("--max-position-embeddings", type=int)
a = ap.parse_args()
os.makedirs(a.dst, exist_ok=True)
tensors = load_file(os.path.join(a.src, "model.safetensors"))
out = {}
for name, t in tensors.items():
    if name.endswith(".mlp.experts.gate_up_proj"):
        base = name[: -len("gate_up_proj")]
        bias = tensors[name + "_bias"]
        for e in range(t.shape[0]):
            out[f"{base}{e}.gate_proj.weight"] = t[e][:, 0::2].t().contiguous()
            out[f"{base}{e}.up_proj.weight"] = t[e][:, 1::2].t().contiguous()
            out[f"{base}{e}.gate_proj.bias"] = bias[e][0::2].contiguous()
            out[f"{base}{e}.up_proj.bias"] = bias[e][1::2].contiguous()
    elif name.endswith(".mlp.experts.down_proj"):
        base = name[: -len("down_proj")]
        bias = tensors[name + "_bias"]
        for e in range(t.shape[0]):
            out[f"{base}{e}.down_proj.weight"] = t[e].t().contiguous()
            out[f"{base}{e}.down_proj.bias"] = bias[e].contiguous()
    elif name.endswith((".mlp.experts.gate_up_proj_bias", ".mlp.experts.down_proj_bias")):
        continue
    else:
        out[name] = t
save_file(out, os.path.join(a.dst, "model.safetensors"), metadata={"format": "pt"})
for f in os.listdir(a.src):
    if f.endswith(".json") and f != "model.safetensors.index.json":
        shutil.copy(os.path.join(a.src, f), os.path.join(a.dst, f))
if a.max_position_embeddings:
    p = os.path.join(a.dst, "config.json")
    cfg = json.load(open(p)); cfg["max_position_embeddings"] = a.max_position_embeddings
    json.dump(cfg, open(p, "w"), indent=2)
print(f"{a.dst}: {len(out)} tensors")
