#!/usr/bin/python3
"""Reference sampling runs for engine/sample.

The loop is sample_ddp.py + p_sample_loop_progressive (GeCA's Gene Heredity
Guidance: model_kwargs['extras'] = out['extras'] after every step), driven by
the independent PyTorch GeCA of engine/testdata/golden.py and the reference
diffusion of engine/diffusion/testdata/golden.py. Every random draw comes from
one torch generator in the official order (docs/model.md §6.4):

    z = randn(N, C_in, H, W)                 -> noise
    seed: randn(N_b, C_out)                  -> seed
    per step:  [CFG] randn(N_b, C_out)       -> seed   (forward_with_cfg re-seed)
               M x rand(N_b, 1, H, W)        -> mask
               randn(N_b, C_in, H, W)        -> ddpm

and is recorded per purpose, so the Go sampler can replay each named stream.
Draws are rounded to float16-representable values (then used as float32) to
keep the fixture small; replaying them is still exact.
Runs (tiny 6x6 model, N = 2, respacing "10", M = 4):
  cfg       CFG 1.5, GHG on (the official sampler)
  nocfg     CFG off, GHG on (C_out and C_h inherited; train.py validation style)
  ddimcfg   the official DDIM loop with CFG: it never updates the carry, so
            C_h stays 0 and C_out is re-seeded each step -- the Go sampler's
            DDIM with GHG off and CFG on
  noghg     CFG off, GHG off: the Go sampler's documented mode (a fresh seed,
            drawn from the seed stream, at every step after the first)

Run from the repository root:  /usr/bin/python3 engine/sample/testdata/golden.py
Writes engine/sample/testdata/golden.npz.
"""
import importlib.util
import os

import numpy as np
import torch

torch.set_grad_enabled(False)
here = os.path.dirname(os.path.abspath(__file__))


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


eg = load("engine_golden", os.path.join(here, "..", "..", "testdata", "golden.py"))
dg = load("diffusion_golden", os.path.join(here, "..", "..", "diffusion", "testdata", "golden.py"))

H, W, CIN, CH, D, HEADS, MLP, K = 6, 6, 4, 6, 32, 2, 48, 3
N, M, STEPS = 2, 4, "10"


def randn(*shape, gen):
    return torch.randn(*shape, generator=gen).half().float()


def rand(*shape, gen):
    # half() rounds to nearest; keep the values in [0, 1)
    u = torch.rand(*shape, generator=gen).half().float()
    return torch.where(u >= 1, torch.full_like(u, 0.99951171875), u)


def run(model, gen, labels, cfg_scale, ghg, method, eta=0.0):
    model.step_n = M
    diff = dg.Diffusion(STEPS)
    n_steps = len(diff.timestep_map)
    cfg_on = cfg_scale > 1
    rec = {"noise": [], "seed": [], "mask": [], "ddpm": []}
    z = randn(N, CIN, H, W, gen=gen)
    rec["noise"].append(z)
    x = torch.cat([z, z]) if cfg_on else z
    y = torch.cat([labels, torch.zeros_like(labels)]) if cfg_on else labels
    nb = x.shape[0]
    n0 = randn(nb, 2 * CIN, gen=gen)
    rec["seed"].append(n0)
    extras = model.seed(n0)
    xs, carries = [], []
    for i in reversed(range(n_steps)):
        t = torch.tensor([diff.timestep_map[i]] * nb)
        ti = torch.tensor([i] * nb)
        if cfg_on:
            nn_ = randn(nb, 2 * CIN, gen=gen)
            rec["seed"].append(nn_)
            us = rand(M, nb, 1, H, W, gen=gen)
            if method == "ddim" or not ghg:
                ex = model.seed(n0)  # the official DDIM loop keeps passing the initial seed
                ex[:, 2 * CIN:] = 0
            else:
                ex = extras
            out, carry = model.forward_with_cfg(x, t, y, cfg_scale, ex, nn_, us)
        else:
            if not ghg and i != n_steps - 1:
                nn_ = randn(nb, 2 * CIN, gen=gen)
                rec["seed"].append(nn_)
                extras = model.seed(nn_)
            us = rand(M, nb, 1, H, W, gen=gen)
            out, carry = model.forward(x, t, y, extras, us)
        rec["mask"].append(us)
        noise = randn(nb, CIN, H, W, gen=gen)
        rec["ddpm"].append(noise)
        if method == "ddim":
            x, _ = diff.ddim_sample(x, ti, out, noise, eta)
        else:
            x, _, _, _ = diff.p_sample(x, ti, out, noise)
        if method != "ddim":
            extras = carry
        xs.append(x)
        carries.append(carry)
    res = {k: torch.cat([a.reshape(-1) for a in v]).numpy() for k, v in rec.items()}
    # x and the GHG carry after the first two steps, and the final samples.
    res.update(x=torch.stack(xs[:2]).numpy(), carry=torch.stack(carries[:2]).numpy(), final=x[:N].numpy())
    return res


def main():
    gen = torch.Generator().manual_seed(11)
    model = eg.GeCA(H, W, CIN, CH, D, HEADS, MLP, K).eval()
    sd = eg.randomize(model, gen)
    # A gentler update rule than randomize's, so that 40 inherited updates
    # keep the grid O(1) and the samples stay in a sensible range.
    for k in ("final_layer.linear.weight", "final_layer.linear.bias"):
        sd[k] = (sd[k] * 0.15).half().float()
    model.load_state_dict(sd)
    out = {"config": np.array([H, W, CIN, CH, D, HEADS, MLP, K, N, M], dtype=np.int64)}
    for k, v in sd.items():
        out["w/" + k] = v.numpy().astype(np.float16)
    labels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    out["labels"] = labels.numpy()
    for name, kw in [("cfg", dict(cfg_scale=1.5, ghg=True, method="ddpm")),
                     ("nocfg", dict(cfg_scale=1.0, ghg=True, method="ddpm")),
                     ("ddimcfg", dict(cfg_scale=1.5, ghg=True, method="ddim")),
                     ("noghg", dict(cfg_scale=1.0, ghg=False, method="ddpm"))]:
        gen = torch.Generator().manual_seed(100 + len(out))
        r = run(model, gen, labels, **kw)
        for k, v in r.items():
            out["%s/%s" % (name, k)] = v.astype(np.float32)
        print(name, "final |x| max %.3g" % np.abs(r["final"]).max(), "carry |max| %.3g" % np.abs(r["carry"]).max())
    path = os.path.join(here, "golden.npz")
    np.savez_compressed(path, **out)
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
