#!/usr/bin/python3
"""PyTorch reference timings for the Go benchmarks (engine/bench_test.go).

The model is golden.py's re-implementation of the official module tree, run
the way the official sampler runs it: eval mode, no_grad, float32, the whole
batch at once, every cell computed every update and masked afterwards.

Run from the repository root, in the same shell (same OPENBLAS_* variables)
as the Go benchmarks:

    /usr/bin/python3 engine/testdata/bench_torch.py [--threads N] [--repeat R]

torch.mm goes through the system OpenBLAS here, whose thread count follows
OPENBLAS_NUM_THREADS (torch.set_num_threads is also set to --threads).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402
import torch  # noqa: E402

PRESETS = {
    'GeCA-S': dict(cin=4, ch=64, dim=768, heads=12, mlp=3072),
    'GeCA-XS': dict(cin=4, ch=32, dim=384, heads=6, mlp=64),
}


def timeit(fn, repeat):
    """Best and mean wall time and mean CPU time (all threads) in ms: on a
    shared machine CPU time is the steadier of the two."""
    fn()  # warm up
    best, tot, cpu = float('inf'), 0.0, 0.0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best, tot, cpu = min(best, dt), tot + dt, cpu + dc
    return best * 1e3, tot / repeat * 1e3, cpu / repeat * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--presets', default='GeCA-XS,GeCA-S')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    print('torch %s, threads %d, OPENBLAS_NUM_THREADS=%s OPENBLAS_CORETYPE=%s' % (
        torch.__version__, torch.get_num_threads(), os.environ.get('OPENBLAS_NUM_THREADS'), os.environ.get('OPENBLAS_CORETYPE')))
    for name in args.presets.split(','):
        p = PRESETS[name]
        model = golden.GeCA(32, 32, p['cin'], p['ch'], p['dim'], p['heads'], p['mlp'], 11).eval()
        golden.randomize(model, torch.Generator().manual_seed(0))
        for b in (1, 2):
            s = torch.randn(b, model.cell_dim, 32, 32)
            t = torch.randint(0, 1000, (b,))
            y = torch.zeros(b, 11)
            c = model.cond(t, y)
            u = torch.rand(b, 1, 32, 32)
            r = timeit(lambda: model.f(s, c, 0.5, u), args.repeat * 4)
            print('%-8s B=%d  one update (rate 0.5): best %8.1f ms  mean %8.1f ms  cpu %8.1f ms' % ((name, b) + r))
            x = s[:, :p['cin']]
            extras = model.seed(torch.randn(b, 2 * p['cin']))
            us = torch.rand(12, b, 1, 32, 32)
            r = timeit(lambda: model.forward(x, t, y, extras, us), args.repeat)
            print('%-8s B=%d  denoiser call (M=12): best %8.1f ms  mean %8.1f ms  cpu %8.1f ms' % ((name, b) + r))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
