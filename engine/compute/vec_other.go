//go:build !amd64

package compute

var hasAVX2 = false

func geluBiasAVX2(x, bias []float32)                                              { panic("no AVX2") }
func dotAVX2(a, b []float32) float32                                              { panic("no AVX2") }
func axpyAVX2(dst, x []float32, a float32)                                        { panic("no AVX2") }
func sumAVX2(x []float32) float32                                                 { panic("no AVX2") }
func sqDevAVX2(x []float32, mean float32) float32                                 { panic("no AVX2") }
func normModAVX2(dst, x, gamma, beta, scale, shift []float32, mean, rstd float32) { panic("no AVX2") }
func normModPlainAVX2(dst, x, scale, shift []float32, mean, rstd float32)         { panic("no AVX2") }
func gatedAddAVX2(h, base, gate, t, bias []float32)                               { panic("no AVX2") }
func add3AVX2(dst, a, b, c []float32)                                             { panic("no AVX2") }

func headDotsAVX2(q, k, out []float32, hd int) { panic("no AVX2") }
func headAxpyAVX2(o, v, p []float32, hd int)   { panic("no AVX2") }
