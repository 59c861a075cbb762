"""Writes small .npy/.npz files with NumPy itself, so the Go reader is checked
against the real writer (run with /usr/bin/python3 from this folder)."""
import numpy as np

np.save("f32.npy", np.arange(6, dtype=np.float32).reshape(2, 3) / 4)
np.save("f64.npy", np.array([1.5, -2.25, 1e-3], dtype=np.float64))
np.save("f16.npy", np.array([1.0, -0.5, 65504.0, 6e-8], dtype=np.float16))
np.save("i64.npy", np.array([[1, -2], [3, 40000000]], dtype=np.int64))
np.save("u8.npy", np.array([0, 7, 255], dtype=np.uint8))
np.save("bool.npy", np.array([True, False, True]))
np.save("scalar.npy", np.float32(3.5))
np.save("fortran.npy", np.asfortranarray(np.ones((2, 2), dtype=np.float32)))
np.savez("pair.npz", a=np.ones(3, dtype=np.float32), b=np.zeros((1, 2), dtype=np.float64))
