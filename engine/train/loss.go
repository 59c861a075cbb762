package train

import (
	"fmt"
	"math"
)

// Schedule holds the float64 tables of the 1000-step linear training schedule
// (spec §6.1-6.2) that the loss needs.
type Schedule struct {
	Timesteps                               []int // index -> original timestep (identity unless respaced)
	T                                       int
	Betas, AlphasCumprod                    []float64
	SqrtAC, SqrtOneMinusAC                  []float64 // for q_sample
	SqrtRecipAC, SqrtRecipM1AC              []float64 // x̂0 from ε̂
	PostCoef1, PostCoef2, PostLogVarClipped []float64
}

// NewSchedule builds the linear β schedule β = linspace(1e-4, 0.02, steps)
// scaled by 1000/steps, as get_named_beta_schedule('linear', steps) does.
func NewSchedule(steps int) *Schedule {
	scale := 1000 / float64(steps)
	lo, hi := scale*1e-4, scale*0.02
	betas := make([]float64, steps)
	for i := range betas {
		if steps == 1 {
			betas[i] = lo
		} else {
			betas[i] = lo + (hi-lo)*float64(i)/float64(steps-1)
		}
	}
	s := scheduleFromBetas(betas)
	s.Timesteps = make([]int, steps)
	for i := range s.Timesteps {
		s.Timesteps[i] = i
	}
	return s
}

// Respaced keeps `count` evenly spaced timesteps of the 1000-step schedule
// (space_timesteps with one section, spec §6.1) and recomputes β′ from ᾱ.
func Respaced(count int) (*Schedule, error) {
	base := NewSchedule(1000)
	if count < 1 || count > base.T {
		return nil, fmt.Errorf("respacing to %d steps: want 1..%d", count, base.T)
	}
	var keep []int
	if count == 1 {
		keep = []int{0}
	} else {
		stride := float64(base.T-1) / float64(count-1)
		cur := 0.0
		for i := 0; i < count; i++ {
			keep = append(keep, int(math.RoundToEven(cur)))
			cur += stride
		}
	}
	betas := make([]float64, len(keep))
	last := 1.0
	for i, t := range keep {
		betas[i] = 1 - base.AlphasCumprod[t]/last
		last = base.AlphasCumprod[t]
	}
	s := scheduleFromBetas(betas)
	s.Timesteps = keep
	return s, nil
}

func scheduleFromBetas(betas []float64) *Schedule {
	steps := len(betas)
	s := &Schedule{T: steps, Betas: betas}
	mk := func() []float64 { return make([]float64, steps) }
	s.AlphasCumprod, s.SqrtAC, s.SqrtOneMinusAC, s.SqrtRecipAC, s.SqrtRecipM1AC = mk(), mk(), mk(), mk(), mk()
	s.PostCoef1, s.PostCoef2, s.PostLogVarClipped = mk(), mk(), mk()
	post := mk()
	ac := 1.0
	for i, b := range s.Betas {
		prev := ac
		ac *= 1 - b
		s.AlphasCumprod[i] = ac
		s.SqrtAC[i] = math.Sqrt(ac)
		s.SqrtOneMinusAC[i] = math.Sqrt(1 - ac)
		s.SqrtRecipAC[i] = math.Sqrt(1 / ac)
		s.SqrtRecipM1AC[i] = math.Sqrt(1/ac - 1)
		post[i] = b * (1 - prev) / (1 - ac)
		s.PostCoef1[i] = b * math.Sqrt(prev) / (1 - ac)
		s.PostCoef2[i] = (1 - prev) * math.Sqrt(1-b) / (1 - ac)
	}
	for i := range post {
		if i == 0 && steps > 1 {
			s.PostLogVarClipped[i] = math.Log(post[1])
		} else {
			s.PostLogVarClipped[i] = math.Log(post[i])
		}
	}
	return s
}

// approxStdNormalCDF is the tanh approximation of Φ used by the discretised
// Gaussian likelihood (IDDPM), and its derivative.
func approxStdNormalCDF(x float64) (float64, float64) {
	const c = 0.7978845608028654 // sqrt(2/π)
	u := c * (x + 0.044715*x*x*x)
	th := math.Tanh(u)
	return 0.5 * (1 + th), 0.5 * (1 - th*th) * c * (1 + 3*0.044715*x*x)
}

// discretizedNLL is −log p(x) of the pixel x under N(mean, exp(logScale)²)
// discretised to 255 bins on [−1, 1] (IDDPM discretized_gaussian_log_likelihood),
// and its derivative w.r.t. logScale.
func discretizedNLL(x, mean, logScale float64) (nll, dLogScale float64) {
	const clampMin = 1e-12
	centered := x - mean
	inv := math.Exp(-logScale)
	plusIn := inv * (centered + 1.0/255)
	minIn := inv * (centered - 1.0/255)
	cdfPlus, dPlus := approxStdNormalCDF(plusIn)
	cdfMin, dMin := approxStdNormalCDF(minIn)
	// d(plusIn)/d(logScale) = −plusIn, likewise for minIn.
	switch {
	case x < -0.999:
		if cdfPlus > clampMin {
			return -math.Log(cdfPlus), dPlus * plusIn / cdfPlus
		}
		return -math.Log(clampMin), 0
	case x > 0.999:
		one := 1 - cdfMin
		if one > clampMin {
			return -math.Log(one), -dMin * minIn / one
		}
		return -math.Log(clampMin), 0
	default:
		delta := cdfPlus - cdfMin
		if delta > clampMin {
			return -math.Log(delta), (dPlus*plusIn - dMin*minIn) / delta
		}
		return -math.Log(clampMin), 0
	}
}

// LossTerms is the loss of one sample.
type LossTerms struct{ MSE, VB float64 }

// sampleLoss computes the training loss of one sample (spec §8) at original
// timestep t, over n = C_in·H·W values: MSE(ε, ε̂) + L_vb with ε̂ detached in
// L_vb (epsVB is the value used there; the caller passes ε̂ itself). It writes
// dL/dε̂ into dEps and dL/dv into dV, both scaled by weight.
func sampleLoss(s *Schedule, t int, x0, xt, eps, epsHat, epsVB, v []float64, dEps, dV []float64, weight float64) LossTerms {
	n := float64(len(x0))
	var lt LossTerms
	for i := range x0 {
		d := epsHat[i] - eps[i]
		lt.MSE += d * d
		dEps[i] = weight * 2 * d / n
	}
	lt.MSE /= n
	minLog, maxLog := s.PostLogVarClipped[t], math.Log(s.Betas[t])
	c1, c2 := s.PostCoef1[t], s.PostCoef2[t]
	trueLV := s.PostLogVarClipped[t]
	for i := range x0 {
		frac := (v[i] + 1) / 2
		lv := frac*maxLog + (1-frac)*minLog
		dlvdv := (maxLog - minLog) / 2
		x0hat := s.SqrtRecipAC[t]*xt[i] - s.SqrtRecipM1AC[t]*epsVB[i]
		mu := c1*x0hat + c2*xt[i]
		var term, dlv float64
		if t == 0 {
			nll, dls := discretizedNLL(x0[i], mu, 0.5*lv)
			term, dlv = nll, 0.5*dls
		} else {
			trueMu := c1*x0[i] + c2*xt[i]
			dm := trueMu - mu
			e := math.Exp(trueLV - lv)
			q := dm * dm * math.Exp(-lv)
			term = 0.5 * (-1 + lv - trueLV + e + q)
			dlv = 0.5 * (1 - e - q)
		}
		lt.VB += term
		dV[i] = weight * dlv * dlvdv / (n * math.Ln2)
	}
	lt.VB /= n * math.Ln2
	return lt
}

// Loss evaluates the batch loss on the final state of a Forward and writes
// dL/dS into dOut (R×Cd, zero outside C_out). x0, xt and eps are cell-major
// (row r, C_in channels). It returns the batch means of the two terms.
func (n *Net[T]) Loss(s *Schedule, out []T, t []int, x0, xt, eps []T, dOut []T) (mse, vb float64, err error) {
	B, N, Cin, Cd := n.B, n.N, n.Cin, n.Cd
	if len(x0) != n.R*Cin || len(xt) != n.R*Cin || len(eps) != n.R*Cin {
		return 0, 0, fmt.Errorf("loss inputs have %d/%d/%d values, want %d", len(x0), len(xt), len(eps), n.R*Cin)
	}
	zero(dOut)
	terms := make([]LossTerms, B)
	parallelFor(B, 1, func(lo, hi int) {
		sz := N * Cin
		bx0, bxt, be, beh, bv, dE, dV := make([]float64, sz), make([]float64, sz), make([]float64, sz), make([]float64, sz), make([]float64, sz), make([]float64, sz), make([]float64, sz)
		for b := lo; b < hi; b++ {
			for c := 0; c < N; c++ {
				r := b*N + c
				for k := 0; k < Cin; k++ {
					i := c*Cin + k
					bx0[i], bxt[i], be[i] = float64(x0[r*Cin+k]), float64(xt[r*Cin+k]), float64(eps[r*Cin+k])
					beh[i] = float64(out[r*Cd+Cin+k])
					bv[i] = float64(out[r*Cd+2*Cin+k])
				}
			}
			terms[b] = sampleLoss(s, t[b], bx0, bxt, be, beh, beh, bv, dE, dV, 1/float64(B))
			for c := 0; c < N; c++ {
				r := b*N + c
				for k := 0; k < Cin; k++ {
					dOut[r*Cd+Cin+k] = T(dE[c*Cin+k])
					dOut[r*Cd+2*Cin+k] = T(dV[c*Cin+k])
				}
			}
		}
	})
	for _, lt := range terms {
		mse += lt.MSE
		vb += lt.VB
	}
	return mse / float64(B), vb / float64(B), nil
}
