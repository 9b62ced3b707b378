#!/usr/bin/env python3
"""Write a diffusers-layout copy of an SD 1.x LDM checkpoint (safetensors), for test_model.

    make_diffusers.py SRC.safetensors OUTDIR [--vae-fp16-only] [--decoy-fp16] [--old-attn]

OUTDIR gets unet/diffusion_pytorch_model.safetensors, text_encoder/model.safetensors and
vae/diffusion_pytorch_model.safetensors with diffusers tensor names. The bytes of every
tensor are copied unchanged (same dtype); the VAE mid-block attention q/k/v/proj_out, 1x1
convs [512,512,1,1] in the original, are written as diffusers' Linear [512,512].

  --vae-fp16-only  name the VAE file diffusion_pytorch_model.fp16.safetensors (the variant
                   name) so the reader's fallback to the variant is exercised
  --decoy-fp16     also write text_encoder/model.fp16.safetensors holding no tensors: a reader
                   that preferred the variant over model.safetensors would miss the encoder
  --old-attn       VAE attention under the pre-0.14 names query/key/value/proj_attn

Tensors outside the three networks (schedule buffers, model_ema.*) are left out, as in a
diffusers folder. The folder is written under OUTDIR.tmp and renamed when complete. Needs
only the Python standard library. The name mapping is written out independently of
src/model.c (LDM -> diffusers here, diffusers -> LDM there) so the test cross-checks both.
"""
import json
import os
import shutil
import struct
import sys

UNET = "model.diffusion_model."
CLIP = "cond_stage_model.transformer."
VAE = "first_stage_model."

RES_UNET = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
            "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
RES_VAE = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2",
           "nin_shortcut": "conv_shortcut"}


def split_layer(rest, table):
    """'in_layers.2.weight' -> ('conv1', 'weight') using the longest matching key."""
    for k in sorted(table, key=len, reverse=True):
        if rest.startswith(k + "."):
            return table[k], rest[len(k) + 1:]
    raise ValueError("unknown layer " + rest)


def unet_name(n):
    top = {"time_embed.0": "time_embedding.linear_1", "time_embed.2": "time_embedding.linear_2",
           "input_blocks.0.0": "conv_in", "out.0": "conv_norm_out", "out.2": "conv_out"}
    for k, v in top.items():
        if n.startswith(k + "."):
            return v + n[len(k):]
    parts = n.split(".")
    blk, sub, rest = int(parts[1]), parts[2], ".".join(parts[3:])
    if parts[0] == "input_blocks":
        lvl, j = (blk - 1) // 3, (blk - 1) % 3
        if rest.startswith("op."):
            return "down_blocks.%d.downsamplers.0.conv.%s" % (blk // 3 - 1, rest[3:])
        if sub == "0":
            a, b = split_layer(rest, RES_UNET)
            return "down_blocks.%d.resnets.%d.%s.%s" % (lvl, j, a, b)
        return "down_blocks.%d.attentions.%d.%s" % (lvl, j, rest)
    if parts[0] == "middle_block":
        if blk == 1:
            return "mid_block.attentions.0." + ".".join(parts[2:])
        a, b = split_layer(".".join(parts[2:]), RES_UNET)
        return "mid_block.resnets.%d.%s.%s" % (blk // 2, a, b)
    if parts[0] == "output_blocks":
        lvl, j = blk // 3, blk % 3
        if rest.startswith("conv."):
            return "up_blocks.%d.upsamplers.0.%s" % (lvl, rest)
        if sub == "0":
            a, b = split_layer(rest, RES_UNET)
            return "up_blocks.%d.resnets.%d.%s.%s" % (lvl, j, a, b)
        return "up_blocks.%d.attentions.%d.%s" % (lvl, j, rest)
    raise ValueError("unknown UNet tensor " + n)


def vae_name(n, old_attn):
    attn = ({"norm": "group_norm", "q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"} if old_attn else
            {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"})
    if n.startswith("quant_conv.") or n.startswith("post_quant_conv."):
        return n
    coder, rest = n.split(".", 1)
    if rest.startswith("conv_in.") or rest.startswith("conv_out."):
        return n
    if rest.startswith("norm_out."):
        return coder + ".conv_norm_out." + rest[len("norm_out."):]
    p = rest.split(".")
    if p[0] == "mid":
        if p[1] == "attn_1":
            a, b = split_layer(".".join(p[2:]), attn)
            return "%s.mid_block.attentions.0.%s.%s" % (coder, a, b)
        j = int(p[1][len("block_"):]) - 1
        a, b = split_layer(".".join(p[2:]), RES_VAE)
        return "%s.mid_block.resnets.%d.%s.%s" % (coder, j, a, b)
    lvl = int(p[1])
    idx = lvl if p[0] == "down" else 3 - lvl
    blocks = "down_blocks" if p[0] == "down" else "up_blocks"
    if p[2] in ("downsample", "upsample"):
        return "%s.%s.%d.%ss.0.%s" % (coder, blocks, idx, p[2][:-6] + "sampler", ".".join(p[3:]))
    a, b = split_layer(".".join(p[4:]), RES_VAE)
    return "%s.%s.%d.resnets.%d.%s.%s" % (coder, blocks, idx, int(p[3]), a, b)


def read_header(path):
    with open(path, "rb") as f:
        (hl,) = struct.unpack("<Q", f.read(8))
        hdr = json.loads(f.read(hl))
    return 8 + hl, hdr


def write_st(path, items, src, base):
    """items: list of (name, dtype, shape, begin, end) in the source; data copied from src."""
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape, b, e in items:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + (e - b)]}
        off += e - b
    js = json.dumps(hdr, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for name, dtype, shape, b, e in items:
            src.seek(base + b)
            left = e - b
            while left:
                chunk = src.read(min(left, 64 << 20))
                if not chunk:
                    raise IOError("short read in source")
                f.write(chunk)
                left -= len(chunk)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    if len(args) != 2 or flags - {"--vae-fp16-only", "--decoy-fp16", "--old-attn"}:
        sys.exit(__doc__)
    src_path, out = args
    base, hdr = read_header(src_path)
    parts = {"unet": [], "text_encoder": [], "vae": []}
    for name, info in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1):
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        shape = list(info["shape"])
        if name.startswith(UNET):
            parts["unet"].append((unet_name(name[len(UNET):]), info["dtype"], shape, b, e))
        elif name.startswith(CLIP):
            parts["text_encoder"].append((name[len(CLIP):], info["dtype"], shape, b, e))
        elif name.startswith(VAE):
            dn = vae_name(name[len(VAE):], "--old-attn" in flags)
            if ".mid_block.attentions.0." in dn and len(shape) == 4 and dn.endswith(".weight") and shape[2:] == [1, 1]:
                shape = shape[:2]
            parts["vae"].append((dn, info["dtype"], shape, b, e))
    for k, v in parts.items():
        names = [x[0] for x in v]
        assert len(names) == len(set(names)), "duplicate names in " + k
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    files = {"unet": "diffusion_pytorch_model.safetensors", "text_encoder": "model.safetensors",
             "vae": "diffusion_pytorch_model.fp16.safetensors" if "--vae-fp16-only" in flags
             else "diffusion_pytorch_model.safetensors"}
    with open(src_path, "rb") as src:
        for k, items in parts.items():
            os.makedirs(os.path.join(tmp, k))
            write_st(os.path.join(tmp, k, files[k]), items, src, base)
    if "--decoy-fp16" in flags:
        write_st(os.path.join(tmp, "text_encoder", "model.fp16.safetensors"), [], None, 0)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print("wrote %s: %s" % (out, ", ".join("%s %d tensors" % (k, len(v)) for k, v in parts.items())))


if __name__ == "__main__":
    main(sys.argv[1:])
