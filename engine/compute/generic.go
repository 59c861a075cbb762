package compute

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Float is the element type of the generic code: float32 for sampling and
// training, float64 for the gradient checks of training.
type Float interface{ ~float32 | ~float64 }

// IsF32 reports whether T is float32.
func IsF32[T Float]() bool {
	var z T
	_, ok := any(z).(float32)
	return ok
}

var dgemm = blas64.Implementation()

// GemmT is Gemm for either element type: float32 goes through the build's
// BLAS (Gemm), float64 through gonum.
func GemmT[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	switch av := any(a).(type) {
	case []float32:
		Gemm(transA, transB, m, n, k, float32(alpha), av, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		ta, tb := blas.NoTrans, blas.NoTrans
		if transA {
			ta = blas.Trans
		}
		if transB {
			tb = blas.Trans
		}
		if k == 0 {
			cv := any(c).([]float64)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					cv[i*ldc+j] *= float64(beta)
				}
			}
			return
		}
		dgemm.Dgemm(ta, tb, m, n, k, float64(alpha), av, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// ParallelFor splits [0, n) into GOMAXPROCS contiguous ranges of at least
// minChunk items and runs body on each, one goroutine per range. Every item
// is processed by exactly one call, so element-wise results never depend on
// the split. (Parallel, with its pool of workers, is the engine's fast path;
// this is the simpler splitter of the generic code.)
func ParallelFor(n, minChunk int, body func(lo, hi int)) {
	if n <= 0 {
		return
	}
	w := runtime.GOMAXPROCS(0)
	if minChunk < 1 {
		minChunk = 1
	}
	if w > n/minChunk {
		w = n / minChunk
	}
	if w <= 1 {
		body(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + w - 1) / w
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			body(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// Exp32 is e^x in float32 precision (a few ulps) without calling math.Exp:
// e^x = 2^n · e^f with n = round(x / ln 2), |f| ≤ ln 2 / 2, e^f by a
// degree-6 Taylor polynomial. Inputs are clamped to [−87, 88]. It is the
// exponential of the generic code's float32 softmax and GELU derivative;
// the fused kernels use expf, which rounds differently, and neither is
// swapped for the other so that both keep their numbers.
func Exp32(x float32) float32 {
	x = min(max(x, -87), 88)
	n := float32(math.Round(float64(x * 1.4426950408889634)))
	f := x - n*0.693145751953125 - n*1.428606765330187e-06
	p := float32(1.0 / 720)
	p = p*f + 1.0/120
	p = p*f + 1.0/24
	p = p*f + 1.0/6
	p = p*f + 0.5
	p = p*f + 1
	p = p*f + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// SiLU64 is x·sigmoid(x) in float64.
func SiLU64(x float64) float64 { return x / (1 + math.Exp(-x)) }
