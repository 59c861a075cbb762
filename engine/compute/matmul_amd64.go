//go:build amd64

package compute

import "golang.org/x/sys/cpu"

//go:noescape
func tile6x16AVX2(kc int, a, b, c *float32, ldc int, bias *float32, flags int)

//go:noescape
func tile12x32AVX512(kc int, a, b *float32, stride int, c *float32, ldc int, bias *float32, flags int)

var (
	avx2Kernel   = tileKernel{name: "avx2", rows: 6, panels: 1, run: tile6x16}
	avx512Kernel = tileKernel{name: "avx512", rows: 12, panels: 2, run: tile12x32}
)

// kernel is the tile kernel Apply uses: the widest the CPU has. All give
// the same bits (matmul_test.go), so the choice changes only the speed.
var kernel = pickKernel()

func pickKernel() tileKernel {
	switch {
	case cpu.X86.HasAVX512F:
		return avx512Kernel
	case hasAVX2:
		return avx2Kernel
	}
	return goKernel
}

func tile6x16(kc int, a, b []float32, stride int, c []float32, ldc int, bias []float32, flags int) {
	// The bounds the assembly relies on.
	_, _ = a[kc*6-1], b[kc*tileCols-1]
	_ = c[5*ldc+tileCols-1]
	bp := &c[0]
	if flags&tileBias != 0 {
		_ = bias[tileCols-1]
		bp = &bias[0]
	}
	tile6x16AVX2(kc, &a[0], &b[0], &c[0], ldc, bp, flags)
}

func tile12x32(kc int, a, b []float32, stride int, c []float32, ldc int, bias []float32, flags int) {
	_, _ = a[kc*12-1], b[stride+kc*tileCols-1]
	_ = c[11*ldc+2*tileCols-1]
	bp := &c[0]
	if flags&tileBias != 0 {
		_ = bias[2*tileCols-1]
		bp = &bias[0]
	}
	tile12x32AVX512(kc, &a[0], &b[0], stride, &c[0], ldc, bp, flags)
}

// tileKernels lists the kernels this CPU can run, for tests.
func tileKernels() []tileKernel {
	ks := []tileKernel{goKernel}
	if hasAVX2 {
		ks = append(ks, avx2Kernel)
	}
	if cpu.X86.HasAVX512F {
		ks = append(ks, avx512Kernel)
	}
	return ks
}
