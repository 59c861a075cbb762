#!/usr/bin/python3
"""Golden values of the 2-D positional code (docs/model.md §2.2).

An independent numpy re-implementation of DiT's get_2d_sincos_pos_embed
(models.py of facebookresearch/DiT, from MAE), written from its formula and
generalised to an h x w grid: np.meshgrid(grid_w, grid_h) puts the column
first, each half of the channels is [sin(pos*omega), cos(pos*omega)] with
omega = 1 / 10000**(arange(D/4) / (D/4)), all in float64, rounded to float32
at the end.

Run from the repository root:  /usr/bin/python3 engine/testdata/pe2d.py
Writes engine/testdata/pe2d.npz with keys pe_<h>x<w>x<d>, each (h*w, d).
"""
import numpy as np


def sincos_1d(dim, pos):
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(h, w, dim):
    grid = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    emb_first = sincos_1d(dim // 2, grid[0])  # the column index
    emb_second = sincos_1d(dim // 2, grid[1])  # the row index
    return np.concatenate([emb_first, emb_second], axis=1).astype(np.float32)


out = {f"pe_{h}x{w}x{d}": sincos_2d(h, w, d) for h, w, d in [(3, 5, 8), (9, 6, 64), (32, 32, 64)]}
np.savez_compressed("engine/testdata/pe2d.npz", **out)
