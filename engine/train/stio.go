package train

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"geca/engine/ckpt"
)

// Training files are safetensors read and written by engine/ckpt, the one
// checkpoint reader of geca: every size in a file is checked there before
// memory is allocated, and files are written whole or not at all.

// stTensor is one float32 tensor of a safetensors file.
type stTensor struct {
	Shape []int
	Data  []float32
}

// writeSafetensors writes F32 tensors in the given order with string
// metadata (ckpt.SaveSafetensors: a temporary file renamed into place, so a
// crash mid-write never leaves a half-written checkpoint). The data is not
// copied.
func writeSafetensors(path string, names []string, ts map[string]stTensor, meta map[string]string) error {
	dense := make(map[string]*tensor.Dense, len(ts))
	for _, n := range names {
		t, ok := ts[n]
		if !ok {
			return fmt.Errorf("%s: no tensor %q", path, n)
		}
		dense[n] = tensor.New(tensor.WithShape(slices.Clone(t.Shape)...), tensor.WithBacking(t.Data))
	}
	return ckpt.SaveSafetensors(path, dense, names, meta)
}

// readSafetensors reads a safetensors file of F32, F16 or BF16 tensors as
// float32 (ckpt.LoadSafetensors).
func readSafetensors(path string) (map[string]stTensor, map[string]string, error) {
	dense, _, meta, err := ckpt.LoadSafetensors(path)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]stTensor, len(dense))
	for n, t := range dense {
		d, ok := t.Data().([]float32)
		if !ok {
			return nil, nil, fmt.Errorf("%s: tensor %q is not float32", path, n)
		}
		out[n] = stTensor{Shape: []int(t.Shape()), Data: d}
	}
	if meta == nil {
		meta = map[string]string{}
	}
	return out, meta, nil
}
