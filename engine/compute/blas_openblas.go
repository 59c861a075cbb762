//go:build openblas

package compute

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import "gonum.org/v1/netlib/blas/netlib"

// BLASName names the matrix-product library this binary was built with.
const BLASName = "OpenBLAS"

func init() {
	impl = netlib.Implementation{}
	// Threads come from Gemm's tiling; OpenBLAS's own threads would spin
	// between calls and take the cores from the element-wise kernels.
	C.openblas_set_num_threads(1)
}

// tiles splits an m×n product into one tile per thread along the longer
// useful side (OpenBLAS packs and blocks each tile itself).
func tiles(m, n, k, p int) (tm, tn int) {
	if p <= 1 || m*n*k < 1<<18 {
		return 1, 1
	}
	if m >= 32*p {
		return p, 1
	}
	if n >= 32*p {
		return 1, p
	}
	return 1, 1
}
