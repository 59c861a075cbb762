// Package compute holds the numeric kernels behind the model code: matrix
// products and the fused element-wise ops of a cell update. Model code says
// what is computed; this package is where it is made fast.
package compute

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ. C is m×n, op(A) is m×k, op(B) is k×n; lda, ldb, ldc are
// row strides. It runs on the BLAS selected at build time (BLASName), split
// into tiles of C over GOMAXPROCS goroutines (the BLAS itself runs
// single-threaded, so idle BLAS threads never compete with our kernels), and
// allocates nothing.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 0 || n <= 0 {
		return
	}
	p := runtime.GOMAXPROCS(0)
	tm, tn := tiles(m, n, k, p)
	if tm*tn == 1 {
		serialGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	t := gemmTasks.Get().(*gemmTask)
	*t = gemmTask{transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, tm, tn}
	ParallelBlocks(tm*tn, min(p, tm*tn), t)
	*t = gemmTask{}
	gemmTasks.Put(t)
}

type gemmTask struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	beta           float32
	c              []float32
	ldc            int
	tm, tn         int // tiles along m and n
}

var gemmTasks = sync.Pool{New: func() any { return new(gemmTask) }}

func (t *gemmTask) Run(lo, hi int) {
	for i := lo; i < hi; i++ {
		bi, bj := i/t.tn, i%t.tn
		r0, r1 := bi*t.m/t.tm, (bi+1)*t.m/t.tm
		c0, c1 := bj*t.n/t.tn, (bj+1)*t.n/t.tn
		if r0 == r1 || c0 == c1 {
			continue
		}
		var a, b []float32
		if t.transA {
			a = t.a[r0:]
		} else {
			a = t.a[r0*t.lda:]
		}
		if t.transB {
			b = t.b[c0*t.ldb:]
		} else {
			b = t.b[c0:]
		}
		serialGemm(t.transA, t.transB, r1-r0, c1-c0, t.k, t.alpha, a, t.lda, b, t.ldb, t.beta, t.c[r0*t.ldc+c0:], t.ldc)
	}
}

// serialGemm is one single-threaded BLAS call.
func serialGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	impl.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

var impl blas.Float32 = blas32.Implementation()
