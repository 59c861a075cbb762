//go:build amd64

package compute

import "golang.org/x/sys/cpu"

// hasAVX2 selects the assembly loops of vec_amd64.s (AVX2 and FMA).
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func geluBiasAVX2(x, bias []float32)

//go:noescape
func dotAVX2(a, b []float32) float32

//go:noescape
func axpyAVX2(dst, x []float32, a float32)

//go:noescape
func sumAVX2(x []float32) float32

//go:noescape
func sqDevAVX2(x []float32, mean float32) float32

//go:noescape
func normModAVX2(dst, x, gamma, beta, scale, shift []float32, mean, rstd float32)

//go:noescape
func normModPlainAVX2(dst, x, scale, shift []float32, mean, rstd float32)

//go:noescape
func gatedAddAVX2(h, base, gate, t, bias []float32)

//go:noescape
func add3AVX2(dst, a, b, c []float32)

//go:noescape
func headDotsAVX2(q, k, out []float32, hd int)

//go:noescape
func headAxpyAVX2(o, v, p []float32, hd int)
