package diffusion

import (
	"fmt"
	"math"
)

// The step functions below work on flat float32 slices of equal length
// holding corresponding elements (any layout, as long as x, ε̂, v and z agree;
// the sampler uses channel-first (B, C, H, W)). Each mirrors one expression of
// gaussian_diffusion.py in fp32, one rounding per torch operation. Explicit
// float32(...) conversions keep the compiler from fusing a multiply and an add
// into one FMA (the Go spec allows fusing unless a conversion intervenes), so
// results do not depend on the target architecture.

// Coefs are the table entries of one step index as _extract_into_tensor hands
// them to the fp32 arithmetic: every value cast to float32.
type Coefs struct {
	SqrtRecipAlphasCumprod    float32 // sqrt(1/ᾱ)
	SqrtRecipm1AlphasCumprod  float32 // sqrt(1/ᾱ − 1)
	PosteriorMeanCoef1        float32 // weight of x̂0 in the posterior mean
	PosteriorMeanCoef2        float32 // weight of x_t in the posterior mean
	MinLog                    float32 // posterior_log_variance_clipped (v = −1)
	MaxLog                    float32 // log β (v = +1)
	AlphaBar, AlphaBarPrev    float32
	SqrtAlphasCumprod         float32
	SqrtOneMinusAlphasCumprod float32
	PosteriorVariance         float32
	Nonzero                   float32 // 1 for i > 0, 0 at i = 0 (no noise on the last step)
}

// Coefs returns the float32 coefficients of step index i.
func (s *Schedule) Coefs(i int) Coefs {
	c := Coefs{
		SqrtRecipAlphasCumprod:    float32(s.SqrtRecipAlphasCumprod[i]),
		SqrtRecipm1AlphasCumprod:  float32(s.SqrtRecipm1AlphasCumprod[i]),
		PosteriorMeanCoef1:        float32(s.PosteriorMeanCoef1[i]),
		PosteriorMeanCoef2:        float32(s.PosteriorMeanCoef2[i]),
		MinLog:                    float32(s.PosteriorLogVarianceClipped[i]),
		MaxLog:                    float32(s.LogBetas[i]),
		AlphaBar:                  float32(s.AlphasCumprod[i]),
		AlphaBarPrev:              float32(s.AlphasCumprodPrev[i]),
		SqrtAlphasCumprod:         float32(s.SqrtAlphasCumprod[i]),
		SqrtOneMinusAlphasCumprod: float32(s.SqrtOneMinusAlphasCumprod[i]),
		PosteriorVariance:         float32(s.PosteriorVariance[i]),
	}
	if i != 0 {
		c.Nonzero = 1
	}
	return c
}

func exp32(x float32) float32  { return float32(math.Exp(float64(x))) }
func log32(x float32) float32  { return float32(math.Log(float64(x))) }
func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

func sameLen(what string, n int, xs ...[]float32) error {
	for k, x := range xs {
		if len(x) != n {
			return fmt.Errorf("diffusion: %s: argument %d has %d values, want %d", what, k, len(x), n)
		}
	}
	return nil
}

// PredictX0 is _predict_xstart_from_eps without clipping:
// x̂0 = sqrt(1/ᾱ)·x − sqrt(1/ᾱ − 1)·ε̂. dst may alias x or eps.
func (s *Schedule) PredictX0(dst, x, eps []float32, i int) error {
	if err := s.check(i); err != nil {
		return err
	}
	if err := sameLen("PredictX0", len(x), dst, eps); err != nil {
		return err
	}
	c := s.Coefs(i)
	for k := range x {
		dst[k] = float32(c.SqrtRecipAlphasCumprod*x[k]) - float32(c.SqrtRecipm1AlphasCumprod*eps[k])
	}
	return nil
}

// EpsFromV is the ε̂ that a v-prediction v̂ means (docs/model.md §6.5):
// ε̂ = √(1−ᾱ)·x + √ᾱ·v̂. dst may alias x or v.
func (s *Schedule) EpsFromV(dst, x, v []float32, i int) error {
	if err := s.check(i); err != nil {
		return err
	}
	if err := sameLen("EpsFromV", len(x), dst, v); err != nil {
		return err
	}
	c := s.Coefs(i)
	for k := range x {
		dst[k] = c.SqrtOneMinusAlphasCumprod*x[k] + c.SqrtAlphasCumprod*v[k]
	}
	return nil
}

// PredictEps is _predict_eps_from_xstart: (sqrt(1/ᾱ)·x − x̂0) / sqrt(1/ᾱ − 1).
func (s *Schedule) PredictEps(dst, x, x0 []float32, i int) error {
	if err := s.check(i); err != nil {
		return err
	}
	if err := sameLen("PredictEps", len(x), dst, x0); err != nil {
		return err
	}
	c := s.Coefs(i)
	for k := range x {
		dst[k] = (float32(c.SqrtRecipAlphasCumprod*x[k]) - x0[k]) / c.SqrtRecipm1AlphasCumprod
	}
	return nil
}

// LogVariance is the learned-range interpolation of p_mean_variance:
// frac = (v + 1)/2, log σ² = frac·log β + (1 − frac)·posterior_log_variance_clipped.
// v is not clamped (docs/model.md §6.3).
func (c Coefs) LogVariance(v float32) float32 {
	frac := (v + 1) / 2
	return float32(frac*c.MaxLog) + float32((1-frac)*c.MinLog)
}

// PMeanVariance is p_mean_variance with EPSILON mean and LEARNED_RANGE
// variance, clip_denoised=False: from x_t, ε̂ and v it writes the mean and log
// variance of p(x_{t−1} | x_t) and the predicted x̂0. Any output may be nil.
func (s *Schedule) PMeanVariance(mean, logVar, x0 []float32, x, eps, v []float32, i int) error {
	if err := s.check(i); err != nil {
		return err
	}
	if err := sameLen("PMeanVariance", len(x), eps, v); err != nil {
		return err
	}
	for k, out := range [][]float32{mean, logVar, x0} {
		if out != nil && len(out) != len(x) {
			return fmt.Errorf("diffusion: PMeanVariance: output %d has %d values, want %d", k, len(out), len(x))
		}
	}
	c := s.Coefs(i)
	for k := range x {
		xs := float32(c.SqrtRecipAlphasCumprod*x[k]) - float32(c.SqrtRecipm1AlphasCumprod*eps[k])
		if x0 != nil {
			x0[k] = xs
		}
		if mean != nil {
			mean[k] = float32(c.PosteriorMeanCoef1*xs) + float32(c.PosteriorMeanCoef2*x[k])
		}
		if logVar != nil {
			logVar[k] = c.LogVariance(v[k])
		}
	}
	return nil
}

// Clip selects the official code's clip_denoised: with ClipX0 the predicted x̂0
// is clamped to the data range [−1, 1] before the step uses it. The GeCA
// sampler never clips (its latents are not bounded); a model of pixels in
// [−1, 1] may (docs/model.md §6.3).
type Clip bool

// The two values of Clip.
const (
	NoClip Clip = false
	ClipX0 Clip = true
)

// apply is process_xstart: x.clamp(−1, 1) when clipping.
func (c Clip) apply(x float32) float32 {
	if c {
		return min(max(x, -1), 1)
	}
	return x
}

// Clamp applies the rule to every value of xs in place (the x̂0 preview of a
// clipped run shows what its steps use).
func (c Clip) Clamp(xs []float32) {
	if !c {
		return
	}
	for k, x := range xs {
		xs[k] = c.apply(x)
	}
}

// DDPMStep is one p_sample step (docs/model.md §6.3) at respaced index i:
//
//	x̂0 = sqrt(1/ᾱ)·x − sqrt(1/ᾱ − 1)·ε̂     (clamped to [−1, 1] under ClipX0)
//	μ  = coef1·x̂0 + coef2·x
//	x_prev = μ + [i ≠ 0]·exp(½ log σ²)·z
//
// with log σ² from v by the learned-range rule. z is the N(0, I) noise drawn
// after the model call (the official code draws it at i = 0 too and multiplies
// it by 0). xPrev and x0 (may be nil) receive the results; xPrev may alias x.
func (s *Schedule) DDPMStep(xPrev, x0 []float32, x, eps, v, z []float32, i int, clip Clip) error {
	if err := s.check(i); err != nil {
		return err
	}
	if err := sameLen("DDPMStep", len(x), xPrev, eps, v, z); err != nil {
		return err
	}
	if x0 != nil && len(x0) != len(x) {
		return fmt.Errorf("diffusion: DDPMStep: x0 has %d values, want %d", len(x0), len(x))
	}
	c := s.Coefs(i)
	for k := range x {
		xk := x[k]
		xs := clip.apply(float32(c.SqrtRecipAlphasCumprod*xk) - float32(c.SqrtRecipm1AlphasCumprod*eps[k]))
		mu := float32(c.PosteriorMeanCoef1*xs) + float32(c.PosteriorMeanCoef2*xk)
		sd := exp32(float32(0.5 * c.LogVariance(v[k])))
		if x0 != nil {
			x0[k] = xs
		}
		// nonzero_mask * exp(...) * noise, then added to the mean.
		xPrev[k] = mu + float32(float32(c.Nonzero*sd)*z[k])
	}
	return nil
}

// DDIMSigma is the DDIM noise scale at index i for a given eta:
// eta·sqrt((1 − ᾱ_prev)/(1 − ᾱ))·sqrt(1 − ᾱ/ᾱ_prev), in fp32.
func (c Coefs) DDIMSigma(eta float32) float32 {
	a := sqrt32((1 - c.AlphaBarPrev) / (1 - c.AlphaBar))
	b := sqrt32(1 - c.AlphaBar/c.AlphaBarPrev)
	return float32(eta*a) * b
}

// DDIMStep is one ddim_sample step (DDIM Eq. 12) at respaced index i:
//
//	x̂0 = sqrt(1/ᾱ)·x − sqrt(1/ᾱ − 1)·ε̂     (clamped to [−1, 1] under ClipX0)
//	ε  = (sqrt(1/ᾱ)·x − x̂0) / sqrt(1/ᾱ − 1)     (re-derived from x̂0, as the official code does)
//	x_prev = x̂0·sqrt(ᾱ_prev) + sqrt(1 − ᾱ_prev − σ²)·ε + [i ≠ 0]·σ·z
//
// σ = DDIMSigma(eta); eta = 0 is deterministic (z is still consumed by the
// caller's stream, as randn_like is called regardless). The learned variance v
// plays no part. xPrev may alias x.
func (s *Schedule) DDIMStep(xPrev, x0 []float32, x, eps, z []float32, i int, eta float32, clip Clip) error {
	if err := s.check(i); err != nil {
		return err
	}
	if err := sameLen("DDIMStep", len(x), xPrev, eps, z); err != nil {
		return err
	}
	if x0 != nil && len(x0) != len(x) {
		return fmt.Errorf("diffusion: DDIMStep: x0 has %d values, want %d", len(x0), len(x))
	}
	if !(eta >= 0) || math.IsInf(float64(eta), 0) {
		return fmt.Errorf("diffusion: DDIM eta %g must be finite and >= 0", eta)
	}
	c := s.Coefs(i)
	sigma := c.DDIMSigma(eta)
	sqrtPrev := sqrt32(c.AlphaBarPrev)
	dir := sqrt32((1 - c.AlphaBarPrev) - float32(sigma*sigma))
	noise := c.Nonzero * sigma
	for k := range x {
		xk := x[k]
		sx := float32(c.SqrtRecipAlphasCumprod * xk)
		xs := clip.apply(sx - float32(c.SqrtRecipm1AlphasCumprod*eps[k]))
		e := (sx - xs) / c.SqrtRecipm1AlphasCumprod
		if x0 != nil {
			x0[k] = xs
		}
		mean := float32(xs*sqrtPrev) + float32(dir*e)
		xPrev[k] = mean + float32(noise*z[k])
	}
	return nil
}
