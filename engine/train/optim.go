package train

import (
	"geca/engine/compute"
	"math"
)

// AdamW is torch.optim.AdamW (decoupled weight decay), with its moments kept
// per parameter in float32 like the weights.
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	Step                               int
	M, V                               [][]float32 // first and second moments, one slice per parameter
}

// NewAdamW returns the official optimiser settings (docs/model.md §8) with learning rate lr.
func NewAdamW(p *Params[float32], lr float64) *AdamW {
	a := &AdamW{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, q := range p.List {
		a.M = append(a.M, make([]float32, len(q.W)))
		a.V = append(a.V, make([]float32, len(q.W)))
	}
	return a
}

// Update applies one optimiser step with the gradients in p.
func (a *AdamW) Update(p *Params[float32]) {
	a.Step++
	bc1 := 1 - math.Pow(a.Beta1, float64(a.Step))
	bc2 := 1 - math.Pow(a.Beta2, float64(a.Step))
	stepSize := float32(a.LR / bc1)
	decay := float32(1 - a.LR*a.WeightDecay)
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	sbc2 := float32(math.Sqrt(bc2))
	eps := float32(a.Eps)
	for qi, q := range p.List {
		m, v, w, g := a.M[qi], a.V[qi], q.W, q.G
		compute.ParallelFor(len(w), 8192, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				w[i] *= decay
				m[i] = b1*m[i] + (1-b1)*g[i]
				v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
				den := float32(math.Sqrt(float64(v[i])))/sbc2 + eps
				w[i] -= stepSize * m[i] / den
			}
		})
	}
}

// EMA keeps the exponential moving average of the weights (docs/model.md §8: decay
// 0.9999, starting as an exact copy). With Warmup the decay used at step s is
// min(Decay, (1 + s)/(10 + s)), so short runs are not dominated by the
// initial weights.
type EMA struct {
	Decay  float64
	Warmup bool
	W      [][]float32
}

// NewEMA starts the average as a copy of p.
func NewEMA(p *Params[float32], decay float64, warmup bool) *EMA {
	e := &EMA{Decay: decay, Warmup: warmup}
	for _, q := range p.List {
		e.W = append(e.W, append([]float32(nil), q.W...))
	}
	return e
}

// Update moves the average toward p after optimiser step `step` (1-based).
func (e *EMA) Update(p *Params[float32], step int) {
	d := e.Decay
	if e.Warmup {
		d = min(d, float64(1+step)/float64(10+step))
	}
	df, of := float32(d), float32(1-d)
	for qi, q := range p.List {
		w, avg := q.W, e.W[qi]
		compute.ParallelFor(len(w), 8192, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				avg[i] = df*avg[i] + of*w[i]
			}
		})
	}
}
