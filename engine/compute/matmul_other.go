//go:build !amd64

package compute

// kernel is the tile kernel Apply uses: the portable one on this architecture.
var kernel = goKernel

// tileKernels lists the kernels this CPU can run, for tests.
func tileKernels() []tileKernel { return []tileKernel{goKernel} }
