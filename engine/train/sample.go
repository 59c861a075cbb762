package train

import (
	"context"
	"fmt"
	"strconv"

	"geca/engine"
	"geca/engine/sample"
)

// SampleOptions configure Sample.
type SampleOptions struct {
	Steps int     // respaced DDPM steps (e.g. 50)
	CFG   float64 // classifier-free guidance scale; ≤ 1 is off
	Seed  uint64
	// NoGHG starts every timestep from a fresh seed (C_h = 0, centre-seeded
	// C_out), as training does, instead of carrying the grid (GHG).
	NoGHG bool
}

// Sample draws one image per label (a class index, −1 for unconditional) from
// the weights p with the app's sampler, engine/sample (docs/model.md §5–§6): respaced
// DDPM with the learned-range variance, Gene Heredity Guidance unless NoGHG,
// classifier-free guidance when CFG > 1, the model's M and update rate. So
// what the training previews show is what the app will draw. It returns the
// images cell-major, len(labels)·H·W·C_in values (unclipped; pixels are in
// [−1, 1] when the model is good).
func Sample(p *Params[float32], labels []int, opt SampleOptions) ([]float32, error) {
	cfg := p.Cfg
	if opt.Steps < 1 {
		return nil, fmt.Errorf("sampling with %d steps: want at least 1", opt.Steps)
	}
	ys := make([][]float32, len(labels))
	for b, l := range labels {
		if l < -1 || l >= cfg.NumClasses {
			return nil, fmt.Errorf("label %d outside [0, %d) (−1 = unconditional)", l, cfg.NumClasses)
		}
		ys[b] = make([]float32, cfg.NumClasses)
		if l >= 0 {
			ys[b][l] = 1
		}
	}
	ts, _ := p.Tensors()
	model, err := engine.NewModel(cfg, ts)
	if err != nil {
		return nil, err
	}
	// engine/sample refuses negative scales; any scale ≤ 1 means no guidance
	// there as here.
	guidance := float32(max(opt.CFG, 0))
	x, err := sample.Run(context.Background(), model, sample.Options{
		Steps: strconv.Itoa(opt.Steps), GHG: !opt.NoGHG, CFG: guidance,
		Seed: opt.Seed, N: len(labels), Labels: ys,
	})
	if err != nil {
		return nil, err
	}
	return CellMajor(x, len(labels), cfg.InChannels, cfg.Cells()), nil
}

// CellMajor reorders n images from (C, H·W) planes, the sampler's layout,
// to (H·W, C) cells, the layout of the training data and SampleGrid.
func CellMajor(x []float32, n, c, cells int) []float32 {
	return transpose(x, n, c, cells)
}

// Planes is CellMajor's inverse: n images from (H·W, C) cells to (C, H·W)
// planes.
func Planes(x []float32, n, c, cells int) []float32 {
	return transpose(x, n, cells, c)
}

// transpose turns each of n rows×cols images into its cols×rows transpose.
// With a single row or column the two layouts are the same, and x itself is
// returned.
func transpose(x []float32, n, rows, cols int) []float32 {
	if rows == 1 || cols == 1 {
		return x
	}
	out := make([]float32, len(x))
	for b := 0; b < n; b++ {
		src, dst := x[b*rows*cols:(b+1)*rows*cols], out[b*rows*cols:(b+1)*rows*cols]
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				dst[j*rows+i] = src[i*cols+j]
			}
		}
	}
	return out
}
