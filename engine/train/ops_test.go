package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"geca/engine"
	"geca/engine/compute"
	"geca/engine/diffusion"
)

// Op-level gradient checks in float64: each backward op against fourth-order
// central differences of its forward op, relative error ≤ 1e-6.

func randVec(r *rand.Rand, n int, std float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = std * r.NormFloat64()
	}
	return v
}

// checkGrad compares grad with the numerical gradient of f w.r.t. x.
func checkGrad(t *testing.T, name string, x, grad []float64, f func() float64) {
	t.Helper()
	checkGradH(t, name, x, grad, f, 5e-5)
}

func checkGradH(t *testing.T, name string, x, grad []float64, f func() float64, h float64) {
	t.Helper()
	num := make([]float64, len(x))
	for i := range x {
		num[i] = fourPointH(x, i, f, h)
	}
	e := relErr(grad, num)
	if e > 1e-6 || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g", name, e)
	} else {
		t.Logf("%-28s rel err %.2g", name, e)
	}
}

func TestGradLinear(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const rows, in, out = 5, 4, 3
	x, w, b, wy := randVec(r, rows*in, 1), randVec(r, out*in, 1), randVec(r, out, 1), randVec(r, rows*out, 1)
	y := make([]float64, rows*out)
	lin := engine.Linear[float64]{Weight: &engine.Param[float64]{W: w}, Bias: &engine.Param[float64]{W: b}, In: in, Out: out}
	f := func() float64 { lin.Forward(y, x, rows); return dot(y, wy) }
	dx, dw, db := make([]float64, rows*in), make([]float64, out*in), make([]float64, out)
	linearBwd(dx, dw, db, wy, x, w, rows, in, out, false)
	checkGrad(t, "linear dX", x, dx, f)
	checkGrad(t, "linear dW", w, dw, f)
	checkGrad(t, "linear dBias", b, db, f)
}

func TestGradLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, d = 3, 7
	for _, eps := range []float64{1e-5, 1e-6} {
		x, wy := randVec(r, rows*d, 2), randVec(r, rows*d, 1)
		xh, rs := make([]float64, rows*d), make([]float64, rows)
		ln := engine.LayerNorm[float64]{Dim: d, Eps: eps}
		f := func() float64 { ln.Normalize(xh, rs, x, rows); return dot(xh, wy) }
		f()
		dx := make([]float64, rows*d)
		layerNormBwd(dx, wy, xh, rs, rows, d)
		checkGrad(t, "layernorm", x, dx, f)
	}
}

func TestGradActivations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 3))
	x := randVec(r, 9, 2)
	wy := randVec(r, 9, 1)
	y, phi := make([]float64, 9), make([]float64, 9)
	g := make([]float64, 9)
	for i := range x {
		g[i] = wy[i] * geluGrad(x[i])
	}
	checkGrad(t, "gelu (exact erf)", x, g, func() float64 { engine.GELU(y, phi, x); return dot(y, wy) })
	for i := range x {
		g[i] = wy[i] * siluGrad(x[i])
	}
	checkGrad(t, "silu", x, g, func() float64 {
		for i := range x {
			y[i] = silu(x[i])
		}
		return dot(y, wy)
	})
	// engine.GELU must agree with the closed form.
	engine.GELU(y, phi, x)
	for i := range x {
		if !(math.Abs(y[i]-gelu(x[i])) <= 1e-15) {
			t.Fatalf("engine.GELU(%g) = %g, gelu = %g", x[i], y[i], gelu(x[i]))
		}
	}
}

// opNet is a small network whose internal ops are exercised one by one.
func opNet(t *testing.T) (*Net[float64], *rand.Rand) {
	cfg := tinyConfig()
	p, err := NewParams[float64](cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(4, 5))
	p.InitRandom(3, 0.3)
	n := NewNet(p, 2)
	n.ensureUpdates(1)
	for i := range n.cond.Mod {
		n.cond.Mod[i] = 0.5 * r.NormFloat64()
	}
	for i := range n.cond.FinalMod {
		n.cond.FinalMod[i] = 0.5 * r.NormFloat64()
	}
	return n, r
}

func TestGradModulate(t *testing.T) {
	n, r := opNet(t)
	D := n.D
	xh := randVec(r, n.R*D, 1)
	wy := randVec(r, n.R*D, 1)
	a := make([]float64, n.R*D)
	for _, affine := range []bool{true, false} {
		norm := &n.P.Transformer.Attn.Norm
		mod, dmod := n.cond.BlockMod(), n.blockDMod()
		if !affine {
			norm, mod, dmod = &n.P.FinalLayer.Norm, n.cond.FinalModulation(), n.finalDMod()
		}
		f := func() float64 { engine.Modulate(a, xh, norm, mod, 0, 1, &n.all); return dot(a, wy) }
		dxh := make([]float64, n.R*D)
		clear(dmod.Vec)
		if affine {
			n.P.ZeroGrad()
		}
		n.modulateBwd(dxh, wy, xh, norm, mod, dmod, 0, 1, &n.all)
		checkGrad(t, "modulate dxhat", xh, dxh, f)
		checkGrad(t, "modulate dshift,dscale", mod.Vec, dmod.Vec, f)
		if affine {
			checkGrad(t, "modulate dgamma", norm.Weight.W, norm.Weight.G, f)
			checkGrad(t, "modulate dbeta", norm.Bias.W, norm.Bias.G, f)
		}
	}
}

func TestGradGatedAdd(t *testing.T) {
	n, r := opNet(t)
	D := n.D
	x, e0, wy := randVec(r, n.R*D, 1), randVec(r, n.R*D, 1), randVec(r, n.R*D, 1)
	e := make([]float64, n.R*D)
	f := func() float64 {
		copy(e, e0)
		engine.GatedResidual(e, x, n.cond.BlockMod(), engine.GateAttn, &n.all)
		return dot(e, wy)
	}
	dx := make([]float64, n.R*D)
	zero(n.dmod)
	n.gatedAddBwd(dx, wy, x, engine.GateAttn, &n.all)
	checkGrad(t, "gated residual dX", x, dx, f)
	checkGrad(t, "gated residual dgate", n.cond.Mod, n.dmod, f)
}

func TestGradAttention(t *testing.T) {
	n, r := opNet(t)
	u := n.ups[0]
	mask := make([]float64, n.R)
	for i := range mask {
		mask[i] = float64(r.IntN(2))
	}
	u.SetActive(mask) // queries only from the active cells, keys from all
	copy(u.QKV, randVec(r, len(u.QKV), 1))
	wy := randVec(r, n.R*n.D, 1)
	f := func() float64 { n.P.Transformer.Attn.LocalAttention(u); return dot(u.O, wy) }
	f()
	n.attentionBwd(u, wy)
	checkGrad(t, "3x3 local attention", u.QKV, append([]float64(nil), n.dQKV...), f)
}

// trainingSchedule is the unrespaced 1000-step process the loss is taken on.
func trainingSchedule(t *testing.T) *diffusion.Schedule {
	t.Helper()
	s, err := diffusion.New(diffusion.DefaultSteps, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMinSNRWeight: min(SNR_t, γ)/SNR_t against ᾱ_t computed here from
// the linear β schedule (1e-4 … 0.02 over 1000 steps), and 1 for γ = 0.
func TestMinSNRWeight(t *testing.T) {
	s := trainingSchedule(t)
	abar := 1.0
	for i := 0; i < 1000; i++ {
		abar *= 1 - (1e-4 + (0.02-1e-4)*float64(i)/999)
		snr := abar / (1 - abar)
		want := 1.0
		if snr > 5 {
			want = 5 / snr
		}
		if got := MinSNRWeight(s, i, 5); !(math.Abs(got-want) <= 1e-9*want) {
			t.Fatalf("t=%d: weight %g, want %g (SNR %g)", i, got, want, snr)
		}
		if got := MinSNRWeight(s, i, 0); got != 1 {
			t.Fatalf("t=%d: γ 0 gives weight %g, want 1", i, got)
		}
	}
	// The nearly clean steps are the ones turned down: t = 0 has SNR ≈ 1e4.
	if w := MinSNRWeight(s, 0, 5); !(w > 4.9e-4 && w < 5.1e-4) {
		t.Errorf("t=0: weight %g, want ≈ 5e-4", w)
	}
}

func TestGradLoss(t *testing.T) {
	s := trainingSchedule(t)
	r := rand.New(rand.NewPCG(7, 7))
	const n = 12
	for _, tt := range []int{0, 1, 10, 500, 999} {
		x0 := randVec(r, n, 0.6)
		x0[0], x0[1] = -1, 1 // the edge bins of the discretised likelihood
		eps := randVec(r, n, 1)
		xt := make([]float64, n)
		for i := range xt {
			xt[i] = s.SqrtAlphasCumprod[tt]*x0[i] + s.SqrtOneMinusAlphasCumprod[tt]*eps[i]
		}
		eh, v := randVec(r, n, 1), randVec(r, n, 0.5)
		frozen := append([]float64(nil), eh...)
		dE, dV := make([]float64, n), make([]float64, n)
		sampleLoss(s, tt, x0, xt, eps, eh, frozen, v, dE, dV, 1, 1)
		f := func() float64 {
			lt := sampleLoss(s, tt, x0, xt, eps, eh, frozen, v, make([]float64, n), make([]float64, n), 1, 1)
			return lt.MSE + lt.VB
		}
		checkGrad(t, "loss dEps (MSE only)", eh, dE, f)
		// A weighted MSE (Min-SNR): the gradient is that of mseWeight·MSE.
		const w = 0.3
		dW := make([]float64, n)
		sampleLoss(s, tt, x0, xt, eps, eh, frozen, v, dW, make([]float64, n), 1, w)
		f = func() float64 {
			lt := sampleLoss(s, tt, x0, xt, eps, eh, frozen, v, make([]float64, n), make([]float64, n), 1, w)
			return w*lt.MSE + lt.VB
		}
		checkGrad(t, "loss dEps (weighted MSE)", eh, dW, f)
		// L_vb alone for dV: at large t its dependence on v is tiny next to the
		// MSE term, whose rounding would swamp the finite differences.
		f = func() float64 {
			return sampleLoss(s, tt, x0, xt, eps, eh, frozen, v, make([]float64, n), make([]float64, n), 1, 1).VB
		}
		// v moves the log-variance by (log β_t − log σ̃²_t)/2 per unit, which
		// is ~1e-6 at t = 999: a step of 1e-2 in v is still a tiny step there.
		h := 5e-5
		if tt > 100 {
			h = 1e-2
		}
		checkGradH(t, fmt.Sprintf("loss dV (L_vb) t=%d", tt), v, dV, f, h)
	}
}

// TestVLoss: a v-predicting model's loss (vSampleLoss) is the mean square of
// v̂ − v, v = √ᾱ·ε − √(1−ᾱ)·x0 formed here on its own, in its gradient; the
// reported noise MSE is that of the ε̂ = √(1−ᾱ)·x_t + √ᾱ·v̂ it means, and
// L_vb is the ε model's at that ε̂. Finite differences check dv̂.
func TestVLoss(t *testing.T) {
	s := trainingSchedule(t)
	r := rand.New(rand.NewPCG(9, 9))
	const n = 12
	for _, tt := range []int{0, 10, 500, 999} {
		x0 := randVec(r, n, 0.6)
		eps := randVec(r, n, 1)
		xt, v, epsHat := make([]float64, n), make([]float64, n), make([]float64, n)
		ab := s.AlphasCumprod[tt]
		for i := range xt {
			xt[i] = math.Sqrt(ab)*x0[i] + math.Sqrt(1-ab)*eps[i]
			v[i] = math.Sqrt(ab)*eps[i] - math.Sqrt(1-ab)*x0[i]
		}
		vHat, vv := randVec(r, n, 1), randVec(r, n, 0.5)
		var vmse, emse float64
		for i := range vHat {
			epsHat[i] = math.Sqrt(1-ab)*xt[i] + math.Sqrt(ab)*vHat[i]
			vmse += (vHat[i] - v[i]) * (vHat[i] - v[i]) / n
			emse += (epsHat[i] - eps[i]) * (epsHat[i] - eps[i]) / n
		}
		dVHat, dV := make([]float64, n), make([]float64, n)
		lt := vSampleLoss(s, tt, x0, xt, eps, vHat, vv, dVHat, dV, 1, 0)
		ref := sampleLoss(s, tt, x0, xt, eps, epsHat, epsHat, vv, make([]float64, n), make([]float64, n), 1, 1)
		if !(math.Abs(lt.MSE-emse) <= 1e-9*emse) || !(math.Abs(lt.VB-ref.VB) <= 1e-12+1e-9*math.Abs(ref.VB)) {
			t.Errorf("t=%d: noise MSE %g, L_vb %g; want %g, %g", tt, lt.MSE, lt.VB, emse, ref.VB)
		}
		for i := range dVHat {
			if want := 2 * (vHat[i] - v[i]) / n; !(math.Abs(dVHat[i]-want) <= 1e-7*math.Abs(want)+1e-12) {
				t.Fatalf("t=%d: dL/dv̂[%d] = %g, want 2(v̂ − v)/n = %g", tt, i, dVHat[i], want)
			}
		}
		f := func() float64 {
			lt := vSampleLoss(s, tt, x0, xt, eps, vHat, vv, make([]float64, n), make([]float64, n), 1, 0)
			return lt.MSE / ab // the v MSE; L_vb takes ε̂ detached, so it adds no gradient
		}
		checkGrad(t, fmt.Sprintf("v loss dv̂ t=%d", tt), vHat, dVHat, f)
		// Min-SNR-γ weighs the noise MSE as for an ε model.
		lt5 := vSampleLoss(s, tt, x0, xt, eps, vHat, vv, dVHat, dV, 1, 5)
		w := MinSNRWeight(s, tt, 5)
		for i := range dVHat {
			if want := w * 2 * (epsHat[i] - eps[i]) / n * math.Sqrt(ab); !(math.Abs(dVHat[i]-want) <= 1e-7*math.Abs(want)+1e-12) {
				t.Fatalf("t=%d, γ 5: dL/dv̂[%d] = %g, want %g", tt, i, dVHat[i], want)
			}
		}
		if lt5.MSE != lt.MSE {
			t.Errorf("t=%d: Min-SNR changed the reported noise MSE: %g, %g", tt, lt5.MSE, lt.MSE)
		}
	}
}

// TestLossMatchesDiffusion: L_vb and its v-gradient agree with
// engine/diffusion's VBTerm (tested there against PyTorch's IDDPM code).
func TestLossMatchesDiffusion(t *testing.T) {
	s := trainingSchedule(t)
	r := rand.New(rand.NewPCG(8, 8))
	const n = 64
	for _, tt := range []int{0, 3, 250, 998} {
		t.Run(fmt.Sprint(tt), func(t *testing.T) {
			x0 := randVec(r, n, 0.6)
			x0[0], x0[1] = -1, 1
			eps, eh, v := randVec(r, n, 1), randVec(r, n, 1), randVec(r, n, 0.5)
			xt := make([]float64, n)
			f32 := func(a []float64) []float32 {
				o := make([]float32, len(a))
				for i, x := range a {
					o[i] = float32(x)
				}
				return o
			}
			for i := range xt {
				xt[i] = float64(float32(s.SqrtAlphasCumprod[tt]*x0[i] + s.SqrtOneMinusAlphasCumprod[tt]*eps[i]))
			}
			x0, eh, v = toF64(f32(x0)), toF64(f32(eh)), toF64(f32(v))
			dE, dV := make([]float64, n), make([]float64, n)
			lt := sampleLoss(s, tt, x0, xt, eps, eh, eh, v, dE, dV, 1, 1)
			gv := make([]float32, n)
			want, err := s.VBTerm(gv, f32(x0), f32(xt), f32(eh), f32(v), tt)
			if err != nil {
				t.Fatal(err)
			}
			if !(math.Abs(lt.VB-want) <= 1e-4*math.Abs(want)+1e-6) {
				t.Errorf("t=%d: L_vb %.8g, diffusion.VBTerm %.8g", tt, lt.VB, want)
			}
			// Near t = 999, log β_t − log σ̃²_t is ~1e-6: VBTerm forms it from
			// float32 logs, so its gradient keeps only a digit or so there.
			tol := 1e-3
			if tt > 900 {
				tol = 0.25
			}
			if e := relErr(dV, toF64(gv)); e > tol {
				t.Errorf("t=%d: dL_vb/dv differs from diffusion.VBTerm by %.3g", tt, e)
			}
		})
	}
}

func toF64(a []float32) []float64 {
	o := make([]float64, len(a))
	for i, x := range a {
		o[i] = float64(x)
	}
	return o
}

func TestErf32(t *testing.T) {
	var worst float64
	for x := -6.0; x <= 6; x += 1e-3 {
		worst = max(worst, math.Abs(float64(compute.Erf(float32(x)))-math.Erf(float64(float32(x)))))
	}
	t.Logf("max |erf32 − erf| = %.2g", worst)
	if worst > 5e-7 {
		t.Fatalf("erf32 error %.3g", worst)
	}
}

func TestExp32(t *testing.T) {
	var worst float64
	for x := -80.0; x <= 80; x += 1e-3 {
		want := math.Exp(float64(float32(x)))
		worst = max(worst, math.Abs(float64(compute.Exp32(float32(x)))-want)/want)
	}
	t.Logf("max relative error of exp32: %.2g", worst)
	if worst > 1e-6 {
		t.Fatalf("exp32 relative error %.3g", worst)
	}
}
