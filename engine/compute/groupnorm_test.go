package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestGroupNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const batch, c, hw, groups = 2, 6, 10, 3
	src := randSlice(r, batch*c*hw)
	for i := range src {
		src[i] = 3*src[i] + 5 // a large mean, so the variance formula matters
	}
	gamma, beta := randSlice(r, c), randSlice(r, c)
	const eps = 1e-6
	for _, silu := range []bool{false, true} {
		t.Run(fmt.Sprint(silu), func(t *testing.T) {
			dst := make([]float32, len(src))
			GroupNorm(dst, src, batch, c, hw, groups, gamma, beta, eps, silu)
			cg := c / groups
			for n := 0; n < batch; n++ {
				for g := 0; g < groups; g++ {
					blk := src[(n*c+g*cg)*hw : (n*c+(g+1)*cg)*hw]
					mean := 0.0
					for _, v := range blk {
						mean += float64(v)
					}
					mean /= float64(len(blk))
					vr := 0.0
					for _, v := range blk {
						vr += (float64(v) - mean) * (float64(v) - mean)
					}
					vr /= float64(len(blk))
					for i := range blk {
						ch := g*cg + i/hw
						want := (float64(blk[i])-mean)/math.Sqrt(vr+eps)*float64(gamma[ch]) + float64(beta[ch])
						if silu {
							want = want / (1 + math.Exp(-want))
						}
						got := float64(dst[(n*c+g*cg)*hw+i])
						if !(math.Abs(got-want) <= 1e-5*(1+math.Abs(want))) {
							t.Fatalf("silu=%v n=%d g=%d i=%d: got %v, want %v", silu, n, g, i, got, want)
						}
					}
				}
			}
		})
	}
	// In place gives the same result.
	want := make([]float32, len(src))
	GroupNorm(want, src, batch, c, hw, groups, gamma, beta, eps, true)
	GroupNorm(src, src, batch, c, hw, groups, gamma, beta, eps, true)
	for i := range src {
		if src[i] != want[i] {
			t.Fatalf("in place differs at %d", i)
		}
	}
}

func TestGnExp(t *testing.T) {
	for x := -87.0; x <= 88.0; x += 0.01 {
		got := float64(gnExp(float32(x)))
		want := math.Exp(float64(float32(x)))
		if !(math.Abs(got-want) <= 4e-7*want) {
			t.Fatalf("exp(%v) = %v, want %v (rel %g)", x, got, want, math.Abs(got-want)/want)
		}
	}
	if gnExp(100) != float32(math.Inf(1)) || gnExp(-100) != 0 {
		t.Error("exp out of range")
	}
	if v := gnExp(float32(math.NaN())); v == v {
		t.Error("exp(NaN) is not NaN")
	}
}

func TestSiLUAffine(t *testing.T) {
	// Every length up to 40 (assembly blocks of 8 plus the Go tail), values
	// across the whole range, NaN and ±Inf.
	r := rand.New(rand.NewPCG(7, 8))
	for n := 0; n <= 40; n++ {
		x := randSlice(r, n)
		for i := range x {
			x[i] *= 30
		}
		if n > 3 {
			x[0], x[1], x[2] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))
		}
		y := make([]float32, n)
		a, b := float32(1.5), float32(-0.25)
		siluAffine(y, x, a, b)
		for i := range x {
			// Exact t: the assembly rounds x·a + b once (FMA), Go twice.
			tv := float64(x[i])*float64(a) + float64(b)
			want := tv / (1 + math.Exp(-tv))
			if math.IsInf(tv, -1) {
				want = math.NaN() // -Inf·0, as in PyTorch
			}
			got := float64(y[i])
			if math.IsNaN(want) || math.IsNaN(got) {
				if math.IsNaN(want) != math.IsNaN(got) && !math.IsInf(tv, -1) {
					t.Fatalf("n=%d i=%d: silu(%v) = %v, want %v", n, i, tv, got, want)
				}
				continue
			}
			if got != want && !(math.Abs(got-want) <= 3e-7*math.Abs(want)+1.2e-7*math.Abs(float64(x[i]*a))) { // equal infinities pass
				t.Fatalf("n=%d i=%d: silu(%v) = %v, want %v", n, i, tv, got, want)
			}
		}
	}
}

func BenchmarkGroupNormSiLU(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const c, hw = 128, 256 * 256
	x := randSlice(r, c*hw)
	y := make([]float32, c*hw)
	g, be := randSlice(r, c), randSlice(r, c)
	for b.Loop() {
		GroupNorm(y, x, 1, c, hw, 32, g, be, 1e-6, true)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(c*hw), "ns/value")
}
