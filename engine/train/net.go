package train

import (
	"fmt"
	"math"

	"geca/engine"
	"geca/engine/compute"
)

// Net runs the GeCA denoiser call (docs/model.md §4.4: conditioning, then M
// cell updates) forward while keeping what the backward pass needs, and
// back-propagates through all M updates (full BPTT, as the official trainer
// does).
//
// The forward pass is the engine's module tree (engine.GeCA: Condition and
// Update), the same definitions the engine's reference forward uses; only the
// backward pass is written here, by hand, because it follows the sparse rows
// of every update.
//
// Layout: the state is cell-major, row r = (b·H + i)·W + j holds the CellDim
// channels [C_in | C_out | C_h] of one cell (as engine.State). Every per-cell
// layer is one matrix product over all B·H·W rows.
type Net[T Float] struct {
	P *Params[T]
	B int // batch size the buffers are sized for

	D, K, N, R, Cd, Cin, Ud, Mlp, Heads, Hd int

	// timeFeatures, when set, replaces the computed timestep features (B×256):
	// golden tests inject PyTorch's own fp32 sin/cos values.
	timeFeatures []T

	cond *engine.Conditioning[T] // the conditioning of the current call

	ups []*engine.Activations[T] // per-update activations; ups[m].X is the state before update m
	ws  *engine.Workspace[T]     // the forward pass's scratch (its G and U serve the backward pass too)
	out []T                      // the state after the last update, R×Cd
	M   int                      // updates run by the last Forward
	// NoGrad runs forward only (sampling): the activations of every update
	// share one buffer, so memory does not grow with M.
	NoGrad bool
	masks  [][]T // the masks of the last Forward, one B·N slice per update

	all engine.Rows // every row of the batch

	// scratch of the backward pass
	dS, dEC, dEF, dX1, dX2, dO, dQKV, dH, dLogit []T
	dmod, dfmod                                  []T
}

// NewNet sizes the buffers of a network for batches of up to b samples.
func NewNet[T Float](p *Params[T], b int) *Net[T] {
	cfg := p.Cfg
	n := &Net[T]{P: p, B: b, D: cfg.EmbedDim, K: cfg.NumClasses, N: cfg.Cells(), Cd: cfg.CellDim(),
		Cin: cfg.InChannels, Ud: cfg.UpdateDim(), Mlp: cfg.MLPDim, Heads: cfg.Heads, Hd: cfg.HeadDim()}
	n.R = b * n.N
	D, R := n.D, n.R
	mk := func(k int) []T { return make([]T, k) }
	n.cond = engine.NewConditioning[T](cfg, b)
	n.ws = engine.NewWorkspace[T](cfg, b)
	n.dmod, n.dfmod = mk(b*engine.BlockChunks*D), mk(b*engine.FinalChunks*D)
	n.out = mk(R * n.Cd)
	n.dS, n.dEC, n.dEF, n.dX1, n.dX2, n.dO = mk(R*n.Cd), mk(R*D), mk(R*D), mk(R*D), mk(R*D), mk(R*D)
	n.dQKV, n.dH, n.dLogit = mk(R*3*D), mk(R*n.Mlp), mk(R*n.Heads*9)
	n.all = engine.AllRows(b, n.N)
	return n
}

func (n *Net[T]) ensureUpdates(m int) {
	for len(n.ups) < m {
		n.ups = append(n.ups, engine.NewActivations[T](n.P.Cfg, n.B))
	}
}

// Forward runs one denoiser call on b ≤ n.B samples: state S0 (b·N rows × Cd,
// cell-major), original diffusion indices t, labels y (b×K, multi-hot floats,
// already dropped out when training), and M masks of b·N values in {0, 1}
// (nil mask = every cell updates). It returns the final state (owned by the
// net, valid until the next Forward).
func (n *Net[T]) Forward(s0 []T, t []int, y []T, masks [][]T) ([]T, error) {
	b := len(t)
	if b != n.B {
		return nil, fmt.Errorf("batch %d, net sized for %d", b, n.B)
	}
	if len(s0) != n.R*n.Cd || len(y) != b*n.K {
		return nil, fmt.Errorf("state has %d values (want %d), labels %d (want %d)", len(s0), n.R*n.Cd, len(y), b*n.K)
	}
	M := len(masks)
	if n.NoGrad {
		n.ensureUpdates(min(M, 1))
	} else {
		n.ensureUpdates(M)
	}
	n.M, n.masks = M, masks
	n.cond.SetTimesteps(t)
	if n.timeFeatures != nil {
		copy(n.cond.Features, n.timeFeatures)
	}
	n.P.Condition(n.cond, y)
	cur := s0
	for m := 0; m < M; m++ {
		u := n.ups[0]
		if !n.NoGrad {
			u = n.ups[m]
		}
		copy(u.X, cur)
		next := n.out
		if m+1 < M && !n.NoGrad {
			next = n.ups[m+1].X
		}
		n.P.Update(u, n.ws, n.cond, masks[m], next)
		cur = next
	}
	if M == 0 {
		copy(n.out, s0)
	}
	return n.out, nil
}

// Cond returns c (B×D) of the last Forward.
func (n *Net[T]) Cond() []T { return n.cond.C }

// layerNormBwd turns the gradient w.r.t. xhat into the gradient w.r.t. x,
// adding it to dx: dx += rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)).
func layerNormBwd[T Float](dx, dxhat, xhat, rstd []T, rows, d int) {
	compute.ParallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			g := dxhat[r*d : (r+1)*d]
			xh := xhat[r*d : (r+1)*d]
			var s1, s2 float64
			for k := range g {
				s1 += float64(g[k])
				s2 += float64(g[k]) * float64(xh[k])
			}
			s1 /= float64(d)
			s2 /= float64(d)
			rs := float64(rstd[r])
			out := dx[r*d : (r+1)*d]
			for k := range g {
				out[k] += T(rs * (float64(g[k]) - s1 - float64(xh[k])*s2))
			}
		}
	})
}

// modulate writes A = (xhat·γ + β)·(1 + scale_b) + shift_b (γ, β nil: no
// affine) for the rows of rs, whose modulation vectors are shift and scale.

// Backward back-propagates dOut (the gradient of the loss w.r.t. the final
// state, R×Cd) through the last Forward, accumulating into the parameters'
// gradients (call P.ZeroGrad first). It returns the gradient w.r.t. the input
// state S0 (owned by the net).
func (n *Net[T]) Backward(dOut []T) []T {
	copy(n.dS, dOut)
	zero(n.dmod)
	zero(n.dfmod)
	for m := n.M - 1; m >= 0; m-- {
		var mask []T
		if n.masks != nil {
			mask = n.masks[m]
		}
		n.updateBwd(n.ups[m], mask)
	}
	n.conditionBwd()
	return n.dS
}

// modulateBwd back-propagates A = (xhat·γ + β)·(1 + scale_b) + shift_b
// (engine.Modulate; γ, β: norm's, if it has them) over the rows of rs: it
// accumulates dscale, dshift into dmod, dγ, dβ into the parameters, and
// writes dxhat.
func (n *Net[T]) modulateBwd(dxhat, dA, xhat []T, norm *engine.LayerNorm[T], mod, dmod engine.Modulation[T], shiftC, scaleC int, rs *engine.Rows) {
	D, B := n.D, n.B
	g, beta := norm.Weight, norm.Bias
	var pg, pb []T
	if g != nil {
		pg, pb = make([]T, B*D), make([]T, B*D)
	}
	compute.ParallelFor(B, 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			scale := mod.Chunk(b, scaleC)
			dshift, dscale := dmod.Chunk(b, shiftC), dmod.Chunk(b, scaleC)
			for i := rs.Start[b]; i < rs.Start[b+1]; i++ {
				da := dA[i*D : (i+1)*D]
				xh := xhat[i*D : (i+1)*D]
				dx := dxhat[i*D : (i+1)*D]
				for k := 0; k < D; k++ {
					v := xh[k]
					if g != nil {
						v = v*g.W[k] + beta.W[k]
					}
					dscale[k] += da[k] * v
					dshift[k] += da[k]
					dl := da[k] * (1 + scale[k])
					if g != nil {
						pg[b*D+k] += dl * xh[k]
						pb[b*D+k] += dl
						dl *= g.W[k]
					}
					dx[k] = dl
				}
			}
		}
	})
	if g != nil {
		for b := 0; b < B; b++ {
			for k := 0; k < D; k++ {
				g.G[k] += pg[b*D+k]
				beta.G[k] += pb[b*D+k]
			}
		}
	}
}

// gatedAddBwd back-propagates E_out = E_in + gate_b ⊙ X (engine.GatedResidual)
// over the rows of rs: dgate_b += Σ dE·X, dX = dE·gate (dE itself passes
// through unchanged).
func (n *Net[T]) gatedAddBwd(dx, dE, x []T, gateC int, rs *engine.Rows) {
	D := n.D
	mod, dmod := n.cond.BlockMod(), n.blockDMod()
	compute.ParallelFor(n.B, 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			g, dg := mod.Chunk(b, gateC), dmod.Chunk(b, gateC)
			for i := rs.Start[b]; i < rs.Start[b+1]; i++ {
				de, xr, dxr := dE[i*D:(i+1)*D], x[i*D:(i+1)*D], dx[i*D:(i+1)*D]
				for k := range de {
					dg[k] += de[k] * xr[k]
					dxr[k] = de[k] * g[k]
				}
			}
		}
	})
}

// blockDMod and finalDMod are the gradients of the two modulations.
func (n *Net[T]) blockDMod() engine.Modulation[T] {
	return engine.Modulation[T]{Vec: n.dmod, Chunks: engine.BlockChunks, Dim: n.D}
}

func (n *Net[T]) finalDMod() engine.Modulation[T] {
	return engine.Modulation[T]{Vec: n.dfmod, Chunks: engine.FinalChunks, Dim: n.D}
}

// linearBackward is linearBwd for a module: it accumulates into the module's
// weight and bias gradients the gradients of y = l(x) for dy.
func linearBackward[T Float](l *engine.Linear[T], dx, dy, x []T, rows int, accumulate bool) {
	var db []T
	if l.Bias != nil {
		db = l.Bias.G
	}
	linearBwd(dx, l.Weight.G, db, dy, x, l.Weight.W, rows, l.In, l.Out, accumulate)
}

// updateBwd back-propagates one cell update: n.dS holds dL/dS_{m+1} on entry
// and dL/dS_m on return.
func (n *Net[T]) updateBwd(u *engine.Activations[T], mask []T) {
	p := n.P
	at, ff, fl := &p.Transformer.Attn, &p.Transformer.FF, &p.FinalLayer
	mod, dmod := n.cond.BlockMod(), n.blockDMod()
	R, D, Cd, Cin, Ud, Mlp := n.R, n.D, n.Cd, n.Cin, n.Ud, n.Mlp
	act := &u.Active
	Ra := act.Count()
	// 16: S' = S + m·U on C_out|C_h. dS passes through; dU = m·dS' (active rows).
	dU := n.ws.U
	compute.ParallelFor(Ra, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.Row(i)
			m := T(1)
			if mask != nil {
				m = mask[r]
			}
			src := n.dS[r*Cd+Cin : r*Cd+Cin+Ud]
			dst := dU[i*Ud : (i+1)*Ud]
			for k := range dst {
				dst[k] = m * src[k]
			}
		}
	})
	// 13: final layer.
	dZ := n.dX1
	linearBackward(&fl.Linear, dZ, dU, u.AF, Ra, false)
	dxh := n.dX2
	n.modulateBwd(dxh, dZ, u.XHatF, &fl.Norm, n.cond.FinalModulation(), n.finalDMod(), engine.FinalShift, engine.FinalScale, act)
	dE := n.dEC // gradient w.r.t. E (active rows) after step 12
	zero(dE[:Ra*D])
	layerNormBwd(dE, dxh, u.XHatF, u.RStdF, Ra, D)
	// 12: E2 = E1 + gate_mlp·Y.
	dY := n.dX1
	n.gatedAddBwd(dY, dE, u.Y, engine.GateMLP, act)
	// 11: MLP.
	compute.ParallelFor(Ra*Mlp, 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			n.ws.G[i] = u.H[i] * u.Phi[i]
		}
	})
	linearBackward(&ff.Net3, n.dH, dY, n.ws.G, Ra, false)
	// GELU'(x) = Φ(x) + x·φ(x).
	if hf, ok := any(u.H).([]float32); ok {
		dh, ph := any(n.dH).([]float32), any(u.Phi).([]float32)
		compute.ParallelFor(Ra*Mlp, 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				x := hf[i]
				dh[i] *= ph[i] + x*invSqrt2Pi*compute.Exp32(-0.5*x*x)
			}
		})
	} else {
		compute.ParallelFor(Ra*Mlp, 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				x := float64(u.H[i])
				n.dH[i] *= T(float64(u.Phi[i]) + x*invSqrt2Pi*math.Exp(-0.5*x*x))
			}
		})
	}
	dF := n.dX1
	linearBackward(&ff.Net0, dF, n.dH, u.A2, Ra, false)
	n.modulateBwd(dxh, dF, u.XHat2, &ff.Norm, mod, dmod, engine.ShiftMLP, engine.ScaleMLP, act)
	layerNormBwd(dE, dxh, u.XHat2, u.RStd2, Ra, D)
	// 10: E1 = E0 + gate_msa·Attn.
	dAttn := n.dX1
	n.gatedAddBwd(dAttn, dE, u.Attn, engine.GateAttn, act)
	// 9: output projection.
	linearBackward(&at.ToOut, n.dO, dAttn, u.O, Ra, false)
	// 8: attention, into dQKV of every row.
	n.attentionBwd(u, n.dO)
	// 7: QKV (every row).
	dA := n.dX1
	linearBackward(&at.ToQKV, dA, n.dQKV, u.A1, R, false)
	// 6: LN1 + modulation.
	n.modulateBwd(dxh, dA, u.XHat1, &at.Norm, mod, dmod, engine.ShiftAttn, engine.ScaleAttn, &n.all)
	// dE0 = the residual path (active rows) + the LN1 path (every row).
	dEF := n.dEF
	zero(dEF)
	compute.ParallelFor(Ra, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.Row(i)
			copy(dEF[r*D:(r+1)*D], dE[i*D:(i+1)*D])
		}
	})
	layerNormBwd(dEF, dxh, u.XHat1, u.RStd1, R, D)
	// 2: cell embedding (the positional code is a constant). dS += dE·W_ce.
	linearBackward(&p.CellToEmbedding, n.dS, dEF, u.X, R, true)
}

// attentionBwd back-propagates the localised attention from dO (active rows)
// into n.dQKV (every row). It gathers instead of scattering: a cell's
// key/value gradient is collected from the active cells whose windows contain
// it, so rows can run in parallel.
func (n *Net[T]) attentionBwd(u *engine.Activations[T], dO []T) {
	D, Hd, heads := n.D, n.Hd, n.Heads
	scale := 1 / math.Sqrt(float64(Hd))
	// Pass 1: dlogits and dq per active row (dq of inactive rows is zero).
	compute.ParallelFor(n.R, 256, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			if u.Pos[r] < 0 {
				zero(n.dQKV[r*3*D : r*3*D+D])
			}
		}
	})
	compute.ParallelFor(u.Active.Count(), 64, func(lo, hi int) {
		var dp [9]float64
		var nb [9]int
		for i := lo; i < hi; i++ {
			r := u.Active.Row(i)
			for k := 0; k < 9; k++ {
				nb[k] = n.P.Cfg.Neighbour(r, k)
			}
			dq := n.dQKV[r*3*D : r*3*D+D]
			zero(dq)
			for h := 0; h < heads; h++ {
				do := dO[i*D+h*Hd : i*D+h*Hd+Hd]
				pr := u.P[(i*heads+h)*9 : (i*heads+h)*9+9]
				var dot float64
				for k := 0; k < 9; k++ {
					dp[k] = 0
					if nb[k] >= 0 {
						v := u.QKV[nb[k]*3*D+2*D+h*Hd : nb[k]*3*D+2*D+h*Hd+Hd]
						var s float64
						for d := range do {
							s += float64(do[d]) * float64(v[d])
						}
						dp[k] = s
					}
					dot += float64(pr[k]) * dp[k]
				}
				dl := n.dLogit[(i*heads+h)*9 : (i*heads+h)*9+9]
				dqh := dq[h*Hd : h*Hd+Hd]
				for k := 0; k < 9; k++ {
					g := float64(pr[k]) * (dp[k] - dot) * scale
					dl[k] = T(g)
					if nb[k] < 0 {
						continue
					}
					kv := u.QKV[nb[k]*3*D+D+h*Hd : nb[k]*3*D+D+h*Hd+Hd]
					for d := range dqh {
						dqh[d] += T(g) * kv[d]
					}
				}
			}
		}
	})
	// Pass 2: dk, dv of row r gathered from the active rows that see r. Row r
	// is in slot k of row r' when r' is r's neighbour in the opposite slot 8 − k.
	compute.ParallelFor(n.R, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dk := n.dQKV[r*3*D+D : r*3*D+2*D]
			dv := n.dQKV[r*3*D+2*D : r*3*D+3*D]
			zero(dk)
			zero(dv)
			for k := 0; k < 9; k++ {
				rp := n.P.Cfg.Neighbour(r, 8-k)
				if rp < 0 || u.Pos[rp] < 0 {
					continue
				}
				ip := int(u.Pos[rp])
				for h := 0; h < heads; h++ {
					g := n.dLogit[(ip*heads+h)*9+k]
					pk := u.P[(ip*heads+h)*9+k]
					q := u.QKV[rp*3*D+h*Hd : rp*3*D+h*Hd+Hd]
					do := dO[ip*D+h*Hd : ip*D+h*Hd+Hd]
					dkh, dvh := dk[h*Hd:h*Hd+Hd], dv[h*Hd:h*Hd+Hd]
					for d := range dkh {
						dkh[d] += g * q[d]
						dvh[d] += pk * do[d]
					}
				}
			}
		}
	})
}

// conditionBwd back-propagates the accumulated modulation gradients into the
// adaLN, timestep and label embedders.
func (n *Net[T]) conditionBwd() {
	p, b, D := n.P, n.B, n.D
	dsc := make([]T, b*D)
	linearBackward(&p.Transformer.AdaLN, dsc, n.dmod, n.cond.SiLUC, b, false)
	linearBackward(&p.FinalLayer.AdaLN, dsc, n.dfmod, n.cond.SiLUC, b, true)
	dc := make([]T, b*D)
	for i := range dc {
		dc[i] = dsc[i] * T(siluGrad(float64(n.cond.C[i])))
	}
	// c = temb + yemb.
	sth := make([]T, b*D)
	for i, v := range n.cond.TH {
		sth[i] = T(silu(float64(v)))
	}
	dsth := make([]T, b*D)
	linearBackward(&p.TEmbedder.MLP2, dsth, dc, sth, b, false)
	for i := range dsth {
		dsth[i] *= T(siluGrad(float64(n.cond.TH[i])))
	}
	linearBackward(&p.TEmbedder.MLP0, nil, dsth, n.cond.Features, b, false)
	dyh := make([]T, b*D)
	linearBackward(&p.YEmbedder.Table1, dyh, dc, n.cond.YH, b, false)
	linearBackward(&p.YEmbedder.Table0, nil, dyh, n.cond.Y, b, false)
}
