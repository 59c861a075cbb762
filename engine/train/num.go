// Package train trains GeCA models: the backward pass of every op of the cell
// update (spec §3) through all M updates, the diffusion loss (noise MSE plus the
// variational term of the learned variance, spec §8), AdamW and EMA.
//
// The network code is generic over float32 and float64: float64 is what the
// finite-difference gradient checks run on, float32 is what real training runs
// on (its matrix products go through engine/compute.Gemm).
//
// What training shares with inference is not repeated here: the diffusion
// process (its float64 tables and the decoder likelihood) is engine/diffusion's,
// and Sample, which draws the training previews, runs engine/sample, the app's
// sampler.
package train

import (
	"math"
	"runtime"
	"sync"

	"geca/engine/compute"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Float is the element type of a network.
type Float interface{ ~float32 | ~float64 }

var dgemm = blas64.Implementation()

// gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices (see
// compute.Gemm). float32 goes through the build's BLAS, float64 through gonum.
func gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	switch av := any(a).(type) {
	case []float32:
		compute.Gemm(transA, transB, m, n, k, float32(alpha), av, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
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

// rowBlock is the smallest row range the big matrix products are split into:
// each goroutine runs its own single-threaded GEMM on a block of rows, which
// keeps all cores busy without the BLAS's own threads fighting ours.
const rowBlock = 512

// linearFwd computes Y = X·Wᵀ + bias (bias may be nil) for X rows×in, W out×in.
func linearFwd[T Float](y, x, w, bias []T, rows, in, out int) {
	parallelFor(rows, rowBlock, func(lo, hi int) {
		beta := T(0)
		if bias != nil {
			for r := lo; r < hi; r++ {
				copy(y[r*out:(r+1)*out], bias)
			}
			beta = 1
		}
		gemm(false, true, hi-lo, out, in, 1, x[lo*in:], in, w, in, beta, y[lo*out:], out)
	})
}

// linearBwd accumulates the gradients of Y = X·Wᵀ + bias: dW += dYᵀ·X,
// dBias += Σ_rows dY (when dBias != nil), and dX = dY·W (or dX += when
// accumulate; skipped when dX is nil).
func linearBwd[T Float](dx, dw, db, dy, x, w []T, rows, in, out int, accumulate bool) {
	// dW: one partial sum per fixed block of rows, added in block order, so
	// the result does not depend on the number of threads.
	nb := (rows + rowBlock*4 - 1) / (rowBlock * 4)
	if nb <= 1 {
		gemm(true, false, out, in, rows, 1, dy, out, x, in, 1, dw, in)
	} else {
		per := (rows + nb - 1) / nb
		parts := make([][]T, nb)
		parallelFor(nb, 1, func(lo, hi int) {
			for c := lo; c < hi; c++ {
				r0, r1 := c*per, min((c+1)*per, rows)
				parts[c] = make([]T, out*in)
				gemm(true, false, out, in, r1-r0, 1, dy[r0*out:], out, x[r0*in:], in, 0, parts[c], in)
			}
		})
		for _, pt := range parts {
			for i, v := range pt {
				dw[i] += v
			}
		}
	}
	if db != nil {
		colSum(db, dy, rows, out)
	}
	if dx != nil {
		beta := T(0)
		if accumulate {
			beta = 1
		}
		parallelFor(rows, rowBlock, func(lo, hi int) {
			gemm(false, false, hi-lo, in, out, 1, dy[lo*out:], out, w, in, beta, dx[lo*in:], in)
		})
	}
}

// colSum adds the column sums of the rows×cols matrix a to dst, in a fixed
// order so the result does not depend on the thread count.
func colSum[T Float](dst, a []T, rows, cols int) {
	const chunk = 1024
	nch := (rows + chunk - 1) / chunk
	part := make([]T, nch*cols)
	parallelFor(nch, 1, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			p := part[c*cols : (c+1)*cols]
			for r := c * chunk; r < min((c+1)*chunk, rows); r++ {
				row := a[r*cols : (r+1)*cols]
				for j, v := range row {
					p[j] += v
				}
			}
		}
	})
	for c := 0; c < nch; c++ {
		for j, v := range part[c*cols : (c+1)*cols] {
			dst[j] += v
		}
	}
}

// workers is the number of goroutines element-wise loops split into.
func workers() int { return runtime.GOMAXPROCS(0) }

// parallelFor splits [0, n) into contiguous ranges of at least minChunk items
// and runs body on each, one goroutine per range. Every item is processed by
// exactly one call, so results never depend on the split.
func parallelFor(n, minChunk int, body func(lo, hi int)) {
	if n <= 0 {
		return
	}
	w := workers()
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

func silu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// siluGrad is d silu(x)/dx = σ(x)(1 + x(1 − σ(x))).
func siluGrad(x float64) float64 {
	s := 1 / (1 + math.Exp(-x))
	return s * (1 + x*(1-s))
}

// gelu is the exact (erf) GELU of torch.nn.GELU() (spec §3 step 11).
func gelu(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

const invSqrt2Pi = 0.3989422804014327

func geluGrad(x float64) float64 {
	return 0.5*(1+math.Erf(x/math.Sqrt2)) + x*invSqrt2Pi*math.Exp(-0.5*x*x)
}

func zero[T Float](s []T) {
	for i := range s {
		s[i] = 0
	}
}

// erf32 is the float32 erf of the inference kernels (compute.Erf: a rational
// approximation accurate to a few ulps and free of exp), so training and
// inference evaluate the same GELU.
func erf32(x float32) float32 { return compute.Erf(x) }

// isF32 reports whether T is float32 (the fast training path).
func isF32[T Float]() bool {
	var z T
	_, ok := any(z).(float32)
	return ok
}

// exp32 is e^x in float32 precision (a few ulps) without calling math.Exp:
// e^x = 2^n · e^f with n = round(x / ln 2), |f| ≤ ln 2 / 2, e^f by a
// degree-6 Taylor polynomial. Inputs are clamped to [−87, 88].
func exp32(x float32) float32 {
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
