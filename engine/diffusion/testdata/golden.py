#!/usr/bin/python3
"""Reference values for engine/diffusion, computed with numpy (float64 tables)
and torch (fp32 tensor arithmetic, CPU), following IDDPM/DiT's
gaussian_diffusion.py, respace.py and diffusion_utils.py as GeCA ships them.

Run from this directory:  /usr/bin/python3 golden.py
Writes tables.json (float64 tables and kept timesteps, exact via repr) and
steps.npz (fp32 inputs and outputs of the step and loss functions). Importing
it (as engine/sample/testdata/golden.py does) gives the reference Diffusion
class without writing anything.
"""
import json

import numpy as np
import torch as th



# ---- schedule (numpy float64) ---------------------------------------------

def linear_betas(n):
    scale = 1000 / n
    return np.linspace(scale * 0.0001, scale * 0.02, n, dtype=np.float64)


def space_timesteps(num_timesteps, section_counts):
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired = int(section_counts[len("ddim"):])
            for i in range(1, num_timesteps):
                if len(range(0, num_timesteps, i)) == desired:
                    return set(range(0, num_timesteps, i))
            raise ValueError("cannot create exactly %d steps" % desired)
        section_counts = [int(x) for x in section_counts.split(",")]
    size_per = num_timesteps // len(section_counts)
    extra = num_timesteps % len(section_counts)
    start_idx = 0
    all_steps = []
    for i, count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError("cannot divide section of %d steps into %d" % (size, count))
        frac_stride = 1 if count <= 1 else (size - 1) / (count - 1)
        cur = 0.0
        for _ in range(count):
            all_steps.append(start_idx + round(cur))
            cur += frac_stride
        start_idx += size
    return set(all_steps)


class Diffusion:
    """GaussianDiffusion tables of a SpacedDiffusion (EPSILON, LEARNED_RANGE)."""

    def __init__(self, respacing, steps=1000):
        base = linear_betas(steps)
        if respacing == "":
            use = set(range(steps))
        else:
            use = space_timesteps(steps, respacing)
        ac = np.cumprod(1.0 - base, axis=0)
        last = 1.0
        betas, tmap = [], []
        for i, a in enumerate(ac):
            if i in use:
                betas.append(1 - a / last)
                last = a
                tmap.append(i)
        self.timestep_map = tmap
        b = np.array(betas, dtype=np.float64)
        self.betas = b
        alphas = 1.0 - b
        self.alphas_cumprod = np.cumprod(alphas, axis=0)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = b * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = b * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        self.log_betas = np.log(self.betas)

    def tables(self):
        names = ["betas", "log_betas", "alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next",
                 "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
                 "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                 "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"]
        return {n: [float(v) for v in getattr(self, n)] for n in names}

    # ---- fp32 tensor arithmetic, as in gaussian_diffusion.py ----
    dtype = th.float32

    def ex(self, arr, t, shape):
        res = th.from_numpy(arr).to(device=t.device)[t].to(self.dtype)  # _extract_into_tensor
        while len(res.shape) < len(shape):
            res = res[..., None]
        return res.expand(shape)

    def p_mean_variance(self, x, t, model_output, clip_denoised=False):
        C = x.shape[1]
        eps, var_values = th.split(model_output, C, dim=1)
        min_log = self.ex(self.posterior_log_variance_clipped, t, x.shape)
        max_log = self.ex(np.log(self.betas), t, x.shape)
        frac = (var_values + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = self.ex(self.sqrt_recip_alphas_cumprod, t, x.shape) * x - \
            self.ex(self.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps
        if clip_denoised:  # process_xstart
            x0 = x0.clamp(-1, 1)
        mean = self.ex(self.posterior_mean_coef1, t, x.shape) * x0 + \
            self.ex(self.posterior_mean_coef2, t, x.shape) * x
        return mean, log_var, x0

    def p_sample(self, x, t, model_output, noise, clip_denoised=False):
        mean, log_var, x0 = self.p_mean_variance(x, t, model_output, clip_denoised)
        nonzero = (t != 0).float().view(-1, *([1] * (len(x.shape) - 1)))
        return mean + nonzero * th.exp(0.5 * log_var) * noise, x0, mean, log_var

    def ddim_sample(self, x, t, model_output, noise, eta, clip_denoised=False):
        _, _, x0 = self.p_mean_variance(x, t, model_output, clip_denoised)
        eps = (self.ex(self.sqrt_recip_alphas_cumprod, t, x.shape) * x - x0) / \
            self.ex(self.sqrt_recipm1_alphas_cumprod, t, x.shape)
        ab = self.ex(self.alphas_cumprod, t, x.shape)
        abp = self.ex(self.alphas_cumprod_prev, t, x.shape)
        sigma = eta * th.sqrt((1 - abp) / (1 - ab)) * th.sqrt(1 - ab / abp)
        mean_pred = x0 * th.sqrt(abp) + th.sqrt(1 - abp - sigma ** 2) * eps
        nonzero = (t != 0).float().view(-1, *([1] * (len(x.shape) - 1)))
        return mean_pred + nonzero * sigma * noise, x0

    def q_sample(self, x0, t, noise):
        return self.ex(self.sqrt_alphas_cumprod, t, x0.shape) * x0 + \
            self.ex(self.sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise

    def q_posterior(self, x0, xt, t):
        mean = self.ex(self.posterior_mean_coef1, t, xt.shape) * x0 + \
            self.ex(self.posterior_mean_coef2, t, xt.shape) * xt
        return mean, self.ex(self.posterior_variance, t, xt.shape), \
            self.ex(self.posterior_log_variance_clipped, t, xt.shape)

    def vb_terms_bpd(self, x0, xt, t, model_output):
        true_mean, _, true_lv = self.q_posterior(x0, xt, t)
        mean, log_var, _ = self.p_mean_variance(xt, t, model_output)
        kl = normal_kl(true_mean, true_lv, mean, log_var)
        kl = kl.mean(dim=list(range(1, len(kl.shape)))) / np.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, means=mean, log_scales=0.5 * log_var)
        nll = nll.mean(dim=list(range(1, len(nll.shape)))) / np.log(2.0)
        return th.where(t == 0, nll, kl)


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + th.exp(logvar1 - logvar2)
                  + ((mean1 - mean2) ** 2) * th.exp(-logvar2))


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + th.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * th.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, *, means, log_scales):
    centered_x = x - means
    inv_stdv = th.exp(-log_scales)
    plus_in = inv_stdv * (centered_x + 1.0 / 255.0)
    cdf_plus = approx_standard_normal_cdf(plus_in)
    min_in = inv_stdv * (centered_x - 1.0 / 255.0)
    cdf_min = approx_standard_normal_cdf(min_in)
    log_cdf_plus = th.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = th.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return th.where(x < -0.999, log_cdf_plus,
                    th.where(x > 0.999, log_one_minus_cdf_min, th.log(cdf_delta.clamp(min=1e-12))))


# ---- fixtures -----------------------------------------------------------------

def main():
    th.manual_seed(0)
    np.random.seed(0)

    out = {"timesteps": {}, "tables": {}, "errors": ["ddim999", "1001", "abc", "10,x", "ddim", "600,600"]}
    for r in ["250", "", "50", "10,20", "ddim25", "ddim10", "100,50,25", "3", "7,0,4", "1"]:
        out["timesteps"][r] = sorted(space_timesteps(1000, r if r else [1000]))
    for r in ["250", "50", "10,20", "ddim10"]:
        out["tables"][r] = Diffusion(r).tables()
    full = Diffusion("").tables()
    out["tables_1000_subset"] = {"index": [0, 1, 2, 499, 998, 999],
                                 "values": {k: [v[i] for i in [0, 1, 2, 499, 998, 999]] for k, v in full.items()}}
    out["linear_betas_1000"] = [float(v) for v in linear_betas(1000)]
    out["linear_betas_250"] = [float(v) for v in linear_betas(250)]
    for e in out["errors"]:
        try:
            space_timesteps(1000, e)
            raise SystemExit("expected an error for %r" % e)
        except ValueError:
            pass
    with open("tables.json", "w") as f:
        json.dump(out, f)

    # ---- steps ------------------------------------------------------------------

    arrs = {}
    B, C, H, W = 2, 4, 8, 8
    x = th.randn(B, C, H, W) * 1.7
    eps = th.randn(B, C, H, W)
    v = (th.rand(B, C, H, W) * 3.0) - 1.5  # outside [-1, 1] too: v is not clamped
    z = th.randn(B, C, H, W)
    arrs.update(x=x, eps=eps, v=v, z=z)
    d250 = Diffusion("250")
    for i in [249, 124, 1, 0]:
        t = th.tensor([i] * B)
        xp, x0, mean, lv = d250.p_sample(x, t, th.cat([eps, v], 1), z)
        arrs["ddpm_%d" % i], arrs["x0_%d" % i], arrs["mean_%d" % i], arrs["logvar_%d" % i] = xp, x0, mean, lv
        for eta in [0.0, 0.5, 1.0]:
            xd, _ = d250.ddim_sample(x, t, th.cat([eps, v], 1), z, eta)
            arrs["ddim_%d_eta%g" % (i, eta)] = xd
        # clip_denoised=True: x̂0 clamped to [-1, 1] (most of x̂0 is outside at i = 249)
        xp, x0, _, _ = d250.p_sample(x, t, th.cat([eps, v], 1), z, clip_denoised=True)
        arrs["ddpm_clip_%d" % i], arrs["x0_clip_%d" % i] = xp, x0
        xd, _ = d250.ddim_sample(x, t, th.cat([eps, v], 1), z, 0.5, clip_denoised=True)
        arrs["ddim_clip_%d" % i] = xd
    dd = Diffusion("ddim25")
    for i in [24, 12, 0]:
        t = th.tensor([i] * B)
        xd, _ = dd.ddim_sample(x, t, th.cat([eps, v], 1), z, 0.0)
        arrs["ddim25_%d" % i] = xd

    # training helpers on the unrespaced process
    d1000 = Diffusion("")
    x0 = (th.rand(B, C, H, W) * 2.2 - 1.1).clamp(-1, 1)  # include exact ±1 (edge bins)
    x0[0, 0, 0, :4] = th.tensor([-1.0, 1.0, -0.9995, 0.9995])
    arrs["train_x0"] = x0
    for tt in [0, 1, 500, 999]:
        t = th.tensor([tt] * B)
        xt = d1000.q_sample(x0, t, z)
        arrs["qsample_%d" % tt] = xt
        pm, pv, plv = d1000.q_posterior(x0, xt, t)
        arrs["qpost_mean_%d" % tt] = pm
        arrs["qpost_var_%d" % tt] = pv[:, 0, 0, 0]
        arrs["qpost_logvar_%d" % tt] = plv[:, 0, 0, 0]
        vb = d1000.vb_terms_bpd(x0, xt, t, th.cat([eps, v], 1))
        arrs["vb_%d" % tt] = vb
        # The gradient reference: the means come from the fp32 graph (ε̂ is
        # detached, so they are constants), the rest is float64 autograd (fp32
        # autograd loses digits where two CDF values nearly cancel, and the KL
        # gradient at large t is a difference of nearly equal terms).
        true_mean, _, true_lv = d1000.q_posterior(x0, xt, t)
        mean, _, _ = d1000.p_mean_variance(xt, t, th.cat([eps, v], 1))
        vv = v.double().clone().requires_grad_(True)
        mn = th.from_numpy(d1000.posterior_log_variance_clipped)[t].float().double().view(-1, 1, 1, 1)
        mx = th.from_numpy(np.log(d1000.betas))[t].float().double().view(-1, 1, 1, 1)
        frac = (vv + 1) / 2
        lv = frac * mx + (1 - frac) * mn
        if tt == 0:
            term = -discretized_gaussian_log_likelihood(x0.double(), means=mean.double(), log_scales=0.5 * lv)
        else:
            term = normal_kl(true_mean.double(), true_lv.double(), mean.double(), lv)
        (term.mean(dim=[1, 2, 3]) / np.log(2.0)).sum().backward()
        arrs["vbgrad_%d" % tt] = vv.grad.detach()

    # element functions
    a = th.randn(64)
    b = th.randn(64)
    la = th.randn(64)
    lb = th.randn(64)
    arrs.update(kl_m1=a, kl_lv1=la, kl_m2=b, kl_lv2=lb, kl=normal_kl(a, la, b, lb))
    u = th.linspace(-6, 6, 97)
    arrs.update(cdf_x=u, cdf=approx_standard_normal_cdf(u))
    xs = th.cat([th.tensor([-1.0, 1.0, -0.9995, 0.9995, 0.0]), th.rand(59) * 2 - 1])
    ms = th.randn(64) * 0.3
    ls = th.randn(64) - 2
    arrs.update(dll_x=xs, dll_mean=ms, dll_logscale=ls,
                dll=discretized_gaussian_log_likelihood(xs, means=ms, log_scales=ls))

    np.savez("steps.npz", **{k: v.detach().numpy().astype(np.float32) for k, v in arrs.items()})
    print("wrote tables.json and steps.npz:", len(arrs), "arrays")


if __name__ == "__main__":
    main()
