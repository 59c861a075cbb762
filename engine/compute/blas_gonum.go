//go:build !openblas

package compute

// BLASName names the matrix-product library this binary was built with.
const BLASName = "gonum (pure Go)"
