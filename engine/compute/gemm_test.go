package compute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

func naiveGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			c[i*ldc+j] = float32(float64(alpha)*s + float64(beta)*float64(c[i*ldc+j]))
		}
	}
}

// The tiled, multi-threaded Gemm must agree with a naive float64 product for
// every transpose combination, odd sizes, padded strides and beta.
func TestGemmTiled(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	for _, procs := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(procs), func(t *testing.T) {
			old := runtime.GOMAXPROCS(procs)
			for _, s := range [][3]int{{1, 1, 1}, {3, 5, 7}, {70, 200, 33}, {130, 67, 300}, {257, 513, 64}, {64, 1000, 17}} {
				for _, ta := range []bool{false, true} {
					for _, tb := range []bool{false, true} {
						m, n, k := s[0], s[1], s[2]
						lda, ldb, ldc := k+3, n+1, n+5
						if ta {
							lda = m + 2
						}
						if tb {
							ldb = k + 4
						}
						rowsA, rowsB := m, k
						if ta {
							rowsA = k
						}
						if tb {
							rowsB = n
						}
						a, b := fill(rowsA*lda), fill(rowsB*ldb)
						c0 := fill(m * ldc)
						got, want := append([]float32(nil), c0...), append([]float32(nil), c0...)
						Gemm(ta, tb, m, n, k, 0.7, a, lda, b, ldb, 0.3, got, ldc)
						naiveGemm(ta, tb, m, n, k, 0.7, a, lda, b, ldb, 0.3, want, ldc)
						name := fmt.Sprintf("procs=%d %dx%dx%d ta=%v tb=%v", procs, m, n, k, ta, tb)
						for i := range want {
							if d := math.Abs(float64(got[i] - want[i])); !(d <= 1e-4*math.Sqrt(float64(k))+1e-5) {
								t.Fatalf("%s: c[%d] = %v, want %v", name, i, got[i], want[i])
							}
						}
					}
				}
			}
			runtime.GOMAXPROCS(old)
		})
	}
}

type nested struct{ out []float32 }

func (k *nested) Run(lo, hi int) {
	for i := lo; i < hi; i++ {
		a := []float32{1, 2, 3, 4}
		c := make([]float32, 4*4)
		// A parallel product inside a parallel kernel must not deadlock.
		big := make([]float32, 256*256)
		for j := range big {
			big[j] = 1
		}
		cc := make([]float32, 256*256)
		Gemm(false, false, 256, 256, 256, 1, big, 256, big, 256, 0, cc, 256)
		Gemm(false, false, 4, 4, 1, 1, a, 1, a, 4, 0, c, 4)
		k.out[i] = c[15] + cc[0]
	}
}

func TestNestedParallel(t *testing.T) {
	k := &nested{out: make([]float32, 8)}
	Parallel(8, 1, k)
	for i, v := range k.out {
		if v != 16+256 {
			t.Fatalf("out[%d] = %v", i, v)
		}
	}
}

func TestGemmAllocs(t *testing.T) {
	m, n, k := 300, 700, 128
	a, b, c := make([]float32, m*k), make([]float32, n*k), make([]float32, m*n)
	Gemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
	if got := testing.AllocsPerRun(10, func() { Gemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n) }); got != 0 {
		t.Errorf("Gemm allocates %v times per call (%s)", got, BLASName)
	}
}
