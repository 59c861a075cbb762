#!/usr/bin/env python3
"""PyTorch on the GPU, timed the way the official GeCA code runs: the
device-side figures that devicecheck.sh puts beside the Go GPU engine's.

The model is engine/testdata/golden.py's re-implementation of the official
module tree (LocalizeAttention as a one-hot 3x3 conv2d, one kernel per op),
the sampler the official p_sample_loop with Gene Heredity Guidance and
classifier-free guidance (forward_with_cfg; seeds, masks and noise drawn on
the device each step; the diffusion coefficients gathered per step as
_extract_into_tensor does). Weights are random. PyTorch's default numeric
settings are kept, as the official scripts keep them: float32, matmul
without TF32, cuDNN convolutions allowed TF32. eval mode, no_grad.

devicecheck.sh --build copies this file and the two golden modules into
DIR/torch/. Prints one line per figure:

    TORCH <name> <ns per op>        e.g. TORCH Call/b1 41234567

with the Go benchmarks' names (Update/bB, Call/bB, Sample/bB; batch B means
2B grids under CFG). A 250-step sample whose estimate (250 calls) exceeds
--sample-budget seconds is not run; the line then says EST with 250 calls.

    python3 torch_bench.py [--device cuda] [--preset GeCA-S] [--steps 250]
"""
import argparse
import importlib.util
import os
import sys
import time

import torch

here = os.path.dirname(os.path.abspath(__file__))


def load(name, candidates):
    for path in candidates:
        path = os.path.join(here, path)
        if os.path.exists(path):
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    sys.exit('torch_bench: %s not found (looked for %s)' % (name, ', '.join(candidates)))


eg = load('engine_golden', ['engine_golden.py', '../testdata/golden.py'])
dg = load('diffusion_golden', ['diffusion_golden.py', '../diffusion/testdata/golden.py'])

PRESETS = {
    # H, W, C_in, C_h, D, heads, mlp, K
    'GeCA-S': (32, 32, 4, 64, 768, 12, 3072, 11),
    'tiny': (6, 6, 4, 6, 32, 2, 48, 3),
}


def timed(fn, dev, repeat):
    """Mean wall time of fn in ns, after one warm-up, the device drained
    before and after."""
    fn()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(dev)
    return (time.perf_counter() - t0) / repeat * 1e9


def sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


def sample(model, diff, labels, cfg, dev):
    """sample_ddp.py with CFG and p_sample_loop_progressive's GHG: the
    carry (C_out and C_h) of each step seeds the next."""
    b = labels.shape[0]
    z = torch.randn(b, model.cin, model.H, model.W, device=dev)
    x = torch.cat([z, z])
    y = torch.cat([labels, torch.zeros_like(labels)])
    nb = x.shape[0]
    extras = model.seed(torch.randn(nb, model.cout, device=dev))
    tmap = torch.tensor(diff.timestep_map, device=dev)
    for i in reversed(range(len(diff.timestep_map))):
        ti = torch.tensor([i] * nb, device=dev)
        n = torch.randn(nb, model.cout, device=dev)
        us = torch.rand(model.step_n, nb, 1, model.H, model.W, device=dev)
        out, extras = model.forward_with_cfg(x, tmap[ti], y, cfg, extras, n, us)
        x, _, _, _ = diff.p_sample(x, ti, out, torch.randn_like(x))
    return x[:b]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--preset', default='GeCA-S', choices=sorted(PRESETS))
    ap.add_argument('--steps', type=int, default=250)
    ap.add_argument('--batches', default='1,8')
    ap.add_argument('--repeat', type=int, default=20)
    ap.add_argument('--sample-budget', type=float, default=40, help='seconds a sample may be estimated to take and still run')
    args = ap.parse_args()

    torch.set_grad_enabled(False)
    dev = torch.device(args.device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        print('TORCH SKIP no CUDA device visible to torch %s' % torch.__version__)
        return
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'
    print('TORCH INFO torch %s on %s; matmul TF32 %s, cuDNN TF32 %s' % (
        torch.__version__, name, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))

    H, W, cin, ch, dim, heads, mlp, K = PRESETS[args.preset]
    torch.manual_seed(0)
    model = eg.GeCA(H, W, cin, ch, dim, heads, mlp, K).eval()
    eg.randomize(model, torch.Generator().manual_seed(0))
    model.to_device(dev)
    diff = dg.Diffusion(str(args.steps))

    for b in [int(v) for v in args.batches.split(',')]:
        nb = 2 * b
        s = torch.randn(nb, model.cell_dim, H, W, device=dev)
        t = torch.randint(0, 1000, (nb,), device=dev)
        y = torch.zeros(nb, K, device=dev)
        c = model.cond(t, y)
        u = torch.rand(nb, 1, H, W, device=dev)
        print('TORCH Update/b%d %.0f' % (b, timed(lambda: model.f(s, c, 0.5, u), dev, args.repeat)), flush=True)

        x = s[:, :cin].contiguous()
        extras = s[:, cin:].contiguous()
        # the masks are drawn inside the timed call, as forward_with_cfg draws them
        call = timed(lambda: model.forward(x, t, y, extras, torch.rand(model.step_n, nb, 1, H, W, device=dev)),
                     dev, max(1, args.repeat // 4))
        print('TORCH Call/b%d %.0f' % (b, call), flush=True)

        est = args.steps * call / 1e9
        if est > args.sample_budget:
            print('TORCH Sample/b%d EST %.0f' % (b, args.steps * call), flush=True)
            continue
        labels = torch.zeros(b, K, device=dev)
        idx = torch.arange(b, device=dev)
        labels[idx, idx % K] = 1
        sync(dev)
        t0 = time.perf_counter()
        out = sample(model, diff, labels, 1.5, dev)
        sync(dev)
        ns = (time.perf_counter() - t0) * 1e9
        if not torch.isfinite(out).all():
            print('TORCH FAIL Sample/b%d is not finite' % b)
        print('TORCH Sample/b%d %.0f' % (b, ns), flush=True)


if __name__ == '__main__':
    main()
