#!/usr/bin/python3
"""Full SD-sized decoder check and benchmark (nothing here is committed output).

Writes random weights for the sd-vae-ft-ema decoder config (block_out_channels
[128, 256, 512, 512], layers_per_block 2, 32 groups) into a temporary diffusers
folder, decodes one 32x32x4 latent with golden.py's PyTorch decoder (float32,
THREADS threads, best of REPS after a warm-up), then with Go in the same run
(go test -bench BenchmarkDecodeSD on that folder, GOMAXPROCS=THREADS), checks
Go's output (geca decode --npy) against PyTorch's and reports the peak memory
of the geca decode process.

    /usr/bin/python3 engine/vae/testdata/bench_full.py [--threads 2] [--reps 2] [--tags openblas]

Run from the repository root.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--tags", default="openblas")
    ap.add_argument("--size", type=int, default=32, help="latent side (32 -> 256x256 image)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "latent_channels": 4,
           "norm_num_groups": 32, "scaling_factor": 0.18215}
    tmp = tempfile.mkdtemp(prefix="geca-vae-bench-")
    p, stored = golden.random_weights(cfg, seed=7)
    p32 = {k: v.float() for k, v in p.items()}
    golden.save_safetensors(os.path.join(tmp, "diffusion_pytorch_model.safetensors"),
                            {k: v.numpy() for k, v in stored.items()})
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump({"_class_name": "AutoencoderKL", **cfg}, f)
    g = torch.Generator().manual_seed(8)
    s = args.size
    latent = (torch.randn(1, 4, s, s, generator=g) * 0.18215).float()
    np.save(os.path.join(tmp, "latent.npy"), latent.numpy())
    nparams = sum(v.numel() for v in p.values())
    print(f"folder {tmp}: {nparams} parameters, latent 1x4x{s}x{s}, threads {args.threads}")

    with torch.no_grad():
        ref = golden.decode(p32, cfg, latent)  # warm-up
        times = []
        for _ in range(args.reps):
            t = time.perf_counter()
            ref = golden.decode(p32, cfg, latent)
            times.append(time.perf_counter() - t)
    print(f"pytorch {torch.__version__} float32: best {min(times):.3f} s, runs {[round(x, 3) for x in times]}")

    env = dict(os.environ, GECA_VAE_DIR=tmp, GOMAXPROCS=str(args.threads))
    tags = ["-tags", args.tags] if args.tags else []
    out = subprocess.run(["go", "test", *tags, "-run", "XXX", "-bench", "BenchmarkDecodeSD", f"-benchtime={args.reps}x",
                          "-cpu", str(args.threads), "./engine/vae"], env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("Benchmark"):
            print("go      ", line)
    if out.returncode != 0:
        print(out.stdout, out.stderr)
        sys.exit(1)

    exe = os.path.join(tmp, "geca")
    subprocess.run(["go", "build", *tags, "-o", exe, "./cmd/geca"], check=True)
    outnpy = os.path.join(tmp, "out.npy")
    rssfile = os.path.join(tmp, "rss.txt")
    r = subprocess.run(["/usr/bin/time", "-o", rssfile, "-f", "%M",
                        exe, "decode", "-v", "--vae", tmp, "--latent", os.path.join(tmp, "latent.npy"),
                        "--npy", outnpy, "--out", os.path.join(tmp, "out.png")], env=env, capture_output=True, text=True)
    print("geca decode:", r.stderr.strip())
    if r.returncode != 0:
        sys.exit(1)
    with open(rssfile) as f:
        rss = int(f.read().split()[-1]) / 1024
    print(f"peak RSS of geca decode (load + one decode): {rss:.0f} MiB")
    got = np.load(outnpy)
    want = ref.numpy()
    diff = np.abs(got - want).max()
    print(f"output {got.shape}, max |go - pytorch| = {diff:.3g}, image max |x| = {np.abs(want).max():.3g}, "
          f"rel {diff / max(1.0, np.abs(want).max()):.3g}")
    print(f"(the folder is left in {tmp}; remove it when done)")


if __name__ == "__main__":
    main()
