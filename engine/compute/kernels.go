package compute

import "math"

// The fused element-wise kernels of one cell update (docs/model.md §3). Rows are
// gathered cells: Idx[r] is the flat cell index b·N + n of row r, so a kernel
// can find the sample b (for the per-sample adaLN modulation) and the grid
// position n (for the positional code and the 3x3 neighbourhood).

// Mod is the adaLN modulation of a batch: for sample b, the vector of
// chunk c (0 = first chunk) is Vec[b·Stride + c·Dim : … + Dim].
type Mod struct {
	Vec    []float32
	Stride int
	Dim    int
}

func (m Mod) chunk(b, c int) []float32 {
	o := b*m.Stride + c*m.Dim
	return m.Vec[o : o+m.Dim : o+m.Dim]
}

// layerNormMod writes (x − mean)/sqrt(var + eps)·γ + β (γ, β nil: no
// affine), then ·(1 + scale) + shift, into dst, with the biased variance as
// torch.nn.LayerNorm computes it (two passes: mean, then squared deviations).
func layerNormMod(dst, x, gamma, beta, shift, scale []float32, eps float32) {
	n := float32(len(x))
	mean := vSum(x) / n
	v := vSqDev(x, mean) / n
	rstd := float32(1 / math.Sqrt(float64(v)+float64(eps)))
	vNormMod(dst, x, gamma, beta, scale, shift, mean, rstd)
}

// EmbedKernel finishes the cell embedding of gathered rows and prepares their
// keys and values (docs/model.md §3 steps 1–2 and 4):
//
//	e = G[r] + bias + PE[n];  E[cell] = e
//	a = LN₁(e)·(1 + scale_msa) + shift_msa;  A[cell] = a;  AG[r] = a
type EmbedKernel struct {
	G, Bias, PE []float32 // G: rows×D product X·Wᵀ; PE: N×D
	Idx         []int32
	N, D        int
	E, A, AG    []float32 // E, A: caches (B·N)×D; AG: rows×D
	Gamma, Beta []float32
	Eps         float32
	Mod         Mod // the modulation
	ShiftC      int // its chunk of the shift
	ScaleC      int // its chunk of the scale
}

func (k *EmbedKernel) Run(lo, hi int) {
	d := k.D
	for r := lo; r < hi; r++ {
		cell := int(k.Idx[r])
		b, n := cell/k.N, cell%k.N
		g := k.G[r*d : (r+1)*d]
		pe := k.PE[n*d : (n+1)*d]
		e := k.E[cell*d : (cell+1)*d]
		vAdd3(e, g, k.Bias, pe)
		a := k.A[cell*d : (cell+1)*d]
		layerNormMod(a, e, k.Gamma, k.Beta, k.Mod.chunk(b, k.ShiftC), k.Mod.chunk(b, k.ScaleC), k.Eps)
		copy(k.AG[r*d:(r+1)*d], a)
	}
}

// ScatterKernel copies row r of Src (Width wide) to row Idx[r] of Dst.
type ScatterKernel struct {
	Src, Dst []float32
	Idx      []int32
	Width    int
}

func (k *ScatterKernel) Run(lo, hi int) {
	w := k.Width
	for r := lo; r < hi; r++ {
		c := int(k.Idx[r])
		copy(k.Dst[c*w:(c+1)*w], k.Src[r*w:(r+1)*w])
	}
}

// GatherKernel copies row Idx[r] of Src (Width wide) to row r of Dst.
type GatherKernel struct {
	Src, Dst []float32
	Idx      []int32
	Width    int
}

func (k *GatherKernel) Run(lo, hi int) {
	w := k.Width
	for r := lo; r < hi; r++ {
		c := int(k.Idx[r])
		copy(k.Dst[r*w:(r+1)*w], k.Src[c*w:(c+1)*w])
	}
}

// LocalAttentionKernel is the 9-slot 3x3 local attention (docs/model.md §3 step 6)
// for gathered query rows. KV holds, for every cell of the batch, its keys
// then values (2·D wide, head h at columns [h·hd, (h+1)·hd) of each half).
// Out-of-grid slots hold a zero key and value: logit 0, weight taken, nothing
// added. If ObsRow ≥ 0, the softmax weights of that row go to ObsP
// (heads×9, slot k = 3a + b).
type LocalAttentionKernel struct {
	Q      []float32 // rows×D
	KV     []float32 // (B·H·W)×2D
	Out    []float32 // rows×D
	Idx    []int32
	H, W   int
	D      int
	Heads  int
	ObsRow int
	ObsP   []float32
}

func (k *LocalAttentionKernel) Run(lo, hi int) {
	d, heads := k.D, k.Heads
	hd := d / heads
	scale := float32(1 / math.Sqrt(float64(hd)))
	n := k.H * k.W
	var kvRow [9]int // flat cell of each slot, -1 outside
	// Logits and weights, slot-major: [s·heads + h].
	var stack [9 * 64]float32
	var lg []float32
	if 9*heads <= len(stack) {
		lg = stack[:9*heads]
	} else {
		lg = make([]float32, 9*heads) // more than 64 heads: rare, allowed to allocate
	}
	for r := lo; r < hi; r++ {
		cell := int(k.Idx[r])
		b, p := cell/n, cell%n
		i, j := p/k.W, p%k.W
		q := k.Q[r*d : (r+1)*d]
		for a := 0; a < 3; a++ {
			for c := 0; c < 3; c++ {
				ii, jj := i+a-1, j+c-1
				s := 3*a + c
				ls := lg[s*heads : (s+1)*heads]
				if ii < 0 || ii >= k.H || jj < 0 || jj >= k.W {
					// Zero-padded neighbour: zero key, so logit 0 (it still
					// takes softmax weight), zero value.
					kvRow[s] = -1
					clear(ls)
					continue
				}
				kvRow[s] = b*n + ii*k.W + jj
				c0 := kvRow[s] * 2 * d
				vHeadDots(q, k.KV[c0:c0+d], ls, hd)
			}
		}
		for h := 0; h < heads; h++ {
			mx := float32(math.Inf(-1))
			for s := 0; s < 9; s++ {
				l := lg[s*heads+h] * scale
				lg[s*heads+h] = l
				mx = max(mx, l)
			}
			var sum float32
			for s := 0; s < 9; s++ {
				e := expf(lg[s*heads+h] - mx)
				lg[s*heads+h] = e
				sum += e
			}
			inv := 1 / sum
			for s := 0; s < 9; s++ {
				lg[s*heads+h] *= inv
			}
		}
		out := k.Out[r*d : (r+1)*d]
		clear(out)
		for s := 0; s < 9; s++ {
			if kvRow[s] >= 0 {
				c0 := kvRow[s]*2*d + d
				vHeadAxpy(out, k.KV[c0:c0+d], lg[s*heads:(s+1)*heads], hd)
			}
		}
		if r == k.ObsRow && len(k.ObsP) >= heads*9 {
			for h := 0; h < heads; h++ {
				for s := 0; s < 9; s++ {
					k.ObsP[h*9+s] = lg[s*heads+h]
				}
			}
		}
	}
}

// ResidualNormKernel is a gated residual followed by the next modulated
// LayerNorm (docs/model.md §3 steps 7–8 and 8–9):
//
//	h = Base[row] + gate ⊙ (T[r] + bias);  H[r] = h
//	F[r] = LN(h)·(1 + scale) + shift
//
// Base is indexed by Idx (a cache over all cells) when BaseIdx is true, else
// by r (rows). Gate, shift and scale are chunks of Mod (per sample) and
// NormMod.
type ResidualNormKernel struct {
	Base    []float32
	BaseIdx bool
	T, Bias []float32
	H, F    []float32
	Idx     []int32
	N, D    int
	Gate    Mod // the gate is its chunk GateC
	GateC   int
	Gamma   []float32 // nil: no affine
	Beta    []float32
	Eps     float32
	NormMod Mod // the shift and scale are its chunks ShiftC and ScaleC
	ShiftC  int
	ScaleC  int
}

func (k *ResidualNormKernel) Run(lo, hi int) {
	d := k.D
	for r := lo; r < hi; r++ {
		cell := int(k.Idx[r])
		b := cell / k.N
		var base []float32
		if k.BaseIdx {
			base = k.Base[cell*d : (cell+1)*d]
		} else {
			base = k.Base[r*d : (r+1)*d]
		}
		t := k.T[r*d : (r+1)*d]
		h := k.H[r*d : (r+1)*d]
		vGatedAdd(h, base, k.Gate.chunk(b, k.GateC), t, k.Bias)
		layerNormMod(k.F[r*d:(r+1)*d], h, k.Gamma, k.Beta, k.NormMod.chunk(b, k.ShiftC), k.NormMod.chunk(b, k.ScaleC), k.Eps)
	}
}

// BiasGELUKernel computes X[r] = GELU(X[r] + Bias) in place with the exact
// (erf) GELU.
type BiasGELUKernel struct {
	X, Bias []float32
	W       int
}

func (k *BiasGELUKernel) Run(lo, hi int) {
	w := k.W
	for r := lo; r < hi; r++ {
		vGELUBias(k.X[r*w:(r+1)*w], k.Bias)
	}
}

// ApplyKernel adds the update U[r] + Bias of gathered row r to the C_out|C_h
// channels of cell Idx[r] of the state (cell-major, C channels, the update
// starting at channel Off), scaled by the cell's mask value Mask[cell] (nil:
// 1). Mag, if non-nil, receives the L2 norm of the applied update per cell.
type ApplyKernel struct {
	U, Bias []float32
	S       []float32
	Idx     []int32
	C, Off  int
	UW      int
	Mask    []float32
	Mag     []float32
}

func (k *ApplyKernel) Run(lo, hi int) {
	w := k.UW
	bias := k.Bias[:w]
	for r := lo; r < hi; r++ {
		cell := int(k.Idx[r])
		u := k.U[r*w : (r+1)*w]
		s := k.S[cell*k.C+k.Off : cell*k.C+k.Off+w]
		m := float32(1)
		if k.Mask != nil {
			m = k.Mask[cell]
		}
		var q float64
		for i := range u {
			v := m * (u[i] + bias[i])
			s[i] += v
			q += float64(v) * float64(v)
		}
		if k.Mag != nil {
			k.Mag[cell] = float32(math.Sqrt(q))
		}
	}
}

// SiLUTo computes x·sigmoid(x) element-wise into dst (exact, float64 exp).
func SiLUTo(dst, x []float32) {
	for i, v := range x {
		dst[i] = v / (1 + float32(math.Exp(float64(-v))))
	}
}

// GELU is the exact (erf) GELU of one value.
func GELU(v float32) float32 { return 0.5 * v * (1 + Erf(v*0.70710678118654752)) }

// Erf is a float32 error function: a rational approximation on [-4, 4]
// (odd numerator of degree 13, even denominator of degree 8) that is within
// a few ulp of the true value; |x| > 4 gives ±1, as erf does in float32.
func Erf(x float32) float32 {
	if x > 4 {
		x = 4
	} else if x < -4 {
		x = -4
	} else if x != x {
		return x
	}
	x2 := x * x
	p := float32(-2.72614225801306e-10)
	p = p*x2 + 2.77068142495902e-08
	p = p*x2 + -2.10102402082508e-06
	p = p*x2 + -5.69250639462346e-05
	p = p*x2 + -7.34990630326855e-04
	p = p*x2 + -2.95459980854025e-03
	p = p*x2 + -1.60960333262415e-02
	p = p * x
	q := float32(-1.45660718464996e-05)
	q = q*x2 + -2.13374055278905e-04
	q = q*x2 + -1.68282697438203e-03
	q = q*x2 + -7.37332916720468e-03
	q = q*x2 + -1.42647390514189e-02
	return p / q
}

// expf is exp(x) in float32 within 2 ulp (Cephes expf: x = n·ln2 + r with
// |r| ≤ ln2/2, a degree-6 polynomial for exp(r), times 2^n); several times
// faster than math.Exp, for the softmax of the local attention.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72:
		return float32(math.Inf(1))
	case x < -87.33:
		return 0
	}
	n := float32(math.Floor(float64(x*1.44269504088896341 + 0.5)))
	r := x - n*0.693359375
	r -= n * -2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}
