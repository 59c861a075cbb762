package diffusion

import (
	"fmt"
	"math"
)

// Forward-process and variational-bound helpers for training (docs/model.md §8). The
// official loss for GeCA is IDDPM's "MSE + VB" of a LEARNED_RANGE model:
//
//	loss = mean((ε − ε̂)²) + L_vb
//
// where L_vb is _vb_terms_bpd evaluated with ε̂ detached, so it trains only the
// variance values v. Training uses the unrespaced schedule New(1000, ""),
// whose step index is the original timestep.

// QSample is q_sample: x_t = sqrt(ᾱ)·x0 + sqrt(1 − ᾱ)·noise, in fp32. dst may
// alias x0 or noise.
func (s *Schedule) QSample(dst, x0, noise []float32, i int) error {
	if err := s.check(i); err != nil {
		return err
	}
	if err := sameLen("QSample", len(x0), dst, noise); err != nil {
		return err
	}
	c := s.Coefs(i)
	for k := range x0 {
		dst[k] = float32(c.SqrtAlphasCumprod*x0[k]) + float32(c.SqrtOneMinusAlphasCumprod*noise[k])
	}
	return nil
}

// QPosteriorMeanVariance is q_posterior_mean_variance: it writes the mean of
// q(x_{t−1} | x_t, x0) = coef1·x0 + coef2·x_t into mean and returns the
// (per-step constant) variance and clipped log variance as float32.
func (s *Schedule) QPosteriorMeanVariance(mean, x0, xt []float32, i int) (variance, logVarianceClipped float32, err error) {
	if err := s.check(i); err != nil {
		return 0, 0, err
	}
	if err := sameLen("QPosteriorMeanVariance", len(x0), mean, xt); err != nil {
		return 0, 0, err
	}
	c := s.Coefs(i)
	for k := range x0 {
		mean[k] = float32(c.PosteriorMeanCoef1*x0[k]) + float32(c.PosteriorMeanCoef2*xt[k])
	}
	return c.PosteriorVariance, c.MinLog, nil
}

// NormalKL is normal_kl for one element: KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2))
// in nats, evaluated in fp32 in the official order.
func NormalKL(mean1, logvar1, mean2, logvar2 float32) float32 {
	d := mean1 - mean2
	sum := ((-1.0 + logvar2) - logvar1) + exp32(logvar1-logvar2)
	return 0.5 * (sum + float32(float32(d*d)*exp32(-logvar2)))
}

// sqrt(2/π) as numpy computes it, cast to float32 when it meets a tensor.
var sqrt2OverPi = float32(math.Sqrt(2.0 / math.Pi))

// ApproxStandardNormalCDF is IDDPM's tanh approximation of Φ:
// 0.5·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
func ApproxStandardNormalCDF(x float32) float32 {
	x3 := float32(x*x) * x
	inner := float32(sqrt2OverPi * (x + float32(0.044715*x3)))
	return 0.5 * (1.0 + float32(math.Tanh(float64(inner))))
}

// ApproxStandardNormalCDF64 is ApproxStandardNormalCDF evaluated in float64,
// with its derivative. Gradients need it: the fp32 difference of two close CDF
// values loses the digits that matter, and float64 gradient checks need every
// digit.
func ApproxStandardNormalCDF64(x float64) (cdf, deriv float64) {
	a := math.Sqrt(2.0 / math.Pi)
	th := math.Tanh(a * (x + 0.044715*x*x*x))
	return 0.5 * (1 + th), 0.5 * (1 - th*th) * a * (1 + 3*0.044715*x*x)
}

// DiscretizedGaussianLogLikelihood is discretized_gaussian_log_likelihood for
// one element: the log probability (nats) of the bin of width 2/255 around x
// (data in [−1, 1]) under N(mean, e^(2·logScale)), with the edge bins open.
func DiscretizedGaussianLogLikelihood(x, mean, logScale float32) float32 {
	centered := x - mean
	inv := exp32(-logScale)
	cdfPlus := ApproxStandardNormalCDF(inv * (centered + 1.0/255.0))
	cdfMin := ApproxStandardNormalCDF(inv * (centered - 1.0/255.0))
	switch binOf(x) {
	case binLower:
		return log32(max(cdfPlus, clampProb))
	case binUpper:
		return log32(max(1.0-cdfMin, clampProb))
	default:
		return log32(max(cdfPlus-cdfMin, clampProb))
	}
}

// The bins of the discretised likelihood: the two edge bins are open.
const (
	binInterior = iota
	binLower    // x < −0.999: (−∞, x + 1/255]
	binUpper    // x > 0.999: [x − 1/255, ∞)
)

// binOf is the bin kind of pixel x, compared in x's own precision as the
// official code compares the fp32 tensor.
func binOf[F float32 | float64](x F) int {
	switch {
	case x < -0.999:
		return binLower
	case x > 0.999:
		return binUpper
	}
	return binInterior
}

// clampProb is the floor discretized_gaussian_log_likelihood clamps bin
// probabilities to before the log.
const clampProb = 1e-12

// DiscretizedGaussianNLL64 is −DiscretizedGaussianLogLikelihood evaluated in
// float64, with its derivative with respect to logScale: the decoder NLL of
// L_vb at t = 0 and its gradient, for float64 training code. A clamped bin
// has zero gradient, as torch's clamp gives below its floor.
func DiscretizedGaussianNLL64(x, mean, logScale float64) (nll, dLogScale float64) {
	return discretizedNLL64(x-mean, logScale, binOf(x))
}

// discretizedNLL64 is DiscretizedGaussianNLL64 of the bin kind given, for an
// already centred x − mean.
func discretizedNLL64(centered, logScale float64, bin int) (nll, dLogScale float64) {
	inv := math.Exp(-logScale)
	up, um := inv*(centered+1.0/255.0), inv*(centered-1.0/255.0)
	cdfPlus, dPlus := ApproxStandardNormalCDF64(up)
	cdfMin, dMin := ApproxStandardNormalCDF64(um)
	// d u / d logScale = −u for u = e^(−logScale)·const.
	dPlus *= -up
	dMin *= -um
	var p, dp float64 // the bin's probability and its derivative
	switch bin {
	case binLower:
		p, dp = cdfPlus, dPlus
	case binUpper:
		p, dp = 1-cdfMin, -dMin
	default:
		p, dp = cdfPlus-cdfMin, dPlus-dMin
	}
	if p < clampProb {
		return -math.Log(clampProb), 0
	}
	return -math.Log(p), -dp / p
}

// dLogLikelihoodDLogScale is the derivative of DiscretizedGaussianLogLikelihood
// with respect to logScale, evaluated in float64 from the same fp32 x − mean
// and the same bin choice as the fp32 likelihood.
func dLogLikelihoodDLogScale(x, mean, logScale float32) float64 {
	_, d := discretizedNLL64(float64(x-mean), float64(logScale), binOf(x))
	return -d
}

// VBTerm is _vb_terms_bpd for one sample at step index i with the model's ε̂
// held fixed (the "frozen_out" of training_losses): x0 is the clean sample,
// xt = QSample(x0, noise, i), eps and v the model's two C_out halves, all of
// the same length. It returns the term in bits per dimension:
//
//	i > 0: mean_k KL(q(x_{t−1} | x_t, x0) ‖ p(x_{t−1} | x_t)) / ln 2
//	i = 0: mean_k −log p_disc(x0 | μ, σ) / ln 2   (the decoder NLL)
//
// If gradV is non-nil it receives d term / d v (ε̂ gets no gradient from this
// term, as in the official loss).
func (s *Schedule) VBTerm(gradV []float32, x0, xt, eps, v []float32, i int) (float64, error) {
	if err := s.check(i); err != nil {
		return 0, err
	}
	if err := sameLen("VBTerm", len(x0), xt, eps, v); err != nil {
		return 0, err
	}
	if gradV != nil && len(gradV) != len(x0) {
		return 0, fmt.Errorf("diffusion: VBTerm: gradV has %d values, want %d", len(gradV), len(x0))
	}
	if len(x0) == 0 {
		return 0, fmt.Errorf("diffusion: VBTerm: empty sample")
	}
	c := s.Coefs(i)
	trueLogVar := c.MinLog
	norm := 1 / (float64(len(x0)) * math.Ln2)
	dLogVarDV := 0.5 * (float64(c.MaxLog) - float64(c.MinLog))
	var sum float64
	for k := range x0 {
		xs := float32(c.SqrtRecipAlphasCumprod*xt[k]) - float32(c.SqrtRecipm1AlphasCumprod*eps[k])
		mean := float32(c.PosteriorMeanCoef1*xs) + float32(c.PosteriorMeanCoef2*xt[k])
		logVar := c.LogVariance(v[k])
		var g float64 // d term_k / d logVar
		if i == 0 {
			logScale := float32(0.5 * logVar)
			sum -= float64(DiscretizedGaussianLogLikelihood(x0[k], mean, logScale))
			g = -0.5 * dLogLikelihoodDLogScale(x0[k], mean, logScale)
		} else {
			trueMean := float32(c.PosteriorMeanCoef1*x0[k]) + float32(c.PosteriorMeanCoef2*xt[k])
			sum += float64(NormalKL(trueMean, trueLogVar, mean, logVar))
			d := float64(trueMean - mean)
			g = 0.5 * (1 - math.Exp(float64(trueLogVar)-float64(logVar)) - d*d*math.Exp(-float64(logVar)))
		}
		if gradV != nil {
			gradV[k] = float32(g * dLogVarDV * norm)
		}
	}
	return sum * norm, nil
}
