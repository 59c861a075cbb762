#!/usr/bin/python3
"""Golden fixtures for engine/vae: an independent PyTorch implementation of the
diffusers AutoencoderKL decoder (and TAESD's decoder), written with
torch.nn.functional ops, run on random weights in float64.

Usage:  /usr/bin/python3 golden.py            # writes the committed fixtures
        /usr/bin/python3 golden.py --encoder  # only the encoder fixtures
        (bench_full.py imports this module for the SD-sized benchmark)

Fixtures (each a model folder: config.json + diffusion_pytorch_model.safetensors,
and golden.npz with `latent` (as the sampler produces it, i.e. scaled) and `image`):
  tiny/      block_out_channels [8, 16], layers_per_block 2, groups 4, F32, current
             attention names (to_q/to_k/to_v/to_out.0), plus encoder tensors that
             the decoder must ignore. Latent (1, 4, 4, 4).
  tiny_ldm/  model.safetensors in the original SD single-file layout
             (first_stage_model.decoder.mid.block_1 ..., attn_1 q/k/v/proj_out as
             1x1 convs, up.N in reverse order, nin_shortcut, norm_out), F16, next
             to UNet and encoder tensors, no config.json: the decoder infers
             block_out_channels [32, 32], layers_per_block 1 and uses 32 groups.
  mid/       block_out_channels [16, 32, 48], layers_per_block 1, groups 8, F16
             weights, old attention names (query/key/value/proj_attn) with
             1x1-conv-shaped (C, C, 1, 1) weights, latent (2, 4, 7, 5),
             scaling_factor 0.13025, shift_factor 0.0609.
  taesd/     a diffusers AutoencoderTiny folder (decoder.layers.N keys, plus encoder
             tensors), TAESD's decoder at width 8 instead of 64, F32; golden.npz:
             latent (as the sampler produces it: TAESD's latent scale is 1) and
             image = 2·decoder(latent) − 1 (diffusers' [-1, 1] convention).
  taesd_decoder.pth  the same weights as torch.save of taesd.py's Decoder()
             state_dict (keys 1.weight, 3.conv.0.weight, ...).

Encoder fixtures (the AutoencoderKL encoder + quant_conv; golden.npz holds `image`
(B, 3, H, W) in [-1, 1], `noise` (standard normal, latent-shaped), `mean` =
(posterior mean - shift) * scaling_factor and `sample` = (mean + std * noise -
shift) * scaling_factor, the latents extract_features.py saves):
  enc_tiny/  block_out_channels [8, 8, 16, 16] (8x downscale, as SD), layers_per_block 1,
             groups 4, F16, current attention names, encoder tensors only; images
             (2, 3, 16, 24).
  enc_ldm/   model.safetensors in the original SD single-file layout
             (first_stage_model.encoder.down.N.block.M, downsample.conv, mid.attn_1
             q/k/v/proj_out as 1x1 convs, nin_shortcut, norm_out, quant_conv), F16,
             next to UNet and decoder tensors, no config.json: the encoder infers
             block_out_channels [32, 32], layers_per_block 1 and uses 32 groups.
             Image (1, 3, 6, 10); scaling_factor 0.18215.
  conv_s2.npz  one 3x3 stride-2 convolution with diffusers' (0, 1, 0, 1) zero pad on
             odd and even sizes: x (2, 5, 7, 10), weight (6, 5, 3, 3), bias, y.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------
# safetensors writer (the format: u64 header length, JSON header, raw data).

def save_safetensors(path, tensors, dtype=np.float32):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(np.asarray(t, dtype=dtype))
        b = a.tobytes()
        header[name] = {"dtype": {np.float32: "F32", np.float16: "F16"}[dtype],
                        "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------
# The AutoencoderKL decoder, diffusers naming.

def group_norm(x, p, name, groups):
    return F.group_norm(x, groups, p[name + ".weight"], p[name + ".bias"], eps=1e-6)


def conv(x, p, name, padding):
    return F.conv2d(x, p[name + ".weight"], p[name + ".bias"], padding=padding)


def resnet(x, p, name, groups):
    h = F.silu(group_norm(x, p, name + ".norm1", groups))
    h = conv(h, p, name + ".conv1", 1)
    h = F.silu(group_norm(h, p, name + ".norm2", groups))
    h = conv(h, p, name + ".conv2", 1)
    if name + ".conv_shortcut.weight" in p:
        x = conv(x, p, name + ".conv_shortcut", 0)
    return x + h


def linear(x, p, name):
    w = p[name + ".weight"]
    return F.linear(x, w.reshape(w.shape[0], w.shape[1]), p[name + ".bias"])


def attention(x, p, name, groups):
    """Single-head spatial self-attention with a residual connection."""
    b, c, hh, ww = x.shape
    h = group_norm(x, p, name + ".group_norm", groups)
    h = h.reshape(b, c, hh * ww).transpose(1, 2)  # (B, N, C)
    q = linear(h, p, name + ".to_q")
    k = linear(h, p, name + ".to_k")
    v = linear(h, p, name + ".to_v")
    a = torch.softmax(q @ k.transpose(1, 2) * c ** -0.5, dim=-1)
    o = linear(a @ v, p, name + ".to_out.0")
    return o.transpose(1, 2).reshape(b, c, hh, ww) + x


def decode(p, cfg, latent):
    """latent as the sampler produces it (scaled); returns (B, 3, H, W)."""
    boc = cfg["block_out_channels"]
    groups = cfg["norm_num_groups"]
    z = latent / cfg["scaling_factor"]
    if cfg.get("shift_factor") is not None:
        z = z + cfg["shift_factor"]
    z = conv(z, p, "post_quant_conv", 0)
    x = conv(z, p, "decoder.conv_in", 1)
    x = resnet(x, p, "decoder.mid_block.resnets.0", groups)
    x = attention(x, p, "decoder.mid_block.attentions.0", groups)
    x = resnet(x, p, "decoder.mid_block.resnets.1", groups)
    for i in range(len(boc)):
        for j in range(cfg["layers_per_block"] + 1):
            x = resnet(x, p, f"decoder.up_blocks.{i}.resnets.{j}", groups)
        if i < len(boc) - 1:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = conv(x, p, f"decoder.up_blocks.{i}.upsamplers.0.conv", 1)
    x = F.silu(group_norm(x, p, "decoder.conv_norm_out", groups))
    return conv(x, p, "decoder.conv_out", 1)


class RandomWeights:
    """Random VAE weights in diffusers naming, scaled so activations stay O(1),
    drawn in the order the parts are asked for."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.p = {}

    def randn(self, *shape, std=1.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float64) * std

    def conv(self, name, cout, cin, k):
        self.p[name + ".weight"] = self.randn(cout, cin, k, k, std=(cin * k * k) ** -0.5)
        self.p[name + ".bias"] = self.randn(cout, std=0.1)

    def norm(self, name, c):
        self.p[name + ".weight"] = 1 + self.randn(c, std=0.2)
        self.p[name + ".bias"] = self.randn(c, std=0.2)

    def resnet(self, name, cin, cout):
        self.norm(name + ".norm1", cin)
        self.conv(name + ".conv1", cout, cin, 3)
        self.norm(name + ".norm2", cout)
        self.conv(name + ".conv2", cout, cout, 3)
        if cin != cout:
            self.conv(name + ".conv_shortcut", cout, cin, 1)

    def mid_block(self, prefix, top):
        self.resnet(prefix + ".resnets.0", top, top)
        a = prefix + ".attentions.0"
        self.norm(a + ".group_norm", top)
        for n in ["to_q", "to_k", "to_v", "to_out.0"]:
            # Larger q/k weights so the softmax is far from uniform.
            std = (2.0 if n in ("to_q", "to_k") else 1.0) * top ** -0.5
            self.p[f"{a}.{n}.weight"] = self.randn(top, top, std=std)
            self.p[f"{a}.{n}.bias"] = self.randn(top, std=0.1)
        self.resnet(prefix + ".resnets.1", top, top)


def random_weights(cfg, seed, old_attention_names=False, conv_shaped_attention=False):
    """Random decoder weights in diffusers naming, scaled so activations stay O(1)."""
    w = RandomWeights(seed)
    p, conv_p, norm_p, resnet_p = w.p, w.conv, w.norm, w.resnet

    boc = cfg["block_out_channels"]
    lc = cfg["latent_channels"]
    top = boc[-1]
    conv_p("post_quant_conv", lc, lc, 1)
    conv_p("decoder.conv_in", top, lc, 3)
    w.mid_block("decoder.mid_block", top)
    rev = list(reversed(boc))
    cur = rev[0]
    for i, c in enumerate(rev):
        for j in range(cfg["layers_per_block"] + 1):
            resnet_p(f"decoder.up_blocks.{i}.resnets.{j}", cur if j == 0 else c, c)
        cur = c
        if i < len(boc) - 1:
            conv_p(f"decoder.up_blocks.{i}.upsamplers.0.conv", c, c, 3)
    norm_p("decoder.conv_norm_out", boc[0])
    conv_p("decoder.conv_out", cfg.get("out_channels", 3), boc[0], 3)

    stored = {}
    for k, v in p.items():
        name = k
        if ".attentions." in k:
            if old_attention_names:
                for new, old in [("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")]:
                    name = name.replace("." + new + ".", "." + old + ".")
            if conv_shaped_attention and v.dim() == 2:
                v = v.reshape(v.shape[0], v.shape[1], 1, 1)
        stored[name] = v
    return p, stored


def ldm_common_names(name, part):
    """The renames diffusers -> original SD (ldm) that the encoder and the
    decoder (part) share: the mid block, nin_shortcut, norm_out. (Renaming
    conv_shortcut and norm_out before or after the block numbering is the
    same: neither touches the block names.)"""
    name = name.replace(f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.")
    name = name.replace(f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.")
    name = name.replace(f"{part}.mid_block.attentions.0.group_norm.", f"{part}.mid.attn_1.norm.")
    for new, old in [("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]:
        name = name.replace(f"{part}.mid_block.attentions.0.{new}.", f"{part}.mid.attn_1.{old}.")
    name = name.replace(".conv_shortcut.", ".nin_shortcut.")
    return name.replace(f"{part}.conv_norm_out.", f"{part}.norm_out.")


def ldm_attention_shape(name, v):
    """ldm stores the mid attention's linear weights as 1x1 convolutions."""
    if ".attn_1." in name and v.dim() == 2:
        return v.reshape(v.shape[0], v.shape[1], 1, 1)
    return v


def to_ldm(p, cfg):
    """The same weights renamed to the original SD (ldm) single-file layout."""
    n = len(cfg["block_out_channels"])
    out = {}
    for k, v in p.items():
        name = ldm_common_names(k, "decoder")
        if name.startswith("decoder.up_blocks."):
            parts = name.split(".")
            i = int(parts[2])
            rest = ".".join(parts[3:])
            rest = rest.replace("resnets.", "block.").replace("upsamplers.0.conv", "upsample.conv")
            name = f"decoder.up.{n - 1 - i}.{rest}"
        out["first_stage_model." + name] = ldm_attention_shape(name, v)
    # An SD checkpoint also holds the UNet and the encoder; the decoder ignores them.
    out["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(2, 4, 3, 3, dtype=torch.float64)
    out["first_stage_model.encoder.conv_in.weight"] = torch.zeros(3, 3, 3, 3, dtype=torch.float64)
    return out


def write_kl_fixture(dirname, cfg, seed, batch, h, w, dtype=np.float32, **kw):
    d = os.path.join(HERE, dirname)
    os.makedirs(d, exist_ok=True)
    p, stored = random_weights(cfg, seed, **kw)
    # Quantise first when storing float16, so the reference uses the stored values.
    stored = {k: torch.from_numpy(v.numpy().astype(dtype).astype(np.float64)) for k, v in stored.items()}
    p = {k: torch.from_numpy(v.numpy().astype(dtype).astype(np.float64)) for k, v in p.items()}
    extra = {"encoder.conv_in.weight": torch.zeros(cfg["block_out_channels"][0], 3, 3, 3, dtype=torch.float64),
             "quant_conv.weight": torch.zeros(8, 8, 1, 1, dtype=torch.float64)}
    save_safetensors(os.path.join(d, "diffusion_pytorch_model.safetensors"), {**extra, **stored}, dtype)
    full = {"_class_name": "AutoencoderKL", "act_fn": "silu", "in_channels": 3, "out_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * len(cfg["block_out_channels"]),
            "up_block_types": ["UpDecoderBlock2D"] * len(cfg["block_out_channels"]),
            "sample_size": 8 * h, **cfg}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(full, f, indent=2)
    g = torch.Generator().manual_seed(seed + 1)
    latent = (torch.randn(batch, cfg["latent_channels"], h, w, generator=g) * cfg["scaling_factor"]).float()
    with torch.no_grad():
        img = decode(p, cfg, latent.double())
    np.savez(os.path.join(d, "golden.npz"), latent=latent.numpy(), image=img.float().numpy())
    print(dirname, "image", tuple(img.shape), "range", float(img.min()), float(img.max()))
    return p, latent


# ----------------------------------------------------------------------------
# TAESD decoder (madebyollin/taesd, taesd.py): Clamp, conv(4, 64), ReLU,
# 3 x [3 Blocks, Upsample(2), conv(no bias)], Block, conv(64, 3).
# Block(n_in, n_out): conv(n_in,n_out) ReLU conv ReLU conv, + skip (identity
# or 1x1 conv without bias when n_in != n_out), then ReLU.
# Sequential indices (decoder.layers.N in the diffusers file; N in taesd_decoder.pth).

def taesd_layout(latent_channels, ch):
    """Returns the list of (index, kind) of the TAESD decoder Sequential."""
    L = [(0, "clamp"), (1, "conv_in"), (2, "relu")]
    i = 3
    for u in range(3):
        for _ in range(3):
            L.append((i, "block")); i += 1
        L.append((i, "upsample")); i += 1
        L.append((i, "conv_nobias")); i += 1
    L.append((i, "block")); i += 1
    L.append((i, "conv_out"))
    return L


def taesd_random(latent_channels, ch, seed):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    p = {}
    for i, kind in taesd_layout(latent_channels, ch):
        if kind == "conv_in":
            p[f"{i}.weight"] = randn(ch, latent_channels, 3, 3, std=(latent_channels * 9) ** -0.5)
            p[f"{i}.bias"] = randn(ch, std=0.1)
        elif kind == "block":
            for j in (0, 2, 4):
                p[f"{i}.conv.{j}.weight"] = randn(ch, ch, 3, 3, std=0.7 * (ch * 9) ** -0.5)
                p[f"{i}.conv.{j}.bias"] = randn(ch, std=0.1)
        elif kind == "conv_nobias":
            p[f"{i}.weight"] = randn(ch, ch, 3, 3, std=(ch * 9) ** -0.5)
        elif kind == "conv_out":
            p[f"{i}.weight"] = randn(3, ch, 3, 3, std=(ch * 9) ** -0.5)
            p[f"{i}.bias"] = randn(3, std=0.1)
    return p


def taesd_decode(p, latent, latent_channels, ch):
    """TAESD decoder on an unscaled latent; returns [0, 1] images (before any clamp)."""
    x = latent
    for i, kind in taesd_layout(latent_channels, ch):
        if kind == "clamp":
            x = torch.tanh(x / 3) * 3
        elif kind == "conv_in":
            x = F.conv2d(x, p[f"{i}.weight"], p[f"{i}.bias"], padding=1)
        elif kind == "relu":
            x = F.relu(x)
        elif kind == "block":
            h = F.relu(F.conv2d(x, p[f"{i}.conv.0.weight"], p[f"{i}.conv.0.bias"], padding=1))
            h = F.relu(F.conv2d(h, p[f"{i}.conv.2.weight"], p[f"{i}.conv.2.bias"], padding=1))
            h = F.conv2d(h, p[f"{i}.conv.4.weight"], p[f"{i}.conv.4.bias"], padding=1)
            x = F.relu(h + x)
        elif kind == "upsample":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        elif kind == "conv_nobias":
            x = F.conv2d(x, p[f"{i}.weight"], None, padding=1)
        elif kind == "conv_out":
            x = F.conv2d(x, p[f"{i}.weight"], p[f"{i}.bias"], padding=1)
    return x


# ----------------------------------------------------------------------------
# The AutoencoderKL encoder (diffusers Encoder + quant_conv + the posterior),
# diffusers naming.

def downsample(x, p, name):
    """diffusers Downsample2D with padding=0: zero pad right and bottom by one,
    then a 3x3 convolution with stride 2."""
    x = F.pad(x, (0, 1, 0, 1), mode="constant", value=0)
    return F.conv2d(x, p[name + ".weight"], p[name + ".bias"], stride=2, padding=0)


def encode_moments(p, cfg, img):
    """Encoder(img) then quant_conv: (B, 2 * latent_channels, H / 8, W / 8) for SD."""
    boc = cfg["block_out_channels"]
    groups = cfg["norm_num_groups"]
    x = conv(img, p, "encoder.conv_in", 1)
    for i in range(len(boc)):
        for j in range(cfg["layers_per_block"]):
            x = resnet(x, p, f"encoder.down_blocks.{i}.resnets.{j}", groups)
        if i < len(boc) - 1:
            x = downsample(x, p, f"encoder.down_blocks.{i}.downsamplers.0.conv")
    x = resnet(x, p, "encoder.mid_block.resnets.0", groups)
    x = attention(x, p, "encoder.mid_block.attentions.0", groups)
    x = resnet(x, p, "encoder.mid_block.resnets.1", groups)
    x = F.silu(group_norm(x, p, "encoder.conv_norm_out", groups))
    x = conv(x, p, "encoder.conv_out", 1)
    return conv(x, p, "quant_conv", 0)


def posterior(moments, cfg, noise=None):
    """DiagonalGaussianDistribution: the mean, or mean + std * noise, then the
    latent scaling the sampler works in."""
    mean, logvar = torch.chunk(moments, 2, dim=1)
    logvar = torch.clamp(logvar, -30.0, 20.0)
    z = mean if noise is None else mean + torch.exp(0.5 * logvar) * noise
    if cfg.get("shift_factor") is not None:
        z = z - cfg["shift_factor"]
    return z * cfg["scaling_factor"]


def random_encoder_weights(cfg, seed):
    """Random encoder weights in diffusers naming, scaled so activations stay O(1)."""
    w = RandomWeights(seed)
    p, conv_p, norm_p, resnet_p = w.p, w.conv, w.norm, w.resnet

    boc = cfg["block_out_channels"]
    lc = cfg["latent_channels"]
    top = boc[-1]
    conv_p("encoder.conv_in", boc[0], 3, 3)
    cur = boc[0]
    for i, c in enumerate(boc):
        for j in range(cfg["layers_per_block"]):
            resnet_p(f"encoder.down_blocks.{i}.resnets.{j}", cur if j == 0 else c, c)
        cur = c
        if i < len(boc) - 1:
            conv_p(f"encoder.down_blocks.{i}.downsamplers.0.conv", c, c, 3)
    w.mid_block("encoder.mid_block", top)
    norm_p("encoder.conv_norm_out", top)
    conv_p("encoder.conv_out", 2 * lc, top, 3)
    conv_p("quant_conv", 2 * lc, 2 * lc, 1)
    return p


def encoder_to_ldm(p):
    """The same encoder weights renamed to the original SD (ldm) layout, whose
    down.N numbering is the diffusers order (unlike the decoder's up.N)."""
    out = {}
    for k, v in p.items():
        name = ldm_common_names(k, "encoder")
        if name.startswith("encoder.down_blocks."):
            parts = name.split(".")
            rest = ".".join(parts[3:])
            rest = rest.replace("resnets.", "block.").replace("downsamplers.0.conv", "downsample.conv")
            name = f"encoder.down.{parts[2]}.{rest}"
        out["first_stage_model." + name] = ldm_attention_shape(name, v)
    # An SD checkpoint also holds the UNet and the decoder; the encoder ignores them.
    out["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(2, 4, 3, 3, dtype=torch.float64)
    out["first_stage_model.decoder.conv_in.weight"] = torch.zeros(3, 4, 3, 3, dtype=torch.float64)
    out["first_stage_model.post_quant_conv.weight"] = torch.zeros(4, 4, 1, 1, dtype=torch.float64)
    return out


def quantise(p, dtype):
    return {k: torch.from_numpy(v.numpy().astype(dtype).astype(np.float64)) for k, v in p.items()}


def write_encoder_golden(path, p, cfg, batch, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    # Smooth-ish images in [-1, 1], like photographs rather than white noise.
    img = torch.tanh(F.interpolate(torch.randn(batch, 3, h // 2, w // 2, generator=g, dtype=torch.float64) * 1.5,
                                   size=(h, w), mode="bilinear", align_corners=False))
    img = img.float().double()
    lh, lw = h, w
    for _ in range(len(cfg["block_out_channels"]) - 1):
        lh, lw = lh // 2, lw // 2
    noise = torch.randn(batch, cfg["latent_channels"], lh, lw, generator=g, dtype=torch.float64).float().double()
    with torch.no_grad():
        m = encode_moments(p, cfg, img)
        mean, sample = posterior(m, cfg), posterior(m, cfg, noise)
    np.savez(path, image=img.float().numpy(), noise=noise.float().numpy(),
             mean=mean.float().numpy(), sample=sample.float().numpy())
    print(os.path.relpath(path, HERE), "latent", tuple(mean.shape), "mean range", float(mean.min()), float(mean.max()),
          "std range", float(torch.exp(0.5 * torch.chunk(m, 2, dim=1)[1]).min()),
          float(torch.exp(0.5 * torch.chunk(m, 2, dim=1)[1]).max()))


def write_encoder_fixtures():
    tiny = {"block_out_channels": [8, 8, 16, 16], "layers_per_block": 1, "latent_channels": 4,
            "norm_num_groups": 4, "scaling_factor": 0.18215}
    d = os.path.join(HERE, "enc_tiny")
    os.makedirs(d, exist_ok=True)
    p = quantise(random_encoder_weights(tiny, seed=11), np.float16)
    save_safetensors(os.path.join(d, "diffusion_pytorch_model.safetensors"), p, np.float16)
    full = {"_class_name": "AutoencoderKL", "act_fn": "silu", "in_channels": 3, "out_channels": 3,
            "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
            "sample_size": 32, **tiny}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(full, f, indent=2)
    write_encoder_golden(os.path.join(d, "golden.npz"), p, tiny, batch=2, h=16, w=24, seed=12)

    ldm = {"block_out_channels": [32, 32], "layers_per_block": 1, "latent_channels": 4,
           "norm_num_groups": 32, "scaling_factor": 0.18215}
    d = os.path.join(HERE, "enc_ldm")
    os.makedirs(d, exist_ok=True)
    p = quantise(random_encoder_weights(ldm, seed=13), np.float16)
    save_safetensors(os.path.join(d, "model.safetensors"), encoder_to_ldm(p), np.float16)
    write_encoder_golden(os.path.join(d, "golden.npz"), p, ldm, batch=1, h=6, w=10, seed=14)

    g = torch.Generator().manual_seed(15)
    x = torch.randn(2, 5, 7, 10, generator=g, dtype=torch.float64).float().double()
    wt = (torch.randn(6, 5, 3, 3, generator=g, dtype=torch.float64) / 45 ** 0.5).float().double()
    b = (torch.randn(6, generator=g, dtype=torch.float64) * 0.1).float().double()
    y = downsample(x, {"c.weight": wt, "c.bias": b}, "c")
    np.savez(os.path.join(HERE, "conv_s2.npz"), x=x.float().numpy(), weight=wt.float().numpy(),
             bias=b.float().numpy(), y=y.float().numpy())
    print("conv_s2 y", tuple(y.shape))


def main():
    torch.set_num_threads(1)
    if sys.argv[1:] == ["--encoder"]:
        write_encoder_fixtures()  # only the encoder fixtures
        return
    tiny = {"block_out_channels": [8, 16], "layers_per_block": 2, "latent_channels": 4,
            "norm_num_groups": 4, "scaling_factor": 0.18215}
    write_kl_fixture("tiny", tiny, seed=1, batch=1, h=4, w=4)

    # Original-SD single-file layout; the config is inferred (32 groups), so the
    # widths must be multiples of 32.
    ldm_cfg = {"block_out_channels": [32, 32], "layers_per_block": 1, "latent_channels": 4,
               "norm_num_groups": 32, "scaling_factor": 0.18215}
    p, _ = random_weights(ldm_cfg, seed=3)
    p = {k: torch.from_numpy(v.numpy().astype(np.float16).astype(np.float64)) for k, v in p.items()}
    g = torch.Generator().manual_seed(4)
    latent = (torch.randn(1, 4, 3, 4, generator=g) * 0.18215).float()
    with torch.no_grad():
        img = decode(p, ldm_cfg, latent.double())
    os.makedirs(os.path.join(HERE, "tiny_ldm"), exist_ok=True)
    save_safetensors(os.path.join(HERE, "tiny_ldm", "model.safetensors"), to_ldm(p, ldm_cfg), np.float16)
    np.savez(os.path.join(HERE, "tiny_ldm", "golden.npz"), latent=latent.numpy(), image=img.float().numpy())
    print("tiny_ldm image", tuple(img.shape))

    mid = {"block_out_channels": [16, 32, 48], "layers_per_block": 1, "latent_channels": 4,
           "norm_num_groups": 8, "scaling_factor": 0.13025, "shift_factor": 0.0609}
    write_kl_fixture("mid", mid, seed=2, batch=2, h=7, w=5, dtype=np.float16,
                     old_attention_names=True, conv_shaped_attention=True)

    # TAESD at width 8.
    ch, lc = 8, 4
    tp = taesd_random(lc, ch, seed=5)
    d = os.path.join(HERE, "taesd")
    os.makedirs(d, exist_ok=True)
    stored = {"encoder.layers.0.weight": torch.zeros(ch, 3, 3, 3, dtype=torch.float64)}
    for k, v in tp.items():
        i, rest = k.split(".", 1)
        stored[f"decoder.layers.{int(i) - 1}.{rest}"] = v
    save_safetensors(os.path.join(d, "diffusion_pytorch_model.safetensors"), {k: v.numpy() for k, v in stored.items()})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"_class_name": "AutoencoderTiny", "act_fn": "relu", "decoder_block_out_channels": [ch] * 4,
                   "encoder_block_out_channels": [ch] * 4, "num_decoder_blocks": [3, 3, 3, 1],
                   "num_encoder_blocks": [1, 3, 3, 3], "latent_channels": lc, "out_channels": 3,
                   "upsampling_scaling_factor": 2, "upsample_fn": "nearest", "scaling_factor": 1.0,
                   "latent_magnitude": 3, "latent_shift": 0.5, "force_upcast": False}, f, indent=2)
    g = torch.Generator().manual_seed(6)
    latent = (torch.randn(2, lc, 5, 6, generator=g) * 0.18215 * 4).float()
    with torch.no_grad():
        img = taesd_decode(tp, latent.double(), lc, ch) * 2 - 1
    np.savez(os.path.join(d, "golden.npz"), latent=latent.numpy(), image=img.float().numpy())
    from collections import OrderedDict
    torch.save(OrderedDict((k, v.float()) for k, v in tp.items()), os.path.join(HERE, "taesd_decoder.pth"))
    print("taesd image", tuple(img.shape), "range", float(img.min()), float(img.max()))

    write_encoder_fixtures()


if __name__ == "__main__":
    main()
