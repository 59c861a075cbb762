//go:build openblas

package compute

// #cgo LDFLAGS: -lopenblas
import "C"

import "gonum.org/v1/netlib/blas/netlib"

// BLASName names the matrix-product library this binary was built with.
const BLASName = "OpenBLAS"

func init() { impl = netlib.Implementation{} }
