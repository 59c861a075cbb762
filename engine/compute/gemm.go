// Package compute holds the numeric kernels behind the model code: matrix
// products and the fused element-wise ops of a cell update. Model code says
// what is computed; this package is where it is made fast.
package compute

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ. C is m×n, op(A) is m×k, op(B) is k×n; lda, ldb, ldc are
// row strides. It runs on the BLAS selected at build time (BLASName).
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	impl.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Linear computes Y = X·Wᵀ + bias for X (rows×in), W (out×in) as stored by
// PyTorch, bias (out) or nil, Y (rows×out).
func Linear(y, x, w, bias []float32, rows, in, out int) {
	if bias != nil {
		for r := 0; r < rows; r++ {
			copy(y[r*out:(r+1)*out], bias)
		}
		Gemm(false, true, rows, out, in, 1, x, in, w, in, 1, y, out)
		return
	}
	Gemm(false, true, rows, out, in, 1, x, in, w, in, 0, y, out)
}

var impl blas.Float32 = blas32.Implementation()
