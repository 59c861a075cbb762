// Package data loads training images for geca train: Fashion-MNIST from the
// IDX files of Debian's dataset-fashion-mnist package, and folders of images
// (one subfolder per class).
package data

import (
	"fmt"
	"math/rand/v2"

	"geca/internal/membudget"
)

// Dataset is a set of labelled images of one size, pixels in [−1, 1], stored
// cell-major (image n, row i, column j, channel c at ((n·H + i)·W + j)·C + c),
// the layout of engine.State's C_in block.
type Dataset struct {
	N, H, W, C int
	Pixels     []float32
	Labels     []int
	Classes    []string // class names, indexed by label
	// Multi, when set, holds multi-hot float labels (N×K) that replace the
	// one-hot of Labels (official latent datasets); Labels is then the
	// largest entry, for bookkeeping.
	Multi []float32
}

// Image returns the pixels of image i (a view).
func (d *Dataset) Image(i int) []float32 {
	sz := d.H * d.W * d.C
	return d.Pixels[i*sz : (i+1)*sz : (i+1)*sz]
}

// Validate checks that sizes and labels agree.
func (d *Dataset) Validate() error {
	if d.N < 1 || d.H < 1 || d.W < 1 || d.C < 1 {
		return fmt.Errorf("empty dataset (%d images of %dx%dx%d)", d.N, d.H, d.W, d.C)
	}
	if d.Multi != nil && len(d.Multi) != d.N*len(d.Classes) {
		return fmt.Errorf("dataset has %d multi-hot label values for %d images of %d classes", len(d.Multi), d.N, len(d.Classes))
	}
	if len(d.Pixels) != d.N*d.H*d.W*d.C || len(d.Labels) != d.N {
		return fmt.Errorf("dataset has %d pixel values and %d labels for %d images of %dx%dx%d", len(d.Pixels), len(d.Labels), d.N, d.H, d.W, d.C)
	}
	for i, l := range d.Labels {
		if l < 0 || l >= len(d.Classes) {
			return fmt.Errorf("image %d has label %d outside [0, %d)", i, l, len(d.Classes))
		}
	}
	return nil
}

// Pad returns the dataset padded (centred) to size×size with the value fill
// (−1 is black for pixels in [−1, 1]). Images larger than size are an error.
func (d *Dataset) Pad(size int, fill float32) (*Dataset, error) {
	if size == d.H && size == d.W {
		return d, nil
	}
	if size < d.H || size < d.W {
		return nil, fmt.Errorf("cannot pad %dx%d images to %d", d.H, d.W, size)
	}
	if err := membudget.Check(fmt.Sprintf("%d images padded to %dx%d", d.N, size, size), membudget.Bytes(d.N, size, size, d.C, 4)); err != nil {
		return nil, err
	}
	out := &Dataset{N: d.N, H: size, W: size, C: d.C, Labels: d.Labels, Classes: d.Classes, Multi: d.Multi,
		Pixels: make([]float32, d.N*size*size*d.C)}
	for i := range out.Pixels {
		out.Pixels[i] = fill
	}
	top, left := (size-d.H)/2, (size-d.W)/2
	for n := 0; n < d.N; n++ {
		src, dst := d.Image(n), out.Image(n)
		for i := 0; i < d.H; i++ {
			copy(dst[((top+i)*size+left)*d.C:((top+i)*size+left+d.W)*d.C], src[i*d.W*d.C:(i+1)*d.W*d.C])
		}
	}
	return out, nil
}

// Subset returns the first n images of each class at most (all when n ≤ 0),
// in their original order, sharing nothing with d.
func (d *Dataset) Subset(perClass int) *Dataset {
	if perClass <= 0 {
		return d
	}
	out := &Dataset{H: d.H, W: d.W, C: d.C, Classes: d.Classes}
	count := make([]int, len(d.Classes))
	for i := 0; i < d.N; i++ {
		l := d.Labels[i]
		if count[l] >= perClass {
			continue
		}
		count[l]++
		out.Pixels = append(out.Pixels, d.Image(i)...)
		out.Labels = append(out.Labels, l)
		if d.Multi != nil {
			K := len(d.Classes)
			out.Multi = append(out.Multi, d.Multi[i*K:(i+1)*K]...)
		}
		out.N++
	}
	return out
}

// Permutation returns the order in which epoch e visits the images for a run
// seeded with seed: a pure function of (seed, e), so a resumed run continues
// exactly where it stopped.
func (d *Dataset) Permutation(seed uint64, epoch int) []int {
	r := rand.New(rand.NewPCG(seed, 0x65706f6368^uint64(epoch)))
	return r.Perm(d.N)
}
