package train

import (
	"fmt"
	"math"
	"math/rand/v2"
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

// Sample draws one image per label with the official sampler (spec §5-6):
// DDPM with the learned-range variance, the GHG carry (C_out and C_h kept
// across timesteps without CFG; only C_h with CFG, C_out re-seeded), fresh
// Bernoulli update masks at every update. It returns the images cell-major,
// len(labels)·H·W·C_in values (unclipped; pixels are in [−1, 1] when the
// model is good). It is what the training previews and the quality check use.
func Sample(p *Params[float32], labels []int, opt SampleOptions) ([]float32, error) {
	cfg := p.Cfg
	sch, err := Respaced(opt.Steps)
	if err != nil {
		return nil, err
	}
	for _, l := range labels {
		if l < -1 || l >= cfg.NumClasses {
			return nil, fmt.Errorf("label %d outside [0, %d) (−1 = unconditional)", l, cfg.NumClasses)
		}
	}
	B := len(labels)
	cfgOn := opt.CFG > 1
	NB := B
	if cfgOn {
		NB = 2 * B
	}
	net := NewNet(p, NB)
	net.NoGrad = true
	N, Cin, Cd, Cout := cfg.Cells(), cfg.InChannels, cfg.CellDim(), cfg.OutChannels()
	r := rand.New(rand.NewPCG(opt.Seed, 0x73616d706c65))
	y := make([]float32, NB*cfg.NumClasses)
	for b, l := range labels {
		if l >= 0 {
			y[b*cfg.NumClasses+l] = 1
		}
	}
	x := make([]float32, B*N*Cin)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	state := make([]float32, NB*N*Cd)
	seedOut := func(b int) {
		for c := 0; c < N; c++ {
			for k := 0; k < Cout; k++ {
				state[(b*N+c)*Cd+Cin+k] = 0
			}
		}
		centre := b*N + (cfg.GridH/2)*cfg.GridW + cfg.GridW/2
		for k := 0; k < Cout; k++ {
			state[centre*Cd+Cin+k] = float32(r.NormFloat64())
		}
	}
	for b := 0; b < NB; b++ {
		seedOut(b)
	}
	masks := make([][]float32, cfg.M)
	for m := range masks {
		masks[m] = make([]float32, NB*N)
	}
	ts := make([]int, NB)
	for i := sch.T - 1; i >= 0; i-- {
		if opt.NoGHG && i < sch.T-1 {
			zero(state)
		}
		if (cfgOn || opt.NoGHG) && i < sch.T-1 {
			for b := 0; b < NB; b++ {
				seedOut(b)
			}
		}
		for b := 0; b < NB; b++ {
			ts[b] = sch.Timesteps[i]
			src := b % B
			for c := 0; c < N; c++ {
				copy(state[(b*N+c)*Cd:(b*N+c)*Cd+Cin], x[(src*N+c)*Cin:(src*N+c+1)*Cin])
			}
		}
		for _, mk := range masks {
			for j := range mk {
				mk[j] = float32(math.Floor(float64(float32(r.Float64()) + cfg.UpdateRate)))
			}
		}
		out, err := net.Forward(state, ts, y, masks)
		if err != nil {
			return nil, err
		}
		copy(state, out)
		minLog, maxLog := sch.PostLogVarClipped[i], math.Log(sch.Betas[i])
		for b := 0; b < B; b++ {
			for c := 0; c < N; c++ {
				row := (b*N + c) * Cd
				for k := 0; k < Cin; k++ {
					eps := float64(out[row+Cin+k])
					if cfgOn {
						u := float64(out[((B+b)*N+c)*Cd+Cin+k])
						eps = u + opt.CFG*(eps-u)
					}
					v := float64(out[row+2*Cin+k])
					xi := float64(x[(b*N+c)*Cin+k])
					x0 := sch.SqrtRecipAC[i]*xi - sch.SqrtRecipM1AC[i]*eps
					mean := sch.PostCoef1[i]*x0 + sch.PostCoef2[i]*xi
					frac := (v + 1) / 2
					lv := frac*maxLog + (1-frac)*minLog
					z := r.NormFloat64()
					if i == 0 {
						z = 0
					}
					x[(b*N+c)*Cin+k] = float32(mean + math.Exp(0.5*lv)*z)
				}
			}
		}
	}
	return x, nil
}
