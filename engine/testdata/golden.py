#!/usr/bin/python3
"""Golden fixtures for the Go GeCA engine.

An independent PyTorch re-implementation of the official GeCA module tree
(geca.py and utils.py of the official code, as docs/model.md §2-§4 describes
them): LocalizeAttention as a one-hot 3x3 conv2d with 'same' zero
padding, the 1-D vit positional code with its odd-channel quirk, affine
PreNorm LayerNorms (eps 1e-5), a non-affine final LayerNorm (eps 1e-6), exact
GELU, one adaLN modulation shared by the transformer, update masks
floor(rand + rate). Weights are random and non-zero (the official
initialisation zeroes the final layers, which would hide bugs). They are
rounded to float16-representable values and stored as float16 to keep the
fixtures small; every computation is float32 on the CPU.

Run from the repository root:  /usr/bin/python3 engine/testdata/golden.py
Writes engine/testdata/golden_<name>.npz with keys:
  config            [H, W, C_in, C_h, D, heads, mlp, K]
  w/<official key>  weights
  cond_t, cond_y, cond_c               conditioning of a few (t, y)
  upd_t, upd_y, upd_s0, upd_u          a batch, its start state (non-zero hidden) and 12 mask uniforms
  upd_s1, upd_s12, upd_mag1            state after 1 and 12 updates (rate 0.5), |update| of update 1
  upd_full1                            state after 1 update with rate 1 (no mask)
  upd_attn_cells, upd_attn1            attention weights (heads x 9) of a few cells in update 1
  seed_x, seed_n, seed_s0, seed_u, seed_out, seed_carry   forward() from the single-cell seed
  cfg_x, cfg_h, cfg_t, cfg_y, cfg_n, cfg_u, cfg_scale, cfg_out, cfg_carry   forward_with_cfg
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_grad_enabled(False)


def vit_positional_encoding(n, dim):
    # utils.vit_positional_encoding: 1-D over the row-major index; odd channels
    # use their own index d in the exponent (the quirk).
    position = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, n, dim)
    pe[0, :, 0::2] = torch.sin(position * div_term[0::2])
    pe[0, :, 1::2] = torch.cos(position * div_term[1::2])
    return pe


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size, bias=True), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size, bias=True))
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t):
        return self.mlp(self.timestep_embedding(t, self.frequency_embedding_size))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, hidden_size):
        super().__init__()
        self.embedding_table = nn.Sequential(nn.Linear(num_classes, hidden_size), nn.Linear(hidden_size, hidden_size))

    def forward(self, labels):
        return self.embedding_table(labels)


class LocalizeAttention(nn.Module):
    """Neighbour gathering by a one-hot 3x3 cross-correlation, padding='same'."""

    def __init__(self, hw, nb=(3, 3)):
        super().__init__()
        self.h, self.w = hw
        k = nb[0] * nb[1]
        filt = torch.zeros(k, 1, nb[0], nb[1])
        for i in range(k):
            filt[i, 0, i // nb[1], i % nb[1]] = 1.0  # row-major one-hot kernels
        self.filters = filt  # plain attribute, not a buffer (as in the official code)
        self.k = k

    def forward(self, x):
        # x: (B, heads, N, hd) -> (B, heads, N, 9, hd)
        b, hh, n, hd = x.shape
        g = x.permute(0, 1, 3, 2).reshape(b * hh * hd, 1, self.h, self.w)
        g = F.conv2d(g, self.filters, padding='same')  # (B*hh*hd, 9, H, W)
        g = g.reshape(b, hh, hd, self.k, n).permute(0, 1, 4, 3, 2)
        return g


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, hw):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head ** -0.5
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(0.0))
        self.localize = LocalizeAttention(hw)
        self.last_attn = None

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        sh = lambda t: t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3)  # b n (h d) -> b h n d
        q, k, v = sh(q), sh(k), sh(v)
        k, v = self.localize(k), self.localize(v)
        dots = torch.einsum('bhnd,bhnkd->bhnk', q, k) * self.scale
        attn = dots.softmax(dim=-1)
        self.last_attn = attn
        out = torch.einsum('bhnk,bhnkd->bhnd', attn, v)
        out = out.permute(0, 2, 1, 3).reshape(b, n, -1)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim), nn.Dropout(0.0))

    def forward(self, x):
        return self.net(x)


class PreNorm(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.norm = nn.LayerNorm(dim)  # affine, eps 1e-5
        self.fn = fn

    def forward(self, x, shift, scale):
        return self.fn(modulate(self.norm(x), shift, scale))


class Transformer(nn.Module):
    def __init__(self, dim, depth, heads, dim_head, mlp_dim, hw):
        super().__init__()
        self.layers = nn.ModuleList([nn.ModuleList([
            PreNorm(dim, Attention(dim, heads, dim_head, hw)),
            PreNorm(dim, FeedForward(dim, mlp_dim))]) for _ in range(depth)])
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim, bias=True))

    def encode(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        for attn, ff in self.layers:
            x = x + gate_msa.unsqueeze(1) * attn(x, shift_msa, scale_msa)
            x = x + gate_mlp.unsqueeze(1) * ff(x, shift_mlp, scale_mlp)
        return x


class FinalLayer(nn.Module):
    def __init__(self, dim, out):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, out, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim, bias=True))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class GeCA(nn.Module):
    def __init__(self, H, W, cin, ch, dim, heads, mlp, K, step_n=12):
        super().__init__()
        self.H, self.W, self.cin, self.cout, self.ch = H, W, cin, 2 * cin, ch
        self.cell_dim = cin + 2 * cin + ch
        self.update_dim = 2 * cin + ch
        self.step_n = step_n
        self.t_embedder = TimestepEmbedder(dim)
        self.y_embedder = LabelEmbedder(K, dim)
        self.cell_to_embedding = nn.Linear(self.cell_dim, dim)
        self.transformer = Transformer(dim, 1, heads, dim // heads, mlp, (H, W))
        self.final_layer = FinalLayer(dim, self.update_dim)
        self.pe = vit_positional_encoding(H * W, dim)

    def to_device(self, dev):
        # pe and the neighbour filters are plain attributes, which Module.to leaves behind
        self.to(dev)
        self.pe = self.pe.to(dev)
        loc = self.attention().localize
        loc.filters = loc.filters.to(dev)
        return self

    def attention(self):
        return self.transformer.layers[0][0].fn

    def f(self, x, c, update_rate, u=None):
        b = x.shape[0]
        cells = x.permute(0, 2, 3, 1).reshape(b, self.H * self.W, self.cell_dim)  # b c h w -> b (h w) c
        emb = self.cell_to_embedding(cells) + self.pe
        emb = self.transformer.encode(emb, c)
        upd = self.final_layer(emb, c)
        upd = upd.reshape(b, self.H, self.W, self.update_dim).permute(0, 3, 1, 2)  # b (h w) c -> b c h w
        if update_rate < 1:
            mask = torch.floor(u + update_rate)  # u: the torch.rand(B, 1, H, W) of this update
            upd = upd * mask
        return torch.cat([x[:, :self.cin], x[:, self.cin:] + upd], dim=1), upd

    def seed(self, n):
        # cell_init='random': C_out of the centre cell ~ N(0,1) from randn(B, C_out); n are those draws
        b = n.shape[0]
        extras = torch.zeros(b, self.update_dim, self.H, self.W, device=n.device)
        extras[:, :self.cout, self.H // 2, self.W // 2] = n
        return extras

    def cond(self, t, y):
        return self.t_embedder(t) + self.y_embedder(y)

    def forward(self, x, t, y, extras, us, update_rate=0.5):
        s = torch.cat([x, extras], dim=1)
        c = self.cond(t, y)
        for m in range(self.step_n):
            s, _ = self.f(s, c, update_rate, us[m])
        return s[:, self.cin:self.cin + self.cout], s[:, self.cin:]

    def forward_with_cfg(self, x, t, y, cfg_scale, extras, n, us):
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        extras = extras.clone()
        extras[:, :self.cout] = self.seed(n)[:, :self.cout]  # re-seed C_out, keep C_h
        out, carry = self.forward(combined, t, y, extras, us)
        eps, rest = out[:, :self.cin], out[:, self.cin:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
        eps = torch.cat([half_eps, half_eps], dim=0)
        return torch.cat([eps, rest], dim=1), carry


def randomize(model, gen, std=0.5):
    sd = {}
    for name, p in model.state_dict().items():
        if name.endswith('norm.weight'):
            v = 1 + 0.1 * torch.randn(p.shape, generator=gen)
        elif p.dim() == 2:
            v = std / math.sqrt(p.shape[1]) * torch.randn(p.shape, generator=gen)
        else:
            v = 0.1 * std * torch.randn(p.shape, generator=gen)
        sd[name] = v.half().float()
    model.load_state_dict(sd)
    return sd


def make(name, H, W, cin, ch, dim, heads, mlp, K, seed):
    gen = torch.Generator().manual_seed(seed)
    model = GeCA(H, W, cin, ch, dim, heads, mlp, K).eval()
    sd = randomize(model, gen)
    out = {'config': np.array([H, W, cin, ch, dim, heads, mlp, K], dtype=np.int64)}
    for k, v in sd.items():
        out['w/' + k] = v.numpy().astype(np.float16)
    assert all(np.array_equal(out['w/' + k].astype(np.float32), v.numpy()) for k, v in sd.items())

    # Conditioning for a few (t, y).
    t = torch.tensor([0, 1, 250, 999], dtype=torch.int64)
    y = torch.zeros(4, K)
    y[1, 0] = 1
    y[2, K - 1] = 1
    y[2, 0] = 1
    y[3] = torch.rand(K, generator=gen)
    out['cond_t'], out['cond_y'], out['cond_c'] = t.numpy(), y.numpy(), model.cond(t, y).numpy()

    cd, ud, B, M = model.cell_dim, model.update_dim, 2, 12
    att = model.attention()
    cells = [(0, 0, 0), (1, H // 2, W // 2), (1, H - 1, W - 1), (0, 0, W - 1)]

    # Updates from a state with non-zero hidden channels.
    t = torch.tensor([37, 912])
    y = torch.zeros(B, K)
    y[0, K // 2] = 1
    c = model.cond(t, y)
    s0 = torch.randn(B, cd, H, W, generator=gen)
    us = torch.rand(M, B, 1, H, W, generator=gen)
    s1, upd = model.f(s0, c, 0.5, us[0])
    out['upd_attn_cells'] = np.array(cells, dtype=np.int64)
    out['upd_attn1'] = np.stack([att.last_attn[b, :, i * W + j, :].numpy() for b, i, j in cells])
    out['upd_mag1'] = upd.norm(dim=1).numpy()
    s = s1
    for m in range(1, M):
        s, _ = model.f(s, c, 0.5, us[m])
    full1, _ = model.f(s0, c, 1.0)
    out.update(upd_t=t.numpy(), upd_y=y.numpy(), upd_s0=s0.numpy(), upd_u=us.numpy(),
               upd_s1=s1.numpy(), upd_s12=s.numpy(), upd_full1=full1.numpy())

    # One denoiser call from the single-cell seed.
    x = torch.randn(B, cin, H, W, generator=gen)
    n = torch.randn(B, 2 * cin, generator=gen)
    us = torch.rand(M, B, 1, H, W, generator=gen)
    extras = model.seed(n)
    o, carry = model.forward(x, t, y, extras, us)
    out.update(seed_x=x.numpy(), seed_n=n.numpy(), seed_s0=torch.cat([x, extras], 1).numpy(), seed_u=us.numpy(),
               seed_out=o.numpy(), seed_carry=carry.numpy())

    # forward_with_cfg on a 2B' batch (B' = 2): [labels; null], inherited hidden state.
    Bp = 2
    x = torch.randn(2 * Bp, cin, H, W, generator=gen)
    x[Bp:] = x[:Bp]
    h = torch.randn(2 * Bp, ud, H, W, generator=gen)
    tt = torch.tensor([500, 20, 500, 20])
    yy = torch.zeros(2 * Bp, K)
    yy[0, 0] = 1
    yy[1, K - 1] = 1
    n = torch.randn(2 * Bp, 2 * cin, generator=gen)
    us = torch.rand(M, 2 * Bp, 1, H, W, generator=gen)
    scale = 1.5
    o, carry = model.forward_with_cfg(x, tt, yy, scale, h, n, us)
    out.update(cfg_x=x.numpy(), cfg_h=h.numpy(), cfg_t=tt.numpy(), cfg_y=yy.numpy(), cfg_n=n.numpy(), cfg_u=us.numpy(),
               cfg_scale=np.array([scale], dtype=np.float32), cfg_out=o.numpy(), cfg_carry=carry.numpy())

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden_%s.npz' % name)
    np.savez_compressed(path, **out)
    print('%s: %d bytes, |s12| max %.3g, |update1| max %.3g' % (path, os.path.getsize(path), s.abs().max(), upd.abs().max()))


if __name__ == '__main__':
    torch.manual_seed(0)
    make('tiny', H=5, W=7, cin=3, ch=5, dim=16, heads=2, mlp=24, K=3, seed=1)
    make('nohidden', H=4, W=6, cin=4, ch=0, dim=32, heads=4, mlp=48, K=1, seed=2)
    make('xs', H=8, W=8, cin=4, ch=32, dim=384, heads=6, mlp=64, K=11, seed=3)
