// Package sample is the GeCA sampling loop (docs/model.md §5, §6.3, §6.4) as a value the
// caller steps: one cell update at a time, to the end of a timestep, to a
// given timestep, or to the end, cancellable, with settings that can change
// from the current timestep on, and branchable into independent
// continuations. It emits a Frame after every cell update and every timestep
// and keeps per-timestep snapshots so a viewer can scrub back.
//
// One run follows the official sample_ddp.py / p_sample_loop exactly:
//
//	x_T ~ N(0, I)                       (Noise stream; [z; z] under CFG)
//	extras = seed(x_T)                  (Seed stream: randn(N_b, C_out) at the centre cell)
//	for i = n−1 … 0 (respaced index; the model is given the original t = τ_i):
//	    [CFG] re-seed C_out              (Seed stream: randn(2N, C_out))
//	    M cell updates                   (Mask stream: one rand(N_b, 1, H, W) each)
//	    ε̂, v from C_out (CFG-guided ε̂)
//	    x ← DDPM or DDIM step            (DDPM stream: randn(N_b, C_in, H, W), drawn at i = 0 too)
//	    extras ← the grid's [C_out | C_h] (Gene Heredity Guidance)
//
// Each purpose draws from its own named stream (engine.Streams), so a PyTorch
// run can be replayed exactly by giving every stream the recorded values of
// that purpose (engine.ReplayStream), in the order above.
package sample

import (
	"fmt"
	"math"
	"strings"

	"geca/engine"
)

// Options configure a sampling run. The zero value of a field means the
// documented default; DefaultOptions returns the official settings.
type Options struct {
	// Steps is the respacing of the 1000-step process: "250" (official),
	// "50", "10,20", "ddim25", ...; "" keeps all steps.
	Steps string
	// DiffusionSteps is the length of the trained process (0: 1000).
	DiffusionSteps int
	// Method is "ddpm" or "ddim"; "" picks DDIM when Steps starts with
	// "ddim" and DDPM otherwise.
	Method string
	// Eta is DDIM's noise scale (0: deterministic DDIM). Ignored by DDPM.
	Eta float32

	// M is the number of cell updates per timestep (0: the model's M, 12).
	// The official code fixes M in the model (docs/model.md §4.4); here it is a
	// sampling parameter.
	M int
	// GHG turns on Gene Heredity Guidance: the grid's channels carry from
	// one timestep to the next (docs/model.md §5). With CFG only C_h is inherited and
	// C_out is re-seeded every timestep; without CFG both C_out and C_h are
	// inherited. Off, every timestep starts from a fresh seed (C_h = 0,
	// centre-seeded C_out). The official code always has it on.
	//
	// DDIM follows the same switch. The official DDIM loops
	// (ddim_sample_loop_progressive) never update the carry, so they behave
	// as GHG off: with CFG exactly this package's GHG-off mode (C_h = 0,
	// C_out re-seeded from the seed stream every step); without CFG they
	// pass the initial seed, centre values included, to every step, where
	// GHG off here draws a fresh centre each step. No official script uses
	// DDIM.
	GHG bool
	// CFG is the classifier-free guidance scale; guidance is on iff CFG > 1
	// (official default 1.5). With guidance the grid batch is
	// [conditional; unconditional] (2N grids).
	CFG float32
	// ClipX0 clamps the predicted x̂0 to [−1, 1] before each diffusion step
	// (and in the x̂0 preview): the official code's clip_denoised=True. GeCA's
	// own sampling never clips, since its latents are unbounded; it is meant
	// for models of pixels in [−1, 1] (for the built-in ones it did not raise
	// the measured quality: assets/README.md).
	ClipX0 bool
	// UpdateRate is the per-cell update probability (0: the model's, 0.5);
	// 1 disables the stochastic mask.
	UpdateRate float32

	// Labels holds one multi-hot label of K values per sample, or a single
	// label shared by all N samples; nil means unconditional (all-zero)
	// labels.
	Labels [][]float32
	// N is the number of samples (0: len(Labels)).
	N int
	// Seed seeds the four named streams (ignored for streams given in Streams).
	Seed uint64
	// Streams replaces the seeded streams; nil fields are seeded from Seed.
	Streams *engine.Streams

	// SnapshotBytes bounds the memory of the per-timestep snapshots
	// (0: DefaultSnapshotBytes; negative: keep only the first snapshot).
	SnapshotBytes int64
}

// DefaultSnapshotBytes is the default snapshot budget. One snapshot holds the
// grid and the latent of the batch: N_b·H·W·(CellDim + C_in)·4 bytes, for
// example 5.2 MB for GeCA-S with N = 8 under CFG (16 grids of 32×32×76), so
// all 250 timesteps need 1.3 GB; beyond the budget every other snapshot is
// dropped (repeatedly), and scrubbing to a dropped timestep replays from the
// nearest earlier one.
const DefaultSnapshotBytes = 512 << 20

// DefaultOptions are the official sampling settings (sample_ddp.py): 250
// respaced DDPM steps, the model's M and update rate, GHG on, CFG 1.5.
func DefaultOptions() Options {
	return Options{Steps: "250", GHG: true, CFG: 1.5}
}

// settings are the knobs that may change during a run.
type settings struct {
	M    int
	GHG  bool
	CFG  float32
	Rate float32
}

func (s settings) cfgOn() bool { return s.CFG > 1 }

func finite32(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

func checkM(m int) error {
	if m < 0 || m > 10000 {
		return fmt.Errorf("sample: M = %d out of range [0, 10000]", m)
	}
	return nil
}

func checkCFG(s float32) error {
	if !finite32(s) || s < 0 {
		return fmt.Errorf("sample: CFG scale %v must be finite and >= 0 (guidance is on above 1)", s)
	}
	return nil
}

func checkRate(r float32) error {
	if !(r > 0 && r <= 1) {
		return fmt.Errorf("sample: update rate %v out of range (0, 1]", r)
	}
	return nil
}

// resolve validates opt against the model config and fills the defaults.
func resolve(cfg engine.Config, opt Options) (Options, settings, bool, error) {
	if opt.DiffusionSteps == 0 {
		opt.DiffusionSteps = 1000
	}
	st := settings{M: opt.M, GHG: opt.GHG, CFG: opt.CFG, Rate: opt.UpdateRate}
	if st.M == 0 {
		st.M = cfg.M
	}
	if st.Rate == 0 {
		st.Rate = cfg.UpdateRate
	}
	if err := checkM(st.M); err != nil {
		return opt, st, false, err
	}
	if err := checkCFG(st.CFG); err != nil {
		return opt, st, false, err
	}
	if err := checkRate(st.Rate); err != nil {
		return opt, st, false, err
	}
	var ddim bool
	switch strings.ToLower(strings.TrimSpace(opt.Method)) {
	case "":
		ddim = strings.HasPrefix(strings.TrimSpace(opt.Steps), "ddim")
	case "ddpm":
	case "ddim":
		ddim = true
	default:
		return opt, st, false, fmt.Errorf("sample: unknown method %q (ddpm or ddim)", opt.Method)
	}
	if !finite32(opt.Eta) || opt.Eta < 0 {
		return opt, st, false, fmt.Errorf("sample: DDIM eta %v must be finite and >= 0", opt.Eta)
	}
	k := cfg.NumClasses
	switch {
	case opt.N < 0:
		return opt, st, false, fmt.Errorf("sample: N = %d is negative", opt.N)
	case opt.N == 0 && len(opt.Labels) == 0:
		return opt, st, false, fmt.Errorf("sample: no samples requested (N = 0 and no labels)")
	case opt.N == 0:
		opt.N = len(opt.Labels)
	}
	if opt.N > 1<<16 {
		return opt, st, false, fmt.Errorf("sample: N = %d is too large", opt.N)
	}
	// Guidance may be switched on later in a run: count the doubled batch.
	if err := engine.CheckRun(cfg, opt.N, true); err != nil {
		return opt, st, false, fmt.Errorf("sample: %w", err)
	}
	labels := make([][]float32, opt.N)
	switch len(opt.Labels) {
	case 0:
	case 1, opt.N:
	default:
		return opt, st, false, fmt.Errorf("sample: %d labels for %d samples (give one label per sample, or one for all)", len(opt.Labels), opt.N)
	}
	for b := range labels {
		y := make([]float32, k)
		if len(opt.Labels) > 0 {
			src := opt.Labels[min(b, len(opt.Labels)-1)]
			if len(src) != k {
				return opt, st, false, fmt.Errorf("sample: label %d has %d entries, the model has %d classes", b, len(src), k)
			}
			for j, v := range src {
				if !finite32(v) {
					return opt, st, false, fmt.Errorf("sample: label %d entry %d is %v", b, j, v)
				}
			}
			copy(y, src)
		}
		labels[b] = y
	}
	opt.Labels = labels
	return opt, st, ddim, nil
}
