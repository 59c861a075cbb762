#!/usr/bin/python3
"""Writes the checkpoint fixtures of engine/ckpt (run from any directory with
Debian's python3-torch 1.13):

    /usr/bin/python3 engine/ckpt/testdata/make_fixtures.py

Good files:
  tiny.pt            torch.save of {"model", "ema", "opt", "args"} exactly as the
                     official train.py writes it (model keys "module."-prefixed,
                     AdamW state, argparse.Namespace args) for a tiny GeCA
                     (D=16, 2 heads, C_in=4, C_h=4, MLP 8, K=3, 64 px -> 8x8 grid).
  tiny_bare.pt       torch.save of the bare ema state_dict.
  tiny_fp16.pt       tiny.pt with model and ema in float16.
  tiny_bf16.pt       tiny.pt with model and ema in bfloat16.
  tiny_xs_args.pt    tiny weights but args.model = "GeCA-XS" (shapes disagree).
  tiny_nan.pt        ema holds a NaN (loads; the model constructor refuses it).
  views.pt           non-contiguous views, a shared storage, float64, a 0-d tensor.
  mixed.safetensors  F32, F16 and BF16 tensors plus __metadata__, written byte
                     by byte here (no safetensors package needed).
  expected.npz       the float32 values every reader must produce:
                     ema/<name>, model/<name> (fp32), fp16/<name>, bf16/<name>
                     (torch's own half->float conversion), st/<name>.

With --geca-s PATH it writes only a GeCA-S-sized checkpoint (about 213 MB, for
the load benchmark; not committed).

Hostile files (each must be refused with an error naming it; nothing in them
is ever executed, and nothing here executes them either: the pickles are
written as raw protocol bytes):
  evil_os_system.pt, evil_posix_system.pt, evil_builtins_exec.pt,
  evil_subprocess.pt, evil_stack_global.pt, evil_eval_args.pt
  bad_missing_record.pt    data.pkl names storage "1", the zip has no data/1
  bad_storage_short.pt     the data/0 record is shorter than the storage declares
  bad_offset.pt            tensor view starts past the end of its storage
  bad_view_size.pt         tensor view runs past the end of its storage
  bad_shape_overflow.pt    shape whose element count overflows int64
  bad_negative_stride.pt   negative stride
  bad_unrelated.zip        a zip without data.pkl
  bad_no_tensors.pt        torch.save of {"x": 1}
  bad_torchscript.pt       a zip with constants.pkl (TorchScript archive)
"""

import argparse
import collections
import io
import json
import os
import struct
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# Tiny GeCA: same keys and shape rules as GeCA-S (docs/model.md §8).
D, HEADS, C_IN, C_H, MLP, K, FREQ = 16, 2, 4, 4, 8, 3, 256


def shapes(d, k, c_in, c_h, mlp):
    cell_dim, update_dim = 3 * c_in + c_h, 2 * c_in + c_h
    return [
        ("t_embedder.mlp.0.weight", (d, FREQ)),
        ("t_embedder.mlp.0.bias", (d,)),
        ("t_embedder.mlp.2.weight", (d, d)),
        ("t_embedder.mlp.2.bias", (d,)),
        ("y_embedder.embedding_table.0.weight", (d, k)),
        ("y_embedder.embedding_table.0.bias", (d,)),
        ("y_embedder.embedding_table.1.weight", (d, d)),
        ("y_embedder.embedding_table.1.bias", (d,)),
        ("cell_to_embedding.weight", (d, cell_dim)),
        ("cell_to_embedding.bias", (d,)),
        ("transformer.layers.0.0.norm.weight", (d,)),
        ("transformer.layers.0.0.norm.bias", (d,)),
        ("transformer.layers.0.0.fn.to_qkv.weight", (3 * d, d)),
        ("transformer.layers.0.0.fn.to_out.0.weight", (d, d)),
        ("transformer.layers.0.0.fn.to_out.0.bias", (d,)),
        ("transformer.layers.0.1.norm.weight", (d,)),
        ("transformer.layers.0.1.norm.bias", (d,)),
        ("transformer.layers.0.1.fn.net.0.weight", (mlp, d)),
        ("transformer.layers.0.1.fn.net.0.bias", (mlp,)),
        ("transformer.layers.0.1.fn.net.3.weight", (d, mlp)),
        ("transformer.layers.0.1.fn.net.3.bias", (d,)),
        ("transformer.adaLN_modulation.1.weight", (6 * d, d)),
        ("transformer.adaLN_modulation.1.bias", (6 * d,)),
        ("final_layer.linear.weight", (update_dim, d)),
        ("final_layer.linear.bias", (update_dim,)),
        ("final_layer.adaLN_modulation.1.weight", (2 * d, d)),
        ("final_layer.adaLN_modulation.1.bias", (2 * d,)),
    ]


SHAPES = shapes(D, K, C_IN, C_H, MLP)


def state_dict(gen, scale, shape_list=SHAPES):
    sd = collections.OrderedDict()
    for name, shape in shape_list:
        sd[name] = (torch.randn(shape, generator=gen) * scale).float()
    # What nn.Module.state_dict() attaches; torch.save pickles it via BUILD.
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    return sd


def train_args(model="GeCA-tiny"):
    # The argparse.Namespace of train.py (DiT's arguments plus GeCA's), with
    # the tiny model's values.
    return argparse.Namespace(
        data_path="/data/oct/features", results_dir="results", model=model,
        image_size=64, num_classes=K, epochs=14000, global_batch_size=128,
        global_seed=0, vae="ema", num_workers=4, log_every=100,
        ckpt_every=50000, in_channels=C_IN, validate_every=700,
        val_samples=24, load_from=None, grad_norm=False, heads=HEADS,
        lr=1e-4, betas=(0.9, 0.999))


def adamw_state(sd):
    opt = torch.optim.AdamW([torch.nn.Parameter(v.clone()) for v in sd.values()], lr=1e-4, weight_decay=0)
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    opt.step()
    return opt.state_dict()


def official(ema, model, args, opt_of=None, opt_state=None):
    return {
        "model": collections.OrderedDict(("module." + k, v) for k, v in model.items()),
        "ema": ema,
        "opt": opt_state if opt_state is not None else adamw_state(opt_of if opt_of is not None else model),
        "args": args,
    }


def cast(sd, dtype):
    out = collections.OrderedDict((k, v.to(dtype)) for k, v in sd.items())
    out._metadata = sd._metadata
    return out


def save(obj, name):
    torch.save(obj, os.path.join(HERE, name))


def write_zip(name, records, prefix=None):
    """A torch-style zip (stored entries) holding the given records."""
    prefix = prefix if prefix is not None else os.path.splitext(name)[0]
    with zipfile.ZipFile(os.path.join(HERE, name), "w", zipfile.ZIP_STORED) as z:
        for rec, data in records:
            info = zipfile.ZipInfo(prefix + "/" + rec if prefix else rec, date_time=(2024, 7, 3, 0, 0, 0))
            z.writestr(info, data)


# ---- raw pickle protocol-2 bytes ------------------------------------------

def p_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def p_int(i):
    return b"J" + struct.pack("<i", i)


def p_long(i):
    n = (i.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + i.to_bytes(n, "little", signed=True)


def p_tuple(items):
    return b"(" + b"".join(items) + b"t"


def p_tensor(dtype_class, key, numel, offset, size, stride):
    """_rebuild_tensor_v2(persistent storage, offset, size, stride, False, OrderedDict())."""
    storage = b"(" + p_str("storage") + b"ctorch\n" + dtype_class.encode() + b"\n" + p_str(key) + p_str("cpu") + p_int(numel) + b"tQ"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + p_int(offset) + p_tuple([p_int(s) if abs(s) < 2**31 else p_long(s) for s in size])
            + p_tuple([p_int(s) if abs(s) < 2**31 else p_long(s) for s in stride]) + b"\x89ccollections\nOrderedDict\n)Rt" + b"R")


def p_ema_dict(tensor_pickle):
    """{"ema": OrderedDict({"w": tensor})}."""
    return (b"\x80\x02}(" + p_str("ema") + b"ccollections\nOrderedDict\n)R(" + p_str("w") + tensor_pickle + b"u" + b"u.")


def main():
    gen = torch.Generator().manual_seed(20240703)
    ema = state_dict(gen, 0.5)
    model = state_dict(gen, 0.5)
    args = train_args()
    expected = {}
    for k, v in ema.items():
        expected["ema/" + k] = v.numpy()
    for k, v in model.items():
        expected["model/" + k] = v.numpy()

    save(official(ema, model, args), "tiny.pt")
    save(ema, "tiny_bare.pt")
    for tag, dt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        e, m = cast(ema, dt), cast(model, dt)
        ck = official(e, m, args, opt_of=model)
        save(ck, "tiny_%s.pt" % tag)
        for k, v in e.items():
            expected[tag + "/" + k] = v.float().numpy()
    save({"ema": ema, "args": train_args("GeCA-XS")}, "tiny_xs_args.pt")
    nan = cast(ema, torch.float32)
    nan["final_layer.linear.bias"] = nan["final_layer.linear.bias"].clone()
    nan["final_layer.linear.bias"][3] = float("nan")
    save({"ema": nan, "args": args}, "tiny_nan.pt")

    # mixed.safetensors: hand-written in the reference layout.
    st = collections.OrderedDict()
    st["a.f32"] = torch.randn(2, 3, generator=gen)
    st["b.f16"] = (torch.randn(4, generator=gen) * 100).half()
    st["c.bf16"] = (torch.randn(3, 2, generator=gen) * 1e-3).bfloat16()
    st["d.f16special"] = torch.tensor([0.0, -0.0, 1e-7, -6e-8, 65504.0, float("inf"), float("-inf"), 1.0 / 3], dtype=torch.float16)
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    header = {"__metadata__": {"format": "pt", "note": "fixture"}}
    blobs, off = [], 0
    for k, v in st.items():
        raw = v.contiguous().view(torch.uint8).numpy().tobytes() if v.dtype == torch.bfloat16 else v.numpy().tobytes()
        header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
        expected["st/" + k] = v.float().numpy()
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(os.path.join(HERE, "mixed.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))

    # Views: transposed, offset into a shared storage, strided, float64.
    base = torch.randn(4, 6, generator=gen)
    views = collections.OrderedDict()
    views["t"] = base.t()
    views["rows"] = base[1:3]
    views["cols"] = base[:, 1::2]
    views["f64"] = torch.randn(3, generator=gen, dtype=torch.float64)
    views["scalar"] = torch.tensor(2.5)
    save({"ema": views}, "views.pt")
    for k, v in views.items():
        expected["views/" + k] = v.float().contiguous().numpy()

    np.savez(os.path.join(HERE, "expected.npz"), **expected)

    # ---- hostile files --------------------------------------------------
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    evil = {
        "evil_os_system.pt": b"\x80\x02cos\nsystem\n" + p_str("touch /tmp/geca-pwned") + b"\x85R.",
        "evil_posix_system.pt": b"\x80\x02}(" + p_str("ema") + b"cposix\nsystem\n" + p_str("touch /tmp/geca-pwned") + b"\x85Ru.",
        "evil_builtins_exec.pt": b"\x80\x02cbuiltins\nexec\n" + p_str("open('/tmp/geca-pwned','w')") + b"\x85R.",
        "evil_subprocess.pt": b"\x80\x02csubprocess\nPopen\n" + p_str("true") + b"\x85R.",
        # protocol 4 STACK_GLOBAL with the names taken from the stack
        "evil_stack_global.pt": b"\x80\x04" + b"\x8c\x08builtins\x94\x8c\x04eval\x94\x93" + p_str("1+1") + b"\x85R.",
        # a legitimate-looking checkpoint whose args smuggle a call
        "evil_eval_args.pt": (b"\x80\x02}(" + p_str("args") + b"cargparse\nNamespace\n)\x81}(" + p_str("model")
                              + b"cbuiltins\neval\n" + p_str("1") + b"\x85R" + b"ubu."),
    }
    for name, pkl in evil.items():
        write_zip(name, [("data.pkl", pkl), ("data/0", f32), ("version", b"3\n")])

    ok_tensor = p_tensor("FloatStorage", "0", 6, 0, (2, 3), (3, 1))
    write_zip("bad_missing_record.pt", [("data.pkl", p_ema_dict(p_tensor("FloatStorage", "1", 6, 0, (2, 3), (3, 1)))), ("data/0", f32), ("version", b"3\n")])
    write_zip("bad_storage_short.pt", [("data.pkl", p_ema_dict(ok_tensor)), ("data/0", f32[:12]), ("version", b"3\n")])
    write_zip("bad_offset.pt", [("data.pkl", p_ema_dict(p_tensor("FloatStorage", "0", 6, 7, (1,), (1,)))), ("data/0", f32), ("version", b"3\n")])
    write_zip("bad_view_size.pt", [("data.pkl", p_ema_dict(p_tensor("FloatStorage", "0", 6, 2, (2, 3), (3, 1)))), ("data/0", f32), ("version", b"3\n")])
    write_zip("bad_shape_overflow.pt", [("data.pkl", p_ema_dict(p_tensor("FloatStorage", "0", 6, 0, (2**62, 2**62, 16), (1, 1, 1)))), ("data/0", f32), ("version", b"3\n")])
    write_zip("bad_negative_stride.pt", [("data.pkl", p_ema_dict(p_tensor("FloatStorage", "0", 6, 5, (6,), (-1,)))), ("data/0", f32), ("version", b"3\n")])
    write_zip("bad_unrelated.zip", [("readme.txt", b"hello\n"), ("images/a.png", b"\x89PNG")], prefix="")
    save({"x": 1}, "bad_no_tensors.pt")
    write_zip("bad_torchscript.pt", [("data.pkl", b"\x80\x02}."), ("constants.pkl", b"\x80\x02)."), ("version", b"3\n")])


def geca_s(path):
    """A GeCA-S checkpoint (K = 11, 13,312,584 parameters) in the official
    shape, about 213 MB: for the load benchmark, never committed."""
    gen = torch.Generator().manual_seed(1)
    sl = shapes(768, 11, 4, 64, 3072)
    ema, model = state_dict(gen, 0.02, sl), state_dict(gen, 0.02, sl)
    opt = torch.optim.AdamW([torch.nn.Parameter(v) for v in model.values()], lr=1e-4, weight_decay=0)
    state = opt.state_dict()
    for i, v in enumerate(model.values()):  # what one optimiser step leaves
        state["state"][i] = {"step": torch.tensor(1.0), "exp_avg": torch.randn(v.shape, generator=gen) * 1e-3,
                             "exp_avg_sq": torch.rand(v.shape, generator=gen) * 1e-6}
    args = train_args("GeCA-S")
    args.image_size, args.num_classes, args.heads = 256, 11, None
    torch.save(official(ema, model, args, opt_state=state), path)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--geca-s":
        geca_s(sys.argv[2])
    else:
        main()
