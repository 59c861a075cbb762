// Package diffusion is the Gaussian diffusion process GeCA is trained and
// sampled with (docs/model.md §6): the linear β schedule of 1000 steps, respacing to
// fewer steps exactly as IDDPM's space_timesteps, the float64 tables of the
// posterior, the DDPM reverse step with learned-range variance, DDIM, and the
// forward-process and variational-bound helpers training needs.
//
// Every table is float64, as the official numpy code keeps them. Where a table
// value meets a tensor, the official _extract_into_tensor casts it to float32
// first and all arithmetic is float32; the step functions here do the same,
// operation by operation, so they reproduce PyTorch's fp32 results up to the
// last-bit differences of exp/log implementations.
//
// Indices: a Schedule of n steps is indexed by the respaced index i in
// [0, n). The model itself must be given the original timestep Timestep(i)
// (respace.py's _WrappedModel); the coefficients are looked up with i.
package diffusion

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"geca/internal/membudget"
)

// DefaultSteps is the length of the training diffusion (docs/model.md §6.1).
const DefaultSteps = 1000

// MaxSteps bounds the length of a process: its tables take about 150 bytes
// a step, and a sampler keeps a record per step (docs/safety.md).
const MaxSteps = 1 << 20

// tableBytes is about the memory of one step of a Schedule: fifteen float64
// tables, the timestep map and the respacing's scratch.
const tableBytes = 15*8 + 8 + 16

// checkSteps refuses a process length outside [1, MaxSteps] or whose tables
// would pass the memory limit.
func checkSteps(steps int) error {
	if steps < 1 || steps > MaxSteps {
		return fmt.Errorf("diffusion: %d diffusion steps out of range [1, %d]", steps, MaxSteps)
	}
	return membudget.Check(fmt.Sprintf("diffusion tables of %d steps", steps), membudget.Bytes(steps, tableBytes))
}

// Schedule is a (possibly respaced) diffusion process. All tables have Len()
// entries, indexed by the respaced index i.
type Schedule struct {
	// OriginalSteps is the length of the underlying process (1000).
	OriginalSteps int
	// Respacing is the string the schedule was built from ("" = no respacing).
	Respacing string

	timesteps []int // respaced index -> original t, ascending

	Betas                       []float64 // β′_i = 1 − ᾱ[τ_i]/ᾱ[τ_{i−1}]
	LogBetas                    []float64 // log β′_i (the max_log of learned-range variance)
	AlphasCumprod               []float64 // ᾱ_i
	AlphasCumprodPrev           []float64 // ᾱ_{i−1}, 1 at i = 0
	AlphasCumprodNext           []float64 // ᾱ_{i+1}, 0 at the end
	SqrtAlphasCumprod           []float64 // sqrt(ᾱ)
	SqrtOneMinusAlphasCumprod   []float64 // sqrt(1 − ᾱ)
	LogOneMinusAlphasCumprod    []float64 // log(1 − ᾱ)
	SqrtRecipAlphasCumprod      []float64 // sqrt(1/ᾱ)
	SqrtRecipm1AlphasCumprod    []float64 // sqrt(1/ᾱ − 1)
	PosteriorVariance           []float64 // β (1 − ᾱ_prev) / (1 − ᾱ); 0 at i = 0
	PosteriorLogVarianceClipped []float64 // log of PosteriorVariance with entry 0 replaced by entry 1
	PosteriorMeanCoef1          []float64 // β sqrt(ᾱ_prev) / (1 − ᾱ)
	PosteriorMeanCoef2          []float64 // (1 − ᾱ_prev) sqrt(α) / (1 − ᾱ)
}

// LinearBetas is get_named_beta_schedule("linear", steps): numpy's
// linspace(scale·1e-4, scale·0.02, steps) in float64 with scale = 1000/steps,
// computed the way numpy does (start + i·step, last value set to stop).
func LinearBetas(steps int) []float64 {
	if steps <= 0 {
		return nil
	}
	scale := 1000 / float64(steps)
	start, stop := scale*0.0001, scale*0.02
	b := make([]float64, steps)
	if steps == 1 {
		b[0] = start
		return b
	}
	step := (stop - start) / float64(steps-1)
	for i := range b {
		b[i] = float64(i)*step + start
	}
	b[steps-1] = stop
	return b
}

// SpaceTimesteps is IDDPM's space_timesteps(steps, sectionCounts): the original
// timesteps kept by a respacing, returned in ascending order.
//
//   - "" keeps all steps (create_diffusion's default).
//   - "N" or "N1,N2,...": the process is cut into as many equal sections (the
//     first steps%len sections one longer) and section k keeps Nk steps at a
//     fractional stride (size−1)/(Nk−1) accumulated in float64, each index
//     rounded half to even as Python's round does.
//   - "ddimN": the smallest integer stride s with len(range(0, steps, s)) == N,
//     as in the DDIM paper.
func SpaceTimesteps(steps int, sectionCounts string) ([]int, error) {
	if err := checkSteps(steps); err != nil {
		return nil, err
	}
	spec := strings.TrimSpace(sectionCounts)
	if spec == "" {
		spec = strconv.Itoa(steps)
	}
	if rest, ok := strings.CutPrefix(spec, "ddim"); ok {
		want, err := strconv.Atoi(rest)
		if err != nil {
			return nil, fmt.Errorf("diffusion: respacing %q: %q is not a step count", sectionCounts, rest)
		}
		for stride := 1; stride < steps; stride++ {
			if (steps+stride-1)/stride == want {
				out := make([]int, 0, want)
				for t := 0; t < steps; t += stride {
					out = append(out, t)
				}
				return out, nil
			}
		}
		return nil, fmt.Errorf("diffusion: respacing %q: cannot create exactly %d steps from %d with an integer stride", sectionCounts, want, steps)
	}
	fields := strings.Split(spec, ",")
	counts := make([]int, len(fields))
	for k, f := range fields {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("diffusion: respacing %q: section %d: %q is not a step count", sectionCounts, k, f)
		}
		if n < 0 {
			return nil, fmt.Errorf("diffusion: respacing %q: section %d has negative step count %d", sectionCounts, k, n)
		}
		counts[k] = n
	}
	sizePer, extra := steps/len(counts), steps%len(counts)
	keep := make([]bool, steps)
	start := 0
	for k, count := range counts {
		size := sizePer
		if k < extra {
			size++
		}
		if size < count {
			return nil, fmt.Errorf("diffusion: respacing %q: cannot divide section of %d steps into %d", sectionCounts, size, count)
		}
		stride := 1.0
		if count > 1 {
			stride = float64(size-1) / float64(count-1)
		}
		cur := 0.0
		for range count {
			keep[start+int(math.RoundToEven(cur))] = true
			cur += stride
		}
		start += size
	}
	var out []int
	for t, k := range keep {
		if k {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("diffusion: respacing %q keeps no timestep", sectionCounts)
	}
	return out, nil
}

// New returns the linear-β process of steps steps (1000 for GeCA) respaced by
// respacing ("" for all steps, "250", "50", "10,20", "ddim25", ...), as
// create_diffusion(respacing, diffusion_steps=steps) builds it.
func New(steps int, respacing string) (*Schedule, error) {
	keep, err := SpaceTimesteps(steps, respacing)
	if err != nil {
		return nil, err
	}
	s, err := FromBetas(LinearBetas(steps), keep)
	if err != nil {
		return nil, err
	}
	s.Respacing = respacing
	return s, nil
}

// FromBetas builds the process that keeps the original timesteps keep
// (ascending) of the process with the given betas, as SpacedDiffusion does:
// β′_i = 1 − ᾱ[keep_i]/ᾱ[keep_{i−1}] with ᾱ[keep_{−1}] = 1.
func FromBetas(betas []float64, keep []int) (*Schedule, error) {
	if len(betas) == 0 {
		return nil, fmt.Errorf("diffusion: empty beta schedule")
	}
	if err := checkSteps(len(betas)); err != nil {
		return nil, err
	}
	for i, b := range betas {
		if !(b > 0 && b <= 1) {
			return nil, fmt.Errorf("diffusion: beta[%d] = %g outside (0, 1]", i, b)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("diffusion: no timesteps kept")
	}
	for k, t := range keep {
		if t < 0 || t >= len(betas) || (k > 0 && t <= keep[k-1]) {
			return nil, fmt.Errorf("diffusion: kept timesteps must be ascending within [0, %d); entry %d is %d", len(betas), k, t)
		}
	}
	base := cumprod(betas)
	newBetas := make([]float64, len(keep))
	last := 1.0
	for k, t := range keep {
		newBetas[k] = 1 - base[t]/last
		last = base[t]
	}
	s := build(newBetas)
	s.OriginalSteps = len(betas)
	s.timesteps = append([]int(nil), keep...)
	return s, nil
}

// cumprod is numpy's cumprod(1 − β): a sequential product.
func cumprod(betas []float64) []float64 {
	out := make([]float64, len(betas))
	p := 1.0
	for i, b := range betas {
		p *= 1.0 - b
		out[i] = p
	}
	return out
}

// build computes the derived tables of GaussianDiffusion.__init__.
func build(betas []float64) *Schedule {
	n := len(betas)
	mk := func() []float64 { return make([]float64, n) }
	s := &Schedule{
		Betas: append([]float64(nil), betas...), LogBetas: mk(),
		AlphasCumprod: cumprod(betas), AlphasCumprodPrev: mk(), AlphasCumprodNext: mk(),
		SqrtAlphasCumprod: mk(), SqrtOneMinusAlphasCumprod: mk(), LogOneMinusAlphasCumprod: mk(),
		SqrtRecipAlphasCumprod: mk(), SqrtRecipm1AlphasCumprod: mk(),
		PosteriorVariance: mk(), PosteriorLogVarianceClipped: mk(),
		PosteriorMeanCoef1: mk(), PosteriorMeanCoef2: mk(),
	}
	ac := s.AlphasCumprod
	for i := range n {
		b := betas[i]
		alpha := 1.0 - b
		prev := 1.0
		if i > 0 {
			prev = ac[i-1]
		}
		next := 0.0
		if i+1 < n {
			next = ac[i+1]
		}
		s.AlphasCumprodPrev[i], s.AlphasCumprodNext[i] = prev, next
		s.LogBetas[i] = math.Log(b)
		s.SqrtAlphasCumprod[i] = math.Sqrt(ac[i])
		s.SqrtOneMinusAlphasCumprod[i] = math.Sqrt(1.0 - ac[i])
		s.LogOneMinusAlphasCumprod[i] = math.Log(1.0 - ac[i])
		s.SqrtRecipAlphasCumprod[i] = math.Sqrt(1.0 / ac[i])
		s.SqrtRecipm1AlphasCumprod[i] = math.Sqrt(1.0/ac[i] - 1)
		// Same association as numpy: (β·(1 − ᾱ_prev)) / (1 − ᾱ).
		s.PosteriorVariance[i] = b * (1.0 - prev) / (1.0 - ac[i])
		s.PosteriorMeanCoef1[i] = b * math.Sqrt(prev) / (1.0 - ac[i])
		s.PosteriorMeanCoef2[i] = (1.0 - prev) * math.Sqrt(alpha) / (1.0 - ac[i])
	}
	// The posterior variance is 0 at i = 0; its log is clipped by repeating
	// entry 1. A one-step process has no entry 1, and IDDPM leaves the table
	// empty; we use log β_0 there so a 1-step schedule still samples.
	for i := range n {
		switch {
		case n == 1:
			s.PosteriorLogVarianceClipped[i] = s.LogBetas[0]
		case i == 0:
			s.PosteriorLogVarianceClipped[i] = math.Log(s.PosteriorVariance[1])
		default:
			s.PosteriorLogVarianceClipped[i] = math.Log(s.PosteriorVariance[i])
		}
	}
	return s
}

// Len is the number of (respaced) steps.
func (s *Schedule) Len() int { return len(s.Betas) }

// Timesteps returns a copy of the map from respaced index to original
// timestep (ascending; docs/model.md §6.1 for "250").
func (s *Schedule) Timesteps() []int { return append([]int(nil), s.timesteps...) }

// Timestep returns the original timestep the model is given at respaced index i.
func (s *Schedule) Timestep(i int) int { return s.timesteps[i] }

// IsDDIMSpacing reports whether the schedule was built from a "ddimN" string,
// the conventional sign that the caller wants the DDIM sampler.
func (s *Schedule) IsDDIMSpacing() bool {
	return strings.HasPrefix(strings.TrimSpace(s.Respacing), "ddim")
}

func (s *Schedule) check(i int) error {
	if i < 0 || i >= len(s.Betas) {
		return fmt.Errorf("diffusion: step index %d outside [0, %d)", i, len(s.Betas))
	}
	return nil
}
