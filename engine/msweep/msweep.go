// Package msweep measures how a GeCA model's denoising depends on M, the
// number of cell updates per denoiser call: undergrowth below the M it was
// trained with, overgrowth above it (docs/evaluation.md, geca analyze-m).
//
// For every held-out image x₀ and timestep t it draws one noise ε, forms
// x_t, seeds a fresh grid and runs the largest M of the list once, reading
// the model's output after each M of the list on the way: the first M
// updates of a longer call are exactly a call of M updates, so every M sees
// the same noise, the same seed cell and the same masks. It records the
// ε-MSE and the variational bound term (the two parts of the training
// loss) and the fraction of cells the seed's information can have reached.
//
// Every random draw is keyed by (seed, image index, timestep), and the
// engine's products are row-invariant (docs/numerics.md), so a result for
// one image does not depend on which other images share its batch: any
// split of the images over processes or machines sums to the same numbers.
package msweep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"geca/engine"
	"geca/engine/diffusion"
)

// Options of a sweep.
type Options struct {
	Ms        []int   // updates per call, ascending, each ≥ 1
	Timesteps []int   // indices into the 1000-step training schedule
	Rate      float32 // update rate (0: the model's)
	Seed      uint64
	Batch     int // images per engine batch (0: 8)
}

// Point is what the sweep measured for one M and one timestep, summed over
// images (Mean divides).
type Point struct {
	M, T   int
	N      int     // images
	EpsMSE float64 // Σ over images of mean (ε − ε̂)²
	VBBits float64 // Σ of the variational bound term, bits per dimension
	Reach  float64 // Σ of the fraction of cells the seed can have reached
	Bad    int     // images whose output was not finite (not in the sums)
}

// Means returns the per-image means.
func (p Point) Means() (epsMSE, vbBits, reach float64) {
	if p.N == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	n := float64(p.N)
	return p.EpsMSE / n, p.VBBits / n, p.Reach / n
}

// Result holds one Point per (M, timestep), M-major.
type Result struct {
	Ms, Timesteps []int
	Points        []Point
}

// At returns the point of M index mi and timestep index ti.
func (r *Result) At(mi, ti int) *Point { return &r.Points[mi*len(r.Timesteps)+ti] }

// NewResult returns an empty result for the grid of Ms and timesteps.
func NewResult(ms, ts []int) *Result {
	r := &Result{Ms: slices.Clone(ms), Timesteps: slices.Clone(ts), Points: make([]Point, len(ms)*len(ts))}
	for mi, m := range ms {
		for ti, t := range ts {
			*r.At(mi, ti) = Point{M: m, T: t}
		}
	}
	return r
}

// Add sums another result over the same grid into r (merging shards).
func (r *Result) Add(o *Result) error {
	if !slices.Equal(r.Ms, o.Ms) || !slices.Equal(r.Timesteps, o.Timesteps) {
		return fmt.Errorf("msweep: results over different grids (M %v × t %v and M %v × t %v)", r.Ms, r.Timesteps, o.Ms, o.Timesteps)
	}
	for i := range r.Points {
		p, q := &r.Points[i], o.Points[i]
		p.N += q.N
		p.EpsMSE += q.EpsMSE
		p.VBBits += q.VBBits
		p.Reach += q.Reach
		p.Bad += q.Bad
	}
	return nil
}

func (o *Options) check(cfg engine.Config) error {
	if len(o.Ms) == 0 || len(o.Timesteps) == 0 {
		return errors.New("msweep: no M or no timestep to measure")
	}
	for i, m := range o.Ms {
		if m < 1 || m > 10000 || (i > 0 && m <= o.Ms[i-1]) {
			return fmt.Errorf("msweep: M list %v: want ascending values in [1, 10000]", o.Ms)
		}
	}
	for _, t := range o.Timesteps {
		if t < 0 || t >= 1000 {
			return fmt.Errorf("msweep: timestep %d out of range [0, 1000)", t)
		}
	}
	if o.Rate == 0 {
		o.Rate = cfg.UpdateRate
	}
	if !(o.Rate > 0 && o.Rate <= 1) {
		return fmt.Errorf("msweep: update rate %v out of range (0, 1]", o.Rate)
	}
	if o.Batch <= 0 {
		o.Batch = 8
	}
	return nil
}

// Image is one held-out sample: its pixels (or latents) in the cell-major
// layout of a state's C_in block, and its label (K values, multi-hot).
type Image struct {
	Index int // the sample's index in the data set: it keys the random draws
	X0    []float32
	Label []float32
}

// stream returns the random stream of one purpose for image i at timestep t.
func stream(seed uint64, purpose string, i, t int) engine.Stream {
	return engine.NewStream(seed, fmt.Sprintf("msweep/%s/%d/%d", purpose, i, t))
}

// Run measures the images and adds them to a result over opt's grid.
// progress, if not nil, is called after each batch with the number of
// (image, timestep) pairs done and the total.
func Run(ctx context.Context, m *engine.Model, images []Image, opt Options, progress func(done, total int)) (*Result, error) {
	cfg := m.Cfg
	if err := opt.check(cfg); err != nil {
		return nil, err
	}
	if err := engine.CheckCall(cfg, opt.Batch); err != nil {
		return nil, fmt.Errorf("msweep: %w", err)
	}
	sched, err := diffusion.New(1000, "")
	if err != nil {
		return nil, err
	}
	n := cfg.GridH * cfg.GridW * cfg.InChannels
	for _, im := range images {
		if len(im.X0) != n || len(im.Label) != cfg.NumClasses {
			return nil, fmt.Errorf("msweep: image %d has %d values and %d label entries, want %d and %d for the model's grid and classes",
				im.Index, len(im.X0), len(im.Label), n, cfg.NumClasses)
		}
	}
	res := NewResult(opt.Ms, opt.Timesteps)
	total, done := len(images)*len(opt.Timesteps), 0
	for ti, t := range opt.Timesteps {
		for lo := 0; lo < len(images); lo += opt.Batch {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			batch := images[lo:min(lo+opt.Batch, len(images))]
			if err := runBatch(m, sched, batch, t, ti, opt, res); err != nil {
				return nil, err
			}
			done += len(batch)
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return res, nil
}

// runBatch runs one batch of images at timestep t through max(M) updates.
func runBatch(m *engine.Model, sched *diffusion.Schedule, batch []Image, t, ti int, opt Options, res *Result) error {
	cfg := m.Cfg
	B, H, W, ci, co := len(batch), cfg.GridH, cfg.GridW, cfg.InChannels, cfg.OutChannels()
	cells := H * W
	n := cells * ci
	st := engine.NewState(B, H, W, cfg.CellDim())
	one := engine.NewState(1, H, W, cfg.CellDim())
	xt := make([][]float32, B)
	eps := make([][]float32, B)
	masks := make([]engine.Stream, B)
	ts := make([]int, B)
	ys := make([][]float32, B)
	for b, im := range batch {
		eps[b], xt[b] = make([]float32, n), make([]float32, n)
		if err := stream(opt.Seed, "eps", im.Index, t).Normal(eps[b]); err != nil {
			return err
		}
		if err := sched.QSample(xt[b], im.X0, eps[b], t); err != nil {
			return err
		}
		// A fresh grid: x_t in C_in, the seed cell from the image's own stream.
		if err := engine.Seed(cfg, one, stream(opt.Seed, "seed", im.Index, t)); err != nil {
			return err
		}
		copy(st.Data[b*cells*st.C:], one.Data)
		for p := 0; p < cells; p++ {
			copy(st.Data[(b*cells+p)*st.C:(b*cells+p)*st.C+ci], xt[b][p*ci:(p+1)*ci])
		}
		masks[b] = stream(opt.Seed, "mask", im.Index, t)
		ts[b], ys[b] = t, im.Label
	}
	c, err := m.Condition(ts, ys)
	if err != nil {
		return err
	}
	u := m.NewUpdater(B)
	mask := make([]float32, B*cells)
	reach := make([]bool, B*cells)
	for b := 0; b < B; b++ {
		reach[b*cells+(H/2)*W+W/2] = true
	}
	epsHat, v := make([]float32, n), make([]float32, n)
	next := 0
	for step := 1; step <= opt.Ms[len(opt.Ms)-1]; step++ {
		for b := range batch {
			if err := engine.DrawMask(mask[b*cells:(b+1)*cells], opt.Rate, masks[b]); err != nil {
				return err
			}
		}
		grow(reach, mask, B, H, W)
		if err := u.Update(st, c, mask, nil); err != nil {
			return fmt.Errorf("msweep: t=%d, update %d: %w", t, step, err)
		}
		if step != opt.Ms[next] {
			continue
		}
		for b := range batch {
			p := res.At(next, ti)
			for q := 0; q < cells; q++ {
				cell := st.Data[(b*cells+q)*st.C+ci:]
				copy(epsHat[q*ci:(q+1)*ci], cell[:ci])
				copy(v[q*ci:(q+1)*ci], cell[ci:co])
			}
			if cfg.Prediction == engine.PredictV {
				if err := sched.EpsFromV(epsHat, xt[b], epsHat, t); err != nil {
					return err
				}
			}
			var mse float64
			for k, e := range eps[b] {
				d := float64(e) - float64(epsHat[k])
				mse += d * d
			}
			mse /= float64(n)
			vb, err := sched.VBTerm(nil, batch[b].X0, xt[b], epsHat, v, t)
			if err != nil {
				return err
			}
			if math.IsNaN(mse) || math.IsInf(mse, 0) || math.IsNaN(vb) || math.IsInf(vb, 0) {
				p.Bad++
				continue
			}
			reached := 0
			for _, r := range reach[b*cells : (b+1)*cells] {
				if r {
					reached++
				}
			}
			p.N++
			p.EpsMSE += mse
			p.VBBits += vb
			p.Reach += float64(reached) / float64(cells)
		}
		next++
	}
	return nil
}

// grow advances the seed's reach by one update: a cell that updates sees its
// 3x3 neighbourhood, so it is reached if it or a neighbour was.
func grow(reach []bool, mask []float32, B, H, W int) {
	prev := slices.Clone(reach)
	for b := 0; b < B; b++ {
		for i := 0; i < H; i++ {
			for j := 0; j < W; j++ {
				q := (b*H+i)*W + j
				if reach[q] || mask[q] == 0 {
					continue
				}
			scan:
				for di := -1; di <= 1; di++ {
					for dj := -1; dj <= 1; dj++ {
						ii, jj := i+di, j+dj
						if ii >= 0 && ii < H && jj >= 0 && jj < W && prev[(b*H+ii)*W+jj] {
							reach[q] = true
							break scan
						}
					}
				}
			}
		}
	}
}

// DefaultMs returns 1 … 2·trained, log-spaced: powers of √2 rounded, with
// the trained M itself included.
func DefaultMs(trained int) []int {
	trained = max(trained, 1)
	var ms []int
	for x := 1.0; int(math.Round(x)) <= 2*trained; x *= math.Sqrt2 {
		ms = append(ms, int(math.Round(x)))
	}
	ms = append(ms, trained, 2*trained)
	slices.Sort(ms)
	return slices.Compact(ms)
}
