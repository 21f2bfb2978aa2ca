#!/usr/bin/env python3
"""Wrap a Gemma3ForCausalLM fixture folder as a Gemma3ForConditionalGeneration folder.

exllamav3 1.4.1 loads Gemma 3 only as Gemma3ForConditionalGeneration (its Gemma3ForCausalLM path looks up
".model.embed_tokens" and fails), so a compat proof of our Gemma 3 output needs a multimodal-shaped source. This
script makes one from a text fixture (e.g. ../shared/models/rand-gemma3) that both transformers 5.17 and exllamav3
1.4.1 load, with the same language model, so the text fixture's reference logits hold for it:

* tensors renamed to the hub layout: model.* -> language_model.model.*, lm_head.weight -> language_model.lm_head.weight
  (dropped when the head is tied and the tensor is a byte-for-byte copy of the embedding, as in published
  checkpoints); --layout saved writes transformers >= 4.52's in-memory names instead (model.language_model.*,
  lm_head, model.vision_tower.*, model.multi_modal_projector.*), a source for trellis that exllamav3 cannot load;
* a tiny SigLIP vision tower (1 layer, hidden 32, 64x64 images of 16x16 patches) and the multimodal projector,
  seeded random bf16 values, under the names transformers' SiglipVisionModel / Gemma3MultiModalProjector and
  exllamav3's Gemma3VisionModel use; --no-vision-weights leaves them out (transformers then initializes them at
  random and only warns about missing keys; exllamav3 needs them only to load its vision component);
* config.json as transformers writes a Gemma3Config: the text config under text_config (model_type gemma3_text),
  vision_config, mm_tokens_per_image and the image token indices, plus a top-level copy of layer_types, the only
  place exllamav3 reads it (without it every layer of a short model would be sliding);
* preprocessor_config.json with the keys exllamav3's Gemma3Config requires (image_processor_type
  Gemma3ImageProcessor, image_mean/std, resample, rescale_factor, size);
* every other non-weight file (tokenizer, generation_config) copied.

Standard library only: safetensors headers are parsed and written by hand.

Usage: python3 tools/make-gemma3-cg-fixture.py SRC_DIR OUT_DIR [--layout hub|saved] [--no-vision-weights] [--seed N]
"""

import argparse
import json
import math
import os
import random
import shutil
import struct
import sys

# The tiny vision tower. patches per side = 64 / 16 = 4; mm_tokens_per_image 4 = 2x2 tokens, so the projector's
# average pool has kernel 4 / 2 = 2 (Gemma3MultiModalProjector and exllamav3's Gemma3MMPool both derive it so).
VISION = {
    "model_type": "siglip_vision_model",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_channels": 3,
    "image_size": 64,
    "patch_size": 16,
    "hidden_act": "gelu_pytorch_tanh",
    "layer_norm_eps": 1e-6,
    "attention_dropout": 0.0,
    # Gemma 3's published vision configs have no pooling head; with one, SiglipVisionModel would expect its weights.
    "vision_use_head": False,
}
MM_TOKENS_PER_IMAGE = 4

# Gemma3Config's defaults, written out as transformers' to_dict does.
IMAGE_TOKENS = {"boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144}

# Renames of the language model per layout (transformers' _checkpoint_conversion_mapping for Gemma3ForConditionalGeneration).
LAYOUTS = {
    "hub": {"model": "language_model.model", "lm_head": "language_model.lm_head", "vision": "vision_tower", "projector": "multi_modal_projector"},
    "saved": {"model": "model.language_model", "lm_head": "lm_head", "vision": "model.vision_tower", "projector": "model.multi_modal_projector"},
}

ELEMENT_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read_header(path):
    """The header dict and the offset of the data section of a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header, 8 + n


def source_tensors(src):
    """(name, dtype, shape, file, absolute start, byte length) of every tensor of a single-file or sharded checkpoint."""
    index = os.path.join(src, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = []
    for name in files:
        path = os.path.join(src, name)
        header, data_start = read_header(path)
        for tensor, entry in header.items():
            if tensor == "__metadata__":
                continue
            begin, end = entry["data_offsets"]
            tensors.append((tensor, entry["dtype"], entry["shape"], path, data_start + begin, end - begin))
    return tensors


def read_bytes(path, start, length):
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(length)


def bf16_bytes(values):
    """float values -> little-endian bf16 bytes, rounded to nearest even as torch's .to(bfloat16) does."""
    out = bytearray()
    for v in values:
        (bits,) = struct.unpack("<I", struct.pack("<f", v))
        bits += 0x7FFF + ((bits >> 16) & 1)
        out += struct.pack("<H", (bits >> 16) & 0xFFFF)
    return bytes(out)


def vision_tensors(text_hidden, prefixes, rng):
    """The SigLIP tower and the projector, {name: (shape, bf16 bytes)}: N(0, 0.02) weights, LayerNorm weights near 1."""
    h, inter, c, p = VISION["hidden_size"], VISION["intermediate_size"], VISION["num_channels"], VISION["patch_size"]
    positions = (VISION["image_size"] // p) ** 2
    tower = prefixes["vision"] + ".vision_model."
    shapes = {
        tower + "embeddings.patch_embedding.weight": ([h, c, p, p], 0.0),
        tower + "embeddings.patch_embedding.bias": ([h], 0.0),
        tower + "embeddings.position_embedding.weight": ([positions, h], 0.0),
    }
    for layer in range(VISION["num_hidden_layers"]):
        block = f"{tower}encoder.layers.{layer}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[block + f"self_attn.{proj}.weight"] = ([h, h], 0.0)
            shapes[block + f"self_attn.{proj}.bias"] = ([h], 0.0)
        for norm in ("layer_norm1", "layer_norm2"):
            shapes[block + f"{norm}.weight"] = ([h], 1.0)
            shapes[block + f"{norm}.bias"] = ([h], 0.0)
        shapes[block + "mlp.fc1.weight"] = ([inter, h], 0.0)
        shapes[block + "mlp.fc1.bias"] = ([inter], 0.0)
        shapes[block + "mlp.fc2.weight"] = ([h, inter], 0.0)
        shapes[block + "mlp.fc2.bias"] = ([h], 0.0)
    shapes[tower + "post_layernorm.weight"] = ([h], 1.0)
    shapes[tower + "post_layernorm.bias"] = ([h], 0.0)
    # Gemma3MultiModalProjector: a (vision hidden, text hidden) parameter, not a Linear, and a Gemma RMSNorm (1 + w).
    shapes[prefixes["projector"] + ".mm_input_projection_weight"] = ([h, text_hidden], 0.0)
    shapes[prefixes["projector"] + ".mm_soft_emb_norm.weight"] = ([h], 0.0)
    return {
        name: (shape, bf16_bytes(mean + rng.gauss(0.0, 0.02) for _ in range(math.prod(shape))))
        for name, (shape, mean) in shapes.items()
    }


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes); header padded with spaces to 8 bytes as the reference writer does."""
    header, offset = {}, 0
    for name, dtype, shape, data in tensors:
        if len(data) != math.prod(shape) * ELEMENT_SIZE[dtype]:
            raise SystemExit(f"{name}: {len(data)} bytes for {dtype} {shape}")
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, _, _, data in tensors:
            f.write(data)


def warn_unread_rope(text):
    """exllamav3 1.4.1 reads neither rope_parameters[layer type] nor rope_local_base_freq for Gemma 3 (notes §0.5)."""
    rope = text.get("rope_parameters") or {}
    full = rope.get("full_attention", rope)
    sliding = rope.get("sliding_attention", {})
    if full.get("rope_theta", text.get("rope_theta", 1e6)) != 1e6 or full.get("rope_type", "default") != "default":
        print("warning: the global rope is not plain theta 1e6; exllamav3 reads text_config.rope_theta only", file=sys.stderr)
    if sliding.get("rope_theta", text.get("rope_local_base_freq", 1e4)) != 1e4:
        print("warning: the local rope theta is not 1e4, which exllamav3 hard-codes for sliding layers", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="a Gemma3ForCausalLM folder (config.json, safetensors, tokenizer)")
    parser.add_argument("out", help="the folder to write (must not exist)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="hub", help="tensor names: hub (default; what exllamav3 loads) or saved (transformers >= 4.52)")
    parser.add_argument("--no-vision-weights", action="store_true", help="write no vision tower or projector tensors")
    parser.add_argument("--seed", type=int, default=0, help="seed of the vision weights")
    args = parser.parse_args()

    with open(os.path.join(args.src, "config.json")) as f:
        text = json.load(f)
    if text.get("architectures") != ["Gemma3ForCausalLM"]:
        raise SystemExit(f"{args.src}: architectures is {text.get('architectures')}, expected ['Gemma3ForCausalLM']")
    if os.path.exists(args.out):
        raise SystemExit(f"{args.out}: already exists")
    prefixes = LAYOUTS[args.layout]
    warn_unread_rope(text)

    tensors, embedding = [], None
    source = source_tensors(args.src)
    for name, dtype, shape, path, start, length in source:
        if name == "model.embed_tokens.weight":
            embedding = read_bytes(path, start, length)
    tied = text.get("tie_word_embeddings", True)
    for name, dtype, shape, path, start, length in source:
        data = read_bytes(path, start, length)
        if name.startswith("model."):
            renamed = prefixes["model"] + name[len("model"):]
        elif name == "lm_head.weight":
            if tied and data == embedding:
                continue
            renamed = prefixes["lm_head"] + ".weight"
        else:
            raise SystemExit(f"{args.src}: unexpected tensor {name} in a Gemma3ForCausalLM checkpoint")
        tensors.append((renamed, dtype, shape, data))
    if not args.no_vision_weights:
        rng = random.Random(args.seed)
        tensors += [(name, "BF16", shape, data) for name, (shape, data) in vision_tensors(text["hidden_size"], prefixes, rng).items()]

    os.makedirs(args.out)
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors)

    text_config = {k: v for k, v in text.items() if k not in ("architectures", "transformers_version")}
    text_config["model_type"] = "gemma3_text"
    config = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        **IMAGE_TOKENS,
        "initializer_range": text.get("initializer_range", 0.02),
        "mm_tokens_per_image": MM_TOKENS_PER_IMAGE,
        "text_config": text_config,
        "vision_config": VISION,
        "tie_word_embeddings": tied,
        "dtype": text.get("dtype", text.get("torch_dtype", "bfloat16")),
        "transformers_version": text.get("transformers_version"),
    }
    # exllamav3 reads these at the top level only (or under text_config for the ids, but the top is what the hub has).
    for key in ("layer_types", "bos_token_id", "eos_token_id", "pad_token_id"):
        if text.get(key) is not None:
            config[key] = text[key]
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")

    preprocessor = {
        "image_processor_type": "Gemma3ImageProcessor",
        "do_convert_rgb": None,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "image_seq_length": MM_TOKENS_PER_IMAGE,
        "resample": 2,
        "rescale_factor": 1 / 255,
        "size": {"height": VISION["image_size"], "width": VISION["image_size"]},
    }
    with open(os.path.join(args.out, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor, f, indent=2, sort_keys=True)
        f.write("\n")

    for name in sorted(os.listdir(args.src)):
        if name == "config.json" or name.endswith(".safetensors") or name == "model.safetensors.index.json":
            continue
        if os.path.isfile(os.path.join(args.src, name)):
            shutil.copyfile(os.path.join(args.src, name), os.path.join(args.out, name))
    print(f"{args.out}: {len(tensors)} tensors ({args.layout} layout), config.json, preprocessor_config.json")


if __name__ == "__main__":
    main()
