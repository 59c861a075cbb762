"""Reference gradients of the GeCA training loss, from PyTorch autograd.

An independent float64 PyTorch implementation of one training step's loss
(docs/model.md §3, §4, §8): conditioning, M cell updates with given masks, noise MSE +
L_vb with eps detached. Writes golden.npz: weights by official name, inputs,
the loss terms and d loss / d weight for every tensor ("grad/" + name).

Run: /usr/bin/python3 engine/train/testdata/golden.py   (torch 1.13, CPU)
"""
import math
import os

import numpy as np
import torch

torch.manual_seed(0)
dt = torch.float64

H, W, Cin, Ch, D, heads, Mlp, K, M, B = 4, 5, 1, 3, 8, 2, 12, 3, 3, 3
Cout = 2 * Cin
Cd = Cin + Cout + Ch
Ud = Cout + Ch
N = H * W
hd = D // heads

shapes = [
    ("t_embedder.mlp.0.weight", (D, 256)), ("t_embedder.mlp.0.bias", (D,)),
    ("t_embedder.mlp.2.weight", (D, D)), ("t_embedder.mlp.2.bias", (D,)),
    ("y_embedder.embedding_table.0.weight", (D, K)), ("y_embedder.embedding_table.0.bias", (D,)),
    ("y_embedder.embedding_table.1.weight", (D, D)), ("y_embedder.embedding_table.1.bias", (D,)),
    ("cell_to_embedding.weight", (D, Cd)), ("cell_to_embedding.bias", (D,)),
    ("transformer.layers.0.0.norm.weight", (D,)), ("transformer.layers.0.0.norm.bias", (D,)),
    ("transformer.layers.0.0.fn.to_qkv.weight", (3 * D, D)),
    ("transformer.layers.0.0.fn.to_out.0.weight", (D, D)), ("transformer.layers.0.0.fn.to_out.0.bias", (D,)),
    ("transformer.layers.0.1.norm.weight", (D,)), ("transformer.layers.0.1.norm.bias", (D,)),
    ("transformer.layers.0.1.fn.net.0.weight", (Mlp, D)), ("transformer.layers.0.1.fn.net.0.bias", (Mlp,)),
    ("transformer.layers.0.1.fn.net.3.weight", (D, Mlp)), ("transformer.layers.0.1.fn.net.3.bias", (D,)),
    ("transformer.adaLN_modulation.1.weight", (6 * D, D)), ("transformer.adaLN_modulation.1.bias", (6 * D,)),
    ("final_layer.linear.weight", (Ud, D)), ("final_layer.linear.bias", (Ud,)),
    ("final_layer.adaLN_modulation.1.weight", (2 * D, D)), ("final_layer.adaLN_modulation.1.bias", (2 * D,)),
]
P = {}
for name, shape in shapes:
    w = 0.3 * torch.randn(shape, dtype=dt)
    if name.endswith("norm.weight"):
        w = w + 1
    # Every input is float32-representable, so the .npz (read as float32)
    # holds exactly what was computed with.
    P[name] = w.float().double().requires_grad_(True)

# Inputs of one training step.
t = torch.tensor([0, 5, 700])
y = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 1, 1]], dtype=dt)
x0 = (torch.rand(B, N, Cin, dtype=dt) * 2 - 1).float().double()
x0[0, 0, 0], x0[0, 1, 0] = -1.0, 1.0
eps = torch.randn(B, N, Cin, dtype=dt).float().double()
masks = (torch.rand(M, B, N, dtype=dt) >= 0.5).to(dt)

betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
ac = np.cumprod(1 - betas)
acp = np.append(1.0, ac[:-1])
post_var = betas * (1 - acp) / (1 - ac)
post_lv = np.log(np.append(post_var[1], post_var[1:]))
c1 = betas * np.sqrt(acp) / (1 - ac)
c2 = (1 - acp) * np.sqrt(1 - betas) / (1 - ac)


def col(a):
    return torch.tensor(a[t.numpy()], dtype=dt).view(B, 1, 1)


xt = (col(np.sqrt(ac)) * x0 + col(np.sqrt(1 - ac)) * eps).float().double()
s0 = torch.zeros(B, N, Cd, dtype=dt)
s0[:, :, :Cin] = xt
centre = (H // 2) * W + W // 2
s0[:, centre, Cin:Cin + Cout] = torch.randn(B, Cout, dtype=dt).float().double()

# Constants computed in float32 as the official code does, then widened.
half = 128
freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
args = t[:, None].float() * freqs[None]
tfeat = torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(dt)
dcol = torch.arange(D, dtype=torch.float32)
omega = torch.exp(dcol * torch.tensor(-math.log(10000) / D, dtype=torch.float32))
pos = torch.arange(N, dtype=torch.float32)[:, None] * omega[None]
pe = torch.where(torch.arange(D) % 2 == 0, torch.sin(pos), torch.cos(pos)).to(dt)


def lin(x, name, bias=True):
    out = x @ P[name + ".weight"].T
    return out + P[name + ".bias"] if bias else out


def ln(x, eps_, affine=None):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    xh = (x - mu) / torch.sqrt(var + eps_)
    if affine:
        xh = xh * P[affine + ".weight"] + P[affine + ".bias"]
    return xh


silu = torch.nn.functional.silu
temb = lin(silu(lin(tfeat, "t_embedder.mlp.0")), "t_embedder.mlp.2")
yemb = lin(lin(y, "y_embedder.embedding_table.0"), "y_embedder.embedding_table.1")
c = temb + yemb
mod = lin(silu(c), "transformer.adaLN_modulation.1").view(B, 1, 6, D)
shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = [mod[:, :, i] for i in range(6)]
fmod = lin(silu(c), "final_layer.adaLN_modulation.1").view(B, 1, 2, D)
fshift, fscale = fmod[:, :, 0], fmod[:, :, 1]


def neighbours(x):
    """(B, N, C) -> (B, N, 9, C): slot 3a+b holds cell (i+a-1, j+b-1), zero outside."""
    g = x.view(B, H, W, -1)
    g = torch.nn.functional.pad(g, (0, 0, 1, 1, 1, 1))
    out = [g[:, a:a + H, b:b + W] for a in range(3) for b in range(3)]
    return torch.stack(out, dim=3).view(B, N, 9, -1)


s = s0
for m in range(M):
    e = lin(s, "cell_to_embedding") + pe
    a = ln(e, 1e-5, "transformer.layers.0.0.norm") * (1 + scale_msa) + shift_msa
    qkv = lin(a, "transformer.layers.0.0.fn.to_qkv", bias=False)
    q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
    kn, vn = neighbours(k).view(B, N, 9, heads, hd), neighbours(v).view(B, N, 9, heads, hd)
    qh = q.view(B, N, heads, hd)
    logits = torch.einsum("bnhd,bnkhd->bnhk", qh, kn) * hd ** -0.5
    p = logits.softmax(-1)
    o = torch.einsum("bnhk,bnkhd->bnhd", p, vn).reshape(B, N, D)
    e = e + gate_msa * lin(o, "transformer.layers.0.0.fn.to_out.0")
    f = ln(e, 1e-5, "transformer.layers.0.1.norm") * (1 + scale_mlp) + shift_mlp
    f = lin(torch.nn.functional.gelu(lin(f, "transformer.layers.0.1.fn.net.0")), "transformer.layers.0.1.fn.net.3")
    e = e + gate_mlp * f
    u = lin(ln(e, 1e-6) * (1 + fscale) + fshift, "final_layer.linear")
    s = torch.cat([s[..., :Cin], s[..., Cin:] + masks[m][..., None] * u], dim=-1)

eps_hat = s[..., Cin:2 * Cin]
v = s[..., 2 * Cin:3 * Cin]
mse = ((eps - eps_hat) ** 2).mean(dim=(1, 2))

# L_vb with eps_hat detached (IDDPM _vb_terms_bpd, frozen_out).
eh = eps_hat.detach()
min_log, max_log = col(post_lv), col(np.log(betas))
frac = (v + 1) / 2
lv = frac * max_log + (1 - frac) * min_log
x0_hat = col(np.sqrt(1 / ac)) * xt - col(np.sqrt(1 / ac - 1)) * eh
mu = col(c1) * x0_hat + col(c2) * xt
true_mu = col(c1) * x0 + col(c2) * xt
kl = 0.5 * (-1.0 + lv - min_log + torch.exp(min_log - lv) + (true_mu - mu) ** 2 * torch.exp(-lv))
kl = kl.mean(dim=(1, 2)) / math.log(2.0)


def cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ls = 0.5 * lv
inv = torch.exp(-ls)
cp = cdf(inv * (x0 - mu + 1 / 255))
cm = cdf(inv * (x0 - mu - 1 / 255))
logp = torch.where(x0 < -0.999, torch.log(cp.clamp(min=1e-12)),
                   torch.where(x0 > 0.999, torch.log((1 - cm).clamp(min=1e-12)), torch.log((cp - cm).clamp(min=1e-12))))
nll = -logp.mean(dim=(1, 2)) / math.log(2.0)
vb = torch.where(t == 0, nll, kl)
loss = (mse + vb).mean()
loss.backward()

out = {"s0": s0.numpy(), "t": t.numpy().astype(np.float64), "y": y.numpy(), "x0": x0.numpy(), "xt": xt.numpy(),
       "eps": eps.numpy(), "masks": masks.numpy(), "final": s.detach().numpy(),
       "pe": pe.numpy(), "tfeat": tfeat.numpy(), "mse": mse.mean().detach().numpy(), "vb": vb.mean().detach().numpy()}
for name, _ in shapes:
    out["w/" + name] = P[name].detach().numpy().copy()
    out["grad/" + name] = P[name].grad.numpy().copy()
# Two AdamW steps (torch.optim.AdamW, lr 1e-3, weight decay 0.01) with these
# gradients, for the optimiser test.
opt = torch.optim.AdamW([P[n] for n, _ in shapes], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
opt.step()
opt.step()
for name, _ in shapes:
    out["adamw2/" + name] = P[name].detach().numpy()
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.npz")
np.savez(path, **out)
print("wrote", path, "loss", float(loss))
