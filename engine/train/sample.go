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
	return reorder(x, n, c, cells, true)
}

// Planes is CellMajor's inverse: n images from (H·W, C) cells to (C, H·W)
// planes.
func Planes(x []float32, n, c, cells int) []float32 {
	return reorder(x, n, c, cells, false)
}

// reorder moves each image's value (cell i, channel k) between plane
// position k·cells + i and cell position i·c + k. With one channel the two
// layouts are the same, and x itself is returned.
func reorder(x []float32, n, c, cells int, toCells bool) []float32 {
	if c == 1 {
		return x
	}
	out := make([]float32, len(x))
	for b := 0; b < n; b++ {
		img, dst := x[b*c*cells:(b+1)*c*cells], out[b*c*cells:(b+1)*c*cells]
		for k := 0; k < c; k++ {
			for i := 0; i < cells; i++ {
				if toCells {
					dst[i*c+k] = img[k*cells+i]
				} else {
					dst[k*cells+i] = img[i*c+k]
				}
			}
		}
	}
	return out
}
