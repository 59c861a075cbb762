//go:build cgo

package emu

import (
	"slices"
	"strings"
	"testing"
	"unsafe"

	"geca/engine"
	"geca/engine/cuda"
)

// recorder is an emulated device that notes what the accelerator does with
// it: which host values each upload copied, and every kernel launch.
type recorder struct {
	*Driver
	uploads  map[unsafe.Pointer]devRange // host address of an upload → where it went
	launches []launch
}

type devRange struct {
	p     cuda.Ptr
	bytes int
}

type launch struct {
	kernel string
	args   []uint64
}

type namedKernel struct {
	k    cuda.Kernel
	name string
}

func (r *recorder) HtoD(dst cuda.Ptr, src unsafe.Pointer, n int) error {
	r.uploads[src] = devRange{dst, n}
	return r.Driver.HtoD(dst, src, n)
}

func (r *recorder) Kernel(name string) (cuda.Kernel, error) {
	k, err := r.Driver.Kernel(name)
	return namedKernel{k, name}, err
}

func (r *recorder) Launch(k cuda.Kernel, grid, block [3]int, args []uint64) error {
	nk := k.(namedKernel)
	r.launches = append(r.launches, launch{nk.name, slices.Clone(args)})
	return r.Driver.Launch(nk.k, grid, block, args)
}

// TestDeviceFollowsDescription: the CUDA backend (run on the emulator) holds
// a buffer for exactly the tensors of the description that the cell update
// uses, each of the description's size, and every matrix product reads its
// weight with the description's shape (K = In, whole rows within Out) and
// the bias of the same module; the fused kernels get the norms and biases of
// the modules the description puts there.
func TestDeviceFollowsDescription(t *testing.T) {
	for _, cfg := range []engine.Config{tinyConfig(), xsConfig()} {
		t.Run(cfg.Name, func(t *testing.T) {
			rec := &recorder{Driver: New(1 << 20), uploads: map[unsafe.Pointer]devRange{}}
			acc, err := cuda.New(rec, cuda.Options{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := engine.NewRandomModel(cfg, 7, 0.5)
			if err != nil {
				t.Fatal(err)
			}
			m.SetAccelerator(acc)
			st := randomState(cfg, 2, 1)
			mask := make([]float32, 2*cfg.Cells())
			for i := range mask {
				mask[i] = float32(i % 2)
			}
			if err := m.NewUpdater(2).Update(st, condition(t, m, 10, 900), mask, nil); err != nil {
				t.Fatal(err)
			}

			// Where each tensor of the description went.
			specs := engine.Params(cfg)
			at := map[engine.Module][2]cuda.Ptr{} // weight, bias
			owner := func(p cuda.Ptr) (*engine.Param[float32], int, bool) {
				for _, q := range m.List {
					r, ok := rec.uploads[unsafe.Pointer(&q.W[0])]
					if ok && p >= r.p && p < r.p+cuda.Ptr(r.bytes) {
						return q, int(p-r.p) / 4, true
					}
				}
				return nil, 0, false
			}
			for i, q := range m.List {
				s := specs[i]
				if q.Key != s.Key || !slices.Equal(q.Shape, s.Shape) {
					t.Fatalf("model tensor %d is %s %v, description %s %v", i, q.Key, q.Shape, s.Key, s.Shape)
				}
				r, ok := rec.uploads[unsafe.Pointer(&q.W[0])]
				switch {
				case ok != s.Module.InUpdate():
					t.Errorf("%s: on the device %v, used by the update %v", s.Key, ok, s.Module.InUpdate())
				case ok && r.bytes != 4*s.Size():
					t.Errorf("%s: %d bytes on the device, description %v is %d", s.Key, r.bytes, s.Shape, 4*s.Size())
				case ok:
					pair := at[s.Module]
					pair[b2i(s.IsBias)] = r.p
					at[s.Module] = pair
				}
			}

			used := map[string]bool{}
			for _, l := range rec.launches {
				for _, a := range l.args {
					if q, _, ok := owner(cuda.Ptr(a)); ok && a != 0 {
						used[q.Key] = true
					}
				}
				switch {
				case strings.HasPrefix(l.kernel, "gemm"):
					// M, N, K, A, lda, aIdx, B, ldb, C, ldc, cIdx, bias, epi
					n, k, ldb := int(l.args[1]), int(l.args[2]), int(l.args[7])
					w, off, ok := owner(cuda.Ptr(l.args[6]))
					if !ok {
						continue // a product of activations
					}
					if w.IsBias || len(w.Shape) != 2 {
						t.Errorf("%s reads %s as a weight matrix", l.kernel, w.Key)
						continue
					}
					out, in := w.Shape[0], w.Shape[1]
					if k != in || ldb != in || off%in != 0 || off/in+n > out {
						t.Errorf("%s reads %s %v as %d rows of %d from row %d (stride %d)", l.kernel, w.Key, w.Shape, n, k, off/in, ldb)
					}
					if bias := cuda.Ptr(l.args[11]); bias != 0 {
						if bias != at[w.Module][1] || n != out {
							t.Errorf("%s adds a bias at %#x to %d outputs of %s, not its module's", l.kernel, bias, n, w.Key)
						}
					}
				case l.kernel == "embed_ln":
					// rows, idx, N, D, G, bias, PE, E, Anorm, AG, gamma, beta, eps, mod, modStride
					checkArg(t, l, 5, at[engine.CellToEmbedding][1], "the cell embedding's bias")
					checkArg(t, l, 10, at[engine.TransformerAttnNorm][0], "LN₁'s weight")
					checkArg(t, l, 11, at[engine.TransformerAttnNorm][1], "LN₁'s bias")
					if d := int(l.args[3]); d != cfg.EmbedDim || int(l.args[14]) != engine.BlockChunks*d {
						t.Errorf("embed_ln with D %d and modulation stride %d", d, l.args[14])
					}
				case l.kernel == "resid_ln":
					// rows, idx, N, D, Base, baseIdx, T, bias, H, F, gate, gateStride, gamma, beta, eps, …
					if l.args[12] != 0 {
						checkArg(t, l, 7, at[engine.TransformerAttnToOut][1], "the output projection's bias")
						checkArg(t, l, 12, at[engine.TransformerFFNorm][0], "LN₂'s weight")
						checkArg(t, l, 13, at[engine.TransformerFFNorm][1], "LN₂'s bias")
					} else {
						checkArg(t, l, 7, at[engine.TransformerFFNet3][1], "the MLP's second bias")
					}
				case l.kernel == "apply_update":
					// rows, idx, S, C, off, UW, U, bias, …
					checkArg(t, l, 7, at[engine.FinalLayerLinear][1], "the final linear's bias")
					if uw := int(l.args[5]); uw != cfg.UpdateDim() {
						t.Errorf("apply_update writes %d channels, the final linear has %d", uw, cfg.UpdateDim())
					}
				}
			}
			for _, s := range specs {
				if s.Module.InUpdate() && !used[s.Key] {
					t.Errorf("%s is on the device but no kernel reads it", s.Key)
				}
			}
		})
	}
}

func checkArg(t *testing.T, l launch, i int, want cuda.Ptr, what string) {
	t.Helper()
	if cuda.Ptr(l.args[i]) != want || want == 0 {
		t.Errorf("%s: argument %d is %#x, want %s at %#x", l.kernel, i, l.args[i], what, want)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
