package train

import (
	"fmt"
	"math"
)

// Net runs the GeCA denoiser call (spec §4.4: conditioning, then M cell updates)
// forward while keeping what the backward pass needs, and back-propagates
// through all M updates (full BPTT, as the official trainer does).
//
// Layout: the state is cell-major, row r = (b·H + i)·W + j holds the CellDim
// channels [C_in | C_out | C_h] of one cell (as engine.State). Every per-cell
// layer is one matrix product over all B·H·W rows.
type Net[T Float] struct {
	P *Params[T]
	B int // batch size the buffers are sized for

	D, K, N, R, Cd, Cin, Ud, Mlp, Heads, Hd int

	pe []T // positional code, N×D (spec §2.4)

	// timeFeatures, when set, replaces the computed timestep features (B×256):
	// golden tests inject PyTorch's own fp32 sin/cos values.
	timeFeatures []T

	// conditioning of the current call
	tfeat, th, temb, yIn, yh, c, sc []T // B×256, B×D, B×D, B×K, B×D, B×D, B×D
	mod, fmod                       []T // B×6D (adaLN of the block), B×2D (final layer)

	ups []*update[T] // per-update activations; ups[m].X is the state before update m
	out []T          // the state after the last update, R×Cd
	M   int          // updates run by the last Forward
	// NoGrad runs forward only (sampling): the activations of every update
	// share one buffer, so memory does not grow with M.
	NoGrad bool
	masks  [][]T // the masks of the last Forward, one B·N slice per update

	all rowSet // every row of the batch

	// scratch
	e0, eC                                       []T // R×D: E before the attention residual (all rows), E of the active rows
	dS, dEC, dEF, dX1, dX2, dO, dQKV, dH, dLogit []T
	dmod, dfmod                                  []T
	tmpH, dU                                     []T
}

// rowSet is a set of rows of the state in ascending order: every row (idx
// nil) or the cells that update in one step. start[b] is the position of
// sample b's first row, start[B] the count.
//
// Only the active cells of an update need the attention output, the MLP and
// the final layer (an inactive cell's update is multiplied by 0); every cell
// needs its keys and values, so the embedding, LN1 and QKV run on all rows.
// With the official update rate 0.5 this halves most of the work.
type rowSet struct {
	idx   []int32
	start []int
	n     int // cells per sample
}

func (rs *rowSet) count() int { return rs.start[len(rs.start)-1] }

func (rs *rowSet) row(i int) int {
	if rs.idx == nil {
		return i
	}
	return int(rs.idx[i])
}

// update holds the activations of one cell update that the backward pass needs.
// Cheap element-wise results (the modulated LayerNorm outputs, the GELU) are
// recomputed instead of stored.
//
// X, xhat1, rstd1 and qkv cover every row; the rest only the active rows (in
// the order of act).
type update[T Float] struct {
	X                   []T // R×Cd input state
	xhat1, xhat2, xhatf []T // ·×D normalised activations
	rstd1, rstd2, rstdf []T // reciprocal standard deviations
	qkv                 []T // R×3D
	p                   []T // heads×9 attention weights per active row
	o                   []T // merged heads
	attn                []T // output projection
	h                   []T // pre-GELU
	phi                 []T // Φ(h), so GELU(h) = h·Φ(h) and its derivative need no second erf
	y                   []T // MLP output
	a1, a2, af          []T // modulated LayerNorm outputs: the inputs of QKV, MLP and the final linear

	act rowSet  // the active rows
	pos []int32 // row -> position in act, or −1
}

// NewNet sizes the buffers of a network for batches of up to b samples.
func NewNet[T Float](p *Params[T], b int) *Net[T] {
	cfg := p.Cfg
	n := &Net[T]{P: p, B: b, D: cfg.EmbedDim, K: cfg.NumClasses, N: cfg.Cells(), Cd: cfg.CellDim(),
		Cin: cfg.InChannels, Ud: cfg.UpdateDim(), Mlp: cfg.MLPDim, Heads: cfg.Heads, Hd: cfg.HeadDim()}
	n.R = b * n.N
	D, R := n.D, n.R
	n.pe = positionalCode[T](n.N, D)
	mk := func(k int) []T { return make([]T, k) }
	n.tfeat, n.th, n.temb, n.yIn, n.yh, n.c, n.sc = mk(b*TimeFeatures), mk(b*D), mk(b*D), mk(b*n.K), mk(b*D), mk(b*D), mk(b*D)
	n.mod, n.fmod, n.dmod, n.dfmod = mk(b*6*D), mk(b*2*D), mk(b*6*D), mk(b*2*D)
	n.out = mk(R * n.Cd)
	n.e0, n.eC = mk(R*D), mk(R*D)
	n.dS, n.dEC, n.dEF, n.dX1, n.dX2, n.dO = mk(R*n.Cd), mk(R*D), mk(R*D), mk(R*D), mk(R*D), mk(R*D)
	n.dQKV, n.dH, n.dLogit = mk(R*3*D), mk(R*n.Mlp), mk(R*n.Heads*9)
	n.tmpH, n.dU = mk(R*n.Mlp), mk(R*n.Ud)
	n.all = rowSet{start: make([]int, b+1), n: n.N}
	for i := range n.all.start {
		n.all.start[i] = i * n.N
	}
	return n
}

func (n *Net[T]) ensureUpdates(m int) {
	for len(n.ups) < m {
		R, D := n.R, n.D
		n.ups = append(n.ups, &update[T]{
			X: make([]T, R*n.Cd), xhat1: make([]T, R*D), xhat2: make([]T, R*D), xhatf: make([]T, R*D),
			rstd1: make([]T, R), rstd2: make([]T, R), rstdf: make([]T, R),
			qkv: make([]T, R*3*D), p: make([]T, R*n.Heads*9), o: make([]T, R*D), attn: make([]T, R*D),
			h: make([]T, R*n.Mlp), phi: make([]T, R*n.Mlp), y: make([]T, R*D),
			a1: make([]T, R*D), a2: make([]T, R*D), af: make([]T, R*D),
			act: rowSet{idx: make([]int32, 0, R), start: make([]int, n.B+1), n: n.N}, pos: make([]int32, R),
		})
	}
}

// positionalCode is vit_positional_encoding (spec §2.4), computed in float32
// as the official code does: P[n, d] = sin(n·ω_d) for even d, cos for odd d,
// ω_d = exp(d·(−ln 10000 / D)).
func positionalCode[T Float](cells, dim int) []T {
	pe := make([]T, cells*dim)
	c := float32(-math.Log(10000) / float64(dim))
	for d := 0; d < dim; d++ {
		w := float32(math.Exp(float64(float32(d) * c)))
		for p := 0; p < cells; p++ {
			a := float64(float32(p) * w)
			if d%2 == 0 {
				pe[p*dim+d] = T(float32(math.Sin(a)))
			} else {
				pe[p*dim+d] = T(float32(math.Cos(a)))
			}
		}
	}
	return pe
}

// timestepFeatures writes DiT's sinusoidal features of t (spec §4.1), in
// float32: [cos(t·φ_k) for k < 128, sin(t·φ_k) for k < 128], φ_k = exp(−ln(10⁴)·k/128).
func timestepFeatures[T Float](dst []T, t int) {
	const half = TimeFeatures / 2
	lnmp := float32(-math.Log(10000))
	for k := 0; k < half; k++ {
		// fp32 throughout, as torch computes exp(−ln(10⁴)·arange(half)/half).
		f := float32(math.Exp(float64(float32(k) * lnmp / float32(half))))
		a := float64(float32(t) * f)
		dst[k] = T(float32(math.Cos(a)))
		dst[half+k] = T(float32(math.Sin(a)))
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
	n.condition(t, y)
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
		n.updateFwd(u, masks[m], next)
		cur = next
	}
	if M == 0 {
		copy(n.out, s0)
	}
	return n.out, nil
}

// condition computes c = temb(t) + yemb(y) and the two adaLN modulations
// (spec §4.1, §4.2, §3 steps 5 and 13), once per call: c is fixed within it.
func (n *Net[T]) condition(t []int, y []T) {
	p, b, D := n.P, n.B, n.D
	for i, ti := range t {
		timestepFeatures(n.tfeat[i*TimeFeatures:(i+1)*TimeFeatures], ti)
	}
	if n.timeFeatures != nil {
		copy(n.tfeat, n.timeFeatures)
	}
	copy(n.yIn, y)
	linearFwd(n.th, n.tfeat, p.TEmb0W.W, p.TEmb0B.W, b, TimeFeatures, D)
	sth := make([]T, b*D)
	for i, v := range n.th {
		sth[i] = T(silu(float64(v)))
	}
	linearFwd(n.temb, sth, p.TEmb2W.W, p.TEmb2B.W, b, D, D)
	linearFwd(n.yh, n.yIn, p.YEmb0W.W, p.YEmb0B.W, b, n.K, D)
	linearFwd(n.c, n.yh, p.YEmb1W.W, p.YEmb1B.W, b, D, D)
	for i := range n.c {
		n.c[i] += n.temb[i]
		n.sc[i] = T(silu(float64(n.c[i])))
	}
	linearFwd(n.mod, n.sc, p.AdaW.W, p.AdaB.W, b, D, 6*D)
	linearFwd(n.fmod, n.sc, p.FAdaW.W, p.FAdaB.W, b, D, 2*D)
}

// Cond returns c (B×D) of the last Forward.
func (n *Net[T]) Cond() []T { return n.c }

// layerNorm normalises each row of x (rows×d) into xhat with population
// variance, storing 1/sqrt(var + eps) per row.
func layerNorm[T Float](xhat, rstd, x []T, rows, d int, eps float64) {
	parallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*d : (r+1)*d]
			var mean float64
			for _, v := range row {
				mean += float64(v)
			}
			mean /= float64(d)
			var v2 float64
			for _, v := range row {
				dv := float64(v) - mean
				v2 += dv * dv
			}
			rs := 1 / math.Sqrt(v2/float64(d)+eps)
			rstd[r] = T(rs)
			out := xhat[r*d : (r+1)*d]
			for k, v := range row {
				out[k] = T((float64(v) - mean) * rs)
			}
		}
	})
}

// layerNormBwd turns the gradient w.r.t. xhat into the gradient w.r.t. x,
// adding it to dx: dx += rstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat)).
func layerNormBwd[T Float](dx, dxhat, xhat, rstd []T, rows, d int) {
	parallelFor(rows, 64, func(lo, hi int) {
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
func (n *Net[T]) modulate(a, xhat, g, beta []T, mod []T, modStride, shiftOff, scaleOff int, rs *rowSet) {
	D, N := n.D, n.N
	parallelFor(rs.count(), 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			b := rs.row(i) / N
			shift := mod[b*modStride+shiftOff*D : b*modStride+shiftOff*D+D]
			scale := mod[b*modStride+scaleOff*D : b*modStride+scaleOff*D+D]
			xh := xhat[i*D : (i+1)*D]
			out := a[i*D : (i+1)*D]
			for k := 0; k < D; k++ {
				v := xh[k]
				if g != nil {
					v = v*g[k] + beta[k]
				}
				out[k] = v*(1+scale[k]) + shift[k]
			}
		}
	})
}

// neighbour returns the row of slot k (k = 3a + b: row offset a − 1, column
// offset b − 1, spec §3 step 8) of row r, or −1 outside the grid.
func (n *Net[T]) neighbour(r, k int) int {
	H, W := n.P.Cfg.GridH, n.P.Cfg.GridW
	cell := r % n.N
	i, j := cell/W+k/3-1, cell%W+k%3-1
	if i < 0 || i >= H || j < 0 || j >= W {
		return -1
	}
	return r - cell + i*W + j
}

// setActive records which rows update (mask ≠ 0; nil = all).
func (n *Net[T]) setActive(u *update[T], mask []T) {
	u.act.idx = u.act.idx[:0]
	for b := 0; b < n.B; b++ {
		u.act.start[b] = len(u.act.idx)
		for r := b * n.N; r < (b+1)*n.N; r++ {
			if mask == nil || mask[r] != 0 {
				u.pos[r] = int32(len(u.act.idx))
				u.act.idx = append(u.act.idx, int32(r))
			} else {
				u.pos[r] = -1
			}
		}
	}
	u.act.start[n.B] = len(u.act.idx)
}

// updateFwd runs one cell update f (spec §3) on u.X and writes the new state
// into next.
func (n *Net[T]) updateFwd(u *update[T], mask []T, next []T) {
	p := n.P
	R, D, Cd, Mlp := n.R, n.D, n.Cd, n.Mlp
	n.setActive(u, mask)
	act := &u.act
	Ra := act.count()
	// 2-3: cell embedding plus positional code (every row: all are keys).
	e0 := n.e0
	linearFwd(e0, u.X, p.CellW.W, p.CellB.W, R, Cd, D)
	parallelFor(R, 256, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			pe := n.pe[(r%n.N)*D : (r%n.N+1)*D]
			row := e0[r*D : (r+1)*D]
			for k := range row {
				row[k] += pe[k]
			}
		}
	})
	// 6: A = LN1(E)·(1 + scale_msa) + shift_msa.
	layerNorm(u.xhat1, u.rstd1, e0, R, D, 1e-5)
	n.modulate(u.a1, u.xhat1, p.LN1G.W, p.LN1B.W, n.mod, 6*D, 0, 1, &n.all)
	// 7-9: QKV (every row), 3x3 local attention and output projection (active rows).
	linearFwd(u.qkv, u.a1, p.QKVW.W, nil, R, D, 3*D)
	n.attentionFwd(u)
	linearFwd(u.attn, u.o, p.OutW.W, p.OutB.W, Ra, D, D)
	// 10: E += gate_msa·Attn, from here on for the active rows only.
	e := n.eC
	parallelFor(Ra, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.row(i)
			copy(e[i*D:(i+1)*D], e0[r*D:(r+1)*D])
		}
	})
	n.gatedAdd(e, u.attn, 2, act)
	// 11: F = LN2(E)·(1 + scale_mlp) + shift_mlp; MLP with exact GELU.
	layerNorm(u.xhat2, u.rstd2, e, Ra, D, 1e-5)
	n.modulate(u.a2, u.xhat2, p.LN2G.W, p.LN2B.W, n.mod, 6*D, 3, 4, act)
	linearFwd(u.h, u.a2, p.MLP1W.W, p.MLP1B.W, Ra, D, Mlp)
	geluRows(n.tmpH[:Ra*Mlp], u.phi[:Ra*Mlp], u.h[:Ra*Mlp])
	linearFwd(u.y, n.tmpH, p.MLP2W.W, p.MLP2B.W, Ra, Mlp, D)
	// 12: E += gate_mlp·F.
	n.gatedAdd(e, u.y, 5, act)
	// 13: final layer: LN (eps 1e-6, no affine), its own adaLN, Linear.
	layerNorm(u.xhatf, u.rstdf, e, Ra, D, 1e-6)
	n.modulate(u.af, u.xhatf, nil, nil, n.fmod, 2*D, 0, 1, act)
	uo := n.dU
	linearFwd(uo, u.af, p.FinW.W, p.FinB.W, Ra, D, n.Ud)
	// 15-16: masked residual update of C_out and C_h; C_in kept.
	Cin, Ud := n.Cin, n.Ud
	copy(next[:R*Cd], u.X)
	parallelFor(Ra, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.row(i)
			m := T(1)
			if mask != nil {
				m = mask[r]
			}
			dst := next[r*Cd+Cin : r*Cd+Cin+Ud]
			up := uo[i*Ud : (i+1)*Ud]
			for k := range dst {
				dst[k] += m * up[k]
			}
		}
	})
}

// geluRows writes dst = GELU(x) = x·Φ(x) (exact erf form) and phi = Φ(x).
func geluRows[T Float](dst, phi, x []T) {
	if xf, ok := any(x).([]float32); ok {
		df, pf := any(dst).([]float32), any(phi).([]float32)
		parallelFor(len(xf), 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				p := 0.5 * (1 + erf32(xf[i]*(1/math.Sqrt2)))
				pf[i] = p
				df[i] = xf[i] * p
			}
		})
		return
	}
	parallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p := 0.5 * (1 + math.Erf(float64(x[i])/math.Sqrt2))
			phi[i] = T(p)
			dst[i] = T(float64(x[i]) * p)
		}
	})
}

// gatedAdd does E += gate_b ⊙ X for the rows of rs, gate = chunk `chunk` of
// the block modulation.
func (n *Net[T]) gatedAdd(e, x []T, chunk int, rs *rowSet) {
	D, N := n.D, n.N
	parallelFor(rs.count(), 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			b := rs.row(i) / N
			g := n.mod[b*6*D+chunk*D : b*6*D+chunk*D+D]
			er, xr := e[i*D:(i+1)*D], x[i*D:(i+1)*D]
			for k := range er {
				er[k] += g[k] * xr[k]
			}
		}
	})
}

// attentionFwd is the localised attention (spec §3 step 8) for the active
// rows: every cell attends to the 9 cells of its 3x3 window (itself
// included); slots outside the grid hold a zero key and value, so they take
// part in the softmax with logit 0.
func (n *Net[T]) attentionFwd(u *update[T]) {
	D, Hd, heads := n.D, n.Hd, n.Heads
	scale := 1 / math.Sqrt(float64(Hd))
	f32 := isF32[T]()
	parallelFor(u.act.count(), 64, func(lo, hi int) {
		var logit [9]float64
		var nb [9]int
		for i := lo; i < hi; i++ {
			r := u.act.row(i)
			for k := 0; k < 9; k++ {
				nb[k] = n.neighbour(r, k)
			}
			for h := 0; h < heads; h++ {
				q := u.qkv[r*3*D+h*Hd : r*3*D+h*Hd+Hd]
				mx := math.Inf(-1)
				for k := 0; k < 9; k++ {
					var s float64
					if nb[k] >= 0 {
						kv := u.qkv[nb[k]*3*D+D+h*Hd : nb[k]*3*D+D+h*Hd+Hd]
						for d := range q {
							s += float64(q[d]) * float64(kv[d])
						}
					}
					logit[k] = s * scale
					mx = max(mx, logit[k])
				}
				var sum float64
				for k := 0; k < 9; k++ {
					if f32 {
						logit[k] = float64(exp32(float32(logit[k] - mx)))
					} else {
						logit[k] = math.Exp(logit[k] - mx)
					}
					sum += logit[k]
				}
				pr := u.p[(i*heads+h)*9 : (i*heads+h)*9+9]
				o := u.o[i*D+h*Hd : i*D+h*Hd+Hd]
				zero(o)
				for k := 0; k < 9; k++ {
					pk := logit[k] / sum
					pr[k] = T(pk)
					if nb[k] < 0 {
						continue
					}
					v := u.qkv[nb[k]*3*D+2*D+h*Hd : nb[k]*3*D+2*D+h*Hd+Hd]
					for d := range o {
						o[d] += T(pk) * v[d]
					}
				}
			}
		}
	})
}

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

// modulateBwd back-propagates A = (xhat·γ + β)·(1 + scale_b) + shift_b over
// the rows of rs: it accumulates dscale, dshift into dmod, dγ, dβ into the
// parameters, and writes dxhat.
func (n *Net[T]) modulateBwd(dxhat, dA, xhat []T, g, beta *Param[T], mod, dmod []T, modStride, shiftOff, scaleOff int, rs *rowSet) {
	D, B := n.D, n.B
	var pg, pb []T
	if g != nil {
		pg, pb = make([]T, B*D), make([]T, B*D)
	}
	parallelFor(B, 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			scale := mod[b*modStride+scaleOff*D : b*modStride+scaleOff*D+D]
			dshift := dmod[b*modStride+shiftOff*D : b*modStride+shiftOff*D+D]
			dscale := dmod[b*modStride+scaleOff*D : b*modStride+scaleOff*D+D]
			for i := rs.start[b]; i < rs.start[b+1]; i++ {
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

// gatedAddBwd back-propagates E_out = E_in + gate_b ⊙ X over the rows of rs:
// dgate_b += Σ dE·X, dX = dE·gate (dE itself passes through unchanged).
func (n *Net[T]) gatedAddBwd(dx, dE, x []T, chunk int, rs *rowSet) {
	D := n.D
	parallelFor(n.B, 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			g := n.mod[b*6*D+chunk*D : b*6*D+chunk*D+D]
			dg := n.dmod[b*6*D+chunk*D : b*6*D+chunk*D+D]
			for i := rs.start[b]; i < rs.start[b+1]; i++ {
				de, xr, dxr := dE[i*D:(i+1)*D], x[i*D:(i+1)*D], dx[i*D:(i+1)*D]
				for k := range de {
					dg[k] += de[k] * xr[k]
					dxr[k] = de[k] * g[k]
				}
			}
		}
	})
}

// updateBwd back-propagates one cell update: n.dS holds dL/dS_{m+1} on entry
// and dL/dS_m on return.
func (n *Net[T]) updateBwd(u *update[T], mask []T) {
	p := n.P
	R, D, Cd, Cin, Ud, Mlp := n.R, n.D, n.Cd, n.Cin, n.Ud, n.Mlp
	act := &u.act
	Ra := act.count()
	// 16: S' = S + m·U on C_out|C_h. dS passes through; dU = m·dS' (active rows).
	dU := n.dU
	parallelFor(Ra, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.row(i)
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
	linearBwd(dZ, p.FinW.G, p.FinB.G, dU, u.af, p.FinW.W, Ra, D, Ud, false)
	dxh := n.dX2
	n.modulateBwd(dxh, dZ, u.xhatf, nil, nil, n.fmod, n.dfmod, 2*D, 0, 1, act)
	dE := n.dEC // gradient w.r.t. E (active rows) after step 12
	zero(dE[:Ra*D])
	layerNormBwd(dE, dxh, u.xhatf, u.rstdf, Ra, D)
	// 12: E2 = E1 + gate_mlp·Y.
	dY := n.dX1
	n.gatedAddBwd(dY, dE, u.y, 5, act)
	// 11: MLP.
	parallelFor(Ra*Mlp, 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			n.tmpH[i] = u.h[i] * u.phi[i]
		}
	})
	linearBwd(n.dH, p.MLP2W.G, p.MLP2B.G, dY, n.tmpH, p.MLP2W.W, Ra, Mlp, D, false)
	// GELU'(x) = Φ(x) + x·φ(x).
	if hf, ok := any(u.h).([]float32); ok {
		dh, ph := any(n.dH).([]float32), any(u.phi).([]float32)
		parallelFor(Ra*Mlp, 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				x := hf[i]
				dh[i] *= ph[i] + x*invSqrt2Pi*exp32(-0.5*x*x)
			}
		})
	} else {
		parallelFor(Ra*Mlp, 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				x := float64(u.h[i])
				n.dH[i] *= T(float64(u.phi[i]) + x*invSqrt2Pi*math.Exp(-0.5*x*x))
			}
		})
	}
	dF := n.dX1
	linearBwd(dF, p.MLP1W.G, p.MLP1B.G, n.dH, u.a2, p.MLP1W.W, Ra, D, Mlp, false)
	n.modulateBwd(dxh, dF, u.xhat2, p.LN2G, p.LN2B, n.mod, n.dmod, 6*D, 3, 4, act)
	layerNormBwd(dE, dxh, u.xhat2, u.rstd2, Ra, D)
	// 10: E1 = E0 + gate_msa·Attn.
	dAttn := n.dX1
	n.gatedAddBwd(dAttn, dE, u.attn, 2, act)
	// 9: output projection.
	linearBwd(n.dO, p.OutW.G, p.OutB.G, dAttn, u.o, p.OutW.W, Ra, D, D, false)
	// 8: attention, into dQKV of every row.
	n.attentionBwd(u, n.dO)
	// 7: QKV (every row).
	dA := n.dX1
	linearBwd(dA, p.QKVW.G, nil, n.dQKV, u.a1, p.QKVW.W, R, D, 3*D, false)
	// 6: LN1 + modulation.
	n.modulateBwd(dxh, dA, u.xhat1, p.LN1G, p.LN1B, n.mod, n.dmod, 6*D, 0, 1, &n.all)
	// dE0 = the residual path (active rows) + the LN1 path (every row).
	dEF := n.dEF
	zero(dEF)
	parallelFor(Ra, 256, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := act.row(i)
			copy(dEF[r*D:(r+1)*D], dE[i*D:(i+1)*D])
		}
	})
	layerNormBwd(dEF, dxh, u.xhat1, u.rstd1, R, D)
	// 2: cell embedding (the positional code is a constant). dS += dE·W_ce.
	linearBwd(n.dS, p.CellW.G, p.CellB.G, dEF, u.X, p.CellW.W, R, Cd, D, true)
}

// attentionBwd back-propagates the localised attention from dO (active rows)
// into n.dQKV (every row). It gathers instead of scattering: a cell's
// key/value gradient is collected from the active cells whose windows contain
// it, so rows can run in parallel.
func (n *Net[T]) attentionBwd(u *update[T], dO []T) {
	D, Hd, heads := n.D, n.Hd, n.Heads
	scale := 1 / math.Sqrt(float64(Hd))
	// Pass 1: dlogits and dq per active row (dq of inactive rows is zero).
	parallelFor(n.R, 256, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			if u.pos[r] < 0 {
				zero(n.dQKV[r*3*D : r*3*D+D])
			}
		}
	})
	parallelFor(u.act.count(), 64, func(lo, hi int) {
		var dp [9]float64
		var nb [9]int
		for i := lo; i < hi; i++ {
			r := u.act.row(i)
			for k := 0; k < 9; k++ {
				nb[k] = n.neighbour(r, k)
			}
			dq := n.dQKV[r*3*D : r*3*D+D]
			zero(dq)
			for h := 0; h < heads; h++ {
				do := dO[i*D+h*Hd : i*D+h*Hd+Hd]
				pr := u.p[(i*heads+h)*9 : (i*heads+h)*9+9]
				var dot float64
				for k := 0; k < 9; k++ {
					dp[k] = 0
					if nb[k] >= 0 {
						v := u.qkv[nb[k]*3*D+2*D+h*Hd : nb[k]*3*D+2*D+h*Hd+Hd]
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
					kv := u.qkv[nb[k]*3*D+D+h*Hd : nb[k]*3*D+D+h*Hd+Hd]
					for d := range dqh {
						dqh[d] += T(g) * kv[d]
					}
				}
			}
		}
	})
	// Pass 2: dk, dv of row r gathered from the active rows that see r. Row r
	// is in slot k of row r' when r' is r's neighbour in the opposite slot 8 − k.
	parallelFor(n.R, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dk := n.dQKV[r*3*D+D : r*3*D+2*D]
			dv := n.dQKV[r*3*D+2*D : r*3*D+3*D]
			zero(dk)
			zero(dv)
			for k := 0; k < 9; k++ {
				rp := n.neighbour(r, 8-k)
				if rp < 0 || u.pos[rp] < 0 {
					continue
				}
				ip := int(u.pos[rp])
				for h := 0; h < heads; h++ {
					g := n.dLogit[(ip*heads+h)*9+k]
					pk := u.p[(ip*heads+h)*9+k]
					q := u.qkv[rp*3*D+h*Hd : rp*3*D+h*Hd+Hd]
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
	linearBwd(dsc, p.AdaW.G, p.AdaB.G, n.dmod, n.sc, p.AdaW.W, b, D, 6*D, false)
	linearBwd(dsc, p.FAdaW.G, p.FAdaB.G, n.dfmod, n.sc, p.FAdaW.W, b, D, 2*D, true)
	dc := make([]T, b*D)
	for i := range dc {
		dc[i] = dsc[i] * T(siluGrad(float64(n.c[i])))
	}
	// c = temb + yemb.
	sth := make([]T, b*D)
	for i, v := range n.th {
		sth[i] = T(silu(float64(v)))
	}
	dsth := make([]T, b*D)
	linearBwd(dsth, p.TEmb2W.G, p.TEmb2B.G, dc, sth, p.TEmb2W.W, b, D, D, false)
	for i := range dsth {
		dsth[i] *= T(siluGrad(float64(n.th[i])))
	}
	linearBwd[T](nil, p.TEmb0W.G, p.TEmb0B.G, dsth, n.tfeat, p.TEmb0W.W, b, TimeFeatures, D, false)
	dyh := make([]T, b*D)
	linearBwd(dyh, p.YEmb1W.G, p.YEmb1B.G, dc, n.yh, p.YEmb1W.W, b, D, D, false)
	linearBwd[T](nil, p.YEmb0W.G, p.YEmb0B.G, dyh, n.yIn, p.YEmb0W.W, b, n.K, D, false)
}
