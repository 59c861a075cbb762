//go:build amd64

package compute

import "golang.org/x/sys/cpu"

// gnAVX2 selects the assembly loop of groupnorm_amd64.s (AVX2 and FMA).
var gnAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func gnSiLUAffineAVX2(dst, src []float32, a, b float32)

// siluAffine writes y[i] = t·sigmoid(t), t = x[i]·a + b.
func siluAffine(y, x []float32, a, b float32) {
	n := 0
	if gnAVX2 {
		n = len(x) &^ 7
		if n > 0 {
			gnSiLUAffineAVX2(y[:n], x[:n], a, b)
		}
	}
	siluAffineGo(y[n:], x[n:], a, b)
}
