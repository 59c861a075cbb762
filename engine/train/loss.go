package train

import (
	"fmt"
	"math"

	"geca/engine"
	"geca/engine/compute"
	"geca/engine/diffusion"
)

// LossTerms is the loss of one sample.
type LossTerms struct{ MSE, VB float64 }

// MinSNRWeight is the weight of the noise MSE at timestep t under Min-SNR-γ
// loss weighting (Hang et al., "Efficient Diffusion Training via Min-SNR
// Weighting Strategy", 2023; docs/model.md §8): min(SNR_t, γ)/SNR_t with
// SNR_t = ᾱ_t/(1−ᾱ_t). It is 1 where SNR_t ≤ γ (the noisy steps, where the
// sample's shape is decided) and falls as 1/SNR_t on the nearly clean steps,
// whose ε is hardest to predict and least matters to a sample. γ ≤ 0 is the
// official unweighted loss: 1 everywhere.
func MinSNRWeight(s *diffusion.Schedule, t int, gamma float64) float64 {
	if gamma <= 0 {
		return 1
	}
	snr := s.AlphasCumprod[t] / (1 - s.AlphasCumprod[t])
	return math.Min(snr, gamma) / snr
}

// sampleLoss computes the training loss of one sample (docs/model.md §8) at original
// timestep t, over n = C_in·H·W values: mseWeight·MSE(ε, ε̂) + L_vb with ε̂
// detached in L_vb (epsVB is the value used there; the caller passes ε̂
// itself). It writes dL/dε̂ into dEps and dL/dv into dV, both scaled by
// weight. The terms it returns are unweighted, so that loss curves of runs
// with and without MinSNRWeight read alike. s is the unrespaced training
// process (diffusion.New(1000, "")), whose step index is the timestep.
//
// It is diffusion.VBTerm's L_vb in float64 rather than fp32: the finite-
// difference gradient checks of the network run in float64 and need every
// digit of the loss, and fp32 logs of log β_t and log σ̃²_t, which differ by
// ~1e-6 near t = 999, keep only a digit of dL_vb/dv there.
func sampleLoss(s *diffusion.Schedule, t int, x0, xt, eps, epsHat, epsVB, v []float64, dEps, dV []float64, weight, mseWeight float64) LossTerms {
	n := float64(len(x0))
	var lt LossTerms
	g := weight * mseWeight * 2 / n // d(weighted mean square)/d(ε̂ − ε), per unit of difference
	for i := range x0 {
		d := epsHat[i] - eps[i]
		lt.MSE += d * d
		dEps[i] = g * d
	}
	lt.MSE /= n
	minLog, maxLog := s.PosteriorLogVarianceClipped[t], s.LogBetas[t]
	c1, c2 := s.PosteriorMeanCoef1[t], s.PosteriorMeanCoef2[t]
	trueLV := s.PosteriorLogVarianceClipped[t]
	for i := range x0 {
		frac := (v[i] + 1) / 2
		lv := frac*maxLog + (1-frac)*minLog
		dlvdv := (maxLog - minLog) / 2
		x0hat := s.SqrtRecipAlphasCumprod[t]*xt[i] - s.SqrtRecipm1AlphasCumprod[t]*epsVB[i]
		mu := c1*x0hat + c2*xt[i]
		var term, dlv float64
		if t == 0 {
			nll, dls := diffusion.DiscretizedGaussianNLL64(x0[i], mu, 0.5*lv)
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

// vSampleLoss is sampleLoss for a model that predicts v (docs/model.md
// §6.5): vHat holds v̂ and dVHat receives dL/dv̂. Its noise term is the mean
// square of v̂ − v with v = √ᾱ·ε − √(1−ᾱ)·x0; since ε̂ − ε = √ᾱ·(v̂ − v), that is
// the noise MSE weighted by 1/ᾱ, which is how it is computed here, through
// the ε̂ that v̂ means. That ε̂ also feeds L_vb (detached, as for an ε
// model), and the noise MSE is reported unweighted, so that loss curves of
// both kinds of model read alike. With Min-SNR-γ the weight of the noise
// MSE is MinSNRWeight's, as for an ε model (Hang et al. give min(SNR, γ)/(SNR + 1)
// on the v MSE, the same objective).
func vSampleLoss(s *diffusion.Schedule, t int, x0, xt, eps, vHat, v []float64, dVHat, dV []float64, weight, minSNR float64) LossTerms {
	ab := s.AlphasCumprod[t]
	sa, sb := math.Sqrt(ab), math.Sqrt(1-ab)
	epsHat := make([]float64, len(vHat))
	for i := range vHat {
		epsHat[i] = sb*xt[i] + sa*vHat[i]
	}
	w := 1 / ab
	if minSNR > 0 {
		w = MinSNRWeight(s, t, minSNR)
	}
	lt := sampleLoss(s, t, x0, xt, eps, epsHat, epsHat, v, dVHat, dV, weight, w)
	for i := range dVHat {
		dVHat[i] *= sa // dε̂/dv̂
	}
	return lt
}

// Loss evaluates the batch loss on the final state of a Forward and writes
// dL/dS into dOut (R×Cd, zero outside C_out). x0, xt and eps are cell-major
// (row r, C_in channels). minSNR is γ of MinSNRWeight (0: unweighted). It
// returns the batch means of the two terms, unweighted.
func (n *Net[T]) Loss(s *diffusion.Schedule, out []T, t []int, x0, xt, eps []T, dOut []T, minSNR float64) (mse, vb float64, err error) {
	B, N, Cin, Cd := n.B, n.N, n.Cin, n.Cd
	if len(x0) != n.R*Cin || len(xt) != n.R*Cin || len(eps) != n.R*Cin {
		return 0, 0, fmt.Errorf("loss inputs have %d/%d/%d values, want %d", len(x0), len(xt), len(eps), n.R*Cin)
	}
	zero(dOut)
	terms := make([]LossTerms, B)
	compute.ParallelFor(B, 1, func(lo, hi int) {
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
			if n.P.Cfg.Prediction == engine.PredictV {
				terms[b] = vSampleLoss(s, t[b], bx0, bxt, be, beh, bv, dE, dV, 1/float64(B), minSNR)
			} else {
				terms[b] = sampleLoss(s, t[b], bx0, bxt, be, beh, beh, bv, dE, dV, 1/float64(B), MinSNRWeight(s, t[b], minSNR))
			}
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
