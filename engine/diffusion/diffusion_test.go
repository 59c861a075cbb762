package diffusion

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"

	"geca/internal/npy"
	"geca/internal/numcheck"
)

// Golden values come from testdata/golden.py (numpy float64 tables, torch fp32
// arithmetic); regenerate with `cd testdata && /usr/bin/python3 golden.py`.

type goldenTables struct {
	Timesteps map[string][]int                `json:"timesteps"`
	Tables    map[string]map[string][]float64 `json:"tables"`
	Errors    []string                        `json:"errors"`
	Subset    struct {
		Index  []int                `json:"index"`
		Values map[string][]float64 `json:"values"`
	} `json:"tables_1000_subset"`
	Linear1000 []float64 `json:"linear_betas_1000"`
	Linear250  []float64 `json:"linear_betas_250"`
}

func loadTables(t *testing.T) *goldenTables {
	t.Helper()
	b, err := os.ReadFile("testdata/tables.json")
	if err != nil {
		t.Fatal(err)
	}
	var g goldenTables
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func loadSteps(t *testing.T) map[string]*npy.Array {
	t.Helper()
	a, err := npy.ReadNPZ("testdata/steps.npz")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tableByName(s *Schedule, name string) []float64 {
	switch name {
	case "betas":
		return s.Betas
	case "log_betas":
		return s.LogBetas
	case "alphas_cumprod":
		return s.AlphasCumprod
	case "alphas_cumprod_prev":
		return s.AlphasCumprodPrev
	case "alphas_cumprod_next":
		return s.AlphasCumprodNext
	case "sqrt_alphas_cumprod":
		return s.SqrtAlphasCumprod
	case "sqrt_one_minus_alphas_cumprod":
		return s.SqrtOneMinusAlphasCumprod
	case "log_one_minus_alphas_cumprod":
		return s.LogOneMinusAlphasCumprod
	case "sqrt_recip_alphas_cumprod":
		return s.SqrtRecipAlphasCumprod
	case "sqrt_recipm1_alphas_cumprod":
		return s.SqrtRecipm1AlphasCumprod
	case "posterior_variance":
		return s.PosteriorVariance
	case "posterior_log_variance_clipped":
		return s.PosteriorLogVarianceClipped
	case "posterior_mean_coef1":
		return s.PosteriorMeanCoef1
	case "posterior_mean_coef2":
		return s.PosteriorMeanCoef2
	}
	return nil
}

// relClose64 allows a few ulps: numpy's sqrt/log are correctly rounded like
// Go's, but log may differ in the last bit.
func relClose64(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 4e-16*math.Max(math.Abs(a), math.Abs(b))
}

func TestLinearBetasExact(t *testing.T) {
	g := loadTables(t)
	for ci, c := range []struct {
		n    int
		want []float64
	}{{1000, g.Linear1000}, {250, g.Linear250}} {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			got := LinearBetas(c.n)
			if !slices.Equal(got, c.want) {
				t.Errorf("LinearBetas(%d) differs from numpy.linspace", c.n)
			}
		})
	}
}

func TestSpaceTimesteps(t *testing.T) {
	g := loadTables(t)
	for spec, want := range g.Timesteps {
		got, err := SpaceTimesteps(1000, spec)
		if err != nil {
			t.Errorf("%q: %v", spec, err)
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("%q: got %v\nwant %v", spec, got, want)
		}
	}
	for _, spec := range append(g.Errors, "-5", "0", "1,,2") {
		if _, err := SpaceTimesteps(1000, spec); err == nil {
			t.Errorf("%q: no error", spec)
		}
	}
	// docs/model.md §6.1: the three strides of 5.
	ts, _ := SpaceTimesteps(1000, "250")
	if len(ts) != 250 || ts[41] != 164 || ts[42] != 169 || ts[124] != 497 || ts[125] != 502 || ts[207] != 830 || ts[208] != 835 || ts[249] != 999 {
		t.Errorf("250-step respacing does not match docs/model.md §6.1: %v", ts)
	}
}

func TestTablesAgainstNumpy(t *testing.T) {
	g := loadTables(t)
	for spec, tables := range g.Tables {
		s, err := New(1000, spec)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Timesteps(), g.Timesteps[spec]) {
			t.Errorf("%q: timestep map differs", spec)
		}
		for name, want := range tables {
			got := tableByName(s, name)
			if len(got) != len(want) {
				t.Fatalf("%q %s: %d entries, want %d", spec, name, len(got), len(want))
			}
			for i := range want {
				if !relClose64(got[i], want[i]) {
					t.Errorf("%q %s[%d] = %.17g, want %.17g", spec, name, i, got[i], want[i])
				}
			}
		}
	}
	s, _ := New(1000, "")
	for name, want := range g.Subset.Values {
		got := tableByName(s, name)
		for k, i := range g.Subset.Index {
			if !relClose64(got[i], want[k]) {
				t.Errorf("1000-step %s[%d] = %.17g, want %.17g", name, i, got[i], want[k])
			}
		}
	}
}

// TestAnchorValues checks the anchor table of docs/model.md §6.2 literally.
func TestAnchorValues(t *testing.T) {
	s, err := New(1000, "250")
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		i, tau                                          int
		beta, ac, plv, logb, coef1, coef2, srac, srm1ac float64
	}{
		{0, 0, 1.0e-4, 0.9999, -9.364628159803084, -9.210340371976292, 1.0, 0.0, 1.0000500037503124, 0.01000050003749898},
		{1, 4, 5.990655644756426e-4, 0.9993009943420809, -9.364628159803084, -7.420139509285096, 0.8569824917180376, 0.1430175007910898, 1.0003496861640975, 0.026447960386545833},
		{124, 497, 0.03928879313804501, 0.0801877550089588, -3.2403875397321853, -3.2368159626551085, 0.012340339294004821, 0.9766642976660005, 3.53139235572747, 3.386846906798477},
		{248, 995, 0.07721930545605926, 4.3749749585179176e-5, -2.56110944373366, -2.561105782539523, 5.317205281952787e-4, 0.9606112312533837, 151.18622188168905, 151.18291466584216},
		{249, 999, 0.07751934499235003, 4.035829765375675e-5, -2.557231152560974, -2.5572277609664122, 5.127614983862911e-4, 0.9604553074808463, 157.41045725150065, 157.4072808104076},
	}
	for ci, r := range rows {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			i := r.i
			got := []float64{s.Betas[i], s.AlphasCumprod[i], s.PosteriorLogVarianceClipped[i], s.LogBetas[i], s.PosteriorMeanCoef1[i], s.PosteriorMeanCoef2[i], s.SqrtRecipAlphasCumprod[i], s.SqrtRecipm1AlphasCumprod[i]}
			want := []float64{r.beta, r.ac, r.plv, r.logb, r.coef1, r.coef2, r.srac, r.srm1ac}
			if s.Timestep(i) != r.tau {
				t.Errorf("τ_%d = %d, want %d", i, s.Timestep(i), r.tau)
			}
			for k := range want {
				// The table prints β′_0 rounded (1e-4; exactly 9.999999999998899e-05).
				if !(math.Abs(got[k]-want[k]) <= 1e-15*math.Max(1, math.Abs(want[k]))) && !relClose64(got[k], want[k]) {
					t.Errorf("row %d column %d: %.17g, want %.17g", i, k, got[k], want[k])
				}
			}
		})
	}
	full, _ := New(1000, "")
	// create_diffusion("") is a SpacedDiffusion over all steps, so even the
	// 1000-step betas are recomputed as 1 − ᾱ_t/ᾱ_{t−1} (β_0 = 9.999999999998899e-05).
	if !(math.Abs(full.Betas[0]-1e-4) <= 1e-16) || !(math.Abs(full.Betas[999]-0.02) <= 1e-16) || !relClose64(full.AlphasCumprod[999], 4.035829765375676e-5) {
		t.Errorf("1000-step schedule: β0 %g β999 %g ᾱ999 %.17g", full.Betas[0], full.Betas[999], full.AlphasCumprod[999])
	}
}

// closeF32 compares fp32 results that went through exp/log/tanh: Go's are
// correctly rounded, torch's vectorised ones are within an ulp or two, and one
// ulp of an intermediate can grow through the following products.
func closeF32(t *testing.T, what string, got, want []float32, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	if at := numcheck.WorstOutside(got, want, rtol, atol); at >= 0 {
		t.Errorf("%s: [%d] = %.9g, want %.9g", what, at, got[at], want[at])
	}
}

func TestStepsAgainstTorch(t *testing.T) {
	a := loadSteps(t)
	s250, _ := New(1000, "250")
	x, eps, v, z := a["x"].Data, a["eps"].Data, a["v"].Data, a["z"].Data
	n := len(x)
	for _, i := range []int{249, 124, 1, 0} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			xp, x0 := make([]float32, n), make([]float32, n)
			if err := s250.DDPMStep(xp, x0, x, eps, v, z, i, NoClip); err != nil {
				t.Fatal(err)
			}
			closeF32(t, fmt.Sprintf("ddpm x_prev i=%d", i), xp, a[fmt.Sprintf("ddpm_%d", i)].Data, 2e-6, 2e-6)
			closeF32(t, fmt.Sprintf("x0 i=%d", i), x0, a[fmt.Sprintf("x0_%d", i)].Data, 0, 0)
			mean, lv, x02 := make([]float32, n), make([]float32, n), make([]float32, n)
			if err := s250.PMeanVariance(mean, lv, x02, x, eps, v, i); err != nil {
				t.Fatal(err)
			}
			closeF32(t, fmt.Sprintf("mean i=%d", i), mean, a[fmt.Sprintf("mean_%d", i)].Data, 0, 0)
			closeF32(t, fmt.Sprintf("logvar i=%d", i), lv, a[fmt.Sprintf("logvar_%d", i)].Data, 0, 0)
			x03 := make([]float32, n)
			s250.PredictX0(x03, x, eps, i)
			closeF32(t, fmt.Sprintf("PredictX0 i=%d", i), x03, a[fmt.Sprintf("x0_%d", i)].Data, 0, 0)
			for _, eta := range []float32{0, 0.5, 1} {
				xd := make([]float32, n)
				if err := s250.DDIMStep(xd, nil, x, eps, z, i, eta, NoClip); err != nil {
					t.Fatal(err)
				}
				closeF32(t, fmt.Sprintf("ddim i=%d eta=%g", i, eta), xd, a[fmt.Sprintf("ddim_%d_eta%g", i, eta)].Data, 1e-6, 1e-6)
			}
			// clip_denoised=True: both steps use the clamped x̂0 (DDIM re-derives ε from it).
			xc, x0c := make([]float32, n), make([]float32, n)
			if err := s250.DDPMStep(xc, x0c, x, eps, v, z, i, ClipX0); err != nil {
				t.Fatal(err)
			}
			closeF32(t, fmt.Sprintf("clipped x0 i=%d", i), x0c, a[fmt.Sprintf("x0_clip_%d", i)].Data, 0, 0)
			closeF32(t, fmt.Sprintf("clipped ddpm x_prev i=%d", i), xc, a[fmt.Sprintf("ddpm_clip_%d", i)].Data, 2e-6, 2e-6)
			if err := s250.DDIMStep(xc, nil, x, eps, z, i, 0.5, ClipX0); err != nil {
				t.Fatal(err)
			}
			closeF32(t, fmt.Sprintf("clipped ddim i=%d", i), xc, a[fmt.Sprintf("ddim_clip_%d", i)].Data, 1e-6, 1e-6)
			ClipX0.Clamp(x03)
			closeF32(t, fmt.Sprintf("Clamp i=%d", i), x03, x0c, 0, 0)
		})
	}
	// At i = 0 the DDPM step is x̂0 exactly.
	xp := make([]float32, n)
	x0 := make([]float32, n)
	s250.DDPMStep(xp, x0, x, eps, v, z, 0, NoClip)
	if !slices.Equal(xp, x0) {
		t.Errorf("DDPM step at i=0 is not x̂0")
	}
	d25, _ := New(1000, "ddim25")
	if !d25.IsDDIMSpacing() || d25.Len() != 25 || d25.Timestep(24) != 960 {
		t.Errorf("ddim25: len %d last %d", d25.Len(), d25.Timestep(24))
	}
	for _, i := range []int{24, 12, 0} {
		xd := make([]float32, n)
		d25.DDIMStep(xd, nil, x, eps, z, i, 0, NoClip)
		closeF32(t, fmt.Sprintf("ddim25 i=%d", i), xd, a[fmt.Sprintf("ddim25_%d", i)].Data, 1e-6, 1e-6)
	}
}

func TestTrainingHelpersAgainstTorch(t *testing.T) {
	a := loadSteps(t)
	s, _ := New(1000, "")
	x0, eps, v, z := a["train_x0"].Data, a["eps"].Data, a["v"].Data, a["z"].Data
	n := len(x0)
	per := n / 2
	for _, ti := range []int{0, 1, 500, 999} {
		t.Run(fmt.Sprint(ti), func(t *testing.T) {
			xt := make([]float32, n)
			if err := s.QSample(xt, x0, z, ti); err != nil {
				t.Fatal(err)
			}
			closeF32(t, fmt.Sprintf("q_sample t=%d", ti), xt, a[fmt.Sprintf("qsample_%d", ti)].Data, 0, 0)
			pm := make([]float32, n)
			pv, plv, err := s.QPosteriorMeanVariance(pm, x0, xt, ti)
			if err != nil {
				t.Fatal(err)
			}
			closeF32(t, fmt.Sprintf("q_posterior mean t=%d", ti), pm, a[fmt.Sprintf("qpost_mean_%d", ti)].Data, 0, 0)
			closeF32(t, fmt.Sprintf("q_posterior var t=%d", ti), []float32{pv, pv}, a[fmt.Sprintf("qpost_var_%d", ti)].Data, 0, 0)
			closeF32(t, fmt.Sprintf("q_posterior logvar t=%d", ti), []float32{plv, plv}, a[fmt.Sprintf("qpost_logvar_%d", ti)].Data, 0, 0)
			wantVB := a[fmt.Sprintf("vb_%d", ti)].Data
			wantGrad := a[fmt.Sprintf("vbgrad_%d", ti)].Data
			grad := make([]float32, n)
			for b := 0; b < 2; b++ {
				sl := func(x []float32) []float32 { return x[b*per : (b+1)*per] }
				vb, err := s.VBTerm(sl(grad), sl(x0), sl(xt), sl(eps), sl(v), ti)
				if err != nil {
					t.Fatal(err)
				}
				if !(math.Abs(vb-float64(wantVB[b])) <= 2e-5*math.Abs(float64(wantVB[b]))+1e-7) {
					t.Errorf("vb t=%d sample %d = %.8g, want %.8g", ti, b, vb, wantVB[b])
				}
			}
			// The reference gradient is float64 autograd from the same fp32 means;
			// ours takes the log variance in fp32, hence a small relative slack.
			maxG := 0.0
			for _, g := range wantGrad {
				maxG = math.Max(maxG, math.Abs(float64(g)))
			}
			closeF32(t, fmt.Sprintf("d vb/d v t=%d", ti), grad, wantGrad, 1e-4, 1e-5*maxG)
		})
	}
	// Element functions.
	kl := make([]float32, len(a["kl"].Data))
	for i := range kl {
		kl[i] = NormalKL(a["kl_m1"].Data[i], a["kl_lv1"].Data[i], a["kl_m2"].Data[i], a["kl_lv2"].Data[i])
	}
	closeF32(t, "normal_kl", kl, a["kl"].Data, 1e-6, 1e-6)
	cdf := make([]float32, len(a["cdf"].Data))
	for i, x := range a["cdf_x"].Data {
		cdf[i] = ApproxStandardNormalCDF(x)
	}
	closeF32(t, "approx cdf", cdf, a["cdf"].Data, 1e-6, 1e-7)
	dll := make([]float32, len(a["dll"].Data))
	for i := range dll {
		dll[i] = DiscretizedGaussianLogLikelihood(a["dll_x"].Data[i], a["dll_mean"].Data[i], a["dll_logscale"].Data[i])
	}
	// Far in the tails (|x − μ| of many σ) the fp32 difference of two CDF values
	// near 0 or 1 is pure rounding noise in PyTorch and here alike; compare only
	// where the reference is above the clamp region.
	for i, w := range a["dll"].Data {
		if w < -12 {
			dll[i] = w
		}
	}
	closeF32(t, "discretized log-likelihood", dll, a["dll"].Data, 2e-5, 1e-6)
}

// TestVBGradientFiniteDifference checks the analytic d VB / d v by central
// differences in float64 around a few elements, at t = 0 (decoder NLL) and t > 0 (KL).
func TestVBGradientFiniteDifference(t *testing.T) {
	a := loadSteps(t)
	s, _ := New(1000, "")
	per := len(a["train_x0"].Data) / 2
	x0, eps := a["train_x0"].Data[:per], a["eps"].Data[:per]
	v := append([]float32(nil), a["v"].Data[:per]...)
	for i := range v {
		v[i] *= 0.6 // keep σ moderate so the bins are resolved
	}
	for _, ti := range []int{0, 3, 400} {
		t.Run(fmt.Sprint(ti), func(t *testing.T) {
			xt := make([]float32, per)
			s.QSample(xt, x0, a["z"].Data[:per], ti)
			grad := make([]float32, per)
			s.VBTerm(grad, x0, xt, eps, v, ti)
			for _, k := range []int{0, 1, 5, 17, 100} {
				h := float32(1e-2)
				vp := append([]float32(nil), v...)
				vp[k] += h
				fp, _ := s.VBTerm(nil, x0, xt, eps, vp, ti)
				vp[k] -= 2 * h
				fm, _ := s.VBTerm(nil, x0, xt, eps, vp, ti)
				fd := (fp - fm) / float64(2*h)
				if !(math.Abs(fd-float64(grad[k])) <= 0.02*math.Abs(fd)+1e-6) {
					t.Errorf("t=%d k=%d: analytic %.6g, finite difference %.6g", ti, k, grad[k], fd)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	s, _ := New(1000, "10")
	x := make([]float32, 4)
	if err := s.DDPMStep(x, nil, x, x, x, x[:3], 0, NoClip); err == nil {
		t.Error("length mismatch accepted")
	}
	if err := s.DDPMStep(x, nil, x, x, x, x, 10, NoClip); err == nil {
		t.Error("index out of range accepted")
	}
	if err := s.DDIMStep(x, nil, x, x, x, 0, -1, NoClip); err == nil {
		t.Error("negative eta accepted")
	}
	if _, err := FromBetas([]float64{0.1, 0}, []int{0, 1}); err == nil {
		t.Error("zero beta accepted")
	}
	if _, err := FromBetas(LinearBetas(10), []int{3, 2}); err == nil {
		t.Error("descending timesteps accepted")
	}
	if _, err := New(0, ""); err == nil {
		t.Error("zero steps accepted")
	}
	one, err := New(1000, "1")
	if err != nil || one.Len() != 1 {
		t.Fatalf("one-step schedule: %v", err)
	}
	xp := make([]float32, 4)
	if err := one.DDPMStep(xp, nil, []float32{1, 2, 3, 4}, make([]float32, 4), make([]float32, 4), []float32{9, 9, 9, 9}, 0, NoClip); err != nil {
		t.Fatal(err)
	}
	for _, v := range xp {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("one-step schedule produced %v", xp)
		}
	}
}

// TestFloat64Likelihood: the float64 CDF and decoder NLL agree with the fp32
// functions (themselves checked against PyTorch above) and their derivatives
// with central differences, in every bin kind and in the clamped tail.
func TestFloat64Likelihood(t *testing.T) {
	for _, x := range []float64{-3, -1.2, -0.3, 0, 0.01, 0.7, 2.5} {
		t.Run(fmt.Sprint(x), func(t *testing.T) {
			cdf, d := ApproxStandardNormalCDF64(x)
			if want := float64(ApproxStandardNormalCDF(float32(x))); math.Abs(cdf-want) > 1e-6 {
				t.Errorf("Φ64(%g) = %.9g, fp32 %.9g", x, cdf, want)
			}
			const h = 1e-6
			p, _ := ApproxStandardNormalCDF64(x + h)
			m, _ := ApproxStandardNormalCDF64(x - h)
			if fd := (p - m) / (2 * h); math.Abs(d-fd) > 1e-8 {
				t.Errorf("dΦ64/dx at %g = %.9g, finite difference %.9g", x, d, fd)
			}
		})
	}
	cases := []struct{ x, mean, logScale float64 }{
		{-1, -0.95, -3}, // lower edge bin
		{1, 0.9, -2.5},  // upper edge bin
		{0.2, 0.18, -4}, // interior
		{-0.4, 0.1, -1},
		{0.6, 0.6, -6},  // narrow σ: nearly all mass in the bin
		{0.3, -0.5, -5}, // tail: clamped, zero gradient
	}
	for ci, c := range cases {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			nll, d := DiscretizedGaussianNLL64(c.x, c.mean, c.logScale)
			want := -float64(DiscretizedGaussianLogLikelihood(float32(c.x), float32(c.mean), float32(c.logScale)))
			if !(math.Abs(nll-want) <= 1e-4*math.Abs(want)+1e-5) {
				t.Errorf("%+v: NLL64 %.8g, fp32 %.8g", c, nll, want)
			}
			const h = 1e-6
			p, _ := DiscretizedGaussianNLL64(c.x, c.mean, c.logScale+h)
			m, _ := DiscretizedGaussianNLL64(c.x, c.mean, c.logScale-h)
			if fd := (p - m) / (2 * h); math.Abs(d-fd) > 1e-6*math.Abs(fd)+1e-8 {
				t.Errorf("%+v: dNLL/dlogScale %.9g, finite difference %.9g", c, d, fd)
			}
			// The fp32 VB gradient uses the same core; it centres x in fp32, as
			// the fp32 likelihood does, hence the float32-sized slack.
			x32, m32, s32 := float32(c.x), float32(c.mean), float32(c.logScale)
			_, d32 := DiscretizedGaussianNLL64(float64(x32), float64(m32), float64(s32))
			if g := dLogLikelihoodDLogScale(x32, m32, s32); math.Abs(g+d32) > 1e-6*math.Abs(d32)+1e-12 {
				t.Errorf("%+v: fp32-input derivative %.9g, float64 %.9g", c, g, -d32)
			}
		})
	}
	if nll, d := DiscretizedGaussianNLL64(0.3, -0.5, -5); d != 0 || math.Abs(nll+math.Log(1e-12)) > 1e-9 {
		t.Errorf("tail bin: NLL %g, gradient %g; want the clamp −log 1e-12 and 0", nll, d)
	}
}

// TestEpsFromV: for x = √ᾱ·x0 + √(1−ᾱ)·ε and v = √ᾱ·ε − √(1−ᾱ)·x0, both
// formed in float64 from ᾱ as numpy tabulates it (the fixture), EpsFromV
// gives ε back, at every step of two respaced schedules, the noisiest
// included; and PredictX0 of that ε̂ gives x0 back.
func TestEpsFromV(t *testing.T) {
	g := loadTables(t)
	for _, spacing := range []string{"250", "50"} {
		abar := g.Tables[spacing]["alphas_cumprod"]
		if len(abar) == 0 {
			t.Fatalf("tables.json: no alphas_cumprod for spacing %q", spacing)
		}
		s, err := New(1000, spacing)
		if err != nil {
			t.Fatal(err)
		}
		x0, eps := []float32{-1, -0.25, 0.5, 1}, []float32{1.5, -0.7, 0.1, -2.2}
		x, v, got, back := make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 4)
		for i, ab := range abar {
			for k := range x0 {
				x[k] = float32(math.Sqrt(ab)*float64(x0[k]) + math.Sqrt(1-ab)*float64(eps[k]))
				v[k] = float32(math.Sqrt(ab)*float64(eps[k]) - math.Sqrt(1-ab)*float64(x0[k]))
			}
			if err := s.EpsFromV(got, x, v, i); err != nil {
				t.Fatal(err)
			}
			if err := s.PredictX0(back, x, got, i); err != nil {
				t.Fatal(err)
			}
			// x̂0 divides by √ᾱ (up to 158 at the noisiest step): its float32
			// error grows with it.
			tol := 2e-6 / math.Sqrt(ab)
			for k := range eps {
				if math.Abs(float64(got[k]-eps[k])) > 1e-6 || math.Abs(float64(back[k]-x0[k])) > tol {
					t.Fatalf("spacing %q, step %d (ᾱ %g): ε̂ %v, x̂0 %v; want %v, %v", spacing, i, ab, got, back, eps, x0)
				}
			}
		}
	}
	s, _ := New(1000, "")
	if err := s.EpsFromV(make([]float32, 3), make([]float32, 4), make([]float32, 4), 0); err == nil {
		t.Error("length mismatch accepted")
	}
}
