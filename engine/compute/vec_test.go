package compute

import (
	"fmt"
	"math"
	"testing"

	"geca/internal/numcheck"
)

// The assembly loops must agree with the Go loops (and GELU with the exact
// erf) for every length, including the tails that are not a multiple of 8.
func TestVecAgainstGo(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2+FMA on this CPU: only the Go loops run")
	}
	lengths := []int{0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 64, 100, 768, 771}
	close := func(what string, n int, got, want []float32, tol float64) {
		t.Helper()
		if i := numcheck.WorstOutside(got, want, tol, tol); i >= 0 {
			t.Fatalf("%s n=%d: [%d] = %v, want %v", what, n, i, got[i], want[i])
		}
	}
	run := func(asm bool, f func()) {
		old := hasAVX2
		hasAVX2 = asm
		defer func() { hasAVX2 = old }()
		f()
	}
	for _, n := range lengths {
		a, b, c, d, e, f := randVec(n, 1), randVec(n, 2), randVec(n, 3), randVec(n, 4), randVec(n, 5), randVec(n, 6)
		for i := range a {
			a[i] *= 3 // GELU arguments well into the tails of erf
		}
		// GELU against float64 erf.
		x := append([]float32(nil), a...)
		vGELUBias(x, b)
		want := make([]float32, n)
		for i := range want {
			v := float64(a[i] + b[i])
			want[i] = float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
		}
		close("gelu", n, x, want, 2e-6)

		var dotA, dotG, sumA, sumG, sqA, sqG float32
		run(true, func() { dotA, sumA, sqA = vDot(a, b), vSum(a), vSqDev(a, 0.3) })
		run(false, func() { dotG, sumG, sqG = vDot(a, b), vSum(a), vSqDev(a, 0.3) })
		close("dot", n, []float32{dotA}, []float32{dotG}, 1e-5*math.Sqrt(float64(n)+1))
		close("sum", n, []float32{sumA}, []float32{sumG}, 1e-5*math.Sqrt(float64(n)+1))
		close("sqdev", n, []float32{sqA}, []float32{sqG}, 1e-6)

		for _, name := range []string{"axpy", "normmod", "normplain", "gated", "add3"} {
			outA, outG := append([]float32(nil), f...), append([]float32(nil), f...)
			for i, out := range [][]float32{outA, outG} {
				run(i == 0, func() {
					switch name {
					case "axpy":
						vAxpy(out, a, 0.7)
					case "normmod":
						vNormMod(out, a, b, c, d, e, 0.2, 1.3)
					case "normplain":
						vNormMod(out, a, nil, nil, d, e, 0.2, 1.3)
					case "gated":
						vGatedAdd(out, a, b, c, d)
					case "add3":
						vAdd3(out, a, b, c)
					}
				})
			}
			close(fmt.Sprint(name), n, outA, outG, 1e-6)
		}
	}
}

func TestGELUScalar(t *testing.T) {
	var worst float64
	for i := -80000; i <= 80000; i++ {
		v := float32(i) * 1e-4
		want := 0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2))
		worst = math.Max(worst, math.Abs(float64(GELU(v))-want))
	}
	if worst > 2e-6 {
		t.Errorf("GELU max abs error %g on [-8, 8]", worst)
	}
}

func TestExpf(t *testing.T) {
	var worst float64
	for i := -870000; i <= 880000; i++ {
		x := float32(i) * 1e-4
		want := math.Exp(float64(x))
		if e := math.Abs(float64(expf(x))-want) / want; e > worst {
			worst = e
		}
	}
	if worst > 3e-7 {
		t.Errorf("expf max relative error %g", worst)
	}
	if expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) {
		t.Error("expf out of range")
	}
}
