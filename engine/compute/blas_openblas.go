//go:build openblas

package compute

import (
	"geca/engine/compute/openblas"

	"gonum.org/v1/netlib/blas/netlib"
)

// BLASName names the matrix-product library this binary was built with.
const BLASName = "OpenBLAS"

func init() {
	impl = netlib.Implementation{}
	// Threads come from Gemm's tiling; OpenBLAS's own threads would spin
	// between calls and take the cores from the element-wise kernels.
	openblas.SetThreads(1)
}

// tiles splits an m×n product into one tile per thread. Each tile is its own
// BLAS call, which packs its slice of both operands, so the split goes along
// the side that makes the least packing: along n (each call packs all of A and
// 1/p of B) when n > m, else along m.
func tiles(m, n, k, p int) (tm, tn int) {
	if p <= 1 || m*n*k < 1<<18 {
		return 1, 1
	}
	if n >= m && n >= 32*p {
		return 1, p
	}
	if m >= 32*p {
		return p, 1
	}
	if n >= 32*p {
		return 1, p
	}
	return 1, 1
}
