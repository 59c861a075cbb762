package train

import (
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"geca/engine"
	"geca/engine/ckpt"
)

// Training files are safetensors read and written by engine/ckpt, the one
// checkpoint reader and writer of geca: every size in a file is checked there
// before memory is allocated, files are written whole or not at all, and the
// config in the metadata is decoded and validated as for any model file.

// dense wraps float32 values (not copied) as a tensor for ckpt.SaveSafetensors.
func dense(shape []int, data []float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(slices.Clone(shape)...), tensor.WithBacking(data))
}

// trainingFile is a safetensors file read back: its tensors, its metadata
// and the engine.Config the metadata carries.
type trainingFile struct {
	path    string
	tensors map[string]*tensor.Dense
	meta    map[string]string
	cfg     engine.Config
}

// readTrainingFile reads a safetensors file written by Save (or any file with
// the official names and a geca.config entry).
func readTrainingFile(path string) (*trainingFile, error) {
	ts, _, meta, err := ckpt.LoadSafetensors(path)
	if err != nil {
		return nil, err
	}
	cfg, ok, err := ckpt.ConfigFromMeta(meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("%s: no %s metadata (not a file geca wrote?)", path, ckpt.MetaConfig)
	}
	if meta == nil {
		meta = map[string]string{}
	}
	return &trainingFile{path: path, tensors: ts, meta: meta, cfg: cfg}, nil
}

// readGrown copies tensor name, stored with shape stored, into the leading
// block of dst, of shape shape (the same rank, no dimension smaller): row i
// of a stored (out, in) matrix fills the first in values of dst's row i.
// The rest of dst keeps its values. With equal shapes it is read.
func (f *trainingFile) readGrown(name string, dst []float32, shape, stored []int) error {
	if slices.Equal(shape, stored) {
		return f.read(name, dst)
	}
	n := 1
	for _, d := range stored {
		n *= d
	}
	src := make([]float32, n)
	if err := f.read(name, src); err != nil {
		return err
	}
	switch {
	case len(shape) == 1 && len(stored) == 1 && stored[0] <= shape[0]:
		copy(dst, src)
	case len(shape) == 2 && len(stored) == 2 && stored[0] <= shape[0] && stored[1] <= shape[1]:
		for i := 0; i < stored[0]; i++ {
			copy(dst[i*shape[1]:i*shape[1]+stored[1]], src[i*stored[1]:(i+1)*stored[1]])
		}
	default:
		return fmt.Errorf("%s: tensor %q of shape %v cannot grow to %v", f.path, name, stored, shape)
	}
	return nil
}

// mean is the mean of tensor name's values.
func (f *trainingFile) mean(name string) (float32, error) {
	t, ok := f.tensors[name]
	if !ok {
		return 0, fmt.Errorf("%s: missing tensor %q", f.path, name)
	}
	d, ok := t.Data().([]float32)
	if !ok || len(d) == 0 {
		return 0, fmt.Errorf("%s: tensor %q is not float32 values", f.path, name)
	}
	var sum float64
	for _, v := range d {
		sum += float64(v)
	}
	return float32(sum / float64(len(d))), nil
}

// read copies tensor name into dst, which must have its size.
func (f *trainingFile) read(name string, dst []float32) error {
	t, ok := f.tensors[name]
	if !ok {
		return fmt.Errorf("%s: missing tensor %q", f.path, name)
	}
	d, ok := t.Data().([]float32)
	if !ok {
		return fmt.Errorf("%s: tensor %q is not float32", f.path, name)
	}
	if len(d) != len(dst) {
		return fmt.Errorf("%s: tensor %q has %d values, want %d", f.path, name, len(d), len(dst))
	}
	copy(dst, d)
	return nil
}
